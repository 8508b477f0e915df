"""The `mlx-report` command line: parse, call the pipeline, print. Nothing else."""

from __future__ import annotations

import contextlib
import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import Callable, Optional

import typer

from .cli_app import app, command, quiet_broken_pipe, report_internal_error
from .errors import (FOREIGN_EXIT_EXIT, INTERNAL_ERROR_EXIT, InputSpecError, MlxReportError,
                     OutputError)
from .escape import one_line_safe

InputOpt = typer.Option(..., "--input", "-i", metavar="<spec>", help="Example input: 1,3,224,224 | 1,128:int32 | name=1,128:int32 (repeat per input).")
ArgOpt = typer.Option(None, "--arg", "-a", metavar="<key=value>", help="Factory/class argument key=value (Python literal), repeatable.")
DtypeOpt = typer.Option(None, "--dtype", metavar="<dtype>", help="Cast the model's floating parameters: float32 | float16 | bfloat16 | float64 (float64 on the CPU only).")
DebugOpt = typer.Option(False, "--debug", help="Show full tracebacks.")
MeasureOpt = typer.Option(False, "--measure", help="Also evaluate the forward pass once (random weights unless --weights; up to 20 GMAC) and show MLX's measured peak memory beside the estimate.")
WeightsOpt = typer.Option(None, "--weights", "-w", help="Checkpoint: .safetensors, a sharded set (index JSON or directory) or .npz.")
StrictOpt = typer.Option(True, "--strict/--no-strict", help="Whether a checkpoint that does not fit the model is fatal.")
ModelArg = typer.Argument(..., metavar="MODEL", help="Model file, optionally with :NAME (model.py:build_model).")


def _version_line() -> str:
    import platform

    import mlx.core as mx

    from . import __version__

    return f"mlx-report {__version__}, mlx {mx.__version__}, python {platform.python_version()}"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(_version_line())
        raise typer.Exit()


@app.callback()
def _app(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print the versions of mlx-report, MLX and Python, and exit."),
) -> None:
    pass  # the app's options only: its help is Typer(help=...)


def _output_format(fmt: Optional[Enum], output: Optional[Path], suffixes: dict[str, str]) -> str:
    """The format to write: --format (default text), or with -o the output's extension.

    An extension not in `suffixes` is an OutputError; a --format that contradicts the
    extension is an InputSpecError.
    """
    if output is None:
        return fmt.value if fmt is not None else "text"
    by_suffix = suffixes.get(output.suffix.lower())
    if by_suffix is None:
        raise OutputError(f"cannot tell the format from {output.name!r}: end the output name "
                          f"in {' '.join(suffixes)}")
    if fmt is not None and fmt.value != by_suffix:
        raise InputSpecError(f"--format {fmt.value} does not match {output.name}: "
                             f"drop --format or change the extension")
    return by_suffix


class SummaryFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"
    csv = "csv"


SUMMARY_SUFFIXES = {".txt": "text", ".json": "json", ".md": "markdown", ".csv": "csv"}


def _check_output_early(output: Optional[Path], model: str, weights: Optional[Path]) -> None:
    """Refuse a bad -o path before any work (missing directory, an input file)."""
    if output is not None:
        from .output import check_output
        from .pipeline import input_paths_of

        check_output(output, input_paths_of(model, weights))


