"""The terminal summary: a torchinfo-style hierarchical table and totals, via rich."""

from __future__ import annotations

from typing import Sequence

from ..analysis.table import Table, TableRow
from ..graph import ModelGraph
from ..escape import terminal_safe
from .format import fmt_bytes, fmt_int, fmt_percent, fmt_shapes, fmt_si

# Column id -> (header, cell function, right-aligned)
COLUMNS = {
    "input_shape": ("Input Shape", lambda r: fmt_shapes(r.input_shapes), False),
    "output_shape": ("Output Shape", lambda r: fmt_shapes(r.output_shapes), False),
    "params": ("Param #", lambda r: _params_cell(r), True),
    "params_percent": ("Param %", lambda r: "--" if r.reused else fmt_percent(r.params_percent), True),
    "macs": ("MACs", lambda r: fmt_int(r.macs), True),
    "trainable": ("Trainable", lambda r: r.trainable, False),
    "config": ("Config", lambda r: r.config or "--", False),
    "dtype": ("Dtype", lambda r: ",".join(r.dtypes) or "--", False),
}
def _params_cell(row: TableRow) -> str:
    """Counted params; arrays already counted at an earlier row are marked shared."""
    if row.reused:
        return "(reused)"
    if row.shared_params and not row.params:
        return "(shared)"
    if row.shared_params:
        return f"{fmt_int(row.params)} (+{fmt_int(row.shared_params)} shared)"
    return fmt_int(row.params)


DEFAULT_COLUMNS = ("input_shape", "output_shape", "params", "params_percent", "macs", "trainable")
# torchinfo's column names, accepted as aliases.
ALIASES = {
    "input_size": "input_shape", "output_size": "output_shape", "num_params": "params",
    "mult_adds": "macs", "kernel_size": "config",
}


def resolve_columns(columns: Sequence[str]) -> tuple[str, ...]:
    """Canonical column ids; unknown names raise ValueError listing the valid ones."""
    out = []
    for name in columns:
        key = ALIASES.get(name, name)
        if key not in COLUMNS:
            raise ValueError(f"unknown column {name!r} (choose from {', '.join(COLUMNS)})")
        out.append(key)
    return tuple(out)


def row_label(row: TableRow) -> str:
    if row.depth == 0:  # the model itself
        label = row.type if row.name == row.type else f"{row.name} ({row.type})"
    else:
        label = f"{row.prefix}{row.name} ({row.type})"
    if row.count > 1:
        label += f" ×{row.count}"
    if row.error:
        label += "  ✗ FAILED"
    return label


def measured_lines(t) -> list[str]:
    """The --measure line: MLX's measured peak beside the estimate (none when not measured)."""
    if t.measured_peak_bytes is None:
        return []
    ratio = f"; estimate / measured = {t.peak_activation_bytes / t.measured_peak_bytes:.2f}" \
        if t.measured_peak_bytes else ""
    return [f"Peak activation memory, inputs included (measured, mx.get_peak_memory): "
            f"{fmt_bytes(t.measured_peak_bytes)}{ratio}"]


def totals_lines(graph: ModelGraph) -> list[str]:
    """The figures below the table."""
    t = graph.totals
    non_trainable = f"Non-trainable params: {fmt_int(t.non_trainable_params)}"
    if t.running_stat_params:
        non_trainable += (f" (of which BatchNorm running stats: {fmt_int(t.running_stat_params)}; "
                          f"total without them: {fmt_int(t.params - t.running_stat_params)})")
    estimated = t.param_bytes + t.peak_activation_bytes  # the peak includes the inputs
    def both(n: int) -> str:
        return fmt_int(n) if n < 1000 else f"{fmt_si(n)} ({fmt_int(n)})"

    lines = []
    failed = graph.meta.get("failed")
    if failed:
        where = graph.node(failed["node"])["path"] if failed.get("node") else "(outside any module)"
        lines += [f"PARTIAL TRACE: the forward pass failed in {where or '(model)'}; "
                  "MACs and memory cover only the calls that returned.", ""]
    lines += [
        f"Total params: {both(t.params)}",
        f"Trainable params: {fmt_int(t.trainable_params)}",
        non_trainable,
        f"Total MACs: {both(t.macs)}",
        f"Total FLOPs: {fmt_si(t.flops)} (2 × MACs; elementwise FLOPs counted apart: "
        f"{fmt_si(t.elementwise_flops)})",
    ]
    quant_bytes = sum(x.nbytes for x in graph.tensors if x.kind == "quant_aux")
    if quant_bytes:
        lines.append(f"Quantized weights: params count the logical (unpacked) elements; params size "
                     f"is real storage, of which quantization scales/biases: {fmt_bytes(quant_bytes)}")
    if graph.meta.get("value_reads"):
        reads = "; ".join(graph.meta["value_reads"][:3])
        lines.append(f"Data-dependent model: it read array values during the trace ({reads}); "
                     "those arrays were evaluated.")
    if graph.uncounted_ops:
        ops = ", ".join(f"{k} ×{v}" for k, v in graph.uncounted_ops.items())
        lines.append(f"Uncounted ops (no cost rule): {ops}")
    lines += [
        "",
        f"Input size: {fmt_bytes(t.input_bytes)}",
        f"Activations (sum of leaf outputs): {fmt_bytes(t.activation_bytes)}",
        f"Peak activation memory, inputs included (estimate, MLX CPU): {fmt_bytes(t.peak_activation_bytes)}",
        *measured_lines(t),
        f"Params size: {fmt_bytes(t.param_bytes)}",
        f"Estimated total (params + peak activations): {fmt_bytes(estimated)}",
        "Sizes in SI units: 1 MB = 10^6 bytes.",
    ]
    return lines


def format_columns(headers: Sequence[str], rows: Sequence[Sequence[str]],
                   right: Sequence[bool]) -> list[str]:
    """A plain fixed-width table: header, a rule, rows; columns three spaces apart.

    Written by hand rather than with rich: the summary is plain text (no colour, no
    wrapping), and rich's layout took 25 ms of a 40 ms summary of a 51-call model.
    """
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "   ".join(c.rjust(w) if r else c.ljust(w)
                           for c, w, r in zip(cells, widths, right)).rstrip()

    total = sum(widths) + 3 * (len(widths) - 1)
    return [line(headers), "─" * total, *(line(r) for r in rows)]


def render_text(graph: ModelGraph, table: Table, columns: Sequence[str] = DEFAULT_COLUMNS) -> str:
    """The full summary as plain text (no colour), deterministic for golden tests."""
    columns = resolve_columns(columns)
    headers = ["Layer (type)"] + [COLUMNS[k][0] for k in columns]
    right = [False] + [COLUMNS[k][2] for k in columns]
    # Names are the model's own strings: escape control characters (ANSI sequences, newlines)
    # before measuring the columns, so a name can neither drive the terminal nor break a row.
    rows = [[terminal_safe(cell) for cell in [row_label(row)] + [COLUMNS[k][1](row) for k in columns]]
            for row in table.rows]
    table_lines = format_columns(headers, rows, right)
    rule = "=" * max(len(line) for line in table_lines)
    parts = [rule, *table_lines, rule]
    parts += [terminal_safe(line) for line in totals_lines(graph)]
    if table.notes:
        parts.append(rule)
        parts += [terminal_safe(note) for note in table.notes]
    parts.append(rule)
    return "\n".join(parts) + "\n"
