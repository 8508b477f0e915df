"""Checks an archived JSON (docs/schema.md) before it becomes a ModelGraph.

A hand-edited archive with a key deleted or a value of the wrong type would otherwise
fail deep inside a renderer; here it fails at once with the key's place and the reason,
e.g. ``layers[3].params is a string, not an integer``. Plain functions, no library:
the schema is small and the messages must name JSON places the user can find.
"""

from __future__ import annotations

from typing import Any, Callable

Check = Callable[[Any, str], None]


class SchemaError(ValueError):
    """One line: where in the JSON, and what is wrong."""


_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
          list: "a list", dict: "an object", type(None): "null"}


def _kind(value: Any) -> str:
    return _NAMES.get(type(value), type(value).__name__)


def _fail(where: str, value: Any, expected: str) -> None:
    raise SchemaError(f"{where} is {_kind(value)}, not {expected}")


def integer(value: Any, where: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(where, value, "an integer")


def count(value: Any, where: str) -> None:
    integer(value, where)
    if value < 0:
        raise SchemaError(f"{where} is {value}, not a count (0 or more)")


def text(value: Any, where: str) -> None:
    if not isinstance(value, str):
        _fail(where, value, "a string")


def boolean(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        _fail(where, value, "a boolean")


def anything(value: Any, where: str) -> None:
    pass


def optional(check: Check) -> Check:
    def run(value: Any, where: str) -> None:
        if value is not None:
            check(value, where)
    return run


def list_of(check: Check) -> Check:
    def run(value: Any, where: str) -> None:
        if not isinstance(value, list):
            _fail(where, value, "a list")
        for i, item in enumerate(value):
            check(item, f"{where}[{i}]")
    return run


def map_of(check: Check) -> Check:
    def run(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            _fail(where, value, "an object")
        for key, item in value.items():
            check(item, f"{where}.{key}")
    return run


def record(fields: dict[str, Check], optional_keys: frozenset[str] = frozenset()) -> Check:
    """An object with these keys (all required unless in `optional_keys`); others ignored."""
    def run(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            _fail(where, value, "an object")
        for key, check in fields.items():
            place = f"{where}.{key}" if where else key
            if key not in value:
                if key in optional_keys:
                    continue
                raise SchemaError(f"missing '{place}'")
            check(value[key], place)
    return run


SHAPES = list_of(list_of(count))
DTYPES = list_of(text)
ENDPOINT = record({"id": text, "name": text, "shapes": SHAPES, "dtypes": DTYPES, "nbytes": count})
LAYER = record({
    "id": text, "path": text, "paths": list_of(text), "type": text, "call_index": count,
    "depth": count, "parent": optional(text), "children": list_of(text), "module_index": integer,
    "config": optional(text), "signature": optional(text), "input_shapes": SHAPES,
    "input_dtypes": DTYPES, "output_shapes": SHAPES, "output_dtypes": DTYPES,
    "output_bytes": count, "params": count, "params_own": count, "params_counted": count,
    "params_own_counted": count, "trainable_params": count, "running_stat_params": count,
    "param_bytes": count, "macs_self": count, "macs_total": count,
    "elementwise_flops_self": count, "elementwise_flops_total": count,
    "uncounted": map_of(count), "returns_from": list_of(anything), "start": optional(integer),
    "end": optional(integer), "error": optional(text),
})
EDGE = record({"source": text, "target": text, "shapes": SHAPES, "dtypes": DTYPES})
TENSOR = record({"name": text, "aliases": list_of(text), "shape": list_of(count), "dtype": text,
                 "params": count, "nbytes": count, "trainable": boolean, "kind": text},
                optional_keys=frozenset({"kind"}))
TOTALS = ("params", "trainable_params", "non_trainable_params", "running_stat_params",
          "param_bytes", "macs", "flops", "elementwise_flops", "input_bytes", "activation_bytes",
          "peak_activation_bytes", "calls", "max_depth")
META = {"source": text, "source_sha256": text, "factory": text, "inputs": list_of(text),
        "dtype": text, "weights": text, "weights_files": list_of(text),
        "weights_sha256": map_of(text), "weights_mismatch": text, "mlx_version": text,
        "python_version": text, "device": text, "seed": integer}
ARCHIVE = record({
    "schema_version": integer, "model": record({"name": text, "type": text}),
    "meta": record({k: optional(v) for k, v in META.items()}, optional_keys=frozenset(META)),
    "totals": record({k: count for k in TOTALS}), "inputs": list_of(ENDPOINT),
    "outputs": list_of(ENDPOINT), "layers": list_of(LAYER), "edges": list_of(EDGE),
    "tensors": list_of(TENSOR), "uncounted_ops": map_of(count),
}, optional_keys=frozenset({"meta"}))


def check_archive(data: Any) -> None:
    """SchemaError naming the first place where `data` is not an archive graph."""
    ARCHIVE(data, "")
    _check_links(data)


def _check_links(data: dict) -> None:
    """Node ids are unique; edges, parents and children name nodes that exist."""
    ids: set[str] = set()
    for section in ("inputs", "layers", "outputs"):
        for i, item in enumerate(data[section]):
            if item["id"] in ids:
                raise SchemaError(f"{section}[{i}].id {item['id']!r} is used twice")
            ids.add(item["id"])
    calls = {layer["id"] for layer in data["layers"]}
    if data["layers"] and "c0" not in calls:
        raise SchemaError("layers has no 'c0' (the model's own call)")
    for i, layer in enumerate(data["layers"]):
        for j, child in enumerate(layer["children"]):
            if child not in calls:
                raise SchemaError(f"layers[{i}].children[{j}] {child!r} is no layer id")
        if layer["parent"] is not None and layer["parent"] not in calls:
            raise SchemaError(f"layers[{i}].parent {layer['parent']!r} is no layer id")
    for i, edge in enumerate(data["edges"]):
        for end in ("source", "target"):
            if edge[end] not in ids:
                raise SchemaError(f"edges[{i}].{end} {edge[end]!r} is no node id")
