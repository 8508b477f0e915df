"""Weight drift between two sets of tensors, computed with MLX one tensor pair at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import mlx.core as mx

from .weights import accurate_sum



@dataclass
class Drift:
    """How far a tensor moved between two checkpoints."""

    relative_l2: float               # ||b - a|| / ||a||
    mean_shift: float                # mean(b) - mean(a)
    std_shift: float                 # std(b) - std(a)
    cosine: float                    # cosine similarity of the flattened tensors


def tensor_drift(a: mx.array, b: mx.array) -> Drift:
    """Relative L2 change, mean and std shift, cosine similarity (float32 math)."""
    x, y = a.astype(mx.float32).reshape(-1), b.astype(mx.float32).reshape(-1)
    n = max(x.size, 1)
    # Chunked sums: MLX's CPU float32 sum drifts on tens of millions of elements.
    sums = [accurate_sum(v) for v in (x * x, y * y, (y - x) * (y - x), x * y, x, y)]
    mx.eval(*sums)
    xx, yy, dd, xy, sx, sy = (float(v.item()) for v in sums)
    na, nb, d, dt = xx ** 0.5, yy ** 0.5, dd ** 0.5, xy
    ma, mb = sx / n, sy / n
    # Population std from the moments (float64 in Python), as numpy's default ddof=0.
    sa = max(xx / n - ma * ma, 0.0) ** 0.5
    sb = max(yy / n - mb * mb, 0.0) ** 0.5
    return Drift(
        relative_l2=d / na if na else (0.0 if d == 0 else float("inf")),
        mean_shift=mb - ma,
        std_shift=sb - sa,
        cosine=max(-1.0, min(1.0, dt / (na * nb))) if na and nb else (1.0 if na == nb else 0.0),
    )


def drift_between(a: dict[str, mx.array], b: dict[str, mx.array],
                  progress: Callable[[Iterable], Iterable] | None = None) -> dict[str, Drift]:
    """Drift of every tensor present on both sides with the same shape."""
    names = sorted(k for k in a.keys() & b.keys() if a[k].shape == b[k].shape)
    out = {}
    for name in (progress(names) if progress else names):
        out[name] = tensor_drift(a[name], b[name])
    return out
