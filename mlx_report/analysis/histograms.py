"""Histograms with bins shared within a group, from one pass over each tensor.

Each tensor is counted into <= FINE_BINS bins whose width is a power of two and whose
edges sit on multiples of that width (the grid is aligned at zero). A group's common
bins are a coarser power of two on the same grid, so every fine bin falls inside
exactly one group bin: merging is exact and the data are read once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mlx.core as mx
import numpy as np

FINE_BINS = 1024                         # per-tensor first-pass bins
MAX_BINS = 48                            # group bins: between MAX_BINS/2 and MAX_BINS


@dataclass
class HistogramBins:
    """Bins shared by a group: `count` bins of `width` starting at `lo`."""

    lo: float
    width: float
    count: int

    @property
    def edges(self) -> list[float]:
        return [self.lo + i * self.width for i in range(self.count + 1)]

    @property
    def hi(self) -> float:
        return self.lo + self.count * self.width


@dataclass
class FineHistogram:
    """A tensor's first-pass counts: bin k covers [k*2^exponent, (k+1)*2^exponent), k = k0 + index.

    A constant tensor has `exponent` None and its value in `value`.
    """

    exponent: int | None
    k0: int
    counts: np.ndarray
    value: float = 0.0

    def coarse_index(self, e: int) -> np.ndarray:
        """Index of each fine bin in bins of width 2^e (e >= exponent) on the same grid."""
        if self.exponent is None:
            return np.array([math.floor(self.value / 2.0 ** e)], dtype=np.int64)
        k = np.arange(len(self.counts), dtype=np.int64) + self.k0
        return k >> (e - self.exponent)  # arithmetic shift: floor division for negative k too


def fine_histogram(s: mx.array, lo: float, hi: float, finite_only: bool) -> FineHistogram:
    """Count the values of `s` (all within [lo, hi]) into <= FINE_BINS+1 power-of-two bins."""
    if hi <= lo:
        n = int(mx.isfinite(s).sum().item()) if finite_only else s.size
        return FineHistogram(None, 0, np.array([n], dtype=np.int64), value=lo)
    e = min(max(math.ceil(math.log2((hi - lo) / FINE_BINS)), -120), 120)
    scale = 2.0 ** -e  # exact: scaling by a power of two only moves the exponent
    k0 = math.floor(lo * scale)
    idx = mx.floor(s * mx.array(scale, mx.float32)) - mx.array(float(k0), mx.float32)
    slots = FINE_BINS + 2
    if finite_only:
        idx = mx.where(mx.isfinite(s), idx, slots - 1)
    idx = idx.astype(mx.uint32)
    mx.eval(idx)
    # numpy counts a zero-copy view of the indices ten times faster than an MLX scatter-add
    arr = np.bincount(np.asarray(idx), minlength=slots)[: slots - 1].astype(np.int64)
    return _trim(e, k0, arr)


def _trim(e: int, k0: int, arr: np.ndarray) -> FineHistogram:
    """Drop empty bins at both ends."""
    used = np.nonzero(arr)[0]
    if not len(used):
        return FineHistogram(e, k0, np.zeros(0, dtype=np.int64))
    return FineHistogram(e, k0 + int(used[0]), arr[used[0]: used[-1] + 1])


def merge_fine(parts: list[FineHistogram]) -> FineHistogram | None:
    """One tensor's histogram from its chunks' (exact: coarser bins on the same grid)."""
    parts = [p for p in parts if p.counts.sum()]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    if all(p.exponent is None for p in parts) and len({p.value for p in parts}) == 1:
        return FineHistogram(None, 0, np.array([sum(int(p.counts.sum()) for p in parts)]),
                             value=parts[0].value)
    exps = [p.exponent for p in parts if p.exponent is not None]
    if exps:
        e = max(exps)
    else:  # constant chunks of different values
        spread = max(p.value for p in parts) - min(p.value for p in parts)
        e = min(max(math.floor(math.log2(spread / FINE_BINS)), -120), 120)
    while _span(parts, e)[1] > FINE_BINS:
        e += 1
    first, n = _span(parts, e)
    out = np.zeros(n, dtype=np.int64)
    for p in parts:
        np.add.at(out, p.coarse_index(e) - first, p.counts)
    return _trim(e, first, out)


def _span(fines: list[FineHistogram], e: int) -> tuple[int, int]:
    """(first index, count) of the bins of width 2^e that hold every count."""
    first = min(int(f.coarse_index(e)[0]) for f in fines)
    last = max(int(f.coarse_index(e)[-1]) for f in fines)
    return first, last - first + 1


def _exponent(fines: list[FineHistogram]) -> int:
    """The smallest group exponent >= every member's that gives <= MAX_BINS bins."""
    exps = [f.exponent for f in fines if f.exponent is not None]
    if exps:
        e = max(exps)
    else:  # constant tensors only
        vals = [f.value for f in fines]
        spread = max(vals) - min(vals)
        top = max(abs(v) for v in vals)
        e = (math.floor(math.log2(spread / MAX_BINS)) if spread else
             math.floor(math.log2(top)) - 3 if top else 0)
    while _span(fines, e)[1] > MAX_BINS:
        e += 1
    return e


def share_bins(groups: list[str], fines: list[FineHistogram | None]
               ) -> tuple[dict[str, HistogramBins], list[list[int]]]:
    """Common bins per group, and each tensor's counts on its group's bins ([] without data)."""
    members: dict[str, list[int]] = {}
    for i, (group, f) in enumerate(zip(groups, fines)):
        if f is not None and f.counts.sum():
            members.setdefault(group, []).append(i)
    bins: dict[str, HistogramBins] = {}
    counts: list[list[int]] = [[] for _ in fines]
    for group, idx in members.items():
        group_fines = [fines[i] for i in idx]
        e = _exponent(group_fines)  # type: ignore[arg-type]
        first, n = _span(group_fines, e)  # type: ignore[arg-type]
        width = 2.0 ** e
        bins[group] = HistogramBins(lo=first * width, width=width, count=n)
        for i in idx:
            out = np.zeros(n, dtype=np.int64)
            np.add.at(out, fines[i].coarse_index(e) - first, fines[i].counts)  # type: ignore[union-attr]
            counts[i] = [int(c) for c in out]
    return bins, counts
