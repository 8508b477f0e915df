"""Checkpoints: safetensors (one file or a sharded set) and .npz, read lazily and checked.

A safetensors header is validated before MLX reads it (size, JSON, dtypes, offsets
inside the file), so corrupt or truncated files get a clear one-line error naming the
file. Tensors stay lazy: each is read from disk only when evaluated.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten

from .errors import CheckpointError
from .paths import is_dir, probe, regular_file, shown

INDEX_NAME = "model.safetensors.index.json"
MAX_HEADER_BYTES = 100_000_000   # safetensors' own limit
_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2, "F16": 2,
    "BF16": 2, "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8, "C64": 8,
}
_LISTED = 6
# Safetensors float8 tensors: MLX has no float8 dtype (mx.load reads E4M3 as uint8 and
# refuses E5M2), so they are decoded to float16, which holds every float8 value exactly,
# and keep their true dtype as a label.
FLOAT8 = {"F8_E4M3": "float8_e4m3", "F8_E5M2": "float8_e5m2"}
_NUMPY = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "U16": np.uint16, "I16": np.int16,
          "F16": np.float16, "BF16": np.uint16, "U32": np.uint32, "I32": np.int32,
          "F32": np.float32, "U64": np.uint64, "I64": np.int64, "F64": np.float64,
          "C64": np.complex64, "F8_E4M3": np.uint8, "F8_E5M2": np.uint8}


@dataclass
class Checkpoint:
    """Lazy arrays of a checkpoint and the files they come from."""

    files: list[Path]
    arrays: dict[str, mx.array]
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # safetensors only: name -> (file, byte offset, byte length, safetensors dtype)
    locations: dict[str, tuple[Path, int, int, str]] = field(default_factory=dict)
    # tensors whose stored dtype is not their array's (float8 decoded to float16): name -> dtype
    stored_dtypes: dict[str, str] = field(default_factory=dict)

    def dtype_of(self, name: str) -> str:
        """The dtype the file stores the tensor in, e.g. "float8_e4m3" or "bfloat16"."""
        return self.stored_dtypes.get(name) or _dtype_name(self.arrays[name].dtype)

    def nbytes_of(self, name: str) -> int:
        """The bytes the file stores the tensor in."""
        where = self.locations.get(name)
        return where[2] if where is not None else self.arrays[name].nbytes

    @property
    def label(self) -> str:
        return self.files[0].name if len(self.files) == 1 else f"{self.files[0].parent.name} ({len(self.files)} shards)"


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_safetensors_header(path: Path) -> dict[str, dict]:
    """The tensor entries of a safetensors header, checked against the file size.

    Each entry: dtype, shape, and where its bytes lie in the file (offset, nbytes).
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path.name}: not a safetensors file (only {size} bytes)")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES or n > size - 8:
                raise CheckpointError(f"{path.name}: header claims {n:,} bytes but the file has "
                                      f"{size:,} (truncated or not safetensors)")
            raw = f.read(n)
    except OSError as e:
        raise CheckpointError(f"{path.name}: cannot read ({e.strerror or e})") from None
    try:
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except RecursionError:
        raise CheckpointError(f"{path.name}: corrupt safetensors header (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path.name}: corrupt safetensors header ({e})") from None
    data_size = size - 8 - n
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            itemsize = _ITEMSIZE[dtype]
            count = 1
            for d in shape:
                if not isinstance(d, int) or d < 0:
                    raise ValueError
                count *= d
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path.name}: tensor {name!r} has a malformed header entry") from None
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= data_size):
            raise CheckpointError(f"{path.name}: tensor {name!r} lies outside the file "
                                  f"(bytes {start}..{end} of {data_size:,}): truncated or corrupt")
        if end - start != count * itemsize:
            raise CheckpointError(f"{path.name}: tensor {name!r} claims shape {tuple(shape)} {dtype} "
                                  f"({count * itemsize:,} bytes) but spans {end - start:,} bytes")
        tensors[name] = {"dtype": dtype, "shape": tuple(shape), "offset": 8 + n + start,
                         "nbytes": end - start, "start": start}
    _check_layout(path, tensors, data_size)
    for entry in tensors.values():
        del entry["start"]
    return tensors


