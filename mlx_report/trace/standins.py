"""Stand-ins, while exporting, for MLX ops that `mx.export_function` cannot serialise.

Exporting a graph holding SegmentedMM or LUF (mx.segmented_mm, mx.linalg.lu and
lu_factor) raises "Unable to get state for primitive ..." (mlx 0.32), so the whole call
would go uncounted. During an export each is replaced by an array of the same shape
and dtype that depends on the same arguments (through the free Depends primitive), and
its analytic cost (costs.py) is added to the export's count. Nothing is evaluated.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import mlx.core as mx

from .costs import Cost, lu_macs, segmented_mm_macs


def _like(out: mx.array, args: list[mx.array]) -> mx.array:
    return mx.depends([mx.zeros(out.shape, out.dtype)], args)[0]


def _standin(fn: Callable, macs: Callable[..., int], cost: Cost) -> Callable:
    def standin(*args, **kwargs):
        out = fn(*args, **kwargs)          # lazy: only its shapes are read
        arrays = [a for a in args if isinstance(a, mx.array)]
        cost.macs += macs(*(tuple(a.shape) for a in arrays))
        if isinstance(out, (list, tuple)):
            return type(out)(_like(o, arrays) for o in out)
        return _like(out, arrays)

    standin.__wrapped__ = fn
    return standin


_TARGETS: list[tuple[Any, str, Callable[..., int]]] = [
    (mx, "segmented_mm", lambda a, b, *_: segmented_mm_macs(a, b)),
    (mx.linalg, "lu", lambda a, *_: lu_macs(a)),
    (mx.linalg, "lu_factor", lambda a, *_: lu_macs(a)),
]


@contextmanager
def standins(cost: Cost) -> Iterator[None]:
    """Replace the unexportable ops; their analytic MACs accumulate in `cost`."""
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in _TARGETS]
    try:
        for (owner, name, macs), (_, _, current) in zip(_TARGETS, saved):
            setattr(owner, name, _standin(current, macs, cost))
        yield
    finally:
        for owner, name, current in saved:
            setattr(owner, name, current)
