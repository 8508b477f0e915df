"""Lossless JSON of a ModelGraph, and its reverse, so reports can be rebuilt from archives.

The format is documented in docs/schema.md. Keys keep a fixed order and every
number is an integer, so the same graph always gives the same bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import networkx as nx

from .errors import MlxReportError
from .escape import xml_safe
from .graph import ModelGraph, TensorInfo, Totals
from .archive_schema import SchemaError, check_archive
from .paths import regular_file, shown

SCHEMA_VERSION = 1

CONVENTIONS = {
    "mac": "one multiply-accumulate; matmul (..,M,K)x(..,K,N) = batch*M*N*K; "
           "convolution = prod(output shape) * kernel volume * input channels per group",
    "flops": "2 x MACs; elementwise, reduction and normalisation FLOPs are reported apart "
             "as elementwise_flops",
    "params": "unique arrays counted once; quantized weights as logical (unpacked) elements; "
              "BatchNorm running statistics are non-trainable and also given apart",
    "activation_bytes": "sum of output bytes of leaf module calls",
    "peak_activation_bytes": "estimated peak activation memory of one inference pass on MLX's CPU "
                             "backend, model inputs included, weights excluded: the pass's primitive "
                             "graph replayed with MLX's eval order, run-ahead task queue, buffer "
                             "donation and temporaries (README, Definitions)",
    "measured_peak_bytes": "with --measure: mx.get_peak_memory() of one evaluated pass minus the bytes "
                           "resident before it (weights, inputs), plus the input bytes; null when "
                           "not measured",
    "self_total": "self = work in the call's own code; total = self + totals of its child calls",
}

_CALL_KEYS = (
    "path", "paths", "type", "call_index", "depth", "parent", "children", "module_index",
    "config", "signature", "input_shapes", "input_dtypes", "output_shapes", "output_dtypes",
    "output_bytes", "params", "params_own", "params_counted", "params_own_counted", "trainable_params", "running_stat_params",
    "param_bytes", "macs_self", "macs_total", "elementwise_flops_self",
    "elementwise_flops_total", "uncounted", "returns_from", "start", "end", "error",
)


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, for JSON."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def graph_to_dict(graph: ModelGraph) -> dict[str, Any]:
    """Every node, edge, tensor and total of the graph as plain JSON data."""
    g = graph.graph
    layers = []
    for node_id in graph.calls():
        d = g.nodes[node_id]
        layers.append({"id": node_id, **{k: _plain(d.get(k)) for k in _CALL_KEYS}})
    inputs = [{"id": n, **_plain({k: g.nodes[n][k] for k in ("name", "shapes", "dtypes", "nbytes")})}
              for n in graph.inputs()]
    outputs = [{"id": n, **_plain({k: g.nodes[n][k] for k in ("name", "shapes", "dtypes", "nbytes")})}
               for n in graph.outputs()]
    edges = [{"source": u, "target": v, "shapes": _plain(d["shapes"]), "dtypes": list(d["dtypes"])}
             for u, v, d in g.edges(data=True)]
    return {
        "schema_version": SCHEMA_VERSION,
        "model": {"name": graph.model_name, "type": graph.model_type},
        "meta": _plain(graph.meta),
        "conventions": CONVENTIONS,
        "totals": asdict(graph.totals),
        "inputs": inputs,
        "outputs": outputs,
        "layers": layers,
        "edges": edges,
        "tensors": [_plain(asdict(t)) for t in graph.tensors],
        "uncounted_ops": dict(graph.uncounted_ops),
    }


def to_json(graph: ModelGraph) -> str:
    """Deterministic JSON text of the graph (2-space indent, trailing newline)."""
    return json.dumps(graph_to_dict(graph), indent=2, ensure_ascii=False) + "\n"


def _tuples(shapes: list) -> list[tuple[int, ...]]:
    return [tuple(s) for s in shapes]


def graph_from_dict(data: dict[str, Any]) -> ModelGraph:
    """Rebuild a ModelGraph from `graph_to_dict` output; ValueError naming the first bad key."""
    if not isinstance(data, dict):
        raise SchemaError(f"the file holds {type(data).__name__}, not a JSON object")
    if "schema_version" not in data:
        raise SchemaError("missing 'schema_version'")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"unsupported schema_version {data.get('schema_version')!r} "
                         f"(this mlx-report reads {SCHEMA_VERSION})")
    check_archive(data)
    g = nx.DiGraph()
    for item in data["inputs"]:
        g.add_node(item["id"], kind="input", name=item["name"], shapes=_tuples(item["shapes"]),
                   dtypes=item["dtypes"], nbytes=item["nbytes"])
    for layer in data["layers"]:
        attrs = {k: layer.get(k) for k in _CALL_KEYS}
        for key in ("input_shapes", "output_shapes"):
            attrs[key] = _tuples(attrs[key])
        g.add_node(layer["id"], kind="call", **attrs)
    for item in data["outputs"]:
        g.add_node(item["id"], kind="output", name=item["name"], shapes=_tuples(item["shapes"]),
                   dtypes=item["dtypes"], nbytes=item["nbytes"])
    for e in data["edges"]:
        g.add_edge(e["source"], e["target"], shapes=_tuples(e["shapes"]), dtypes=e["dtypes"])
    tensors = [TensorInfo(**{**t, "shape": tuple(t["shape"])}) for t in data["tensors"]]
    return ModelGraph(
        graph=g, model_name=data["model"]["name"], model_type=data["model"]["type"],
        tensors=tensors, totals=Totals(**data["totals"]),
        uncounted_ops=dict(data["uncounted_ops"]), meta=dict(data.get("meta", {})),
    )


def is_archive_json(model: str) -> bool:
    """An archived mlx-report JSON (export -o model.json, summary --format json) as MODEL."""
    path = Path(model)
    return path.suffix.lower() == ".json" and not path.name.endswith(".index.json")


def read_archive(path: Path) -> ModelGraph:
    """The ModelGraph of an archived JSON; MlxReportError with one line when it is not one."""
    regular_file(path, "archive", MlxReportError, missing=f"archive not found: {shown(path)}")
    try:
        return graph_from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise MlxReportError(f"archive not found: {path}") from None
    except OSError as e:
        raise MlxReportError(f"{path.name}: cannot read ({e.strerror or e})") from None
    except RecursionError:
        raise MlxReportError(f"{path.name}: not a valid mlx-report archive: nested too deeply") from None
    except SchemaError as e:
        raise MlxReportError(f"{path.name}: not a valid mlx-report archive: {e}") from None
    except UnicodeDecodeError:
        raise MlxReportError(f"{path.name}: not a valid mlx-report archive: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise MlxReportError(f"{path.name}: not a valid mlx-report archive: not JSON ({e})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        reason = f"missing {e}" if isinstance(e, KeyError) else str(e)
        raise MlxReportError(f"{path.name}: not a valid mlx-report archive: {reason}") from None


def _scalar(value: Any) -> Any:
    """GraphML/GEXF attributes must be scalars: lists and dicts become JSON text.

    Strings lose what XML 1.0 cannot hold, even as a reference (`\\x1b`, lone surrogates):
    networkx would write `&#27;` and make the file unreadable.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return xml_safe(value)
    if isinstance(value, (bool, int, float)):
        return value
    return json.dumps(_plain(value))


