"""A GraphDiff as a terminal table or Markdown."""

from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.table import Table as RichTable

from ..escape import terminal_safe
from ..analysis.drift import Drift
from ..diff import GraphDiff, ModuleChange, TensorChange
from .format import fmt_int, fmt_shapes, fmt_si


def _delta(a: int, b: int) -> str:
    d = b - a
    return "0" if d == 0 else f"{'+' if d > 0 else '-'}{fmt_int(abs(d))}"


def module_cells(m: ModuleChange) -> list[str]:
    if m.status != "changed":  # one side only
        kind, shapes = m.type_a or m.type_b, fmt_shapes(m.output_shapes_a or m.output_shapes_b or [])
    else:
        kind = m.type_a if m.type_a == m.type_b else f"{m.type_a} → {m.type_b}"
        shapes = fmt_shapes(m.output_shapes_a or []) if m.output_shapes_a == m.output_shapes_b else \
            f"{fmt_shapes(m.output_shapes_a or [])} → {fmt_shapes(m.output_shapes_b or [])}"
        if m.output_shapes_a == m.output_shapes_b and m.input_shapes_a != m.input_shapes_b:
            shapes = (f"in {fmt_shapes(m.input_shapes_a or [])} → {fmt_shapes(m.input_shapes_b or [])}, "
                      f"out {shapes}")  # the change is on the input side: show it
    return [m.path or "(model)", m.status, kind, shapes, _delta(m.params_a, m.params_b),
            _delta(m.macs_a, m.macs_b), ", ".join(m.what)]


def fmt_cosine(d: Drift) -> str:
    """"nan" when a side has non-finite values, "—" when a side has zero norm (undefined)."""
    return "—" if d.cosine is None else f"{d.cosine:.6f}"


def drift_cells(d: Drift) -> list[str]:
    """Relative L2, Δ mean, Δ std, cosine."""
    return [f"{d.relative_l2:.4g}", f"{d.mean_shift:+.3g}", f"{d.std_shift:+.3g}", fmt_cosine(d)]


def tensor_cells(t: TensorChange) -> list[str]:
    shape = str(list(t.shape_a or t.shape_b or ())) if t.shape_a == t.shape_b or not (t.shape_a and t.shape_b) \
        else f"{list(t.shape_a)} → {list(t.shape_b)}"
    dtype = (t.dtype_a or t.dtype_b or "") if t.dtype_a == t.dtype_b or not (t.dtype_a and t.dtype_b) \
        else f"{t.dtype_a} → {t.dtype_b}"
    d = t.drift
    drift = ["--"] * 4 if d is None else drift_cells(d)
    return [t.name, t.status, shape, dtype, _delta(t.params_a, t.params_b), *drift]


MODULE_HEADERS = ["Module", "Status", "Type", "Shape", "Δ Params", "Δ MACs", "Changed"]
TENSOR_HEADERS = ["Tensor", "Status", "Shape", "Dtype", "Δ Params", "Rel. L2", "Δ mean", "Δ std", "Cosine"]


def summary_lines(diff: GraphDiff) -> list[str]:
    lines = [f"A: {diff.label_a}", f"B: {diff.label_b}"]
    ta, tb = diff.totals_a, diff.totals_b
    if ta and tb:
        lines.append(f"Params: {fmt_int(ta.params)} → {fmt_int(tb.params)} ({_delta(ta.params, tb.params)})")
        lines.append(f"MACs: {fmt_si(ta.macs)} → {fmt_si(tb.macs)} ({_delta(ta.macs, tb.macs)})")
    counts = {s: sum(1 for m in diff.modules if m.status == s) for s in ("added", "removed", "changed")}
    if ta or tb:
        lines.append(f"Modules: {counts['added']} added, {counts['removed']} removed, "
                     f"{counts['changed']} changed, {diff.unchanged_modules} unchanged")
    tc = diff.tensor_counts()
    drifted = tc["drift_measured"]
    # Value changes are known only where drift was measured: no "0 values changed" otherwise.
    lines.append(f"Tensors: {tc['added']} added, {tc['removed']} removed, {tc['changed']} changed"
                 + (f", {tc['values_changed']} values changed, drift measured on {drifted}" if drifted else ""))
    return lines


def render_diff_text(diff: GraphDiff) -> str:
    buf = io.StringIO()
    # markup=False and escaped control characters: tensor names are the checkpoint's strings
    console = Console(file=buf, width=10_000, color_system=None, highlight=False, emoji=False,
                      markup=False)
    for line in summary_lines(diff):
        console.print(terminal_safe(line))
    for title, headers, rows in (("Modules", MODULE_HEADERS, [module_cells(m) for m in diff.modules]),
                                 ("Tensors", TENSOR_HEADERS, [tensor_cells(t) for t in diff.tensors])):
        if not rows:
            continue
        table = RichTable(title=title, box=box.SIMPLE_HEAD, show_edge=False, title_justify="left")
        for h in headers:
            table.add_column(h, no_wrap=True, justify="right" if h.startswith(("Δ", "Rel", "Cos")) else "left")
        for r in rows:
            table.add_row(*(terminal_safe(c) for c in r))
        console.print(table)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def render_diff_markdown(diff: GraphDiff) -> str:
    out = [f"- {line}" for line in summary_lines(diff)]
    for title, headers, rows in (("Modules", MODULE_HEADERS, [module_cells(m) for m in diff.modules]),
                                 ("Tensors", TENSOR_HEADERS, [tensor_cells(t) for t in diff.tensors])):
        if not rows:
            continue
        out += ["", f"### {title}", "", "| " + " | ".join(headers) + " |",
                "| " + " | ".join("--:" if h.startswith(("Δ", "Rel", "Cos")) else ":--" for h in headers) + " |"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"
