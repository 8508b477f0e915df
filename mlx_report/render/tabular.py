"""The summary table as Markdown (for READMEs) and CSV (raw numbers, for spreadsheets)."""

from __future__ import annotations

import csv
import io
from typing import Sequence

from ..analysis.table import Table
from ..graph import ModelGraph
from ..escape import terminal_safe
from .text import COLUMNS, row_label, totals_lines


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`|<>&"})


def _md_escape(text: str) -> str:
    """A table cell: control characters as `\\x1b`, Markdown and HTML syntax backslash-escaped."""
    return terminal_safe(text).translate(_MD_SPECIAL)


def _md_code(text: str) -> str:
    """A code-span cell: only `|` is special inside it; a backtick widens the fence."""
    body = terminal_safe(text).replace("|", "\\|")
    fence = "``" if "`" in body else "`"
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def table_to_markdown(graph: ModelGraph, table: Table, columns: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table, tree glyphs kept, then the totals."""
    headers = ["Layer (type)"] + [COLUMNS[c][0] for c in columns]
    aligns = [":--"] + ["--:" if COLUMNS[c][2] else ":--" for c in columns]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(aligns) + " |"]
    for row in table.rows:
        label = row_label(row)
        label = row.prefix.replace(" ", "\u00a0") + label[len(row.prefix):]  # keep tree indent
        cells = [_md_code(label)] + [_md_escape(COLUMNS[c][1](row)) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {_md_escape(line)}" for line in totals_lines(graph) if line]
    lines += [f"- {_md_escape(note)}" for note in table.notes]
    return "\n".join(lines) + "\n"


CSV_FIELDS = ("path", "type", "depth", "count", "call_index_reused", "input_shapes",
              "output_shapes", "params", "params_percent", "macs", "trainable", "config")


def table_to_csv(table: Table) -> str:
    """One line per table row with unformatted numbers."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for r in table.rows:
        writer.writerow([  # raw values, but no control characters to drive a terminal
            terminal_safe(r.path), terminal_safe(r.type), r.depth, r.count, int(r.reused),
            " ".join("x".join(map(str, s)) for s in r.input_shapes),
            " ".join("x".join(map(str, s)) for s in r.output_shapes),
            "" if r.params is None else r.params,
            "" if r.params_percent is None else f"{r.params_percent:.4f}",
            "" if r.macs is None else r.macs, r.trainable, terminal_safe(r.config or ""),
        ])
    return buf.getvalue()


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                  "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def latex_escape(text: str) -> str:
    """`text` for LaTeX: special characters as commands, control characters as `\\x1b`."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in terminal_safe(text))


def _latex_number(n: int | None, siunitx: bool) -> str:
    if n is None:
        return "--"
    return rf"\num{{{n}}}" if siunitx else f"{n:,}".replace(",", "{,}")


def table_to_latex(graph: ModelGraph, table: Table, caption: str | None = None,
                   siunitx: bool = False, label: str | None = None) -> str:
    """A booktabs table (layer, output shape, params, MACs) for papers; folded rows kept.

    Needs \\usepackage{booktabs} (and siunitx with `siunitx=True`).
    """
    lines = [r"\begin{table}[t]", r"\centering", r"\small"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{latex_escape(label)}}}")
    lines += [r"\begin{tabular}{llrr}", r"\toprule",
              r"Layer (type) & Output shape & Params & MACs \\", r"\midrule"]
    for row in table.rows:
        indent = r"\quad " * row.depth
        name = latex_escape(row.name if row.depth else graph.model_name)
        kind = latex_escape(row.type)
        label_text = f"{indent}{name} ({kind})" if row.depth else name
        if row.count > 1:
            label_text += rf" $\times{row.count}$"
        shape = latex_escape(" ".join("(" + ", ".join(map(str, s)) + ")" for s in row.output_shapes[:2]))
        params = "(reused)" if row.reused else _latex_number(row.params, siunitx)
        lines.append(f"{label_text} & {shape} & {params} & {_latex_number(row.macs, siunitx)} \\\\")
    t = graph.totals
    lines += [r"\midrule",
              rf"Total & & {_latex_number(t.params, siunitx)} & {_latex_number(t.macs, siunitx)} \\",
              r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
