"""Weight statistics, computed with MLX one tensor at a time (analysis: it evaluates arrays).

Each tensor is evaluated, reduced to a few numbers and a histogram, and dropped, so
memory stays bounded by the two largest tensors (the next one is evaluated while the
current one is measured); no values are copied into Python.
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

import json
import math
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Sequence

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten

from ..errors import CheckpointError
from ..graph import TensorInfo, split_param_key
from .histograms import FineHistogram, HistogramBins, fine_histogram, merge_fine, share_bins

DEFAULT_SAMPLE_THRESHOLD = 100_000_000   # total params above which tensors are sampled
DEFAULT_SAMPLE_SIZE = 100_000            # elements per sampled tensor
DEFAULT_SEED = 0
OUTLIER_K = 10.0                         # outlier: max |x - mean| > K * std
STATS_VERSION = 1                        # "weight_statistics_version" of the JSON form
_CHUNK = 4096                            # partial-sum length: MLX's CPU sum is naive float32
CHUNK_BYTES = 16 << 20                   # tensors are read and reduced in pieces of this size


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
class FileSlice:
    """Where a tensor's raw (little-endian, C-order) bytes lie in a file."""

    path: Path
    offset: int
    nbytes: int
    dtype: mx.Dtype


@dataclass
class TensorSource:
    """One parameter to measure: its TensorInfo, its array, its layer type, and dequantization.

    With `file`, the values are read from there chunk by chunk and `array` (lazy, never
    evaluated) only gives the size: a checkpoint is measured without loading whole tensors.
    """

    info: TensorInfo
    array: mx.array
    layer_type: str
    local_name: str
    quant: QuantSpec | None = None
    file: FileSlice | None = None

    @property
    def group(self) -> str:
        return f"{self.layer_type}.{self.local_name}" if self.layer_type else self.local_name


@dataclass
class WeightStats:
    """Statistics of one tensor, as plain JSON-able numbers."""

    name: str
    group: str
    shape: list[int]
    dtype: str
    params: int
    nbytes: int
    trainable: bool | None         # None: unknown (a checkpoint without its model)
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
        return (f"Sampled: {self.total_params:,} parameters, above the threshold of "
                f"{self.sample_threshold:,}, so mean, std, zero fraction and histograms use "
                f"{self.sample_size:,} elements per larger tensor, drawn uniformly with replacement "
                f"(numpy PCG64, seed {self.seed} + crc32 of the tensor name); min, max, abs max "
                f"and NaN/Inf counts are exact over all elements.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, extra: dict[str, Any] | None = None) -> str:
        """Deterministic JSON (weights-stats.json); `extra` keys go first, after the version."""
        payload = {"weight_statistics_version": STATS_VERSION, **(extra or {}), **self.to_dict()}
        return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "WeightReport":
        """The report `to_json` wrote; ValueError (or KeyError/TypeError) when it is not one."""
        if data.get("weight_statistics_version") != STATS_VERSION:
            raise ValueError(f"unsupported weight_statistics_version "
                             f"{data.get('weight_statistics_version')!r} (this mlx-report reads "
                             f"{STATS_VERSION})")
        fields_ = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in fields_}
        values["tensors"] = [WeightStats(**t) for t in data["tensors"]]
        values["groups"] = {k: HistogramBins(**b) for k, b in data["groups"].items()}
        return cls(**values)


# -- sources ---------------------------------------------------------------------------------

def tensor_sources(model: nn.Module, tensors: Sequence[TensorInfo]) -> list[TensorSource]:
    """Pair each TensorInfo with its array, owning layer type and dequantization spec."""
    modules = dict(model.named_modules())
    arrays = dict(tree_flatten(model.parameters()))
    out = []
    for info in tensors:
        arr = arrays.get(info.name)
        if not isinstance(arr, mx.array):
            continue
        path, local = split_param_key(info.name, modules)
        owner = modules.get(path, model)
        quant = None
        if local == "weight" and "scales" in owner and hasattr(owner, "bits"):
            quant = QuantSpec(scales=owner["scales"], biases=owner.get("biases"),
                              group_size=int(owner.group_size), bits=int(owner.bits),
                              mode=str(getattr(owner, "mode", "affine")))
        out.append(TensorSource(info, arr, type(owner).__name__, local, quant))
    return out


