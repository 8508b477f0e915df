"""The ModelGraph: module calls as nodes, dataflow as edges, plus model metadata.

This module imports nothing else from mlx_report and nothing from MLX, so every
renderer and exporter can read a graph, including one loaded back from JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Container, Iterator

import networkx as nx

# networkx compiles its backend-dispatch wrapper of DiGraph.__new__ on the first graph a
# process makes (0.4 ms here): pay that once at import, not inside the first trace.
nx.DiGraph()

Shape = tuple[int, ...]


def split_param_key(key: str, module_paths: Container[str]) -> tuple[str, str]:
    """Split a parameter key into (module path, local name) at the longest module prefix."""
    parts = key.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in module_paths:
            return prefix, ".".join(parts[cut:])
    return "", key


def path_sort_key(path: str) -> tuple:
    """Sort module paths as a tree, numerically within lists: layers.2 before layers.10."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.split(".")) if path else ()


@dataclass
class TensorInfo:
    """One parameter array, counted once however many paths reach it."""

    name: str                 # first path, e.g. "layers.0.attention.wq.weight"
    aliases: list[str]        # every other path to the same array (tied weights)
    shape: Shape
    dtype: str
    params: int               # logical elements (unpacked for quantized weights)
    nbytes: int               # real storage bytes
    trainable: bool
    kind: str = "weight"      # "weight", "running_stat" or "quant_aux" (scales/biases)


@dataclass
class Totals:
    """Whole-model figures; see README "Definitions"."""

    params: int = 0
    trainable_params: int = 0
    non_trainable_params: int = 0
    running_stat_params: int = 0       # BatchNorm running mean/var, part of non-trainable
    param_bytes: int = 0
    macs: int = 0
    flops: int = 0                     # 2 x MACs
    elementwise_flops: int = 0         # reported apart, not in `flops`
    input_bytes: int = 0
    activation_bytes: int = 0          # sum of leaf-call output bytes
    peak_activation_bytes: int = 0     # estimated peak activation memory of one pass, inputs included
    measured_peak_bytes: int | None = None   # the same, measured with --measure (None: not measured)
    calls: int = 0
    max_depth: int = 0


@dataclass
class ModelGraph:
    """A traced forward pass: `graph` holds call/input/output nodes and data edges.

    Call node ids are "c0", "c1", ... in the order calls started (c0 is the model);
    model inputs are "in:0" / "in:<name>", outputs "out:0", "out:1", ...
    Containment lives in node attributes `parent` and `children`; edges are dataflow only.
    """

    graph: nx.DiGraph
    model_name: str
    model_type: str
    tensors: list[TensorInfo] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)
    uncounted_ops: dict[str, int] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> str:
        return "c0"

    def node(self, node_id: str) -> dict[str, Any]:
        return self.graph.nodes[node_id]

    def calls(self) -> Iterator[str]:
        """Call node ids in the order the calls started (pre-order)."""
        return (n for n, d in self.graph.nodes(data=True) if d["kind"] == "call")

    def children(self, node_id: str) -> list[str]:
        return self.graph.nodes[node_id]["children"]

    def inputs(self) -> list[str]:
        return [n for n, d in self.graph.nodes(data=True) if d["kind"] == "input"]

    def outputs(self) -> list[str]:
        return [n for n, d in self.graph.nodes(data=True) if d["kind"] == "output"]

    def ancestors(self, node_id: str) -> list[str]:
        """Parents of a call from its parent up to the root."""
        out = []
        parent = self.graph.nodes[node_id].get("parent")
        while parent is not None:
            out.append(parent)
            parent = self.graph.nodes[parent].get("parent")
        return out

    def data_edges(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        return iter(self.graph.edges(data=True))

    def _repr_svg_(self) -> str | None:
        """Jupyter shows the graph as its default diagram (None without Graphviz)."""
        from .render.graphviz import repr_svg  # lazy: the graph module imports nothing of ours

        return repr_svg(self)
