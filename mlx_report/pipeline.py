"""Load → trace for the commands: from what the user typed to a ModelGraph."""

from __future__ import annotations

import platform
from dataclasses import dataclass

import mlx.core as mx

from .graph import ModelGraph
from .inputs import parse_dtype, parse_input_specs, make_inputs
from .loading import LoadedModel, cast_floating, load_model, parse_model_arg
from .trace import trace


@dataclass
class Traced:
    graph: ModelGraph
    loaded: LoadedModel


def trace_target(target: str, input_texts: list[str], arg_texts: list[str] | None = None,
                 dtype: str | None = None) -> Traced:
    """Load the model named by `target`, make example inputs, trace one forward pass."""
    specs = parse_input_specs(input_texts)
    kwargs = dict(parse_model_arg(a) for a in (arg_texts or []))
    cast_to = parse_dtype(dtype) if dtype else None
    loaded = load_model(target, kwargs)
    if cast_to is not None:
        cast_floating(loaded.model, cast_to)
    args, kw_inputs = make_inputs(specs)
    graph = trace(loaded.model, *args, **kw_inputs)
    graph.meta.update({
        "source": loaded.source.name,
        "source_sha256": loaded.source_sha256,
        "factory": loaded.factory,
        "inputs": [str(s) for s in specs],
        "dtype": dtype or "as built",
        "mlx_version": mx.__version__,
        "python_version": platform.python_version(),
    })
    return Traced(graph, loaded)
