"""The HTML and PDF report: Jinja2 templates filled from the graph and analysis; PDF by WeasyPrint.

The HTML is one self-contained file (CSS, JS and SVG inline, no URL fetched). The PDF
is the same HTML laid out by WeasyPrint with print CSS; its bytes depend only on the
inputs (no timestamp unless `date` is given). Never calls MLX.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import jinja2

from ..analysis.weights import WeightReport
from ..errors import OutputError, RenderError
from ..escape import terminal_safe
from ..graph import ModelGraph
from ..output import write_atomic
from . import report_data as data
from .report_weights import weights_section
from .format import fmt_bytes, fmt_int, fmt_si

SECTIONS = ("title", "figures", "diagram", "table", "costs", "weights", "definitions", "appendix")
TITLES = {
    "title": "Title page", "figures": "Key figures", "diagram": "Architecture diagram",
    "table": "Summary table", "costs": "Where the cost is", "weights": "Weights",
    "definitions": "Definitions and uncounted ops", "appendix": "Appendix: every module call",
}
PARTIALS = {
    "title": "_title.html", "figures": "_key_figures.html", "diagram": "_diagram.html",
    "table": "_summary_table.html", "costs": "_costs.html", "weights": "_weights.html",
    "definitions": "_definitions.html", "appendix": "_appendix.html",
}
FORMATS = (".html", ".pdf")
NO_STATS_NOTE = ("Weight statistics were not computed (--no-weights): nothing was evaluated. The "
                 "table lists every tensor from the trace.")
PDF_VARIANTS = ("pdf/a-3b",)
TABLE_DEPTH = 3
# Widest cell (characters) of each column when a long table is set as text in the PDF.
APPENDIX_CAPS = [4, 52, 20, 30, 30, 13, 14, 14, 13, 26]


def template_dir() -> Path:
    """templates/ inside the package when installed that way, else at the repository root."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "base.html").is_file():
            return candidate
    raise RenderError(f"report templates not found (looked in {here / 'templates'} and "
                      f"{here.parent / 'templates'})")


def _finalize(value):
    """Model names in the page: control characters and lone surrogates as `\\x1b` text
    (autoescape then escapes markup); `| safe` SVG is escaped where it is drawn."""
    if isinstance(value, str) and not hasattr(value, "__html__"):  # not Markup
        return terminal_safe(value)
    return value


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir())),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=False, lstrip_blocks=False, keep_trailing_newline=True,
                             finalize=_finalize)
    env.globals.update(fmt_int=fmt_int, fmt_si=fmt_si, fmt_bytes=fmt_bytes)
    return env


def check_date(date: str | None) -> str | None:
    """`date` as YYYY-MM-DD, or ValueError."""
    if date is None:
        return None
    try:
        return _dt.date.fromisoformat(date).isoformat()
    except ValueError:
        raise ValueError(f"--date {date!r} is not a date in the form YYYY-MM-DD") from None


def check_sections(sections: Sequence[str]) -> tuple[str, ...]:
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown report section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return tuple(s for s in SECTIONS if s in sections)  # always in reading order


def report_html(graph: ModelGraph, *, weights: WeightReport | None = None,
                sections: Sequence[str] = SECTIONS, date: str | None = None,
                title: str | None = None, depth: int | None = None, target: str = "html",
                rebuilt_from: str | None = None, diagram: Any = None) -> str:
    """The report as one HTML document; `target` "pdf" drops the interactive parts.

    `diagram` is a DiagramSection already drawn (to draw once for several documents).
    """
    from .. import __version__
    from .report_diagram import diagram_section

    sections = check_sections(sections)
    date = check_date(date)
    title = title or f"{graph.model_name} model report"
    table_depth = TABLE_DEPTH if depth is None else depth
    ctx: dict[str, Any] = {
        "graph": graph, "title": title, "date": date, "weight_report": weights,
        "description": f"Report of {graph.model_name} ({graph.model_type}) made by mlx-report",
        "kicker": "Model report" + (" · rebuilt from an archive" if rebuilt_from else ""),
        "no_stats_note": (f"This report was rebuilt from {rebuilt_from} without weight statistics "
                          f"(give --weights-stats weights-stats.json, written by build --archive, "
                          f"to include them). The table lists every tensor of the archived trace."
                          if rebuilt_from else NO_STATS_NOTE),
    }
    tree, notes = data.tree_rows(graph, depth=table_depth)
    ctx.update(table_depth=table_depth, tree=tree, tree_headers=data.TREE_HEADERS,
               tree_widths=data.TREE_WIDTHS, table_notes=notes)
    if "title" in sections:
        ctx["facts"] = data.title_facts(graph, weights, __version__, date, rebuilt_from)
    if "figures" in sections:
        ctx["figures"] = data.key_figures(graph)
    if "diagram" in sections:
        ctx["diagram"] = diagram if diagram is not None else diagram_section(graph, depth)
    if "costs" in sections:
        ctx["costs"] = data.costs(graph)
    if "weights" in sections:
        ctx["weights"] = w = weights_section(graph, weights)
        if target == "pdf":
            width = data.TEXT_TABLE_WIDTH_PT if w.has_stats else data.PORTRAIT_TABLE_WIDTH_PT
            ctx["weights_text"] = data.text_table(w.headers, w.rows, w.caps, width)
    if "definitions" in sections:
        ctx["defs"] = data.definitions(graph, weights, notes)
    if "appendix" in sections:
        rows = data.appendix_rows(graph)
        ctx.update(appendix=rows, appendix_headers=data.APPENDIX_HEADERS,
                   appendix_widths=data.APPENDIX_WIDTHS)
        if target == "pdf":
            ctx["appendix_text"] = data.text_table(data.APPENDIX_HEADERS, rows, APPENDIX_CAPS)
    ctx.update(running=f"{graph.model_name} · mlx-report", keywords=f"MLX, model report, {graph.model_type}")
    return render_document(ctx, sections, PARTIALS, TITLES, target)


