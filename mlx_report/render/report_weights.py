"""The report's weights section: the per-tensor table, flags, notes and distribution plots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..analysis.weights import WeightReport, WeightStats
from ..graph import ModelGraph, TensorInfo
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
    caps: list[int]            # widest cell (characters) of each column in the PDF's text table
    rows: list[list[Cell]]
    flagged: list[tuple[str, str]]
    notes: list[str]
    groups: list[dict[str, Any]]
    has_stats: bool
    totals: str                # the line under the table
    grouping: str = "layer type and parameter"   # what shares histogram bins


def weights_section(graph: ModelGraph, report: WeightReport | None) -> Weights:
    """The per-tensor table (with statistics when computed), flags and distribution plots."""
    totals = (f"{len(graph.tensors)} tensors · {fmt_int(graph.totals.params)} parameters · "
              f"{fmt_int(graph.totals.param_bytes)} bytes")
    return tensor_section(graph.tensors, report, totals=totals)


def tensor_section(tensors: Sequence[TensorInfo], report: WeightReport | None, *, totals: str,
                   trainable: bool = True, notes: Sequence[str] = (),
                   grouping: str = "layer type and parameter") -> Weights:
    """The weights section of any tensor list; without `trainable` (a checkpoint alone) that
    column and the kind marks are left out. `notes` come after the report's own."""
    stats: dict[str, WeightStats] = {s.name: s for s in report.tensors} if report else {}
    headers = ["Tensor", "Shape", "Dtype", "Params", "Bytes", "Trainable"]
    widths = [45, 14, 14, 9, 10, 8]
    caps = [52, 14, 14, 14, 14, 6]
    if report:
        headers[-1] = "Train."
        headers += ["Mean", "Std", "Min", "Max", "Abs max", "Zeros", "NaN", "Inf"]
        widths = [26, 8, 8, 7, 7, 4, 6.5, 6, 6.5, 6, 6, 5.5, 3.5, 3.5]
        caps += [10, 10, 10, 10, 10, 8, 8, 8]
    if not trainable:
        del headers[5], widths[5], caps[5]
        widths[0] += 4
    rows = []
    for t in tensors:
        name = t.name + (f" (= {', '.join(t.aliases)})" if t.aliases else "")
        kind = {"running_stat": " · stat", "quant_aux": " · quant"}.get(t.kind, "") if trainable else ""
        row = [Cell(name, t.name, "path"), Cell("×".join(map(str, t.shape)) or "scalar", None, "shape"),
               Cell(t.dtype + kind), num_cell(t.params), num_cell(t.nbytes)]
        if trainable:
            row.append(Cell("✓" if t.trainable else "✗", int(t.trainable), "tick"))
        s = stats.get(t.name)
        if report and s is not None and s.count:
            row += [_stat_cell(s.mean), _stat_cell(s.std), _stat_cell(s.min), _stat_cell(s.max),
                    _stat_cell(s.abs_max),
                    Cell(f"{100 * s.zero_fraction:.2f}%", s.zero_fraction, "num"),
                    Cell(fmt_int(s.nan_count), s.nan_count, "num bad" if s.nan_count else "num"),
                    Cell(fmt_int(s.inf_count), s.inf_count, "num bad" if s.inf_count else "num")]
        elif report:
            row += [Cell("--", None, "num")] * 8
        rows.append(row)
    flagged = [(s.name, "; ".join(s.flags)) for s in report.flagged()] if report else []
    note_list = []
    if report:
        note_list.append(f"Values: {report.source}." if report.source else "")
        note_list.append(report.sampling_note())
        quantized = sorted({s.quantized for s in report.tensors if s.quantized and s.count})
        if quantized:
            note_list.append("Quantized weights (" + "; ".join(quantized) + ") were dequantized with "
                             "mx.dequantize for statistics; Bytes and Params give their real packed "
                             "storage and logical element count.")
    note_list += list(notes)
    return Weights(headers=headers, widths=widths, caps=caps, rows=rows, flagged=flagged,
                   notes=[n for n in note_list if n],
                   groups=_distribution_groups(report) if report else [], has_stats=bool(report),
                   totals=totals, grouping=grouping)



def short_name(name: str, limit: int) -> str:
    """`name` in at most `limit` characters, keeping what tells tensors apart: the first
    component, every block index and the last two components. The longest other middle
    components are dropped first, each run of them shown as "…"
    ("layer4.layers.0.….conv.weight", "encoder.layers.3.….in_proj.bias")."""
    parts = name.split(".")
    kept = [True] * len(parts)

    def render() -> str:
        out: list[str] = []
        for part, keep in zip(parts, kept):
            if keep:
                out.append(part)
            elif not out or out[-1] != "…":
                out.append("…")
        return ".".join(out)

    for last in (len(parts) - 3, len(parts) - 2):  # the module's own name goes last
        while len(render()) > limit:
            droppable = [i for i in range(1, last + 1) if kept[i] and not parts[i].isdigit()]
            if not droppable:
                break
            kept[max(droppable, key=lambda i: (len(parts[i]), -i))] = False
    short = render()
    return short if len(short) <= limit else "…" + name[-(limit - 1):]


def _distribution_groups(report: WeightReport) -> list[dict[str, Any]]:
    """Small multiples per group (layer type + parameter), in first-appearance order."""
    order: list[str] = []
    members: dict[str, list[WeightStats]] = {}
    for s in report.tensors:
        if not s.hist_counts or s.kind != "weight" or s.group not in report.groups:
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
            short = short_name(s.name, 32)
            plots_.append({"name": short, "note": note, "flagged": bool(s.flags),
                           "svg": plots.histogram(s.hist_counts, bins.lo, bins.width, s.name,
                                                  flagged=bool(s.flags))})
        out.append({"name": group, "count": len(plots_), "lo": _g(bins.lo), "hi": _g(bins.hi),
                    "width": _g(bins.width), "bins": bins.count, "plots": plots_, "constant": ""})
    return out
