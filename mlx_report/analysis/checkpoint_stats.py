"""Weight statistics of a checkpoint alone, with no model (analysis: it evaluates arrays).

Safetensors tensors are read straight from their files chunk by chunk (see
`weights.ChunkReader`), so memory stays at a few chunks whatever the checkpoint's size;
.npz tensors are loaded one at a time and freed once measured. Without a model nothing
says how a packed (quantized) weight unpacks: such tensors are listed, not measured.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.core as mx

from ..checkpoint import Checkpoint, read_checkpoint, sha256_file
from ..errors import CheckpointError
from ..graph import TensorInfo, path_sort_key
from .weights import FileSlice, TensorSource, WeightReport, WeightStats, weight_stats

SAFETENSORS_DTYPES = {
    "BOOL": mx.bool_, "U8": mx.uint8, "I8": mx.int8, "U16": mx.uint16, "I16": mx.int16,
    "U32": mx.uint32, "I32": mx.int32, "U64": mx.uint64, "I64": mx.int64, "F16": mx.float16,
    "BF16": mx.bfloat16, "F32": mx.float32, "F64": mx.float64,
}
PACKED_NOTE = ("packed quantized weight: without the model, its bits and group size are "
               "unknown, so it is not dequantized and has no statistics")


@dataclass
class CheckpointStats:
    """A checkpoint's tensors and their statistics; `packed` ones are listed, not measured."""

    label: str
    files: list[Path]
    format: str                                  # "safetensors", "sharded safetensors", "npz"
    tensors: list[TensorInfo]                    # every tensor, in path order
    report: WeightReport
    packed: list[str] = field(default_factory=list)
    sha256: dict[str, str] = field(default_factory=dict)   # file name -> digest, when asked

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def to_json(self) -> str:
        """The WeightReport JSON with the checkpoint's files, digests and tensor list first."""
        extra: dict[str, Any] = {"checkpoint": {
            "label": self.label, "format": self.format,
            "files": [{"name": f.name, "bytes": f.stat().st_size, "sha256": self.sha256.get(f.name)}
                      for f in self.files],
            "packed": self.packed,
        }}
        return self.report.to_json(extra)


def _dtype_name(dtype: mx.Dtype) -> str:
    return str(dtype).removeprefix("mlx.core.")


def _group(name: str) -> tuple[str, str]:
    """("layers.*.attn.q", "weight") for "layers.3.attn.q.weight": list indices are wildcards,
    so the same parameter of every layer shares histogram bins."""
    owner, _, local = name.rpartition(".")
    return re.sub(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.|$)", "*", owner), local


def _packed(ckpt: Checkpoint) -> set[str]:
    """uint32 tensors with a `.scales` beside them: MLX-quantized weights."""
    out = set()
    for name, a in ckpt.arrays.items():
        owner = name.rpartition(".")[0]
        if a.dtype == mx.uint32 and f"{owner}.scales" in ckpt.arrays:
            out.add(name)
    return out


def checkpoint_sources(ckpt: Checkpoint) -> tuple[list[TensorInfo], list[TensorSource], list[str]]:
    """Every tensor's TensorInfo (path order), the sources to measure (file order), packed names."""
    packed = _packed(ckpt)
    owners_of_packed = {n.rpartition(".")[0] for n in packed}
    infos: dict[str, TensorInfo] = {}
    sources = []
    for name in sorted(ckpt.arrays, key=path_sort_key):
        a = ckpt.arrays[name]
        owner, local = _group(name)
        aux = name.rpartition(".")[0] in owners_of_packed and local in ("scales", "biases")
        info = TensorInfo(name=name, aliases=[], shape=tuple(a.shape), dtype=ckpt.dtype_of(name),
                          params=a.size, nbytes=ckpt.nbytes_of(name), trainable=True,
                          kind="quant_aux" if aux else "weight")
        infos[name] = info
        if name in packed:
            continue
        where = ckpt.locations.get(name)
        file = None
        if where is not None and where[3] in SAFETENSORS_DTYPES:
            file = FileSlice(where[0], where[1], where[2], SAFETENSORS_DTYPES[where[3]])
        sources.append(TensorSource(info, a, owner, local, file=file))
    order = {f: i for i, f in enumerate(ckpt.files)}
    sources.sort(key=lambda s: (order[s.file.path], s.file.offset) if s.file else (len(order), 0))
    return list(infos.values()), sources, sorted(packed, key=path_sort_key)


def _format(ckpt: Checkpoint) -> str:
    if ckpt.files[0].suffix == ".npz":
        return "npz"
    return "safetensors" if len(ckpt.files) == 1 else "sharded safetensors"


def _unmeasured(info: TensorInfo, group: str) -> WeightStats:
    return WeightStats(name=info.name, group=group, shape=list(info.shape), dtype=info.dtype,
                       params=info.params, nbytes=info.nbytes, trainable=info.trainable,
                       kind=info.kind, quantized=PACKED_NOTE, elements=info.params, count=0,
                       sampled=False, mean=None, std=None, min=None, max=None, abs_max=None,
                       zero_fraction=0.0, nan_count=0, inf_count=0)


def _sha256(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError as e:
        raise CheckpointError(f"{path.name}: cannot read ({e.strerror or e})") from None


def checkpoint_stats(path: str | Path, *, hash_files: bool = False, progress: bool = False,
                     **options: Any) -> CheckpointStats:
    """Statistics of every tensor of the checkpoint at `path`, streamed tensor by tensor.

    `hash_files` computes each file's sha256 in a second thread while the statistics run.
    `options` go to `weight_stats` (sample, sample_threshold, sample_size, seed, outlier_k).
    """
    ckpt = read_checkpoint(path)
    infos, sources, packed = checkpoint_sources(ckpt)
    label, files, fmt = ckpt.label, list(ckpt.files), _format(ckpt)
    ckpt.arrays.clear()  # the sources hold the only references: each tensor is freed once measured
    with ThreadPoolExecutor(max_workers=1) as pool:
        digests = {f.name: pool.submit(_sha256, f) for f in files} if hash_files else {}
        report = weight_stats(sources, source=f"checkpoint {label}", progress=progress, **options)
        sha = {name: future.result() for name, future in digests.items()}
    measured = {s.name: s for s in report.tensors}
    report.tensors = [measured.get(i.name) or _unmeasured(i, ".".join(filter(None, _group(i.name))))
                      for i in infos]
    for s in report.tensors:
        s.trainable = None  # a checkpoint alone does not say

    return CheckpointStats(label, files, fmt, infos, report, packed, sha)
