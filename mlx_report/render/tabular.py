"""The summary table as Markdown (for READMEs) and CSV (raw numbers, for spreadsheets)."""

from __future__ import annotations

import csv
import io
from typing import Sequence

from ..analysis.table import Table
from ..graph import ModelGraph
from .text import COLUMNS, row_label, totals_lines


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def table_to_markdown(graph: ModelGraph, table: Table, columns: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table, tree glyphs kept, then the totals."""
    headers = ["Layer (type)"] + [COLUMNS[c][0] for c in columns]
    aligns = [":--"] + ["--:" if COLUMNS[c][2] else ":--" for c in columns]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(aligns) + " |"]
    for row in table.rows:
        label = row_label(row).replace(" ", "\u00a0", len(row.prefix))  # keep tree indent
        cells = [f"`{_md_escape(label)}`"] + [_md_escape(COLUMNS[c][1](row)) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {line}" for line in totals_lines(graph) if line]
    lines += [f"- {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


CSV_FIELDS = ("path", "type", "depth", "count", "call_index_reused", "input_shapes",
              "output_shapes", "params", "params_percent", "macs", "trainable", "config")


def table_to_csv(table: Table) -> str:
    """One line per table row with unformatted numbers."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for r in table.rows:
        writer.writerow([
            r.path, r.type, r.depth, r.count, int(r.reused),
            " ".join("x".join(map(str, s)) for s in r.input_shapes),
            " ".join("x".join(map(str, s)) for s in r.output_shapes),
            "" if r.params is None else r.params,
            "" if r.params_percent is None else f"{r.params_percent:.4f}",
            "" if r.macs is None else r.macs, r.trainable, r.config,
        ])
    return buf.getvalue()