def _check_layout(path: Path, tensors: dict[str, dict], data_size: int) -> None:
    """The spec's rule: tensors tile the data buffer exactly, in offset order, with no
    shared bytes and no holes (so no polyglot files); empty tensors may sit anywhere."""
    cursor, previous = 0, None
    for name, entry in sorted(tensors.items(), key=lambda kv: (kv[1]["start"], kv[1]["nbytes"])):
        start, end = entry["start"], entry["start"] + entry["nbytes"]
        if start < cursor:
            raise CheckpointError(f"{path.name}: tensors {previous!r} and {name!r} share bytes "
                                  f"{start}..{min(cursor, end)} of the data: corrupt or crafted header")
        if start > cursor:
            raise CheckpointError(f"{path.name}: bytes {cursor}..{start} of the data belong to no "
                                  f"tensor (before {name!r}): corrupt or crafted header")
        if entry["nbytes"]:
            cursor, previous = end, name
    if cursor != data_size:
        raise CheckpointError(f"{path.name}: bytes {cursor}..{data_size} at the end of the data "
                              f"belong to no tensor: corrupt or crafted header")


def _shard_files(path: Path) -> list[Path]:
    """The files of a checkpoint given as a file, an index JSON or a directory; each a regular file."""
    if is_dir(path):
        index = path / INDEX_NAME
        if index.exists():
            return _shard_files(index)
        files = sorted(path.glob("*.safetensors"))
        if not files:
            raise CheckpointError(f"{path}: no *.safetensors files in this directory")
        return [regular_file(f, "checkpoint", CheckpointError) for f in files]
    regular_file(path, "checkpoint", CheckpointError, missing=f"checkpoint not found: {shown(path)}")
    if path.name.endswith(".index.json"):
        try:
            weight_map = json.loads(path.read_text())["weight_map"]
            if not isinstance(weight_map, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()):
                raise ValueError("weight_map must map tensor names to file names")
        except RecursionError:
            raise CheckpointError(f"{path.name}: not a safetensors index (nested too deeply)") from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{path.name}: not a safetensors index ({e})") from None
        files = [_confined(path, f) for f in sorted(set(weight_map.values()))]
        missing = [f.name for f in files if not f.exists()]
        if missing:
            raise CheckpointError(f"{path.name}: shards missing: {', '.join(missing)}")
        return [regular_file(f, "checkpoint", CheckpointError) for f in files]
    return [path]


