"""Load → trace for the commands: from what the user typed to a ModelGraph."""

from __future__ import annotations

import platform
from contextlib import nullcontext
from pathlib import Path
from dataclasses import dataclass
from typing import Callable

import mlx.core as mx

from .checkpoint import load_into, read_checkpoint, sha256_file
from .graph import ModelGraph
from .inputs import parse_dtype, parse_input_specs, make_inputs
from .paths import is_dir
from .random_init import spread_random_init
from .loading import LoadedModel, cast_floating, load_model, parse_model_arg, split_target
from .trace import TraceFailed, trace
from .trace.tree import check_tree


@dataclass
class Traced:
    graph: ModelGraph
    loaded: LoadedModel
    input_paths: list[Path]   # files the command read: never overwritten by its output


def input_paths_of(target: str, weights: str | Path | None = None) -> list[Path]:
    """The files a command will read, known before loading (to refuse -o early)."""
    try:
        exists = Path(target).exists()
    except (OSError, ValueError):  # a name too long: check_model_target says so
        exists = False
    paths = [Path(target)] if exists else [split_target(target)[0]]
    if weights is not None:
        paths.append(Path(weights))
        if is_dir(weights):
            paths += sorted(Path(weights).glob("*.safetensors"))
    return paths


# Where trace warnings go (graph.meta["warnings"]): the CLI prints them as `warning: ...`
# lines on stderr; from Python they stay in the graph.
on_warning: Callable[[str], None] | None = None


def trace_target(target: str, input_texts: list[str], arg_texts: list[str] | None = None,
                 dtype: str | None = None, weights: str | Path | None = None,
                 strict: bool = True, hash_weights: bool = False,
                 spread_init: bool = False) -> Traced:
    """Load the model named by `target` (and its weights), make inputs, trace one pass.

    `spread_init` builds the model with its random draws spread over streams, for weight
    statistics of the random initialisation (same values, generated in parallel).
    """
    specs = parse_input_specs(input_texts)
    kwargs = dict(parse_model_arg(a) for a in (arg_texts or []))
    cast_to = parse_dtype(dtype) if dtype else None
    with spread_random_init() if spread_init else nullcontext():
        loaded = load_model(target, kwargs)
    check_tree(loaded.model)   # before anything walks it: a cycle would never end
    input_paths = [loaded.source, *(loaded.weight_files or [])]
    weights_meta: dict = {"weights": "random initialisation"}
    if loaded.weight_files:
        weights_meta = {"weights": loaded.weight_files[0].parent.name,
                        "weights_files": [f.name for f in loaded.weight_files]}
        if hash_weights:
            weights_meta["weights_sha256"] = {f.name: sha256_file(f) for f in loaded.weight_files}
    if weights is not None:
        ckpt = read_checkpoint(weights)
        input_paths += ckpt.files
        match = load_into(loaded.model, ckpt, strict=strict)
        weights_meta = {"weights": ckpt.label, "weights_files": [f.name for f in ckpt.files]}
        if not match.ok:
            weights_meta["weights_mismatch"] = match.describe()
        if hash_weights:
            weights_meta["weights_sha256"] = {f.name: sha256_file(f) for f in ckpt.files}
    if cast_to is not None:
        cast_floating(loaded.model, cast_to)
    args, kw_inputs = make_inputs(specs)
    meta = {
        "source": loaded.source.name,
        "source_sha256": loaded.source_sha256,
        "factory": loaded.factory,
        "inputs": [str(s) for s in specs],
        "dtype": dtype or "as built",
        "mlx_version": mx.__version__,
        "python_version": platform.python_version(),
        **weights_meta,
    }
    try:
        graph = trace(loaded.model, *args, **kw_inputs)
    except TraceFailed as failed:  # the partial graph is reported too: give it its provenance
        failed.graph.meta.update(meta)
        raise
    graph.meta.update(meta)
    for warning in graph.meta.get("warnings", []) if on_warning is not None else ():
        on_warning(warning)
    return Traced(graph, loaded, input_paths)