def _run(debug: bool, action: Callable[[], int | None]) -> None:
    """Run a command; map every exception to one `error:` line and its exit code.

    While the command runs, `print` in the model's code goes to stderr, so that stdout
    holds only what the command writes with `_emit` (a JSON summary stays parseable).
    """
    from . import pipeline
    pipeline.on_warning = lambda w: typer.echo(f"warning: {w}", err=True)   # trace warnings
    _stdout.append(sys.stdout)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            code = action() or 0
    except MlxReportError as e:
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {one_line_safe(str(e))}", err=True)
        raise typer.Exit(e.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted: nothing was written", err=True)
        raise typer.Exit(130)
    except BrokenPipeError:  # `| head -1`: the reader left; stop quietly
        quiet_broken_pipe()
    except (typer.Exit, typer.Abort):
        raise
    except Exception as e:  # a bug: one line, the traceback only with --debug
        report_internal_error(e, debug)
        raise typer.Exit(INTERNAL_ERROR_EXIT)
    except BaseException as e:  # SystemExit, GeneratorExit... raised by the model's code
        if debug:
            traceback.print_exc()
        what = one_line_safe(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
        typer.echo(f"error: the model's code raised {what}: a model must not exit the process",
                   err=True)
        raise typer.Exit(FOREIGN_EXIT_EXIT)
    finally:
        _stdout.pop()
    raise typer.Exit(code)


# Table glyphs for a stdout that cannot encode them (LANG=C, PYTHONIOENCODING=ascii).
_ASCII_GLYPHS = {"─": "-", "├": "|", "└": "`", "│": "|", "×": "x", "→": "->", "·": "*",
                 "—": "--", "✗": "X", "…": "...", "Δ": "d", "σ": "sd", "▁": "_", "█": "#"}


def _for_stream(text: str, stream) -> str:
    """`text` with ASCII table glyphs when `stream` cannot encode the Unicode ones; other
    unencodable characters are written as escapes by the stream (`backslashreplace`)."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        "".join(_ASCII_GLYPHS).encode(encoding)
        return text
    except (UnicodeEncodeError, LookupError):
        return text.translate(str.maketrans(_ASCII_GLYPHS))


def _unicode_stdout() -> bool:
    """Whether stdout takes any character (UTF-8/16/32), so JSON need not be ASCII-only."""
    out = _stdout[-1] if _stdout else sys.stdout
    return (getattr(out, "encoding", None) or "").lower().replace("-", "").startswith("utf")


def _encoded(text: str) -> bytes:
    """A text output file as UTF-8; a lone surrogate in a name is written as `\\udce9`
    (in JSON that is the string's own escape, so the file still reads back exactly)."""
    return text.encode("utf-8", "backslashreplace")


def _emit(text: str) -> None:
    """Write a command's result to the real stdout (not where the model's prints go)."""
    out = _stdout[-1] if _stdout else sys.stdout
    out.write(_for_stream(text, out))
    out.flush()  # here, so that a closed pipe is seen inside the command, not at exit


_stdout: list = []  # the stdout of each running command, saved before the redirect


@command()
def summary(
    model: str = ModelArg,
    inputs: list[str] = InputOpt,
    args: Optional[list[str]] = ArgOpt,
    dtype: Optional[str] = DtypeOpt,
    weights: Optional[Path] = WeightsOpt,
    strict: bool = StrictOpt,
    depth: int = typer.Option(3, "--depth", "-d", min=0, help="Deepest call level shown in the table."),
    columns: Optional[str] = typer.Option(None, "--columns", metavar="<list>", help="Comma-separated columns, from: input_shape, output_shape, params, params_percent, macs, trainable, config, dtype."),
    fold: bool = typer.Option(True, "--fold/--no-fold", help="Fold identical consecutive blocks into one ×N row."),
    fmt: Optional[SummaryFormat] = typer.Option(None, "--format", "-f", help="Output format (default: text; with -o, the extension's)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to a file: .txt, .json, .md or .csv (the format follows the extension)."),
    measure: bool = MeasureOpt,
    debug: bool = DebugOpt,
) -> None:
    """Print a torchinfo-style summary table of MODEL."""

    def action() -> None:
        from .output import write_atomic
        from .pipeline import trace_target
        from .render.text import DEFAULT_COLUMNS, resolve_columns
        from .summary import ModelSummary

        _check_output_early(output, model, weights)   # first: never a reason to touch the model file
        chosen = _output_format(fmt, output, SUMMARY_SUFFIXES)
        try:
            cols = resolve_columns([c.strip() for c in columns.split(",")]) if columns else DEFAULT_COLUMNS
        except ValueError as e:
            raise InputSpecError(f"--columns: {e}") from None
        from .trace import TraceFailed

        try:
            traced = trace_target(model, inputs, args, dtype, weights=weights, strict=strict)
        except TraceFailed as failed:
            if chosen == "text" and output is None:  # show how far it got
                _emit(str(ModelSummary(failed.graph, depth=depth, columns=cols, fold=fold)))
            raise
        if measure:
            from .trace.measure import measure_traced
            measure_traced(traced, inputs)
        result = ModelSummary(traced.graph, depth=depth, columns=cols, fold=fold)
        text = {
            "text": str, "json": lambda r: r.to_json(ascii=output is None and not _unicode_stdout()),
            "markdown": ModelSummary.to_markdown, "csv": ModelSummary.to_csv,
        }[chosen](result)
        if output is None:
            _emit(text)
        else:
            write_atomic(output, _encoded(text), protect=traced.input_paths)
            typer.echo(f"wrote {output}", err=True)

    _run(debug, action)


@command(short_help="Draw an architecture diagram of MODEL: SVG, PDF, PNG or DOT.")
def graph(
    model: str = ModelArg,
    inputs: list[str] = InputOpt,
    args: Optional[list[str]] = ArgOpt,
    dtype: Optional[str] = DtypeOpt,
    weights: Optional[Path] = WeightsOpt,
    strict: bool = StrictOpt,
    output: Path = typer.Option(..., "--output", "-o", help="Diagram file: .svg, .pdf, .png or .dot."),
    depth: int = typer.Option(2, "--depth", "-d", min=0, help="Deepest call level drawn; deeper calls are drawn as their ancestor."),
    expand: Optional[list[str]] = typer.Option(None, "--expand", "-e", metavar="<path>", help="Module path drawn in full detail, e.g. layers.0 (repeatable)."),
    fields: str = typer.Option("type,shape,params,macs,config", "--fields", help="Comma-separated node fields: type,shape,params,macs,config."),
    style: str = typer.Option("paper", "--style", help="paper | slides."),
    heat: Optional[str] = typer.Option(None, "--heat", help="Shade nodes by cost: macs | params | memory."),
    rankdir: str = typer.Option("TB", "--rankdir", help="TB (top to bottom) | LR (left to right)."),
    edge_labels: str = typer.Option("shape", "--edge-labels", help="shape | none."),
    fold: bool = typer.Option(True, "--fold/--no-fold", help="Draw identical consecutive blocks once, with a ×N badge."),
    title: Optional[str] = typer.Option(None, "--title", help="Figure title (default: the model name; \"\" for none)."),
    debug: bool = DebugOpt,
) -> None:
    """Draw an architecture diagram of MODEL (Graphviz: SVG, PDF, PNG or DOT)."""

    def action() -> None:
        from .pipeline import trace_target
        from .render.graphviz import build_diagram, check_options, diagram_bytes, output_format
        from .output import write_atomic

        fmt = output_format(output)
        names = tuple(f.strip() for f in fields.split(",") if f.strip())
        options = dict(fields=names, heat=heat, rankdir=rankdir.upper(), edge_labels=edge_labels,
                       style=style)
        _check_graph_options(check_options, options)
        from .pipeline import input_paths_of
        from .trace import TraceFailed

        _check_output_early(output, model, weights)
        try:
            traced = trace_target(model, inputs, args, dtype, weights=weights, strict=strict)
        except TraceFailed as failed:  # draw how far it got, the failing call marked; exit 4
            diagram = build_diagram(failed.graph, depth=depth, fold=fold, title=title, **options)
            write_atomic(output, diagram_bytes(diagram, fmt, style), protect=input_paths_of(model, weights))
            typer.echo(f"wrote {output} (partial trace: the failing call is marked)", err=True)
            raise
        diagram = build_diagram(traced.graph, depth=depth, expand=tuple(expand or ()), fold=fold,
                                title=title, **options)
        write_atomic(output, diagram_bytes(diagram, fmt, style), protect=traced.input_paths)
        for note in diagram.notes:
            typer.echo(f"note: {note}", err=True)
        typer.echo(f"wrote {output}", err=True)

    _run(debug, action)


GRAPH_OPTION_FLAGS = {"fields": "--fields", "heat": "--heat", "rankdir": "--rankdir",
                      "edge_labels": "--edge-labels", "style": "--style"}


def _check_graph_options(check: Callable[..., None], options: dict) -> None:
    """Check each `graph` option value alone, so the error names its flag, not the keyword."""
    for key, flag in GRAPH_OPTION_FLAGS.items():
        try:
            check(**{key: options[key]})
        except ValueError as e:
            message = str(e)
            if message.startswith(f"{key} "):  # "edge_labels must be ..."
                raise InputSpecError(f"{flag} {message[len(key) + 1:]}") from None
            raise InputSpecError(f"{flag}: {message}") from None


EXPORT_FORMATS = (".json", ".graphml", ".gexf", ".md", ".tex", ".csv")


@command(short_help="Export the traced graph or the summary table to a file.")
def export(
    model: str = typer.Argument(..., metavar="MODEL", help="Model file (model.py[:NAME]) or model directory."),
    output: Path = typer.Option(..., "--output", "-o", help="Output file: .json .graphml .gexf .md .tex .csv"),
    inputs: list[str] = InputOpt,
    args: Optional[list[str]] = ArgOpt,
    dtype: Optional[str] = DtypeOpt,
    weights: Optional[Path] = WeightsOpt,
    strict: bool = StrictOpt,
    depth: int = typer.Option(3, "--depth", "-d", min=0, help="Table depth for .md/.tex/.csv."),
    fold: bool = typer.Option(True, "--fold/--no-fold", help="Fold identical consecutive blocks (.md/.tex/.csv)."),
    caption: Optional[str] = typer.Option(None, "--caption", help="LaTeX table caption."),
    siunitx: bool = typer.Option(False, "--siunitx/--plain-numbers", help="LaTeX numbers with \\num{} (siunitx)."),
    debug: bool = DebugOpt,
) -> None:
    """Export the traced graph (.json .graphml .gexf) or the summary table (.md .tex .csv)."""

    def action() -> None:
        from . import export as ex
        from .analysis.table import build_table
        from .output import write_atomic
        from .pipeline import trace_target
        from .render import tabular
        from .render.text import DEFAULT_COLUMNS

        suffix = output.suffix.lower()
        if suffix not in EXPORT_FORMATS:
            raise OutputError(f"cannot export to {output.name}: use one of {' '.join(EXPORT_FORMATS)}")
        _check_output_early(output, model, weights)
        traced = trace_target(model, inputs, args, dtype, weights=weights, strict=strict)
        graph = traced.graph
        table = build_table(graph, depth=depth, fold=fold)
        text = {
            ".json": lambda: ex.to_json(graph),
            ".graphml": lambda: ex.to_graphml(graph),
            ".gexf": lambda: ex.to_gexf(graph),
            ".md": lambda: tabular.table_to_markdown(graph, table, DEFAULT_COLUMNS),
            ".tex": lambda: tabular.table_to_latex(graph, table, caption=caption, siunitx=siunitx),
            ".csv": lambda: tabular.table_to_csv(table),
        }[suffix]()
        write_atomic(output, _encoded(text), protect=traced.input_paths)
        typer.echo(f"wrote {output}", err=True)

    _run(debug, action)


class DiffFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


class FailOn(str, Enum):  # diff.FAIL_ON
    params = "params"
    shapes = "shapes"
    values = "values"
    any = "any"


DIFF_FOUND_EXIT = 8
DIFF_SUFFIXES = {".txt": "text", ".json": "json", ".md": "markdown", ".html": "html", ".pdf": "pdf"}


@command(short_help="Compare two models, archives or checkpoints.")
def diff(
    a: str = typer.Argument(..., metavar="A", help="Side A: an archived JSON, a model file/directory, or a checkpoint."),
    b: str = typer.Argument(..., metavar="B", help="Side B: same kinds as A."),
    inputs: Optional[list[str]] = typer.Option(None, "--input", "-i", metavar="<spec>", help="Example input for model sides."),
    args: Optional[list[str]] = ArgOpt,
    dtype: Optional[str] = DtypeOpt,
    weights_a: Optional[str] = typer.Option(None, "--weights-a", help="Checkpoint for model A."),
    weights_b: Optional[str] = typer.Option(None, "--weights-b", help="Checkpoint for model B."),
    strict: bool = StrictOpt,
    drift: bool = typer.Option(True, "--drift/--no-drift", help="Per-tensor drift when both sides have weights."),
    fmt: Optional[DiffFormat] = typer.Option(None, "--format", "-f", help="Output format (default: text; with -o, the extension's)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to a file: .txt, .json, .md, or a report with both diagrams: .html, .pdf."),
    fail_on: Optional[FailOn] = typer.Option(None, "--fail-on", help=f"Exit {DIFF_FOUND_EXIT} when params, shapes, tensor values or anything differ (for CI)."),
    title: Optional[str] = typer.Option(None, "--title", help="Title of an .html/.pdf diff report."),
    date: Optional[str] = typer.Option(None, "--date", help="YYYY-MM-DD printed in an .html/.pdf diff report; none by default."),
    debug: bool = DebugOpt,
) -> None:
    """Compare two models, archives or checkpoints: modules by path, tensors by name."""

    def action() -> int:
        import json as _json

        from .compare import compare, load_side
        from .output import check_output
        from .pipeline import input_paths_of

        protect = input_paths_of(a, weights_a) + input_paths_of(b, weights_b)
        if output is not None:
            check_output(output, protect)
        chosen = _output_format(fmt, output, DIFF_SUFFIXES)
        report = chosen in ("html", "pdf")
        if report:
            from .render.report import check_date

            try:
                check_date(date)
            except ValueError as e:
                raise InputSpecError(str(e)) from None
        from .output import write_atomic
        from .render.diff_text import render_diff_markdown, render_diff_text

        side_a = load_side(a, inputs or [], args, dtype, weights_a, strict)
        side_b = load_side(b, inputs or [], args, dtype, weights_b, strict)
        result = compare(side_a, side_b, drift=drift)
        code = DIFF_FOUND_EXIT if fail_on is not None and result.matches(fail_on.value) else 0
        if report:
            from .render.report_diff import build_diff_report

            build_diff_report(result, output, side_a.graph, side_b.graph, date=date, title=title,
                              protect=protect)
            typer.echo(f"wrote {output}", err=True)
            return code
        text = {
            "text": render_diff_text,
            "json": lambda d: _json.dumps(d.to_dict(), indent=2) + "\n",
            "markdown": render_diff_markdown,
        }[chosen](result)
        if output is None:
            _emit(text)
        else:
            write_atomic(output, _encoded(text), protect=protect)
            typer.echo(f"wrote {output}", err=True)
        return code

    _run(debug, action)


class StatsFormat(str, Enum):
    text = "text"
    json = "json"
    csv = "csv"
    markdown = "markdown"


STATS_SUFFIXES = {".txt": "text", ".json": "json", ".csv": "csv", ".md": "markdown",
                  ".html": "html", ".pdf": "pdf"}


def _checkpoint_paths(path: Path) -> list[Path]:
    """The files a checkpoint argument reads: never overwritten by -o."""
    from .paths import is_dir

    if is_dir(path):  # False for a name too long: read_checkpoint then says so
        return [path, *sorted(p for p in path.iterdir() if p.is_file())]
    if path.name.endswith(".index.json"):
        return [path, *sorted(path.parent.glob("*.safetensors"))]
    return [path]


@command(short_help="Per-tensor statistics and histograms of a checkpoint.")
def stats(
    checkpoint: Path = typer.Argument(..., metavar="CHECKPOINT", help="A .safetensors file, a sharded set (its index JSON or directory) or .npz."),
    fmt: Optional[StatsFormat] = typer.Option(None, "--format", "-f", help="text (default) | json | csv | markdown."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to a file: .html or .pdf (report), .json, .csv, .md, .txt."),
    exact: bool = typer.Option(False, "--exact", help="Read every element for every figure, however large the checkpoint (default: sample above 100 M parameters)."),
    date: Optional[str] = typer.Option(None, "--date", help="YYYY-MM-DD printed in an HTML/PDF report; none by default."),
    title: Optional[str] = typer.Option(None, "--title", help="HTML/PDF report title."),
    debug: bool = DebugOpt,
) -> None:
    """Per-tensor statistics and histograms of a checkpoint, with no model."""

    def action() -> None:
        from .output import check_output, write_atomic

        chosen = _output_format(fmt, output, STATS_SUFFIXES)
        if output is not None:
            check_output(output, _checkpoint_paths(checkpoint))
        if chosen in ("html", "pdf"):
            from .render.report import check_date

            try:
                check_date(date)
            except ValueError as e:
                raise InputSpecError(str(e)) from None
        from .analysis.checkpoint_stats import checkpoint_stats

        result = checkpoint_stats(checkpoint, hash_files=chosen in ("json", "html", "pdf"),
                                  progress=sys.stderr.isatty(), sample=False if exact else None)
        protect = _checkpoint_paths(checkpoint) + result.files
        if chosen in ("html", "pdf"):
            from .render.report_stats import build_stats_report

            build_stats_report(result, output, date=date, title=title, protect=protect)
            typer.echo(f"wrote {output}", err=True)
            return
        from .render import stats_text

        text = {"text": stats_text.render_stats_text, "json": lambda s: s.to_json(),
                "csv": stats_text.render_stats_csv, "markdown": stats_text.render_stats_markdown,
                }[chosen](result)
        if output is None:
            _emit(text)
        else:
            write_atomic(output, _encoded(text), protect=protect)
            typer.echo(f"wrote {output}", err=True)

    _run(debug, action)


@command()
def version() -> None:
    """Print the versions of mlx-report, MLX and Python."""
    typer.echo(_version_line())


@command(short_help="Build the HTML or PDF report of MODEL, or a release archive.")
def build(
    model: str = typer.Argument(..., metavar="MODEL", help="Model file (model.py[:NAME]), model directory, or an archived JSON (export -o model.json) to rebuild from."),
    inputs: Optional[list[str]] = typer.Option(None, "--input", "-i", metavar="<spec>", help="Example input: 1,3,224,224 | 1,128:int32 | name=1,128:int32 (repeat per input); not with an archived JSON."),
    args: Optional[list[str]] = ArgOpt,
    dtype: Optional[str] = DtypeOpt,
    weights: Optional[Path] = WeightsOpt,
    strict: bool = StrictOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Report file: .pdf or .html (one self-contained file)."),
    archive: Optional[Path] = typer.Option(None, "--archive", help="Directory (created if missing): report.pdf, report.html, architecture.svg, model.json, weights-stats.json and manifest.json."),
    weights_stats: Optional[Path] = typer.Option(None, "--weights-stats", help="With an archived JSON: its weights-stats.json, for the weight statistics section."),
    no_weights: bool = typer.Option(False, "--no-weights", help="Skip weight statistics and evaluate nothing (the tensor table stays)."),
    no_diagram: bool = typer.Option(False, "--no-diagram", help="Leave out the architecture diagram."),
    no_costs: bool = typer.Option(False, "--no-costs", help="Leave out the cost charts and top calls."),
    no_table: bool = typer.Option(False, "--no-table", help="Leave out the summary table."),
    no_appendix: bool = typer.Option(False, "--no-appendix", help="Leave out the per-call appendix."),
    depth: Optional[int] = typer.Option(None, "--depth", "-d", min=0, help="Depth of the summary table and diagram (default: table 3, diagram the deepest that fits a page)."),
    date: Optional[str] = typer.Option(None, "--date", help="YYYY-MM-DD printed in the report and the PDF metadata; none by default, so rebuilds are byte-identical."),
    title: Optional[str] = typer.Option(None, "--title", help="Report title (default: \"<model> model report\")."),
    pdf_variant: Optional[str] = typer.Option(None, "--pdf-variant", help="pdf/a-3b: archival PDF with the report's JSON attached."),
    measure: bool = MeasureOpt,
    debug: bool = DebugOpt,
) -> None:
    """Build the HTML or PDF report of MODEL (or of an archived JSON), or a whole release archive."""
    from .build import BuildRequest
    from .build import build as run_build

    dropped = {name for name, flag in (("diagram", no_diagram), ("costs", no_costs),
                                       ("table", no_table), ("appendix", no_appendix)) if flag}
    request = BuildRequest(model=model, inputs=list(inputs or []), args=list(args or []),
                           dtype=dtype, weights=weights, strict=strict, output=output,
                           archive=archive, weights_stats=weights_stats, no_weights=no_weights,
                           dropped=dropped, depth=depth, date=date, title=title,
                           pdf_variant=pdf_variant, measure=measure)
    _run(debug, lambda: run_build(request, say=lambda line: typer.echo(line, err=True)))


def main() -> None:
    app(prog_name="mlx-report")
