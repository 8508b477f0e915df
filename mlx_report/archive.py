"""Per-release archives (`build --archive DIR`): every output of one trace, plus a manifest.

All files are made in memory from one graph and one set of weight statistics, then
written atomically one by one, manifest last. Nothing depends on the clock unless a
date is given, so the same inputs give the same bytes. Never calls MLX.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any, Sequence

from .analysis.weights import WeightReport
from .errors import OutputError
from .export import to_json
from .graph import ModelGraph
from .output import write_atomic

ARCHIVE_VERSION = 1
REPORT_FILES = ("report.pdf", "report.html", "architecture.svg", "model.json", "weights-stats.json")
MANIFEST = "manifest.json"
SVG_DEPTH = 2  # as `mlx-report graph`


def check_archive_dir(directory: Path) -> Path:
    """Refuse early a path that is a file, a directory of other files, or cannot be written.

    A missing directory (and its parents) is created later; an earlier archive (it has a
    manifest.json) is replaced file by file.
    """
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"archive path {directory} is a file: give a directory")
    if directory.is_dir() and not (directory / MANIFEST).exists() and any(directory.iterdir()):
        raise OutputError(f"archive directory {directory} already holds other files and no "
                          f"{MANIFEST}: give a new directory, or an earlier archive to replace")
    probe = directory if directory.exists() else next(
        (p for p in directory.parents if p.exists()), Path("."))
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise OutputError(f"cannot write the archive into {directory}: permission denied")
    return directory


def archive_files(graph: ModelGraph, weights: WeightReport | None, *,
                  sections: Sequence[str], date: str | None = None, title: str | None = None,
                  depth: int | None = None, pdf_variant: str | None = None,
                  rebuilt_from: str | None = None) -> dict[str, bytes]:
    """The archive's files by name (the manifest aside); the diagram is drawn once."""
    from .render.graphviz import render_svg
    from .render.report import check_date, html_to_pdf, report_html, report_json
    from .render.report_diagram import diagram_section

    diagram = diagram_section(graph, depth) if "diagram" in sections else None
    options = dict(weights=weights, sections=sections, date=date, title=title, depth=depth,
                   rebuilt_from=rebuilt_from, diagram=diagram)
    html = report_html(graph, target="html", **options)
    pdf_html = report_html(graph, target="pdf", **options)
    attachment = report_json(graph, weights) if pdf_variant else None
    files = {
        "report.pdf": html_to_pdf(pdf_html, date=check_date(date), pdf_variant=pdf_variant, attachment=attachment),
        "report.html": html.encode(),
        "architecture.svg": render_svg(graph, depth=SVG_DEPTH if depth is None else depth).encode(),
        "model.json": to_json(graph).encode(),
    }
    if weights is not None:
        files["weights-stats.json"] = weights.to_json().encode()
    return files


def manifest(files: dict[str, bytes], graph: ModelGraph, command: dict[str, Any],
             date: str | None = None) -> bytes:
    """manifest.json: each file's sha256 and size, versions, the command's inputs; no clock."""
    from . import __version__

    meta = graph.meta
    data: dict[str, Any] = {
        "mlx_report_archive": ARCHIVE_VERSION,
        "model": {"name": graph.model_name, "type": graph.model_type,
                  "params": graph.totals.params, "macs": graph.totals.macs},
        "versions": {"mlx-report": __version__, "mlx": meta.get("mlx_version"),
                     "python": meta.get("python_version") or platform.python_version()},
        "command": command,
        "inputs": {k: meta[k] for k in ("source", "source_sha256", "factory", "inputs", "dtype",
                                        "weights", "weights_sha256") if meta.get(k) is not None},
    }
    if date:
        data["date"] = date
    if "weights-stats.json" not in files:
        data["weights_stats"] = "not computed (--no-weights or an archive without statistics)"
    data["files"] = [{"name": name, "bytes": len(payload),
                      "sha256": hashlib.sha256(payload).hexdigest()}
                     for name, payload in sorted(files.items())]
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def write_archive(directory: Path, files: dict[str, bytes], manifest_bytes: bytes,
                  protect: Sequence[Path] = ()) -> list[Path]:
    """Create `directory` if missing and write each file atomically, the manifest last."""
    check_archive_dir(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the archive directory {directory}: {e.strerror or e}") from None
    written = [write_atomic(directory / name, payload, protect=protect)
               for name, payload in sorted(files.items())]
    written.append(write_atomic(directory / MANIFEST, manifest_bytes, protect=protect))
    return written
