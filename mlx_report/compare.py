"""Load → trace → diff for `mlx-report diff`: each side is an archive, a model or a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten

from .analysis.drift import drift_between
from .checkpoint import Checkpoint, read_checkpoint
from .diff import GraphDiff, diff_graphs, diff_tensors
from .errors import InputSpecError
from .export import is_archive_json, read_archive
from .graph import ModelGraph, TensorInfo
from .loading import check_model_target
from .model_dir import is_model_dir
from .pipeline import trace_target

CHECKPOINT_SUFFIXES = (".safetensors", ".npz")


@dataclass
class Side:
    label: str
    graph: ModelGraph | None
    tensors: list[TensorInfo]
    arrays: dict[str, mx.array] | None    # real weights, for drift
    path: Path | None = None              # the file or folder `label` names, to tell sides apart


def _checkpoint_tensors(ckpt: Checkpoint) -> list[TensorInfo]:
    """Each tensor as stored: a float8 tensor is float8_e4m3/e5m2 of 1 byte per value."""
    return [TensorInfo(name=k, aliases=[], shape=tuple(v.shape), dtype=ckpt.dtype_of(k),
                       params=v.size, nbytes=ckpt.nbytes_of(k), trainable=True)
            for k, v in sorted(ckpt.arrays.items())]


def load_side(spec: str, inputs: list[str], args: list[str] | None, dtype: str | None,
              weights: str | None, strict: bool = True) -> Side:
    """Read one side of a diff from whatever `spec` names."""
    path = Path(spec)
    if is_archive_json(spec):
        graph = read_archive(path)
        return Side(path.name, graph, graph.tensors, None, path)
    if path.suffix in CHECKPOINT_SUFFIXES or path.name.endswith(".index.json") or (
            path.is_dir() and not is_model_dir(path)):
        ckpt = read_checkpoint(path)
        named = ckpt.files[0] if len(ckpt.files) == 1 else ckpt.files[0].parent
        return Side(ckpt.label, None, _checkpoint_tensors(ckpt), ckpt.arrays, named)
    check_model_target(spec)
    if not inputs:
        raise InputSpecError(f"{spec} is a model: give --input so it can be traced")
    traced = trace_target(spec, inputs, args, dtype, weights=weights, strict=strict)
    has_weights = weights is not None or traced.loaded.weight_files
    arrays = dict(tree_flatten(traced.loaded.model.parameters())) if has_weights else None
    label = f"{spec} + {Path(weights).name}" if weights is not None else spec  # net.py + v2.safetensors
    return Side(label, traced.graph, traced.graph.tensors, arrays)


def _folders(a: Path, b: Path) -> tuple[str, str]:
    """The fewest trailing parent folders that tell two different paths apart ("" if none do)."""
    pa, pb = a.resolve().parent.parts, b.resolve().parent.parts
    for k in range(1, max(len(pa), len(pb)) + 1):
        if pa[-k:] != pb[-k:]:
            return (str(Path(*pa[-k:])) if pa[-k:] else "",
                    str(Path(*pb[-k:])) if pb[-k:] else "")
    return "", ""


def distinct_labels(a: Side, b: Side) -> tuple[Side, Side]:
    """Sides whose labels collide (two model.json in v1/ and v2/) get the parent folders
    that tell them apart: v1/model.json and v2/model.json. The same file twice keeps its name."""
    if a.label != b.label or a.path is None or b.path is None or a.path.resolve() == b.path.resolve():
        return a, b
    fa, fb = _folders(a.path, b.path)
    join = lambda folder, label: label if not folder else f"{folder.rstrip('/')}/{label}"
    return replace(a, label=join(fa, a.label)), replace(b, label=join(fb, b.label))


def compare(a: Side, b: Side, drift: bool = True, progress=None) -> GraphDiff:
    """The diff of two sides; drift only where both sides carry real weights. Same-named
    sides are labelled with their distinguishing parent folders (`distinct_labels`)."""
    a, b = distinct_labels(a, b)
    drifts = drift_between(a.arrays, b.arrays, progress) if drift and a.arrays and b.arrays else None
    if a.graph is not None and b.graph is not None:
        return diff_graphs(a.graph, b.graph, a.label, b.label, drifts)
    return GraphDiff(a.label, b.label, a.graph.totals if a.graph else None,
                     b.graph.totals if b.graph else None,
                     tensors=diff_tensors(a.tensors, b.tensors, drifts))
