"""The stats-only report of a checkpoint (`mlx-report stats -o stats.html|.pdf`); no MLX.

The model report's base template and weights section, with a title page describing the
checkpoint's files instead of a model, and the definitions that apply without one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from . import report_data as data
from .format import fmt_bytes, fmt_int
from .report import check_date, render_document, write_document
from .report_weights import tensor_section
from .stats_text import notes as stats_notes

if TYPE_CHECKING:
    from ..analysis.checkpoint_stats import CheckpointStats

SECTIONS = ("title", "weights", "definitions")
PARTIALS = {"title": "_stats_title.html", "weights": "_weights.html", "definitions": "_definitions.html"}
TITLES = {"title": "Title page", "weights": "Weights", "definitions": "Definitions"}


def versions_text(version: str) -> str:
    """mlx-report, MLX and Python versions (MLX's from its package metadata: no import)."""
    import platform
    from importlib import metadata

    try:
        mlx_version = metadata.version("mlx")
    except metadata.PackageNotFoundError:
        mlx_version = "?"
    return f"mlx-report {version}, MLX {mlx_version}, Python {platform.python_version()}"


def _facts(stats: CheckpointStats, version: str, date: str | None) -> list[data.Fact]:
    from collections import Counter

    facts = [data.Fact("Checkpoint", stats.label), data.Fact("Format", stats.format)]
    for f in stats.files:
        facts.append(data.Fact(f"File {f.name}", f"{fmt_int(f.stat().st_size)} bytes"))
        if f.name in stats.sha256:
            facts.append(data.Fact(f"sha256 of {f.name}", stats.sha256[f.name], mono=True))
    dtypes = Counter(t.dtype for t in stats.tensors)
    facts.append(data.Fact("Dtypes", ", ".join(f"{d} ×{n}" for d, n in sorted(dtypes.items()))))
    flagged = stats.report.flagged()
    facts.append(data.Fact("Flagged tensors", f"{len(flagged)}" + (" (see Weights)"
                                                                   if flagged else "")))
    if stats.packed:
        facts.append(data.Fact("Packed (not measured)", f"{len(stats.packed)} quantized weights"))
    facts.append(data.Fact("Statistics", "sampled (see the note)" if stats.report.sampled
                           else "exact: every element read"))
    facts.append(data.Fact("Model", "none: the checkpoint alone (no layer types, no trainable flags)"))
    facts.append(data.Fact("Versions", versions_text(version)))
    if date:
        facts.append(data.Fact("Date", date))
    return facts


def stats_html(stats: CheckpointStats, *, date: str | None = None, title: str | None = None,
               target: str = "html") -> str:
    """The stats report as one HTML document."""
    from .. import __version__

    date = check_date(date)
    title = title or f"{stats.label} weight statistics"
    totals = (f"{len(stats.tensors)} tensors · {fmt_int(sum(t.params for t in stats.tensors))} "
              f"parameters · {fmt_int(stats.total_bytes)} bytes")
    w = tensor_section(stats.tensors, stats.report, totals=totals, trainable=False,
                       notes=stats_notes(stats)[1:-1],
                       grouping="parameter name across layers (list indices ignored)")
    items = data.weight_definitions(stats.report, "one parameter name across layers, list indices "
                                                  "ignored (e.g. layers.*.attn.q.weight)")
    items.append(("Units", "bytes as stored in the file; SI prefixes (1 MB = 10^6 bytes)."))
    ctx: dict[str, Any] = {
        "title": title, "date": date, "weight_report": stats.report, "weights": w,
        "description": f"Weight statistics of {stats.label} made by mlx-report",
        "kicker": "Checkpoint statistics", "running": f"{stats.label} · mlx-report",
        "keywords": "MLX, checkpoint, weight statistics", "no_stats_note": "",
        "subtitle": f"{len(stats.tensors)} tensors · {fmt_bytes(stats.total_bytes)} · "
                    f"{len(stats.report.flagged())} flagged",
        "facts": _facts(stats, __version__, date),
        "defs": {"items": items, "uncounted": None, "notes": [], "value_reads": []},
    }
    if target == "pdf":
        ctx["weights_text"] = data.text_table(w.headers, w.rows, w.caps)
    return render_document(ctx, SECTIONS, PARTIALS, TITLES, target)


def build_stats_report(stats: CheckpointStats, out_path: str | os.PathLike, *,
                       date: str | None = None, title: str | None = None,
                       protect: Sequence[Path] = ()) -> Path:
    """Write the stats report to `out_path` (.html or .pdf) atomically."""
    from .report import output_format

    html = stats_html(stats, date=date, title=title, target=output_format(out_path))
    return write_document(html, out_path, date=date, protect=protect)