# -- one tensor, chunk by chunk ----------------------------------------------------------------

class ChunkReader:
    """Reads file slices piece by piece into one reused MLX buffer: no allocation per chunk.

    MLX arrays expose their memory through the buffer protocol, so `readinto` fills the
    buffer in place; each chunk must be fully evaluated before the next is read.
    """

    def __init__(self, size: int | None = None):
        self.buffer = mx.array(np.zeros(size or CHUNK_BYTES, dtype=np.uint8))
        mx.eval(self.buffer)
        self.view = memoryview(self.buffer)
        self.files: dict[Path, BinaryIO] = {}

    def chunks(self, where: FileSlice) -> Iterator[mx.array]:
        f = self.files.get(where.path)
        if f is None:
            try:
                f = self.files[where.path] = open(where.path, "rb", buffering=0)
            except OSError as e:
                raise CheckpointError(f"{where.path.name}: cannot read ({e.strerror or e})") from None
        done = 0
        while done < where.nbytes:
            n = min(len(self.view), where.nbytes - done)
            try:
                f.seek(where.offset + done)
                got = f.readinto(self.view[:n])
            except OSError as e:
                raise CheckpointError(f"{where.path.name}: cannot read ({e.strerror or e})") from None
            if got != n:
                raise CheckpointError(f"{where.path.name}: the file ended while reading a tensor "
                                      f"(truncated while being read?)")
            yield self.buffer[:n].view(where.dtype)
            done += n

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()


def _elements(src: TensorSource) -> int:
    """Elements of the (dequantized) tensor."""
    a = src.array
    if src.quant is None:
        return a.size
    return a.size // a.shape[-1] * (a.shape[-1] * 32 // src.quant.bits) if a.ndim else 0


