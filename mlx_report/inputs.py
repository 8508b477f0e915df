"""Parse ``--input`` specs (``name=1,128:int32``) and make example input arrays."""

from __future__ import annotations

import keyword
import operator
import re
from dataclasses import dataclass

import mlx.core as mx

from mlx_report.errors import InputSpecError

DTYPES: dict[str, mx.Dtype] = {
    "float32": mx.float32,
    "float16": mx.float16,
    "bfloat16": mx.bfloat16,
    "float64": mx.float64,
    "complex64": mx.complex64,
    "int8": mx.int8,
    "int16": mx.int16,
    "int32": mx.int32,
    "int64": mx.int64,
    "uint8": mx.uint8,
    "uint16": mx.uint16,
    "uint32": mx.uint32,
    "uint64": mx.uint64,
    "bool": mx.bool_,
}

DTYPE_ALIASES: dict[str, str] = {
    "f32": "float32",
    "fp32": "float32",
    "float": "float32",
    "f16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bf16": "bfloat16",
    "f64": "float64",
    "fp64": "float64",
    "double": "float64",
    "int": "int32",
    "long": "int64",
    "bool_": "bool",
}

MAX_DIM = 2**31 - 1  # MLX shapes are int32
# MLX counts an array's elements and bytes in 64 bits and wraps silently past that
# (a 2e9^3 float32 array reports 1.05e19 bytes, not 3.2e28): refuse such inputs.
MAX_BYTES = 2**63 - 1
ACCEPTED_FORMS = "1,3,224,224 | 1,128:int32 | name=1,128:int32"

# ',' or blanks separate dimensions; 'x' only between two digits (1x3), so that a stray
# letter ('1,3,x') is reported as a bad dimension, not as an empty one.
_SEPARATORS = re.compile(r"\s*,\s*|(?<=[0-9])\s*[xX]\s*(?=[0-9])|\s+")
_DIGITS = re.compile(r"[0-9]+")
_BRACKETS = {"(": ")", "[": "]"}


