"""Checkpoint statistics (`mlx-report stats`) as a terminal table, Markdown or CSV; no MLX."""

from __future__ import annotations

import csv
import io
from collections import Counter
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table as RichTable

from ..escape import terminal_safe
from ..analysis.weights import WeightStats
from .format import fmt_bytes, fmt_int

if TYPE_CHECKING:
    from ..analysis.checkpoint_stats import CheckpointStats

HEADERS = ["Tensor", "Shape", "Dtype", "Params", "Bytes", "Mean", "Std", "Min", "Max", "Abs max",
           "Zeros", "NaN", "Inf", "Histogram"]
RIGHT = {"Params", "Bytes", "Mean", "Std", "Min", "Max", "Abs max", "Zeros", "NaN", "Inf"}
SPARK = " ▁▂▃▄▅▆▇█"
SPARK_WIDTH = 16


def g(x: float | None) -> str:
    """A statistic with 4 significant digits; '--' when absent."""
    if x is None:
        return "--"
    return "0" if x == 0 else f"{x:.4g}"


def sparkline(counts: list[int], width: int = SPARK_WIDTH) -> str:
    """Histogram counts as block characters, adjacent bins summed down to `width`."""
    if not counts or not any(counts):
        return ""
    step = -(-len(counts) // width)
    sums = [sum(counts[i:i + step]) for i in range(0, len(counts), step)]
    top = max(sums)
    return "".join(SPARK[0] if c == 0 else SPARK[max(1, round(c / top * (len(SPARK) - 1)))]
                   for c in sums)


def _row(s: WeightStats) -> list[str]:
    measured = s.count > 0
    return [s.name + (" !" if s.flags else ""), "×".join(map(str, s.shape)) or "scalar", s.dtype,
            fmt_int(s.params), fmt_int(s.nbytes), g(s.mean), g(s.std), g(s.min), g(s.max),
            g(s.abs_max), f"{100 * s.zero_fraction:.2f}%" if measured else "--",
            fmt_int(s.nan_count) if measured else "--", fmt_int(s.inf_count) if measured else "--",
            sparkline(s.hist_counts) if measured else "packed" if s.quantized else ""]


def _dtypes(stats: CheckpointStats) -> str:
    counts = Counter(t.dtype for t in stats.tensors)
    return ", ".join(f"{d} ×{n}" for d, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def flag_lines(stats: CheckpointStats) -> list[str]:
    """The flagged tensors first of all, or the all-clear."""
    report = stats.report
    flagged = report.flagged()
    if not flagged:
        return [f"No tensor flagged: no NaN or Inf, no dead (all-zero) weight, no outlier beyond "
                f"{report.outlier_k:g} σ."]
    return [f"{len(flagged)} flagged tensor{'s' if len(flagged) != 1 else ''}:"] + \
        [f"  ! {s.name}: {'; '.join(s.flags)}" for s in flagged]


def header_lines(stats: CheckpointStats) -> list[str]:
    files = len(stats.files)
    size = sum(f.stat().st_size for f in stats.files)
    lines = [f"Checkpoint: {stats.label} ({stats.format}, {files} file{'s' if files != 1 else ''}, "
             f"{fmt_bytes(size)})",
             f"{len(stats.tensors)} tensors · {fmt_int(sum(t.params for t in stats.tensors))} "
             f"parameters · {fmt_int(stats.total_bytes)} bytes · {_dtypes(stats)}"]
    lines += [f"sha256 {name}: {digest}" for name, digest in stats.sha256.items()]
    return lines


def notes(stats: CheckpointStats) -> list[str]:
    out = [stats.report.sampling_note()]
    if stats.packed:
        out.append(f"{len(stats.packed)} packed quantized weight{'s' if len(stats.packed) != 1 else ''} "
                   f"(uint32 with .scales beside them, e.g. {stats.packed[0]}): without the model "
                   f"their bits and group size are unknown, so they are not dequantized and have no "
                   f"statistics; their Params count the packed uint32 elements. Build the report with "
                   f"the model (mlx-report build MODEL --weights ...) for dequantized statistics.")
    out.append("Histogram: the finite values on bins shared by each parameter across layers "
               "(list indices ignored); ! marks a flagged tensor.")
    return out


def render_stats_text(stats: CheckpointStats) -> str:
    """Header, flags and notes, then one table row per tensor (deterministic, uncoloured)."""
    buf = io.StringIO()
    # markup=False and escaped control characters: tensor names are the checkpoint's strings
    console = Console(file=buf, width=10_000, color_system=None, highlight=False, emoji=False,
                      markup=False)
    for line in header_lines(stats) + [""] + flag_lines(stats) + [""] + notes(stats) + [""]:
        console.print(terminal_safe(line), soft_wrap=True)
    table = RichTable(box=box.SIMPLE_HEAD, show_edge=False)
    for h in HEADERS:
        table.add_column(h, no_wrap=True, justify="right" if h in RIGHT else "left")
    for s in stats.report.tensors:
        table.add_row(*(terminal_safe(c) for c in _row(s)))
    console.print(table)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def render_stats_markdown(stats: CheckpointStats) -> str:
    """Header lines as a list, flags, then a GitHub-flavoured table."""
    out = [f"- {line}" for line in header_lines(stats)] + [""]
    out += [flag_lines(stats)[0]] + [f"- {line.strip()[2:]}" for line in flag_lines(stats)[1:]] + [""]
    out += [f"> {n}" for n in notes(stats)] + [""]
    out += ["| " + " | ".join(HEADERS) + " |",
            "| " + " | ".join("--:" if h in RIGHT else ":--" for h in HEADERS) + " |"]
    for s in stats.report.tensors:
        cells = _row(s)
        cells[0] = f"`{cells[0]}`"
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out) + "\n"


CSV_FIELDS = ("name", "shape", "dtype", "params", "bytes", "kind", "mean", "std", "min", "max",
              "abs_max", "zero_fraction", "nan_count", "inf_count", "count", "sampled", "flags",
              "hist_lo", "hist_width", "hist_counts")


def render_stats_csv(stats: CheckpointStats) -> str:
    """One line per tensor with unformatted numbers (empty when not measured)."""
    def num(x: float | None) -> str:
        return "" if x is None else repr(x)

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    groups = stats.report.groups
    for s in stats.report.tensors:
        bins = groups.get(s.group) if s.hist_counts else None
        writer.writerow([
            s.name, "x".join(map(str, s.shape)), s.dtype, s.params, s.nbytes, s.kind,
            num(s.mean), num(s.std), num(s.min), num(s.max), num(s.abs_max),
            repr(s.zero_fraction) if s.count else "", s.nan_count if s.count else "",
            s.inf_count if s.count else "", s.count, int(s.sampled), "; ".join(s.flags),
            num(bins.lo) if bins else "", num(bins.width) if bins else "",
            " ".join(map(str, s.hist_counts)),
        ])
    return buf.getvalue()
