"""Weight statistics, computed with MLX one tensor at a time (analysis: it evaluates arrays).

Each tensor is evaluated, reduced to a few numbers and a histogram, and dropped, so
memory stays bounded by the largest tensor; no values are copied into Python.
Definitions (stated in the report too):

- mean, std (population, ddof=0), zero fraction and the histogram describe the finite
  values; min, max, abs max and the NaN/Inf counts always cover the whole tensor.
- Above `sample_threshold` total parameters, mean, std, zero fraction and histogram are
  computed on a sample of `sample_size` elements per tensor: indices drawn uniformly
  with replacement by numpy's PCG64 seeded with `seed + crc32(tensor name)`, gathered
  with MLX. min/max/abs max/NaN/Inf stay exact.
- Histograms share their bins within a group (layer type + parameter name, e.g.
  "Conv2d.weight"). Each tensor is first counted into <= FINE_BINS bins of a power-of-two
  width aligned at zero; the group's bins are a coarser power of two on the same grid,
  so merging fine counts into group bins is exact and needs no second pass over the data.
- Flags: NaN/Inf present; dead = a "weight" tensor whose elements are all zero;
  outlier = max |x - mean| > OUTLIER_K * std.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten

from ..graph import TensorInfo
from .histograms import FineHistogram, HistogramBins, fine_histogram, share_bins

DEFAULT_SAMPLE_THRESHOLD = 100_000_000   # total params above which tensors are sampled
DEFAULT_SAMPLE_SIZE = 100_000            # elements per sampled tensor
DEFAULT_SEED = 0
OUTLIER_K = 10.0                         # outlier: max |x - mean| > K * std
_CHUNK = 4096                            # partial-sum length: MLX's CPU sum is naive float32


@dataclass
class QuantSpec:
    """How a packed weight is dequantized (`mx.dequantize` arguments)."""

    scales: mx.array
    biases: mx.array | None
    group_size: int
    bits: int
    mode: str

    def describe(self) -> str:
        return f"{self.bits}-bit {self.mode}, group size {self.group_size}"


@dataclass
class TensorSource:
    """One parameter to measure: its TensorInfo, its array, its layer type, and dequantization."""

    info: TensorInfo
    array: mx.array
    layer_type: str
    local_name: str
    quant: QuantSpec | None = None

    @property
    def group(self) -> str:
        return f"{self.layer_type}.{self.local_name}"


@dataclass
class WeightStats:
    """Statistics of one tensor, as plain JSON-able numbers."""

    name: str
    group: str
    shape: list[int]
    dtype: str
    params: int
    nbytes: int
    trainable: bool
    kind: str
    quantized: str | None          # e.g. "4-bit affine, group size 64" (dequantized for statistics)
    elements: int                  # elements of the (dequantized) tensor
    count: int                     # elements behind mean/std/zeros/histogram (the sample size)
    sampled: bool
    mean: float | None             # None when no value is finite
    std: float | None
    min: float | None
    max: float | None
    abs_max: float | None
    zero_fraction: float
    nan_count: int
    inf_count: int
    hist_counts: list[int] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


@dataclass
class WeightReport:
    """Statistics of every tensor plus how they were computed."""

    source: str                    # "random initialisation (...)" or the checkpoint
    tensors: list[WeightStats]
    groups: dict[str, HistogramBins]
    sampled: bool
    sample_size: int
    sample_threshold: int
    seed: int
    outlier_k: float
    total_params: int

    def flagged(self) -> list[WeightStats]:
        return [t for t in self.tensors if t.flags]

    def sampling_note(self) -> str:
        if not self.sampled:
            return (f"Exact: every element of every tensor was read ({self.total_params:,} "
                    f"parameters, below the sampling threshold of {self.sample_threshold:,}).")
        return (f"Sampled: the model has {self.total_params:,} parameters, above the threshold of "
                f"{self.sample_threshold:,}, so mean, std, zero fraction and histograms use "
                f"{self.sample_size:,} elements per larger tensor, drawn uniformly with replacement "
                f"(numpy PCG64, seed {self.seed} + crc32 of the tensor name); min, max, abs max "
                f"and NaN/Inf counts are exact over all elements.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- sources ---------------------------------------------------------------------------------

def _owner(key: str, modules: dict[str, nn.Module]) -> tuple[str, str]:
    """Split a parameter key into (module path, local name) at the longest module prefix."""
    parts = key.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in modules:
            return prefix, ".".join(parts[cut:])
    return "", key


def tensor_sources(model: nn.Module, tensors: Sequence[TensorInfo]) -> list[TensorSource]:
    """Pair each TensorInfo with its array, owning layer type and dequantization spec."""
    modules = dict(model.named_modules())
    arrays = dict(tree_flatten(model.parameters()))
    out = []
    for info in tensors:
        arr = arrays.get(info.name)
        if not isinstance(arr, mx.array):
            continue
        path, local = _owner(info.name, modules)
        owner = modules.get(path, model)
        quant = None
        if local == "weight" and "scales" in owner and hasattr(owner, "bits"):
            quant = QuantSpec(scales=owner["scales"], biases=owner.get("biases"),
                              group_size=int(owner.group_size), bits=int(owner.bits),
                              mode=str(getattr(owner, "mode", "affine")))
        out.append(TensorSource(info, arr, type(owner).__name__, local, quant))
    return out


# -- one tensor ------------------------------------------------------------------------------

def _values(src: TensorSource) -> mx.array:
    """The tensor as flat float32 values, dequantized when packed."""
    a = src.array
    if src.quant is not None:
        q = src.quant
        a = mx.dequantize(a, q.scales, q.biases, group_size=q.group_size, bits=q.bits, mode=q.mode)
    if a.dtype != mx.float32:
        a = a.astype(mx.float32)
    return a.reshape(-1)


def accurate_sum(x: mx.array) -> mx.array:
    """Sum in float32 through partial sums of _CHUNK elements (a plain sum drifts on large tensors)."""
    n = x.size
    cut = n - n % _CHUNK
    total = mx.array(0.0, mx.float32)
    if cut:
        total = x[:cut].reshape(-1, _CHUNK).sum(axis=1).sum()
    if cut < n:
        total = total + x[cut:].sum()
    return total


def _sample_indices(name: str, n: int, size: int, seed: int) -> mx.array:
    rng = np.random.default_rng(seed + zlib.crc32(name.encode()))
    return mx.array(np.sort(rng.integers(0, n, size=size, dtype=np.int64)).astype(np.uint32))


def _measure(src: TensorSource, sample: bool, sample_size: int, seed: int
             ) -> tuple[dict[str, Any], FineHistogram | None]:
    """Figures of one tensor and its fine histogram; evaluates only this tensor."""
    x = _values(src)
    n = x.size
    if n == 0:  # an empty parameter: nothing to reduce
        return {"elements": 0, "count": 0, "sampled": False, "min": math.nan, "max": math.nan,
                "mean": math.nan, "var": math.nan, "zeros": 0, "nan": 0, "inf": 0, "finite": 0}, None
    s = x[_sample_indices(src.info.name, n, sample_size, seed)] if sample and n > sample_size else x
    m = s.size
    lo, hi = x.min(), x.max()
    mean = accurate_sum(s) / m
    var = accurate_sum(mx.square(s - mean)) / m
    zeros = (s == 0).sum()
    s_lo, s_hi = (s.min(), s.max()) if s is not x else (lo, hi)
    mx.eval(lo, hi, mean, var, zeros, s_lo, s_hi)
    figs = {"elements": n, "count": m, "sampled": s is not x, "min": lo.item(), "max": hi.item(),
            "mean": mean.item(), "var": var.item(), "zeros": int(zeros.item()),
            "nan": 0, "inf": 0, "s_lo": s_lo.item(), "s_hi": s_hi.item()}
    finite_only = not (math.isfinite(figs["min"]) and math.isfinite(figs["max"]))
    if finite_only:  # rare: count NaN/Inf and redo the moments over finite values
        fin_x, fin_s = mx.isfinite(x), mx.isfinite(s)
        nf = fin_s.sum()
        mean = accurate_sum(mx.where(fin_s, s, 0.0)) / mx.maximum(nf, 1)
        var = accurate_sum(mx.where(fin_s, mx.square(s - mean), 0.0)) / mx.maximum(nf, 1)
        parts = [mx.isnan(x).sum(), mx.isinf(x).sum(), mx.where(fin_x, x, mx.inf).min(),
                 mx.where(fin_x, x, -mx.inf).max(), mean, var, nf,
                 mx.where(fin_s, s, mx.inf).min(), mx.where(fin_s, s, -mx.inf).max()]
        mx.eval(*parts)
        nan, inf, lo_f, hi_f, mean_f, var_f, nf_v, slo, shi = (p.item() for p in parts)
        figs.update(nan=int(nan), inf=int(inf), min=lo_f, max=hi_f, mean=mean_f, var=var_f,
                    finite=int(nf_v), s_lo=slo, s_hi=shi)
    fine = None
    if math.isfinite(figs["s_lo"]) and math.isfinite(figs["s_hi"]):
        fine = fine_histogram(s, figs["s_lo"], figs["s_hi"], finite_only)
    return figs, fine


def _flags(stats: WeightStats, local_name: str, k: float) -> list[str]:
    flags = []
    if stats.nan_count:
        flags.append(f"NaN ×{stats.nan_count:,}")
    if stats.inf_count:
        flags.append(f"Inf ×{stats.inf_count:,}")
    if local_name == "weight" and stats.min == 0 and stats.max == 0 and not stats.nan_count:
        flags.append("dead: all zero")
    if stats.std and stats.mean is not None and stats.min is not None:
        dev = max(stats.max - stats.mean, stats.mean - stats.min)
        if dev > k * stats.std:
            flags.append(f"outlier: max |x − mean| = {dev / stats.std:.1f} σ")
    return flags


def _stats(src: TensorSource, figs: dict[str, Any], k: float) -> WeightStats:
    info = src.info
    finite = figs.get("finite", figs["count"])
    has = finite > 0 and math.isfinite(figs["min"])
    std = math.sqrt(max(figs["var"], 0.0)) if has else None
    lo, hi = (figs["min"], figs["max"]) if has else (None, None)
    stats = WeightStats(
        name=info.name, group=src.group, shape=list(info.shape), dtype=info.dtype,
        params=info.params, nbytes=info.nbytes, trainable=info.trainable, kind=info.kind,
        quantized=src.quant.describe() if src.quant else None,
        elements=figs["elements"], count=figs["count"], sampled=figs["sampled"],
        mean=figs["mean"] if has else None, std=std, min=lo, max=hi,
        abs_max=max(abs(lo), abs(hi)) if has else None,
        zero_fraction=figs["zeros"] / figs["count"] if figs["count"] else 0.0,
        nan_count=figs["nan"], inf_count=figs["inf"],
    )
    stats.flags = _flags(stats, src.local_name, k)
    return stats


# -- driver ----------------------------------------------------------------------------------

def _progress(enabled: bool, total: int) -> tuple[Callable[[int, str], None], Callable[[], None]]:
    """(advance, close) of a rich progress bar on stderr, or no-ops."""
    if not enabled:
        return (lambda n, name: None), (lambda: None)
    from rich.console import Console
    from rich.progress import (BarColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    bar = Progress(TextColumn("weight statistics"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                   TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.description}"),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("", total=max(total, 1))
    bar.start()

    def advance(n: int, name: str) -> None:
        bar.update(task, advance=n, description=name[-40:])

    return advance, bar.stop


def weight_stats(sources: list[TensorSource], *, source: str = "random initialisation",
                 sample: bool | None = None, sample_threshold: int = DEFAULT_SAMPLE_THRESHOLD,
                 sample_size: int = DEFAULT_SAMPLE_SIZE, seed: int = DEFAULT_SEED,
                 outlier_k: float = OUTLIER_K, progress: bool = False) -> WeightReport:
    """Statistics of every source, one tensor at a time; consumes `sources`.

    Each entry of `sources` is set to None once measured, so a caller that holds no
    other reference (see `model_weight_stats`) frees each tensor right after it.
    `sample=None` samples when the total parameter count exceeds `sample_threshold`.
    """
    total = sum(s.info.params for s in sources if s is not None)
    sampled = total > sample_threshold if sample is None else sample
    work = sum(s.array.size for s in sources if s is not None)
    advance, close = _progress(progress, work)
    stats: list[WeightStats] = []
    fines: list[FineHistogram | None] = []
    # Keep freed buffers for the next tensor of the same size instead of returning them to the
    # OS and faulting fresh pages in again (a fifth of the time on a 7B model otherwise).
    largest = max((4 * max(s.info.params, s.array.size) for s in sources if s is not None), default=0)
    previous_limit = mx.set_cache_limit(max(3 * largest, 64 << 20))
    try:
        for i in range(len(sources)):
            src = sources[i]
            sources[i] = None  # type: ignore[call-overload]
            if src is None:
                continue
            figs, fine = _measure(src, sampled, sample_size, seed)
            stats.append(_stats(src, figs, outlier_k))
            fines.append(fine)
            advance(src.array.size, src.info.name)
            del src
    finally:
        close()
        mx.set_cache_limit(previous_limit)
        mx.clear_cache()
    groups, counts = share_bins([s.group for s in stats], fines)
    for st, c in zip(stats, counts):
        st.hist_counts = c
    return WeightReport(source=source, tensors=stats, groups=groups,
                        sampled=any(s.sampled for s in stats), sample_size=sample_size,
                        sample_threshold=sample_threshold, seed=seed, outlier_k=outlier_k,
                        total_params=total)


def model_weight_stats(model: nn.Module, tensors: Sequence[TensorInfo], **options: Any) -> WeightReport:
    """`weight_stats` of a model's parameters (the model keeps its evaluated arrays)."""
    return weight_stats(tensor_sources(model, tensors), **options)