@dataclass(frozen=True)
class InputSpec:
    """Shape, dtype name and optional keyword name of one example input."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    name: str | None = None

    def __post_init__(self) -> None:
        shape = _checked_shape(self.shape)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", canonical_dtype(self.dtype))
        if self.name is not None and not _is_name(self.name):
            raise InputSpecError(f"invalid input name {self.name!r}: not a Python identifier")

    @property
    def mx_dtype(self) -> mx.Dtype:
        """The MLX dtype of this input."""
        return DTYPES[self.dtype]

    def __str__(self) -> str:
        shape = ",".join(map(str, self.shape)) if self.shape else "()"
        dtype = "" if self.dtype == "float32" else f":{self.dtype}"
        name = "" if self.name is None else f"{self.name}="
        return f"{name}{shape}{dtype}"


def canonical_dtype(name: str) -> str:
    """Canonical dtype name (``fp16`` -> ``float16``); InputSpecError if unknown."""
    key = str(name).strip().lower().removeprefix("mx.").removeprefix("mlx.core.")
    key = DTYPE_ALIASES.get(key, key)
    if key not in DTYPES:
        raise InputSpecError(f"unknown dtype {name!r}; valid dtypes: {', '.join(DTYPES)}")
    return key


def parse_dtype(name: str) -> mx.Dtype:
    """The MLX dtype called ``name``; InputSpecError listing valid names if unknown."""
    return DTYPES[canonical_dtype(name)]


def dtype_name(dtype: mx.Dtype) -> str:
    """Canonical name of an MLX dtype (``mx.float16`` -> ``float16``)."""
    for name, value in DTYPES.items():
        if value == dtype:
            return name
    return str(dtype).removeprefix("mlx.core.")


def parse_input_spec(text: str) -> InputSpec:
    """Parse one ``--input`` value: ``[name=]shape[:dtype]``."""

    def fail(reason: str) -> InputSpecError:
        return InputSpecError(f"invalid --input {text!r}: {reason} (accepted forms: {ACCEPTED_FORMS})")

    body = text.strip()
    if not body:
        raise fail("empty spec")
    name = None
    if "=" in body:
        name, body = (part.strip() for part in body.split("=", 1))
        if not _is_name(name):
            raise fail(f"name {name!r} is not a Python identifier")
    if body.count(":") > 1:
        raise fail("more than one ':'")
    dtype = "float32"
    if ":" in body:
        body, dtype = (part.strip() for part in body.split(":"))
        if not dtype:
            raise fail("missing dtype after ':'")
        try:
            dtype = canonical_dtype(dtype)
        except InputSpecError as e:
            raise fail(str(e)) from None
    return InputSpec(_parse_shape(body, fail), dtype, name)


def size_problem(shape: tuple[int, ...], dtype: str) -> str | None:
    """Why an array of `shape` and `dtype` is too large for MLX to count, or None."""
    elements = 1
    for d in shape:
        elements *= d
    nbytes = elements * DTYPES[dtype].size
    if nbytes <= MAX_BYTES:
        return None
    return (f"{elements:.3g} elements of {dtype} are {nbytes:.3g} bytes, beyond the 2^63 "
            f"bytes MLX can count (its sizes would overflow)")


def _parse_shape(body: str, fail) -> tuple[int, ...]:
    """Parse ``1,3,224,224``, ``(1, 3)``, ``1x3`` or ``()`` into a shape tuple."""
    if not body:
        raise fail("empty shape (use () for a scalar)")
    if body[0] in _BRACKETS or body[-1] in _BRACKETS.values():
        if len(body) < 2 or _BRACKETS.get(body[0]) != body[-1]:
            raise fail("unbalanced brackets")
        body = body[1:-1].strip()
        if not body:
            return ()
        if body.endswith(","):
            body = body[:-1].rstrip()
    dims = _SEPARATORS.split(body)
    for dim in dims:
        if not dim:
            raise fail("empty dimension")
        if not _DIGITS.fullmatch(dim) or int(dim) == 0:
            raise fail(f"dimension {dim!r} is not a positive integer")
        if int(dim) > MAX_DIM:
            raise fail(f"dimension {dim} exceeds MLX's limit of {MAX_DIM} per axis")
    return tuple(int(d) for d in dims)


def _checked_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` as a tuple of positive ints; InputSpecError otherwise."""
    try:
        if not any(isinstance(d, bool) for d in shape):
            dims = tuple(operator.index(d) for d in shape)
            if all(0 < d <= MAX_DIM for d in dims):
                return dims
    except TypeError:
        pass
    raise InputSpecError(f"invalid input shape {shape!r}: dimensions must be positive integers "
                         f"up to {MAX_DIM:,}")


def _is_name(name: str) -> bool:
    """True when ``name`` can be a keyword argument name."""
    return name.isidentifier() and not keyword.iskeyword(name)


def parse_input_specs(texts: list[str]) -> list[InputSpec]:
    """Parse several ``--input`` values and check them together."""
    specs = [parse_input_spec(t) for t in texts]
    for text, spec in zip(texts, specs):
        too_large = size_problem(spec.shape, spec.dtype)
        if too_large:
            raise InputSpecError(f"invalid --input {text!r}: {too_large}")
    check_input_specs(specs)
    return specs


def check_input_specs(specs: list[InputSpec]) -> None:
    """Reject keyword names given twice and arrays too large for MLX to count."""
    seen: set[str] = set()
    for spec in specs:
        too_large = size_problem(spec.shape, spec.dtype)
        if too_large:
            raise InputSpecError(f"invalid input shape {spec.shape!r}: {too_large}")
        if spec.name is None:
            continue
        if spec.name in seen:
            raise InputSpecError(f"duplicate --input name {spec.name!r}: give each keyword input once")
        seen.add(spec.name)


def make_inputs(specs: list[InputSpec]) -> tuple[list[mx.array], dict[str, mx.array]]:
    """Lazy zero arrays for the specs: positional list and keyword dict."""
    check_input_specs(specs)
    args: list[mx.array] = []
    kwargs: dict[str, mx.array] = {}
    for spec in specs:
        x = mx.zeros(spec.shape, dtype=spec.mx_dtype)
        if spec.name is None:
            args.append(x)
        else:
            kwargs[spec.name] = x
    return args, kwargs