def _chunks(src: TensorSource, reader: ChunkReader | None) -> Iterator[mx.array]:
    """The tensor's values, flat, in pieces of about CHUNK_BYTES (dequantized when packed)."""
    if src.file is not None and reader is not None:
        yield from reader.chunks(src.file)
        return
    a = src.array
    if src.quant is not None:  # quantized along the last axis: whole rows dequantize alone
        q = src.quant
        w, sc = a.reshape(-1, a.shape[-1]), q.scales.reshape(-1, q.scales.shape[-1])
        b = q.biases.reshape(-1, q.biases.shape[-1]) if q.biases is not None else None
        cols = a.shape[-1] * 32 // q.bits
        step = max(CHUNK_BYTES // (4 * max(cols, 1)), 1)
        for r in range(0, w.shape[0], step):
            yield mx.dequantize(w[r:r + step], sc[r:r + step], None if b is None else b[r:r + step],
                                group_size=q.group_size, bits=q.bits, mode=q.mode).reshape(-1)
        return
    x = a.reshape(-1)
    step = max(CHUNK_BYTES // max(x.itemsize, 1) // _CHUNK, 1) * _CHUNK
    for i in range(0, x.size, step):
        yield x[i:i + step]


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


def _sample_indices(name: str, n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + zlib.crc32(name.encode()))
    return np.sort(rng.integers(0, n, size=size, dtype=np.int64))


@dataclass
class _Part:
    """Figures of one chunk (or of a sample); `mean`/`m2` over its finite values."""

    count: int
    finite: int
    mean: float
    m2: float                      # sum of squared deviations from `mean`
    zeros: int
    lo: float                      # finite extremes (inf/-inf when none)
    hi: float
    nan: int
    inf: int
    fine: FineHistogram | None


def _part(c: mx.array) -> _Part:
    """Moments, extremes, zeros and fine histogram of one chunk, in float32 with MLX."""
    x = c if c.dtype == mx.float32 else c.astype(mx.float32)
    m = x.size
    lo, hi, total = x.min(), x.max(), accurate_sum(x)
    m2 = accurate_sum(mx.square(x - total / m))
    zeros = (x == 0).sum()
    mx.eval(lo, hi, total, m2, zeros)
    lo_v, hi_v = lo.item(), hi.item()
    if math.isfinite(lo_v) and math.isfinite(hi_v):
        return _Part(m, m, total.item() / m, m2.item(), int(zeros.item()), lo_v, hi_v, 0, 0,
                     fine_histogram(x, lo_v, hi_v, False))
    # rare: count NaN/Inf and redo the moments over the finite values
    fin = mx.isfinite(x)
    nf = fin.sum()
    mean = accurate_sum(mx.where(fin, x, 0.0)) / mx.maximum(nf, 1)
    m2 = accurate_sum(mx.where(fin, mx.square(x - mean), 0.0))
    parts = [mx.isnan(x).sum(), mx.isinf(x).sum(), mx.where(fin, x, mx.inf).min(),
             mx.where(fin, x, -mx.inf).max(), mean, m2, nf]
    mx.eval(*parts)
    nan, inf, lo_f, hi_f, mean_f, m2_f, nf_v = (p.item() for p in parts)
    fine = fine_histogram(x, lo_f, hi_f, True) if nf_v else None
    return _Part(m, int(nf_v), mean_f, m2_f, int(zeros.item()), lo_f, hi_f, int(nan), int(inf), fine)


# Floats as unsigned integers of the same width: an integer min/max runs several times
# faster than a floating one on MLX's CPU backend (ten times for bfloat16/float16).
_BITS = {mx.float32: (mx.uint32, mx.int32, np.uint32, np.float32),
         mx.float16: (mx.uint16, mx.int16, np.uint16, np.float16),
         mx.bfloat16: (mx.uint16, mx.int16, np.uint16, None),
         mx.float64: (mx.uint64, mx.int64, np.uint64, np.float64)}


def _decode(bits: int, dtype: mx.Dtype) -> float:
    """The float whose bit pattern is `bits`."""
    _, _, utype, ftype = _BITS[dtype]
    if ftype is None:  # bfloat16: the top half of a float32
        return float(np.array([bits << 16], dtype=np.uint32).view(np.float32)[0])
    return float(np.array([bits], dtype=utype).view(ftype)[0])


def plain_extremes(c: mx.array) -> tuple[float, float]:
    """min and max of a chunk exactly, NaN/Inf showing as non-finite results.

    Floats are sign-magnitude: viewed as signed integers, non-negative values keep their
    order; viewed as unsigned, the largest pattern is the most negative value (NaN and Inf
    patterns lie beyond every finite one). So max = the signed max when some value is
    non-negative, and min = the unsigned max when some value is negative; the other cases
    (all one sign) need one more reduction.
    """
    if c.dtype not in _BITS:
        c = c.astype(mx.uint8) if c.dtype == mx.bool_ else c
        lo, hi = c.min(), c.max()
        mx.eval(lo, hi)
        return float(lo.item()), float(hi.item())
    utype, itype, _, _ = _BITS[c.dtype]
    u, i = c.view(utype), c.view(itype)
    hi_i, hi_u = i.max(), u.max()
    mx.eval(hi_i, hi_u)
    sign = 1 << (8 * c.itemsize - 1)
    top_i, top_u = int(hi_i.item()), int(hi_u.item())
    low_u = int(u.min().item()) if top_i < 0 or top_u < sign else None
    lo_bits = top_u if top_u >= sign else low_u
    hi_bits = (top_i if top_i >= 0 else low_u) & ((sign << 1) - 1)
    return _decode(lo_bits, c.dtype), _decode(hi_bits, c.dtype)


def _extremes(c: mx.array, lo: float, hi: float) -> _Part:
    """A chunk's finite extremes and NaN/Inf counts, given its plain min and max."""
    if math.isfinite(lo) and math.isfinite(hi):
        return _Part(c.size, 0, 0.0, 0.0, 0, lo, hi, 0, 0, None)
    x = c.astype(mx.float32)
    fin = mx.isfinite(x)
    parts = [mx.isnan(x).sum(), mx.isinf(x).sum(), mx.where(fin, x, mx.inf).min(),
             mx.where(fin, x, -mx.inf).max()]
    mx.eval(*parts)
    nan, inf, lo_f, hi_f = (p.item() for p in parts)
    return _Part(c.size, 0, 0.0, 0.0, 0, lo_f, hi_f, int(nan), int(inf), None)


@dataclass
class _Running:
    """Chunk figures combined: counts add, moments merge exactly (Chan et al.) in float64."""

    count: int = 0
    finite: int = 0
    mean: float = 0.0
    m2: float = 0.0
    zeros: int = 0
    lo: float = math.inf
    hi: float = -math.inf
    nan: int = 0
    inf: int = 0
    fines: list[FineHistogram] = field(default_factory=list)

    def add(self, p: _Part, moments: bool = True) -> None:
        self.lo, self.hi = min(self.lo, p.lo), max(self.hi, p.hi)
        self.nan += p.nan
        self.inf += p.inf
        if not moments:
            return
        self.count += p.count
        self.zeros += p.zeros
        if p.finite:
            n = self.finite + p.finite
            delta = p.mean - self.mean
            self.mean += delta * p.finite / n
            self.m2 += p.m2 + delta * delta * self.finite * p.finite / n
            self.finite = n
        if p.fine is not None:
            self.fines.append(p.fine)


def _measure(src: TensorSource, sample: bool, sample_size: int, seed: int,
             reader: ChunkReader | None = None, advance: Callable[[int, str], None] | None = None
             ) -> tuple[dict[str, Any], FineHistogram | None]:
    """Figures of one tensor and its fine histogram, reading it chunk by chunk.

    Exact: every chunk contributes its moments and histogram. Sampled: chunks give the
    exact extremes and NaN/Inf counts plus the sampled elements, measured at the end.
    """
    n = _elements(src)
    if n == 0:  # an empty parameter: nothing to reduce
        return {"elements": 0, "count": 0, "sampled": False, "min": math.nan, "max": math.nan,
                "mean": math.nan, "var": math.nan, "zeros": 0, "nan": 0, "inf": 0, "finite": 0}, None
    idx = _sample_indices(src.info.name, n, sample_size, seed) if sample and n > sample_size else None
    whole, moments = _Running(), _Running()
    picked: list[mx.array] = []
    start = 0
    for c in _chunks(src, reader):
        m = c.size
        if idx is None:
            part = _part(c)
            whole.add(part, moments=False)
            moments.add(part)
        else:
            a, b = np.searchsorted(idx, (start, start + m))
            taken = [c[mx.array((idx[a:b] - start).astype(np.uint32))].astype(mx.float32)] if b > a else []
            mx.eval(*taken)
            whole.add(_extremes(c, *plain_extremes(c)), moments=False)
            picked += taken
        start += m
        if advance is not None:
            advance(m, src.info.name)
    if idx is not None:
        moments.add(_part(mx.concatenate(picked) if len(picked) > 1 else picked[0]))
    var = moments.m2 / moments.finite if moments.finite else math.nan
    figs = {"elements": n, "count": moments.count, "sampled": idx is not None,
            "min": whole.lo, "max": whole.hi, "mean": moments.mean if moments.finite else math.nan,
            "var": var, "zeros": moments.zeros, "nan": whole.nan, "inf": whole.inf,
            "finite": moments.finite}
    return figs, merge_fine(moments.fines)


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


def _prefetch(sources: list[TensorSource], start: int) -> None:
    """Start evaluating the next in-memory tensor, so that its stream works while we measure.

    A random initialisation spread over streams (`random_init.spread_random_init`) is then
    generated on two threads at once; otherwise this only moves the wait.
    """
    nxt = next((s for s in sources[start:] if s is not None), None)
    if nxt is not None and nxt.file is None:
        mx.async_eval(nxt.array)


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
    work = sum(_elements(s) for s in sources if s is not None)
    advance, close = _progress(progress, work)
    stats: list[WeightStats] = []
    fines: list[FineHistogram | None] = []
    # Tensors in memory are evaluated whole, then reduced in chunks: keep two freed tensor
    # buffers (the current and the prefetched one, plus the chunk temporaries) for the next
    # tensors of the same size instead of returning them to the OS and faulting fresh pages
    # in again. Sources read from files only ever use one chunk buffer.
    largest = max((s.array.nbytes for s in sources if s is not None and s.file is None), default=0)
    previous_limit = mx.set_cache_limit(2 * largest + 8 * CHUNK_BYTES)
    reader = ChunkReader() if any(s is not None and s.file is not None for s in sources) else None
    try:
        for i in range(len(sources)):
            src = sources[i]
            sources[i] = None  # type: ignore[call-overload]
            if src is None:
                continue
            _prefetch(sources, i + 1)
            figs, fine = _measure(src, sampled, sample_size, seed, reader, advance)
            stats.append(_stats(src, figs, outlier_k))
            fines.append(fine)
            del src
    finally:
        close()
        if reader is not None:
            reader.close()
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
