"""Provenance of arrays during a trace: which module call produced each array.

Every `mx.*` function and `mx.array` operator is wrapped for the duration of the
trace, so an array made by functional code (`x + h`, reshapes, concatenation)
inherits the tags of its array arguments. Arrays are keyed by `id()` while a
reference is held, so ids cannot be reused mid-trace. Each record also keeps the
op clock of its birth and last use, from which the peak of live activations is
estimated.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import mlx.core as mx

# Functions that never produce arrays from arrays, or must not be intercepted.
_SKIP_FUNCTIONS = {
    "array", "export_function", "export_to_dot", "exporter",
    "import_function", "compile", "disable_compile", "enable_compile", "checkpoint",
    "grad", "value_and_grad", "vjp", "jvp", "vmap", "stream", "new_stream",
    "default_stream", "default_device", "set_default_device", "set_default_stream",
    "synchronize", "save", "savez", "savez_compressed", "save_safetensors",
    "save_gguf", "load", "printoptions", "set_printoptions", "get_printoptions",
    "array_equal", "allclose", "issubdtype", "isdtype", "can_cast", "result_type",
    "broadcast_shapes", "einsum_path", "device_info", "device_count", "is_available",
    "clear_cache", "clear_streams", "from_dlpack",
}
_SKIP_METHODS = {
    "__init__", "__new__", "__repr__", "__str__", "__getattribute__", "__setattr__",
    "__delattr__", "__hash__", "__bool__", "__len__", "__iter__", "__array__",   # __iter__: _wrap_iter
    "__array_namespace__", "__dlpack__", "__dlpack_device__", "__reduce__",
    "__reduce_ex__", "__getstate__", "__setstate__", "__sizeof__", "__dir__",
    "__format__", "__init_subclass__", "__subclasshook__", "__class__", "__doc__",
    "__module__", "__copy__", "__deepcopy__", "__int__", "__float__", "__complex__",
    "__index__", "__bytes__", "item", "tolist", "dtype", "shape", "size", "ndim",
    "nbytes", "itemsize", "at",
}
# Results that alias their argument's buffer (no new activation memory).
_VIEW_OPS = {
    "reshape", "transpose", "swapaxes", "moveaxis", "permute_dims", "expand_dims",
    "squeeze", "flatten", "unflatten", "broadcast_to", "broadcast_arrays", "T", "mT",
    "__getitem__", "split", "view", "stop_gradient", "matrix_transpose", "as_strided",
    "atleast_1d", "atleast_2d", "atleast_3d", "diagonal", "real", "imag", "unstack",
}
# Reading values forces evaluation: a data-dependent model.
_VALUE_READS = {"item", "tolist", "__bool__", "__int__", "__float__", "__index__", "__array__",
                "eval", "async_eval"}


@dataclass
class ArrayRecord:
    """One activation array: who made it, when it was born and last used."""

    array: mx.array
    tags: frozenset[str]
    born: int
    last_use: int
    nbytes: int
    base: "ArrayRecord | None" = None   # set for views: memory belongs to the base


@dataclass
class Provenance:
    """Tags of every activation array seen during one trace."""

    records: dict[int, ArrayRecord] = field(default_factory=dict)
    clock: int = 0
    on_value_read: Callable[[str, list[mx.array]], None] | None = None   # (op, arrays read)
    current: str | None = None                            # the innermost module call running
    own_ops: dict[str, int] = field(default_factory=dict)  # call -> ops on activations in its own code

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def get(self, arr: Any) -> ArrayRecord | None:
        return self.records.get(id(arr)) if isinstance(arr, mx.array) else None

    def tag(self, arr: mx.array, tags: frozenset[str], base: ArrayRecord | None = None) -> ArrayRecord:
        """Record `arr` as an activation with `tags`, born now."""
        rec = self.records.get(id(arr))
        if rec is not None and rec.array is arr:
            rec.tags = tags
            return rec
        rec = ArrayRecord(arr, tags, self.clock, self.clock, 0 if base else arr.nbytes, base)
        self.records[id(arr)] = rec
        return rec

    def use(self, rec: ArrayRecord) -> None:
        """Mark a record (and the buffer it views) as used now."""
        while rec is not None:
            rec.last_use = self.clock
            rec = rec.base

    def peak_bytes(self) -> int:
        """Peak of live activation bytes, arrays freed right after their last use."""
        events: dict[int, int] = {}
        for rec in self.records.values():
            if rec.nbytes:
                events[rec.born] = events.get(rec.born, 0) + rec.nbytes
                events[rec.last_use + 1] = events.get(rec.last_use + 1, 0) - rec.nbytes
        live = peak = 0
        for t in sorted(events):
            live += events[t]
            peak = max(peak, live)
        return peak


def _is_dataclass(tree: Any) -> bool:
    return dataclasses.is_dataclass(tree) and not isinstance(tree, type)


def _fields(tree: Any) -> list[tuple[str, Any]]:
    """(name, value) of a dataclass's fields (outputs like Hugging Face's ModelOutput)."""
    return [(f.name, getattr(tree, f.name, None)) for f in dataclasses.fields(tree)]


def iter_arrays(tree: Any) -> Iterator[mx.array]:
    """Arrays in a nested structure of lists, tuples, dicts and dataclasses, in order."""
    if isinstance(tree, mx.array):
        yield tree
    elif isinstance(tree, (list, tuple)):
        for item in tree:
            yield from iter_arrays(item)
    elif isinstance(tree, dict):
        for item in tree.values():
            yield from iter_arrays(item)
    elif _is_dataclass(tree):
        for _, item in _fields(tree):
            yield from iter_arrays(item)


def named_arrays(tree: Any, prefix: str = "") -> Iterator[tuple[str, mx.array]]:
    """(name, array) pairs: dict keys, field names (dataclasses, NamedTuples) and list
    indices joined by dots ("logits", "1.0", "hidden_states.2")."""
    join = lambda key: f"{prefix}.{key}" if prefix else str(key)  # noqa: E731
    if isinstance(tree, mx.array):
        yield prefix, tree
    elif isinstance(tree, tuple) and hasattr(tree, "_fields"):  # a NamedTuple
        for key, item in zip(tree._fields, tree):
            yield from named_arrays(item, join(key))
    elif isinstance(tree, (list, tuple)):
        for i, item in enumerate(tree):
            yield from named_arrays(item, join(i))
    elif isinstance(tree, dict):
        for key, item in tree.items():
            yield from named_arrays(item, join(key))
    elif _is_dataclass(tree):
        for key, item in _fields(tree):
            yield from named_arrays(item, join(key))


_ACTIVE: list[Provenance | None] = [None]   # the provenance of the trace in progress
_WRAPPERS: list[tuple[Any, str, Any, Any]] = []   # (owner, name, original, wrapped), built once


def _wrap(fn: Callable, name: str, always: bool = False) -> Callable:
    """`fn` with provenance: its array results inherit the tags of its array arguments.

    `always` tracks the results even when no argument is an activation (a transform's
    closure may hold activations that are no argument).
    """
    is_view = name in _VIEW_OPS
    reads_value = name in _VALUE_READS

    def wrapper(*args, **kwargs):
        prov = _ACTIVE[0]
        if prov is None:
            return fn(*args, **kwargs)
        if reads_value and prov.on_value_read is not None:  # of activations or of weights
            prov.on_value_read(name, list(iter_arrays((args, kwargs))))
        recs = [r for a in iter_arrays((args, kwargs)) if (r := prov.get(a)) is not None]
        if not recs and not always:
            return fn(*args, **kwargs)
        out = fn(*args, **kwargs)
        prov.tick()
        if prov.current is not None:
            prov.own_ops[prov.current] = prov.own_ops.get(prov.current, 0) + 1
        tags = frozenset().union(*(r.tags for r in recs))
        for r in recs:
            prov.use(r)
        base = (recs[0].base or recs[0]) if is_view else None
        for arr in iter_arrays(out):
            if prov.get(arr) is None:
                prov.tag(arr, tags, base)
        return out

    wrapper.__wrapped__ = fn
    return wrapper


def _wrap_iter(fn: Callable) -> Callable:
    """`iter(x)` with provenance: each row (a view of `x`) inherits `x`'s tags.

    `for xt in x` makes its rows in C++, past the wrapped `__getitem__`; untracked, the
    rows would look like constants and the calls on them would count no work.
    """

    def __iter__(self):
        prov = _ACTIVE[0]
        rec = prov.get(self) if prov is not None else None
        for item in fn(self):
            if rec is not None and isinstance(item, mx.array) and prov.get(item) is None:
                prov.tick()
                prov.use(rec)
                prov.tag(item, rec.tags, rec.base or rec)
            yield item

    __iter__.__wrapped__ = fn
    return __iter__


def _wrappers() -> list[tuple[Any, str, Any, Any]]:
    """Every MLX function and array operator with its wrapper (made on first use)."""
    if not _WRAPPERS:
        for namespace in (mx, mx.fast, mx.linalg, mx.fft, mx.random):
            for name in dir(namespace):
                if name.startswith("_") or name in _SKIP_FUNCTIONS:
                    continue
                fn = getattr(namespace, name)
                if callable(fn) and not isinstance(fn, type):
                    _WRAPPERS.append((namespace, name, fn, _wrap(fn, name)))
        for name, attr in list(vars(mx.array).items()):
            if name == "__iter__":
                _WRAPPERS.append((mx.array, name, attr, _wrap_iter(attr)))
                continue
            if name in _SKIP_METHODS and name not in _VALUE_READS:
                continue
            if isinstance(attr, property):
                _WRAPPERS.append((mx.array, name, attr, property(_wrap(attr.fget, name))))
            elif callable(attr) and not isinstance(attr, type):
                _WRAPPERS.append((mx.array, name, attr, _wrap(attr, name)))
    return _WRAPPERS


_wrappers()  # a static table, built once at import (1.5 ms) rather than in the first trace


@contextmanager
def tracking(prov: Provenance) -> Iterator[Provenance]:
    """Wrap MLX's functions and array operators so arrays inherit provenance."""
    installed: list[tuple[Any, str, Any]] = []
    try:
        _ACTIVE[0] = prov
        for owner, name, original, wrapped in _wrappers():
            installed.append((owner, name, original))
            setattr(owner, name, wrapped)
        yield prov
    finally:
        _ACTIVE[0] = None
        for owner, name, original in reversed(installed):
            setattr(owner, name, original)