def _confined(index: Path, name: str) -> Path:
    """The shard `name` of an index, refused unless it lies in the index's folder.

    A plain relative name only (no absolute path, no `..`), and after symlinks the file
    stays in that folder, or in the folder a symlinked index points into (the Hugging Face
    cache links snapshots/<rev>/*.json and *.safetensors alike to blobs/).
    """
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise CheckpointError(f"{index.name}: shard {shown(name)!r} is outside the index's folder: "
                              f"shards must be file names next to the index")
    shard = index.parent / relative
    try:
        roots = {index.parent.resolve(), index.resolve().parent}
        target = shard.resolve()
    except (OSError, RuntimeError) as e:
        raise CheckpointError(f"{index.name}: shard {shown(name)!r}: {e}") from None
    if shard.exists() and not any(target.is_relative_to(root) for root in roots):
        raise CheckpointError(f"{index.name}: shard {shown(name)!r} is a symlink leading outside "
                              f"the index's folder (to {shown(target)}): refused")
    return shard


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Open a .safetensors file, sharded set, or .npz lazily; CheckpointError when bad."""
    path = Path(path)
    if probe(path, "checkpoint", CheckpointError) == "missing":
        raise CheckpointError(f"checkpoint not found: {shown(path)}")
    files = _shard_files(path)
    arrays: dict[str, mx.array] = {}
    locations: dict[str, tuple[Path, int, int, str]] = {}
    stored: dict[str, str] = {}
    for f in files:
        header = None
        if f.suffix == ".safetensors":
            header = read_safetensors_header(f)
            for key, e in header.items():
                locations[key] = (f, e["offset"], e["nbytes"], e["dtype"])
        elif f.suffix != ".npz":
            raise CheckpointError(f"{f.name}: unsupported checkpoint format (use .safetensors, "
                                  f"a {INDEX_NAME}, a directory of shards, or .npz)")
        try:
            if header is not None and any(e["dtype"] == "F8_E5M2" for e in header.values()):
                loaded = _read_with_numpy(f, header)  # mx.load refuses the whole file
            else:
                loaded = mx.load(str(f))
        except CheckpointError:
            raise
        except Exception as e:  # MLX's own reader rejected it
            raise CheckpointError(f"{f.name}: cannot load ({str(e).splitlines()[0]})") from None
        for key, e in (header or {}).items():
            if e["dtype"] in FLOAT8:
                loaded[key] = decode_float8(loaded[key], e["dtype"])
                stored[key] = FLOAT8[e["dtype"]]
        for key, value in loaded.items():
            if key in arrays:
                raise CheckpointError(f"{f.name}: tensor {key!r} also appears in another shard")
            arrays[key] = value
    shapes = {k: tuple(v.shape) for k, v in arrays.items()}
    return Checkpoint(files=files, arrays=arrays, shapes=shapes, locations=locations,
                      stored_dtypes=stored)


def decode_float8(raw: mx.array, kind: str) -> mx.array:
    """float16 values of float8 bytes (uint8), lazily; exact for both formats."""
    raw = raw.astype(mx.uint8) if raw.dtype != mx.uint8 else raw
    if kind == "F8_E4M3":
        return mx.from_fp8(raw, mx.float16)
    return (raw.astype(mx.uint16) << 8).view(mx.float16)  # E5M2 is float16's high byte


def _read_with_numpy(path: Path, header: dict[str, dict]) -> dict[str, mx.array]:
    """Every tensor of a safetensors file read here (not lazily): float8 stays as its bytes."""
    out = {}
    for key, e in header.items():
        count = e["nbytes"] // np.dtype(_NUMPY[e["dtype"]]).itemsize
        try:
            values = np.fromfile(path, dtype=_NUMPY[e["dtype"]], count=count, offset=e["offset"])
        except OSError as err:
            raise CheckpointError(f"{path.name}: cannot read ({err.strerror or err})") from None
        array = mx.array(values.reshape(e["shape"]))
        out[key] = array.view(mx.bfloat16) if e["dtype"] == "BF16" else array
    return out


@dataclass
class WeightsMatch:
    """How a checkpoint's keys line up with a model's parameters."""

    missing: list[tuple[str, tuple[int, ...]]]
    unexpected: list[tuple[str, tuple[int, ...]]]
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]]
    wrong_kind: list[tuple[str, str, str]] = field(default_factory=list)   # float vs integer dtype

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched or self.wrong_kind)

    def describe(self) -> str:
        def listing(items: list[str]) -> str:
            more = f", … and {len(items) - _LISTED} more" if len(items) > _LISTED else ""
            return ", ".join(items[:_LISTED]) + more

        parts = []
        if self.missing:
            parts.append(f"missing {len(self.missing)}: " + listing([f"{k} {list(s)}" for k, s in self.missing]))
        if self.unexpected:
            parts.append(f"unexpected {len(self.unexpected)}: " + listing([f"{k} {list(s)}" for k, s in self.unexpected]))
        if self.mismatched:
            parts.append(f"shape mismatch {len(self.mismatched)}: " + listing(
                [f"{k} model {list(a)} vs checkpoint {list(b)}" for k, a, b in self.mismatched]))
        if self.wrong_kind:
            parts.append(f"dtype mismatch {len(self.wrong_kind)}: " + listing(
                [f"{k} model {a} vs checkpoint {b}" for k, a, b in self.wrong_kind]))
        return "; ".join(parts)


def match_weights(model: nn.Module, ckpt: Checkpoint) -> WeightsMatch:
    params = {k: tuple(v.shape) for k, v in tree_flatten(model.parameters())}
    missing = [(k, s) for k, s in params.items() if k not in ckpt.shapes]
    unexpected = [(k, s) for k, s in ckpt.shapes.items() if k not in params]
    mismatched = [(k, s, ckpt.shapes[k]) for k, s in params.items()
                  if k in ckpt.shapes and ckpt.shapes[k] != s]
    # float16 into float32 is a legal load; integer into floating (or back) is not.
    model_dtypes = {k: v.dtype for k, v in tree_flatten(model.parameters())}
    wrong_kind = [(k, _dtype_name(d), _dtype_name(ckpt.arrays[k].dtype)) for k, d in model_dtypes.items()
                  if k in ckpt.arrays and _is_float(d) != _is_float(ckpt.arrays[k].dtype)]
    return WeightsMatch(sorted(missing), sorted(unexpected), sorted(mismatched), sorted(wrong_kind))


def _is_float(dtype: mx.Dtype) -> bool:
    return mx.issubdtype(dtype, mx.floating)


def _dtype_name(dtype: mx.Dtype) -> str:
    return str(dtype).removeprefix("mlx.core.")


def load_into(model: nn.Module, ckpt: Checkpoint, strict: bool = True) -> WeightsMatch:
    """Load matching tensors into `model` (lazily); with `strict`, any mismatch is an error."""
    match = match_weights(model, ckpt)
    if strict and not match.ok:
        raise CheckpointError(f"{ckpt.label} does not fit the model ({match.describe()}); "
                              "use --no-strict to load what matches")
    bad = {k for k, _, _ in match.mismatched} | {k for k, _, _ in match.wrong_kind}
    params = {k for k, _ in tree_flatten(model.parameters())}
    pairs = [(k, v) for k, v in ckpt.arrays.items() if k in params and k not in bad]
    model.load_weights(pairs, strict=False)
    return match
