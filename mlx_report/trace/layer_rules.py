"""Costs of the standard leaf layers read from shapes, without exporting them.

Exporting one call takes 0.2-0.5 ms, and `nn.Linear` and `nn.Embedding` make up most of
a model's distinct leaf calls. Their op graphs are fixed, so their costs follow from
shapes: Linear is one AddMM (bias) or Matmul, Embedding one Gather (free). Each rule
gives exactly what exporting the call gives (tests compare both on many shapes); any
other case returns None and the call is exported.
"""

from __future__ import annotations

from math import prod
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from .costs import Cost, primitive_cost


def _floating(a: Any) -> bool:
    return isinstance(a, mx.array) and mx.issubdtype(a.dtype, mx.floating)


def _linear(module: nn.Module, x: mx.array) -> Cost | None:
    """y = x @ W.T (+ b): the AddMM (bias) or Matmul that `nn.Linear` runs, on (M, K) @ (K, N)."""
    w, b = module.get("weight"), module.get("bias")
    if not _floating(w) or w.ndim != 2 or not _floating(x) or x.ndim < 1 or x.dtype != w.dtype:
        return None
    out_dims, in_dims = w.shape
    if x.shape[-1] != in_dims:
        return None  # the call fails or broadcasts oddly: let the export decide
    if b is not None and (not _floating(b) or b.shape != (out_dims,) or b.dtype != w.dtype):
        return None
    rows = prod(x.shape[:-1])
    cost = Cost()
    primitive_cost("AddMM" if b is not None else "Matmul", [(rows, in_dims), (in_dims, out_dims)],
                   [(rows, out_dims)], cost)
    return cost


def _embedding(module: nn.Module, x: mx.array) -> Cost | None:
    """weight[x]: a gather, which moves data and does no arithmetic."""
    w = module.get("weight")
    if not isinstance(w, mx.array) or not mx.issubdtype(x.dtype, mx.integer):
        return None
    return Cost()


_RULES = {nn.Linear.__call__: _linear, nn.Embedding.__call__: _embedding}


def leaf_cost(module: nn.Module, args: tuple, kwargs: dict, is_activation) -> Cost | None:
    """The cost of `module(*args, **kwargs)` by rule, or None when it must be exported.

    A rule applies when the class runs the stock `__call__` of a ruled layer on one
    activation argument (`is_activation(x)`); a subclass with its own `__call__` is exported.
    """
    rule = _RULES.get(type(module).__call__)
    if rule is None or kwargs or len(args) != 1:
        return None
    x = args[0]
    if not isinstance(x, mx.array) or not is_activation(x):
        return None
    return rule(module, x)
