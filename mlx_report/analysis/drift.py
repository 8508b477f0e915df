"""Weight drift between two sets of tensors, computed with MLX one tensor pair at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import mlx.core as mx



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
    norm_a, norm_b = mx.sqrt(mx.sum(x * x)), mx.sqrt(mx.sum(y * y))
    diff = mx.sqrt(mx.sum((y - x) * (y - x)))
    dot = mx.sum(x * y)
    figures = [diff, norm_a, norm_b, dot, mx.mean(x), mx.mean(y), mx.std(x), mx.std(y)]
    mx.eval(*figures)
    d, na, nb, dt, ma, mb, sa, sb = (float(v.item()) for v in figures)
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
