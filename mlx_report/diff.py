"""Comparing two models: modules aligned by path, tensors by name, weight drift.

Reads ModelGraphs (from traces or archived JSON) and, for drift, per-tensor figures
computed by `analysis.drift`. Nothing here calls MLX.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .analysis.drift import Drift, drift_order
from .graph import ModelGraph, TensorInfo, Totals, path_sort_key

FAIL_ON = ("params", "shapes", "values", "any")
VALUES_CHANGED = "values changed"   # tensor status: same shape, dtype and size, other values


@dataclass
class ModuleChange:
    """A module present on one side only, or different between the two."""

    path: str
    status: str                      # "added", "removed" or "changed"
    what: list[str]                  # "type", "shape", "params", "macs", "dtype"
    type_a: str | None = None
    type_b: str | None = None
    output_shapes_a: list[tuple[int, ...]] | None = None
    output_shapes_b: list[tuple[int, ...]] | None = None
    input_shapes_a: list[tuple[int, ...]] | None = None
    input_shapes_b: list[tuple[int, ...]] | None = None
    dtypes_a: list[str] | None = None
    dtypes_b: list[str] | None = None
    params_a: int = 0
    params_b: int = 0
    macs_a: int = 0
    macs_b: int = 0


@dataclass
class TensorChange:
    """A parameter tensor added, removed, reshaped, recast, or (with weights) drifted.

    With weights on both sides, a tensor of the same shape, dtype and size whose values
    differ is "values changed" (what: ["values"]); a "changed" one whose values differ too
    has "values" in `what`. "same" then means identical values.
    """

    name: str
    status: str                      # "added", "removed", "changed", "values changed" or "same"
    what: list[str]                  # "shape", "dtype", "params", "values"
    shape_a: tuple[int, ...] | None = None
    shape_b: tuple[int, ...] | None = None
    dtype_a: str | None = None
    dtype_b: str | None = None
    params_a: int = 0
    params_b: int = 0
    drift: Drift | None = None


@dataclass
class GraphDiff:
    """Everything that differs between side A and side B."""

    label_a: str
    label_b: str
    totals_a: Totals | None
    totals_b: Totals | None
    modules: list[ModuleChange] = field(default_factory=list)
    tensors: list[TensorChange] = field(default_factory=list)
    unchanged_modules: int = 0

    def matches(self, fail_on: str) -> bool:
        """Whether a difference of kind `fail_on` (params | shapes | values | any) exists.

        values: a tensor's values differ (known only where both sides carry weights, see
        `values_compared`); any: any difference, value changes included.
        """
        if fail_on not in FAIL_ON:
            raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
        changes = [m.what for m in self.modules] + [t.what for t in self.tensors if t.status != "same"]
        kinds = {k for what in changes for k in what}
        added = any(m.status != "changed" for m in self.modules) or any(
            t.status in ("added", "removed") for t in self.tensors)
        if fail_on == "params":
            return "params" in kinds or added
        if fail_on == "shapes":
            return "shape" in kinds or added
        if fail_on == "values":
            return "values" in kinds
        return bool(changes) or self._totals_differ()

    @property
    def values_compared(self) -> bool:
        """Whether tensor values were compared (drift measured on at least one tensor)."""
        return any(t.drift is not None for t in self.tensors)

    def tensor_counts(self) -> dict[str, int]:
        """Tensors by status (values_changed: status "values changed"), and how many had drift measured."""
        counts = {s.replace(" ", "_"): sum(1 for t in self.tensors if t.status == s)
                  for s in ("added", "removed", "changed", VALUES_CHANGED)}
        counts["drift_measured"] = sum(1 for t in self.tensors if t.drift is not None)
        return counts

    def module_counts(self) -> dict[str, int]:
        counts = {s: sum(1 for m in self.modules if m.status == s) for s in ("added", "removed", "changed")}
        counts["unchanged"] = self.unchanged_modules
        return counts

    def _totals_differ(self) -> bool:
        return self.totals_a is not None and self.totals_b is not None and self.totals_a != self.totals_b

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON; NaN and ±Inf drift figures become null (strict JSON has none)."""
        return _finite({
            "a": self.label_a, "b": self.label_b,
            "totals_a": asdict(self.totals_a) if self.totals_a else None,
            "totals_b": asdict(self.totals_b) if self.totals_b else None,
            "unchanged_modules": self.unchanged_modules,
            "summary": {
                "modules": self.module_counts() if self.totals_a or self.totals_b else None,
                "tensors": self.tensor_counts(),
                "values_compared": self.values_compared,
                "differs": {kind: self.matches(kind) for kind in FAIL_ON},
            },
            "modules": [asdict(m) for m in self.modules],
            "tensors": [asdict(t) for t in self.tensors],
        })


