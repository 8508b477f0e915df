"""`summary()`: trace a model and present it as a torchinfo-style table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import mlx.core as mx
import mlx.nn as nn

from .analysis.layers import LayerInfo, build_layers
from .analysis.table import Table, build_table
from .export import graph_to_dict
from .graph import ModelGraph
from .render.tabular import table_to_csv, table_to_markdown
from .render.text import DEFAULT_COLUMNS, render_text, resolve_columns
from .trace import trace


@dataclass
class ModelSummary:
    """A traced model's figures; `print()` it for the table."""

    graph: ModelGraph
    depth: int = 3
    columns: tuple[str, ...] = DEFAULT_COLUMNS
    fold: bool = True
    layers: list[LayerInfo] = field(init=False)

    def __post_init__(self) -> None:
        self.columns = resolve_columns(self.columns)
        self.layers = build_layers(self.graph)
        t = self.graph.totals
        self.total_params = t.params
        self.trainable_params = t.trainable_params
        self.non_trainable_params = t.non_trainable_params
        self.running_stat_params = t.running_stat_params
        self.total_macs = t.macs
        self.total_flops = t.flops
        self.elementwise_flops = t.elementwise_flops
        self.param_bytes = t.param_bytes
        self.input_bytes = t.input_bytes
        self.activation_bytes = t.activation_bytes
        self.peak_activation_bytes = t.peak_activation_bytes
        self.uncounted_ops = dict(self.graph.uncounted_ops)

    def table(self) -> Table:
        return build_table(self.graph, depth=self.depth, fold=self.fold)

    def __str__(self) -> str:
        return render_text(self.graph, self.table(), self.columns)

    def __repr__(self) -> str:
        return str(self)

    def to_dict(self) -> dict[str, Any]:
        return graph_to_dict(self.graph)

    def to_json(self, ascii: bool = False) -> str:
        """The lossless JSON; `ascii=True` escapes every non-ASCII character (`\\u00fc`)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=ascii) + "\n"

    def to_markdown(self) -> str:
        return table_to_markdown(self.graph, self.table(), self.columns)

    def to_csv(self) -> str:
        return table_to_csv(self.table())


def _as_inputs(input_size: Any, inputs: Any, dtypes: Sequence[Any] | None) -> tuple[tuple, dict]:
    """Positional and keyword example inputs from `input_size`/`dtypes` or `inputs`."""
    if inputs is not None:
        if isinstance(inputs, mx.array):
            return (inputs,), {}
        if isinstance(inputs, dict):
            return (), dict(inputs)
        return tuple(inputs), {}
    if input_size is None:
        raise ValueError("give input_size=(1, 3, 224, 224) or inputs=[array, ...]")
    sizes = [input_size] if all(isinstance(d, int) for d in input_size) else list(input_size)
    dtypes = list(dtypes) if dtypes else [mx.float32] * len(sizes)
    if len(dtypes) != len(sizes):
        raise ValueError(f"{len(dtypes)} dtypes given for {len(sizes)} inputs")
    return tuple(mx.zeros(tuple(s), dtype=d) for s, d in zip(sizes, dtypes)), {}


def summary(model: nn.Module, input_size: Any = None, *, inputs: Any = None,
            dtypes: Sequence[Any] | None = None, depth: int = 3,
            columns: Sequence[str] = DEFAULT_COLUMNS, fold: bool = True,
            verbose: int = 1, name: str | None = None) -> ModelSummary:
    """Trace one lazy forward pass of `model` and summarise it; prints when verbose."""
    args, kwargs = _as_inputs(input_size, inputs, dtypes)
    graph = trace(model, *args, name=name, **kwargs)
    result = ModelSummary(graph, depth=depth, columns=tuple(columns), fold=fold)
    if verbose:
        print(result)
    return result
