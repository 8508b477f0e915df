"""The report's weights section: the per-tensor table, flags, notes and distribution plots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..analysis.weights import WeightReport, WeightStats
from ..graph import ModelGraph
from . import plots
from .format import fmt_int
from .report_data import Cell, num_cell


def _g(x: float | None) -> str:
    """A statistic with 4 significant digits; '--' when absent."""
    if x is None:
        return "--"
    return "0" if x == 0 else f"{x:.4g}"


def _stat_cell(x: float | None) -> Cell:
    return Cell(_g(x), x if x is not None else float("-inf"), "num")


@dataclass
class Weights:
    headers: list[str]
    widths: list[float]
    rows: list[list[Cell]]
    flagged: list[tuple[str, str]]
    notes: list[str]
    groups: list[dict[str, Any]]
    has_stats: bool


def weights_section(graph: ModelGraph, report: WeightReport | None) -> Weights:
    """The per-tensor table (with statistics when computed), flags and distribution plots."""
    stats: dict[str, WeightStats] = {s.name: s for s in report.tensors} if report else {}
    headers = ["Tensor", "Shape", "Dtype", "Params", "Bytes", "Trainable"]
    widths = [45, 14, 14, 9, 10, 8]
    if report:
        headers[-1] = "Train."
        headers += ["Mean", "Std", "Min", "Max", "Abs max", "Zeros", "NaN", "Inf"]
        widths = [26, 8, 8, 7, 7, 4, 6.5, 6, 6.5, 6, 6, 5.5, 3.5, 3.5]
    rows = []
    for t in graph.tensors:
        name = t.name + (f" (= {', '.join(t.aliases)})" if t.aliases else "")
        kind = {"running_stat": " · stat", "quant_aux": " · quant"}.get(t.kind, "")
        row = [Cell(name, t.name, "path"), Cell("×".join(map(str, t.shape)) or "scalar", None, "shape"),
               Cell(t.dtype + kind), num_cell(t.params), num_cell(t.nbytes),
               Cell("✓" if t.trainable else "✗", int(t.trainable), "tick")]
        s = stats.get(t.name)
        if report and s is not None:
            row += [_stat_cell(s.mean), _stat_cell(s.std), _stat_cell(s.min), _stat_cell(s.max),
                    _stat_cell(s.abs_max),
                    Cell(f"{100 * s.zero_fraction:.2f}%", s.zero_fraction, "num"),
                    Cell(fmt_int(s.nan_count), s.nan_count, "num bad" if s.nan_count else "num"),
                    Cell(fmt_int(s.inf_count), s.inf_count, "num bad" if s.inf_count else "num")]
        elif report:
            row += [Cell("--", None, "num")] * 8
        rows.append(row)
    flagged = [(s.name, "; ".join(s.flags)) for s in report.flagged()] if report else []
    notes = []
    if report:
        notes.append(f"Values: {report.source}." if report.source else "")
        notes.append(report.sampling_note())
        quantized = sorted({s.quantized for s in report.tensors if s.quantized})
        if quantized:
            notes.append("Quantized weights (" + "; ".join(quantized) + ") were dequantized with "
                         "mx.dequantize for statistics; Bytes and Params give their real packed "
                         "storage and logical element count.")
    return Weights(headers=headers, widths=widths, rows=rows, flagged=flagged, notes=[n for n in notes if n],
                   groups=_distribution_groups(report) if report else [], has_stats=bool(report))


def _distribution_groups(report: WeightReport) -> list[dict[str, Any]]:
    """Small multiples per group (layer type + parameter), in first-appearance order."""
    order: list[str] = []
    members: dict[str, list[WeightStats]] = {}
    for s in report.tensors:
        if not s.hist_counts or s.kind != "weight":
            continue
        if s.group not in members:
            order.append(s.group)
        members.setdefault(s.group, []).append(s)
    out = []
    for group in order:
        bins = report.groups[group]
        tensors = members[group]
        constants = sorted({s.min for s in tensors if s.min == s.max})
        if all(s.min == s.max for s in tensors):  # nothing to draw: say which constants
            out.append({"name": group, "count": len(tensors), "plots": [],
                        "constant": ", ".join(_g(v) for v in constants)})
            continue
        plots_ = []
        for s in tensors:
            note = f"constant {_g(s.min)}" if s.min == s.max else f"μ {_g(s.mean)}  σ {_g(s.std)}"
            short = s.name if len(s.name) <= 32 else "…" + s.name[-31:]
            plots_.append({"name": short, "note": note, "flagged": bool(s.flags),
                           "svg": plots.histogram(s.hist_counts, bins.lo, bins.width, s.name,
                                                  flagged=bool(s.flags))})
        out.append({"name": group, "count": len(plots_), "lo": _g(bins.lo), "hi": _g(bins.hi),
                    "width": _g(bins.width), "bins": bins.count, "plots": plots_, "constant": ""})
    return out