def _finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _first_calls(graph: ModelGraph) -> dict[str, dict]:
    """Path -> node data of the first call at that path (the model is "")."""
    out: dict[str, dict] = {}
    for node_id in graph.calls():
        d = graph.node(node_id)
        out.setdefault(d["path"], d)
    return out


def _module_change(path: str, a: dict | None, b: dict | None) -> ModuleChange | None:
    if a is None or b is None:
        d = a or b
        status = "removed" if b is None else "added"
        change = ModuleChange(path, status, [])
    else:
        what = []
        if a["type"] != b["type"]:
            what.append("type")
        if [tuple(s) for s in a["output_shapes"]] != [tuple(s) for s in b["output_shapes"]] or \
                [tuple(s) for s in a["input_shapes"]] != [tuple(s) for s in b["input_shapes"]]:
            what.append("shape")
        if a.get("params", 0) != b.get("params", 0):
            what.append("params")
        if a.get("macs_total", 0) != b.get("macs_total", 0):
            what.append("macs")
        if a["output_dtypes"] != b["output_dtypes"]:
            what.append("dtype")
        if not what:
            return None
        change = ModuleChange(path, "changed", what)
    for side, d in (("a", a), ("b", b)):
        if d is None:
            continue
        setattr(change, f"type_{side}", d["type"])
        setattr(change, f"output_shapes_{side}", [tuple(s) for s in d["output_shapes"]])
        setattr(change, f"input_shapes_{side}", [tuple(s) for s in d["input_shapes"]])
        setattr(change, f"dtypes_{side}", list(d["output_dtypes"]))
        setattr(change, f"params_{side}", d.get("params", 0))
        setattr(change, f"macs_{side}", d.get("macs_total", 0))
    return change


def diff_tensors(a: list[TensorInfo], b: list[TensorInfo],
                 drift: dict[str, Drift] | None = None) -> list[TensorChange]:
    """Tensors aligned by name; unchanged ones are kept only when they have drift figures.

    Largest drift first (`drift_order`), ties and tensors without drift by name. Where
    drift was measured, values that differ make a tensor "values changed" (or add
    "values" to a "changed" one's `what`).
    """
    by_a, by_b = {t.name: t for t in a}, {t.name: t for t in b}
    out = []
    for name in sorted(set(by_a) | set(by_b)):
        ta, tb = by_a.get(name), by_b.get(name)
        d = (drift or {}).get(name)
        if ta is None or tb is None:
            status, what = ("added" if ta is None else "removed"), []
        else:
            what = [k for k, differs in (("shape", ta.shape != tb.shape), ("dtype", ta.dtype != tb.dtype),
                                         ("params", ta.params != tb.params)) if differs]
            if d is not None and d.values_changed:
                what.append("values")
            status = "changed" if what and what != ["values"] else VALUES_CHANGED if what else "same"
        if status == "same" and d is None:
            continue
        out.append(TensorChange(
            name, status, what,
            shape_a=ta.shape if ta else None, shape_b=tb.shape if tb else None,
            dtype_a=ta.dtype if ta else None, dtype_b=tb.dtype if tb else None,
            params_a=ta.params if ta else 0, params_b=tb.params if tb else 0, drift=d,
        ))
    out.sort(key=lambda t: (drift_order(t.drift), t.name))
    return out


def diff_graphs(a: ModelGraph, b: ModelGraph, label_a: str = "A", label_b: str = "B",
                drift: dict[str, Drift] | None = None) -> GraphDiff:
    """Modules aligned by path (first call of each), tensors by name."""
    calls_a, calls_b = _first_calls(a), _first_calls(b)
    modules, unchanged = [], 0
    for path in sorted(set(calls_a) | set(calls_b), key=path_sort_key):
        change = _module_change(path, calls_a.get(path), calls_b.get(path))
        if change is None:
            unchanged += 1
        else:
            modules.append(change)
    return GraphDiff(label_a, label_b, a.totals, b.totals, modules,
                     diff_tensors(a.tensors, b.tensors, drift), unchanged)
