"""The diff report (`mlx-report diff A B -o diff.html|.pdf`); no MLX.

Both architecture diagrams, drawn with the changed modules outlined (added green,
removed red, changed amber), then the module, tensor and drift tables. Diagrams need a
graph on both sides (archives or models); checkpoint diffs get the tables only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..analysis.drift import drift_order
from ..diff import FAIL_ON, VALUES_CHANGED, GraphDiff
from ..graph import ModelGraph
from . import report_data as data
from .diff_text import MODULE_HEADERS, TENSOR_HEADERS, drift_cells, fmt_cosine, module_cells, summary_lines, \
    tensor_cells
from .format import fmt_int, fmt_si
from .report import check_date, output_format, render_document, write_document
from .report_data import Cell
from .report_diagram import DiagramFigure, fit
from .report_stats import versions_text

TITLES = {"title": "Title page", "diagrams": "Architecture diagrams", "modules": "Modules",
          "tensors": "Tensors", "drift": "Weight drift", "definitions": "Definitions"}
PARTIALS = {"title": "_diff_title.html", "diagrams": "_diff_diagrams.html",
            "modules": "_diff_modules.html", "tensors": "_diff_tensors.html",
            "drift": "_diff_drift.html", "definitions": "_definitions.html"}
SIDE_W_MM, SIDE_H_MM = 128.0, 128.0     # one of two diagrams side by side, A4 landscape
PAGE_W_MM, PAGE_H_MM = 180.0, 215.0     # one diagram on its own A4 portrait page
MIN_SIDE_SCALE = 0.5                    # below this, the two go on pages of their own
TEXT_ROWS = 150                         # longer tables are set as text in the PDF
DRIFT_HEADERS = ["Tensor", "Shape", "Rel. L2", "Δ mean", "Δ std", "Cosine"]


@dataclass
class DiffTable:
    headers: list[str]
    widths: list[float]
    rows: list[list[Cell]]
    text: data.TextTable | None = None


@dataclass
class DiffDiagrams:
    figures: list[DiagramFigure] = field(default_factory=list)
    side_by_side: bool = True
    depth: int = 1
    notes: list[str] = field(default_factory=list)
    unavailable: str | None = None


def highlights(diff: GraphDiff) -> tuple[dict[str, str], dict[str, str]]:
    """Paths to outline on side A (removed, changed) and side B (added, changed)."""
    a = {m.path: m.status for m in diff.modules if m.status in ("removed", "changed") and m.path}
    b = {m.path: m.status for m in diff.modules if m.status in ("added", "changed") and m.path}
    return a, b


def _depth(graph: ModelGraph, paths: Sequence[str]) -> int:
    """Deep enough to show the changed modules (their call depth), 1 to 2: deeper changes
    outline the box that holds them, and the tables give the detail."""
    wanted = set(paths)
    depths = [graph.node(n)["depth"] for n in graph.calls() if graph.node(n)["path"] in wanted]
    return max(1, min(2, max(depths, default=1)))


def _same_scale(figures: list[tuple[DiagramFigure, float]]) -> list[DiagramFigure]:
    """Both sides at the smaller of their scales, so equal boxes look equal."""
    common = min(scale for _, scale in figures)
    out = []
    for fig, scale in figures:
        ratio = common / scale if scale else 1.0
        out.append(DiagramFigure(fig.svg, fig.caption, round(fig.width_mm * ratio, 1),
                                 round(fig.height_mm * ratio, 1)))
    return out


def _side_svg(graph: ModelGraph, marks: dict[str, str], depth: int, prefix: str, title: str) -> str:
    from .graphviz import render_svg  # lazy: the tables work without the diagram module

    return render_svg(graph, depth=depth, fold=True, style="paper", id_prefix=prefix,
                      highlight=marks, title=title)


def diff_diagrams(diff: GraphDiff, graph_a: ModelGraph, graph_b: ModelGraph) -> DiffDiagrams:
    """Side A and side B drawn with their changes outlined, fitted side by side or a page each."""
    marks_a, marks_b = highlights(diff)
    depth = max(_depth(graph_a, list(marks_a)), _depth(graph_b, list(marks_b)))
    out = DiffDiagrams(depth=depth)
    try:
        svgs = [_side_svg(graph_a, marks_a, depth, "diff-a", f"A: {diff.label_a}"),
                _side_svg(graph_b, marks_b, depth, "diff-b", f"B: {diff.label_b}")]
    except Exception as e:  # the renderer is optional: say why there is no drawing
        out.unavailable = f"{type(e).__name__}: {e}".strip()
        return out
    captions = [f"Side A, {diff.label_a} ({graph_a.model_type}): removed modules in red, changed "
                f"in amber.", f"Side B, {diff.label_b} ({graph_b.model_type}): added modules in "
                f"green, changed in amber."]
    fitted = [fit(svg, cap, SIDE_W_MM, SIDE_H_MM) for svg, cap in zip(svgs, captions)]
    if min(scale for _, scale in fitted) < MIN_SIDE_SCALE:
        fitted = [fit(svg, cap, PAGE_W_MM, PAGE_H_MM) for svg, cap in zip(svgs, captions)]
        out.side_by_side = False
    out.figures = _same_scale(fitted)
    if not (marks_a or marks_b):
        out.notes.append("No module differs: nothing is outlined.")
    return out


def _cells(texts: list[str], headers: list[str]) -> list[Cell]:
    right = {h for h in headers if h.startswith(("Δ", "Rel", "Cos"))}
    out = []
    for h, t in zip(headers, texts):
        # "values changed" shares the amber of "changed" (report.css has st-added/removed/changed).
        status = "st-changed" if t == VALUES_CHANGED else f"st-{t}"
        cls = "num" if h in right else "path" if h in ("Module", "Tensor") else \
            "shape" if "shape" in h.lower() else status if h == "Status" else ""
        out.append(Cell(t, None, cls))
    return out


def _table(headers: list[str], widths: list[float], rows: list[list[Cell]], target: str,
           caps: list[int]) -> DiffTable:
    table = DiffTable(headers, widths, rows)
    if target == "pdf" and len(rows) > TEXT_ROWS:
        table.text = data.text_table(headers, rows, caps)
    return table


def _drifted(diff: GraphDiff) -> list:
    """Tensors with drift figures, largest drift first (NaN first, ties by name)."""
    return sorted((t for t in diff.tensors if t.drift is not None), key=lambda t: (drift_order(t.drift), t.name))


def _drift_rows(diff: GraphDiff) -> list[list[Cell]]:
    rows = []
    for t in _drifted(diff):
        rows.append([Cell(t.name, None, "path"), Cell("×".join(map(str, t.shape_a or ())), None, "shape"),
                     *(Cell(text, None, "num") for text in drift_cells(t.drift))])
    return rows


def _verdict(diff: GraphDiff) -> list[tuple[str, str, bool]]:
    """What `--fail-on` would catch, for CI readers: (kind, "differs" | "same" | "not compared", hit)."""
    out = []
    for kind in FAIL_ON:
        hit = diff.matches(kind)
        state = "differs" if hit else "not compared" if kind == "values" and not diff.values_compared else "same"
        out.append((kind, state, hit))
    return out


def _facts(diff: GraphDiff, graph_a: ModelGraph | None, graph_b: ModelGraph | None,
           version: str, date: str | None) -> list[data.Fact]:
    facts = []
    for side, label, g in (("A", diff.label_a, graph_a), ("B", diff.label_b, graph_b)):
        kind = f"{g.model_name} ({g.model_type})" if g is not None else "checkpoint (no graph)"
        facts.append(data.Fact(f"Side {side}", f"{label}: {kind}"))
        if g is not None and g.meta.get("source_sha256"):
            facts.append(data.Fact(f"sha256 of {side}'s source", str(g.meta["source_sha256"]), mono=True))
    ta, tb = diff.totals_a, diff.totals_b
    if ta and tb:
        facts.append(data.Fact("Parameters", f"{fmt_int(ta.params)} → {fmt_int(tb.params)} "
                                             f"({tb.params - ta.params:+,})"))
        facts.append(data.Fact("MACs", f"{fmt_si(ta.macs)} → {fmt_si(tb.macs)} ({tb.macs - ta.macs:+,})"))
        facts.append(data.Fact("Parameter bytes", f"{fmt_int(ta.param_bytes)} → {fmt_int(tb.param_bytes)} "
                                                  f"({tb.param_bytes - ta.param_bytes:+,})"))
    for line in summary_lines(diff)[2:]:
        key, _, value = line.partition(": ")
        if key in ("Modules", "Tensors"):
            facts.append(data.Fact(key, value))
    drifted = _drifted(diff)
    if drifted:
        top = drifted[0]
        facts.append(data.Fact("Largest drift", f"{top.name}: relative L2 {top.drift.relative_l2:.4g}, "
                                                f"cosine {fmt_cosine(top.drift)}"))
    facts.append(data.Fact("Versions", versions_text(version)))
    if date:
        facts.append(data.Fact("Date", date))
    return facts


def _definitions() -> list[tuple[str, str]]:
    return [
        ("Alignment", "modules by path (the first call at each path), tensors by name."),
        ("Status", "added: only in B; removed: only in A; changed: in both, with a different "
         "type, input or output shape, parameter count, MACs or output dtype (column Changed); "
         "values changed: a tensor of the same shape, dtype and size whose values differ (compared "
         "only when both sides carry weights; a changed tensor whose values differ too lists values)."),
        ("Δ", "B − A. Δ Params and Δ MACs of a module cover its whole subtree."),
        ("Outlines", "in the diagrams, green: added; red, dashed: removed; amber: changed, or a "
         "box that holds a changed module not drawn at this depth."),
        ("Relative L2", "‖b − a‖ / ‖a‖ over the flattened tensor, in float32 with chunked sums."),
        ("Δ mean, Δ std", "mean(b) − mean(a) and std(b) − std(a), population std."),
        ("Cosine", "cosine similarity of the flattened tensors (1 = same direction); nan when "
         "either side holds NaN or Inf, — when either side is all zeros (no direction)."),
        ("Drift order", "largest relative L2 first (nan first: non-finite values), ties by name."),
        ("--fail-on", "params: a parameter count differs or a module/tensor was added or removed; "
         "shapes: a shape differs or something was added or removed; values: a tensor's values "
         "differ (needs weights on both sides); any: any difference, value changes included."),
    ]


def diff_html(diff: GraphDiff, graph_a: ModelGraph | None = None, graph_b: ModelGraph | None = None,
              *, date: str | None = None, title: str | None = None, target: str = "html") -> str:
    """The diff report as one HTML document."""
    from .. import __version__

    date = check_date(date)
    sections = ["title"]
    ctx: dict[str, Any] = {
        "title": title or f"{diff.label_a} → {diff.label_b}", "date": date,
        "kicker": "Model diff", "running": f"{diff.label_a} → {diff.label_b} · mlx-report",
        "keywords": "MLX, model diff", "description": f"Differences between {diff.label_a} and "
                                                      f"{diff.label_b}, made by mlx-report",
        "subtitle": " · ".join(summary_lines(diff)[2:]),
        "facts": _facts(diff, graph_a, graph_b, __version__, date), "verdict": _verdict(diff),
    }
    if graph_a is not None and graph_b is not None:
        sections.append("diagrams")
        ctx["diagrams"] = diff_diagrams(diff, graph_a, graph_b)
    if diff.modules or (diff.totals_a and diff.totals_b):
        sections.append("modules")
        rows = [_cells(module_cells(m), MODULE_HEADERS) for m in diff.modules]
        ctx["modules"] = _table(MODULE_HEADERS, [24, 9, 16, 21, 10, 10, 10], rows, target,
                                [48, 8, 24, 40, 14, 16, 24])
        ctx["unchanged_modules"] = diff.unchanged_modules
    changed = [t for t in diff.tensors if t.status != "same"]
    sections.append("tensors")
    rows = [_cells(tensor_cells(t)[:5], TENSOR_HEADERS[:5]) for t in changed]
    ctx["tensors"] = _table(TENSOR_HEADERS[:5], [40, 14, 24, 12, 10], rows, target, [56, 14, 40, 20, 14])
    ctx["values_compared"] = diff.values_compared
    drift_rows = _drift_rows(diff)
    if drift_rows:
        sections.append("drift")
        ctx["drift"] = _table(DRIFT_HEADERS, [44, 16, 10, 10, 10, 10], drift_rows, target,
                              [60, 20, 10, 10, 10, 10])
    sections.append("definitions")
    ctx["defs"] = {"items": _definitions(), "uncounted": None, "notes": [], "value_reads": []}
    return render_document(ctx, sections, PARTIALS, TITLES, target)


def build_diff_report(diff: GraphDiff, out_path: str | os.PathLike,
                      graph_a: ModelGraph | None = None, graph_b: ModelGraph | None = None, *,
                      date: str | None = None, title: str | None = None,
                      protect: Sequence[Path] = ()) -> Path:
    """Write the diff report to `out_path` (.html or .pdf) atomically."""
    html = diff_html(diff, graph_a, graph_b, date=date, title=title, target=output_format(out_path))
    return write_document(html, out_path, date=date, protect=protect)
