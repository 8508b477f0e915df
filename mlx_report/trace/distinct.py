"""Count what eager MLX computes: keep identical calls apart while exporting.

`mx.export_function` simplifies its graph: two identical primitives on the same inputs
merge into one (`(x @ w) + (x @ w)` exports one Matmul). Eager MLX does not simplify
(only `mx.compile` does) and computes both: measured here, 131 ms against 71 ms for
one 512x512 matmul. While exporting, every MLX op called from Python therefore gets
its first array argument through its own `mx.depends` (the Depends primitive is never
merged and costs nothing), so each call stays its own node and is counted once per call.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import mlx.core as mx

from .provenance import _VALUE_READS, _VIEW_OPS, _wrappers

# Not wrapped: views and free data movement (a merged view costs nothing), value reads,
# in-place updates (they must act on the array itself), and depends.
_KEEP = _VIEW_OPS | _VALUE_READS | {
    "depends", "__setitem__", "at", "__iter__", "concatenate", "stack", "array", "zeros",
    "ones", "full", "arange", "zeros_like", "ones_like", "eye", "identity", "linspace",
}


def _is_in_place(name: str) -> bool:
    return name.startswith("__i") and name not in ("__init__", "__int__", "__index__", "__invert__")


def _distinct(fn: Callable) -> Callable:
    depends = mx.depends

    def wrapper(*args, **kwargs):
        for i, a in enumerate(args):
            if isinstance(a, mx.array):
                args = (*args[:i], depends([a], [a])[0], *args[i + 1:])
                break
        return fn(*args, **kwargs)

    wrapper.__wrapped__ = fn
    return wrapper


_TABLE: list[tuple[Any, str, Any, Any]] = []


def _table() -> list[tuple[Any, str, Any, Any]]:
    if not _TABLE:
        for owner, name, original, _ in _wrappers():
            if name in _KEEP or _is_in_place(name) or isinstance(original, property):
                continue
            _TABLE.append((owner, name, original, _distinct(original)))
    return _TABLE


@contextmanager
def distinct_ops() -> Iterator[None]:
    """While exporting: identical MLX calls stay separate primitives; always restored."""
    installed: list[tuple[Any, str, Any]] = []
    try:
        for owner, name, original, wrapped in _table():
            installed.append((owner, name, original))
            setattr(owner, name, wrapped)
        yield
    finally:
        for owner, name, original in reversed(installed):
            setattr(owner, name, original)