def render_document(ctx: dict[str, Any], sections: Sequence[str], partials: dict[str, str],
                    titles: dict[str, str], target: str) -> str:
    """base.html around the `sections` partials; `ctx` needs title, date, running, keywords
    and description plus what the partials read."""
    from .. import __version__

    folder = template_dir()
    ctx = {**ctx, "version": __version__, "target": target, "sections": list(sections),
           "partials": partials, "titles": titles,
           "toc": [{"id": s, "title": titles[s]} for s in sections if s != "title"],
           "css": (folder / "report.css").read_text(encoding="utf-8"),
           "js": (folder / "report.js").read_text(encoding="utf-8") if target == "html" else ""}
    return _env().get_template("base.html").render(**ctx)


def write_document(html: str, out_path: str | os.PathLike, *, date: str | None = None,
                   pdf_variant: str | None = None, attachment: str | None = None,
                   protect: Sequence[Path] = ()) -> Path:
    """The document as .html, or laid out as .pdf, written atomically."""
    if output_format(out_path) == "html":
        return write_atomic(out_path, html, protect=protect)
    pdf = html_to_pdf(html, date=check_date(date), pdf_variant=pdf_variant, attachment=attachment)
    return write_atomic(out_path, pdf, protect=protect)


def report_json(graph: ModelGraph, weights: WeightReport | None) -> str:
    from ..export import graph_to_dict

    payload = graph_to_dict(graph)
    if weights is not None:
        payload["weight_statistics"] = weights.to_dict()
    return json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=True) + "\n"


def html_to_pdf(html: str, *, date: str | None = None, pdf_variant: str | None = None,
                attachment: str | None = None) -> bytes:
    """Lay out the report HTML with WeasyPrint; identical input gives identical bytes."""
    try:
        import weasyprint
    except Exception as e:  # missing system libraries (pango) surface here
        raise RenderError(f"PDF output needs WeasyPrint and its system libraries: {e}") from e
    # The file identifier is normally random; a hash of the content keeps it unique and stable.
    identifier = hashlib.sha256(html.encode()).hexdigest()[:32].encode()
    options: dict[str, Any] = {"pdf_identifier": identifier, "uncompressed_pdf": False}
    if pdf_variant:
        if pdf_variant not in PDF_VARIANTS:
            raise RenderError(f"unknown PDF variant {pdf_variant!r}; choose {', '.join(PDF_VARIANTS)}")
        options["pdf_variant"] = pdf_variant
    if attachment is not None:
        when = _dt.datetime.fromisoformat(date) if date else _dt.datetime(1970, 1, 1)
        options["attachments"] = [weasyprint.Attachment(
            string=attachment, name="report.json", description="mlx-report JSON of this model",
            created=when, modified=when, relationship="Data")]
    document = weasyprint.HTML(string=html, base_url=None, url_fetcher=_no_fetch).render()
    if pdf_variant and not date:  # PDF/A requires a modification date: a fixed one, not "now"
        document.metadata.created = document.metadata.modified = "1970-01-01T00:00:00Z"
    return document.write_pdf(**options)


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> dict:
    """The report references nothing outside itself; refuse any fetch rather than go online."""
    raise RenderError(f"the report tried to load {url!r}")


def output_format(path: str | os.PathLike) -> str:
    """"html" or "pdf" from the file extension; OutputError otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise OutputError(f"cannot tell the report format from {Path(path).name!r}: "
                          f"end the output name in .pdf or .html")
    return suffix[1:]


def build_report(graph: ModelGraph, out_path: str | os.PathLike, *,
                 weights: WeightReport | None = None, sections: Sequence[str] = SECTIONS,
                 date: str | None = None, title: str | None = None, depth: int | None = None,
                 pdf_variant: str | None = None, protect: Sequence[Path] = (),
                 rebuilt_from: str | None = None) -> Path:
    """Write the report to `out_path` (.html or .pdf) atomically and return the path.

    `rebuilt_from` names the archived JSON the graph was read from (said on the title page).
    """
    fmt = output_format(out_path)
    html = report_html(graph, weights=weights, sections=sections, date=date, title=title,
                       depth=depth, target=fmt, rebuilt_from=rebuilt_from)
    attachment = report_json(graph, weights) if fmt == "pdf" and pdf_variant else None
    return write_document(html, out_path, date=date, pdf_variant=pdf_variant,
                          attachment=attachment, protect=protect)
