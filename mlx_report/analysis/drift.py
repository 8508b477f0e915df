"""Weight drift between two sets of tensors, computed with MLX one tensor pair at a time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import mlx.core as mx

from .weights import accurate_sum



@dataclass
class Drift:
    """How far a tensor moved between two checkpoints.

    `identical` is exact equality of the values in their own dtypes (NaN equal to NaN at
    the same position), so a change too small to register in the float32 figures still
    counts. `cosine` is undefined in two cases: NaN when either side holds a non-finite
    value (NaN or ±Inf), None when either side has zero norm (an all-zero tensor has no
    direction; this holds even when both sides are all zeros, which `identical` reports).
    """

    relative_l2: float               # ||b - a|| / ||a||: 0 if both are zero, inf if only a is
    mean_shift: float                # mean(b) - mean(a)
    std_shift: float                 # std(b) - std(a)
    cosine: float | None             # cosine similarity of the flattened tensors; see above
    identical: bool = False          # every value equal (NaN == NaN); False when unknown

    @property
    def values_changed(self) -> bool:
        return not self.identical


def drift_order(d: Drift | None) -> tuple[int, float]:
    """Sort key, largest drift first: NaN (non-finite values) first, then +inf, then by
    relative L2 descending; tensors without drift figures last. Add the name for ties."""
    if d is None:
        return (2, 0.0)
    if math.isnan(d.relative_l2):
        return (0, 0.0)
    return (1, -d.relative_l2)


def tensor_drift(a: mx.array, b: mx.array) -> Drift:
    """Relative L2 change, mean and std shift, cosine similarity (float32 math), and
    whether the values are identical (compared in their own dtypes)."""
    x, y = a.astype(mx.float32).reshape(-1), b.astype(mx.float32).reshape(-1)
    n = max(x.size, 1)
    # Chunked sums: MLX's CPU float32 sum drifts on tens of millions of elements.
    sums = [accurate_sum(v) for v in (x * x, y * y, (y - x) * (y - x), x * y, x, y)]
    flags = [mx.array_equal(a, b, equal_nan=True), mx.all(mx.isfinite(x)), mx.all(mx.isfinite(y))]
    mx.eval(*sums, *flags)
    xx, yy, dd, xy, sx, sy = (float(v.item()) for v in sums)
    identical, finite_a, finite_b = (bool(v.item()) for v in flags)
    na, nb, d, dt = xx ** 0.5, yy ** 0.5, dd ** 0.5, xy
    ma, mb = sx / n, sy / n
    # Population std from the moments (float64 in Python), as numpy's default ddof=0.
    sa = max(xx / n - ma * ma, 0.0) ** 0.5
    sb = max(yy / n - mb * mb, 0.0) ** 0.5
    if not (finite_a and finite_b):
        cosine: float | None = float("nan")
    elif na == 0 or nb == 0:
        cosine = None
    else:
        # The inputs are finite here, but a float32 sum can overflow (|values| > ~1e19):
        # then the figure is undefined too (and max/min would swallow a NaN).
        norms = na * nb
        c = dt / norms if math.isfinite(norms) else float("nan")
        cosine = max(-1.0, min(1.0, c)) if math.isfinite(c) else float("nan")
    return Drift(
        relative_l2=d / na if na else (0.0 if d == 0 else float("inf")),
        mean_shift=mb - ma,
        std_shift=sb - sa,
        cosine=cosine,
        identical=identical,
    )


def drift_between(a: dict[str, mx.array], b: dict[str, mx.array],
                  progress: Callable[[Iterable], Iterable] | None = None) -> dict[str, Drift]:
    """Drift of every tensor present on both sides with the same shape."""
    names = sorted(k for k in a.keys() & b.keys() if a[k].shape == b[k].shape)
    out = {}
    for name in (progress(names) if progress else names):
        out[name] = tensor_drift(a[name], b[name])
    return out