def interchange_graph(graph: ModelGraph) -> nx.DiGraph:
    """A copy of the graph with scalar attributes only, plus containment edges.

    Data edges have kind="data"; parent→child edges kind="contains" (for graph tools
    that cannot read our node attributes).
    """
    out = nx.DiGraph(name=xml_safe(graph.model_name))
    renamed = {"start": "op_start", "end": "op_end"}  # GEXF reads start/end as time spans
    for node_id, d in graph.graph.nodes(data=True):
        out.add_node(node_id, **{renamed.get(k, k): _scalar(v) for k, v in d.items()})
    for u, v, d in graph.graph.edges(data=True):
        out.add_edge(u, v, kind="data", shapes=_scalar(d["shapes"]), dtypes=_scalar(d["dtypes"]))
    for node_id in graph.calls():
        for child in graph.children(node_id):
            if not out.has_edge(node_id, child):
                out.add_edge(node_id, child, kind="contains", shapes="", dtypes="")
    return out


def to_graphml(graph: ModelGraph) -> str:
    """GraphML text (networkx), for yEd, Gephi, Cytoscape."""
    return "\n".join(nx.generate_graphml(interchange_graph(graph))) + "\n"


def to_gexf(graph: ModelGraph) -> str:
    """GEXF text (networkx), for Gephi."""
    text = "\n".join(nx.generate_gexf(interchange_graph(graph))) + "\n"
    # networkx stamps today's date; drop it so the same graph gives the same bytes.
    return re.sub(r' lastmodifieddate="[^"]*"', "", text, count=1)
