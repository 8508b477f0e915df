"""Per-release archives (`build --archive DIR`): every output of one trace, plus a manifest.

All files are made in memory from one graph and one set of weight statistics, then
written into a staging folder that replaces the directory in one rename. Nothing depends on the clock unless a
date is given, so the same inputs give the same bytes. Never calls MLX.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

from .analysis.weights import WeightReport
from .errors import OutputError
from .export import to_json
from .graph import ModelGraph
from .paths import check_encodable, check_name_length

ARCHIVE_VERSION = 1
REPORT_FILES = ("report.pdf", "report.html", "architecture.svg", "model.json", "weights-stats.json")
MANIFEST = "manifest.json"
SVG_DEPTH = 2  # as `mlx-report graph`


def check_archive_dir(directory: Path, protect: Sequence[Path] = ()) -> Path:
    """Refuse early a path that is a file, a directory of other files, holds an input, or
    cannot be written.

    A missing directory (and its parents) is created later; an earlier archive (it has a
    manifest.json and only archive files) is replaced as a whole.
    """
    check_encodable(directory, "archive directory", OutputError)
    check_name_length(directory, "archive directory", OutputError)
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"archive path {directory} is a file: give a directory")
    if directory.is_dir():
        present = sorted(p.name for p in directory.iterdir())
        if present and MANIFEST not in present:
            raise OutputError(f"archive directory {directory} already holds other files and no "
                              f"{MANIFEST}: give a new directory, or an earlier archive to replace")
        foreign = [n for n in present if n not in (*REPORT_FILES, MANIFEST)]
        if foreign:
            raise OutputError(f"archive directory {directory} holds files that are not part of an "
                              f"archive ({', '.join(foreign[:3])}): move them out, or give a new directory")
    root = directory.resolve()
    for p in protect:
        if p is not None and Path(p).resolve().is_relative_to(root):
            raise OutputError(f"refusing to replace the archive {directory}: it holds the input "
                              f"{Path(p).name}; write the new archive elsewhere")
    probe = directory if directory.exists() else next(
        (p for p in directory.parents if p.exists()), Path("."))
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise OutputError(f"cannot write the archive into {directory}: permission denied")
    if directory.exists() and not os.access(directory.parent, os.W_OK):
        raise OutputError(f"cannot replace the archive {directory}: its folder "
                          f"{directory.parent} is not writable")
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
    """Write the archive into a staging folder beside `directory`, then swap it in.

    An earlier archive is renamed away, the new one renamed in, the old one removed: a
    failure at any point (a full disk) leaves the earlier archive, or none, never a mix.
    """
    check_archive_dir(directory, protect)
    created = _make_parents(directory.parent)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name[:80]}.", suffix=".staging",
                                        dir=directory.parent))
    except OSError as e:
        _remove_dirs(created)
        raise OutputError(f"cannot create the archive directory {directory}: {e.strerror or e}") from None
    try:
        for name, payload in sorted(files.items()):
            _write_file(staging / name, payload)
        _write_file(staging / MANIFEST, manifest_bytes)
        os.chmod(staging, 0o755)
        _swap_in(staging, directory)
    except BaseException as e:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_dirs(created)
        if isinstance(e, OSError):
            raise OutputError(f"cannot write the archive {directory}: {e.strerror or e} "
                              f"(nothing was changed)") from None
        raise
    return [directory / name for name in (*sorted(files), MANIFEST)]


def _write_file(path: Path, payload: bytes) -> None:
    """One file of the staging folder."""
    with open(path, "wb") as f:
        f.write(payload)
    os.chmod(path, 0o644)


def _swap_in(staging: Path, directory: Path) -> None:
    """Rename `staging` to `directory`, moving an earlier archive away first and removing it
    after; if the second rename fails, the earlier archive is put back."""
    if not directory.exists():
        os.rename(staging, directory)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{directory.name[:80]}.", suffix=".old", dir=directory.parent))
    os.rmdir(old)  # only its unique name: rename needs the place free
    os.rename(directory, old)
    try:
        os.rename(staging, directory)
    except BaseException:
        os.rename(old, directory)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _make_parents(folder: Path) -> list[Path]:
    """Create `folder` and missing parents; the folders made, deepest first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the archive directory {folder}: {e.strerror or e}") from None
    return missing


def _remove_dirs(folders: list[Path]) -> None:
    """Remove folders made for an archive that was not written (deepest first)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break
