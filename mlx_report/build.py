"""`mlx-report build`: a model (or an archived JSON) → report and/or release archive.

load → trace → weight statistics → render, with the checks that must pass before any work
(output path, archive directory, date, PDF variant). The command line only parses flags.
"""

from __future__ import annotations

import gc
import json
import platform
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager

from .errors import InputSpecError, MlxReportError
from .export import is_archive_json, read_archive
from .graph import ModelGraph

REPORT_SEED = 0  # mx.random.seed before building the model: random-init reports rebuild identically


@dataclass
class BuildRequest:
    """What `build` is asked to make; mirrors the command's flags."""

    model: str                              # model file[:NAME], model directory, or archived JSON
    inputs: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    dtype: str | None = None
    weights: Path | None = None
    strict: bool = True
    output: Path | None = None               # report.pdf | report.html
    archive: Path | None = None              # release directory
    weights_stats: Path | None = None        # with an archived JSON: its weights-stats.json
    no_weights: bool = False
    dropped: set[str] = field(default_factory=set)   # sections left out: diagram, costs, table, appendix
    depth: int | None = None
    date: str | None = None
    title: str | None = None
    pdf_variant: str | None = None
    measure: bool = False                    # --measure: evaluate one pass, show the measured peak


def read_weights_stats(path: Path, graph: ModelGraph):
    """A WeightReport written by `build --archive` (weights-stats.json) that fits `graph`."""
    from .analysis.weights import WeightReport
    from .paths import regular_file, shown

    regular_file(path, "weight statistics", MlxReportError,
                 missing=f"weight statistics not found: {shown(path)}")
    try:
        report = WeightReport.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise MlxReportError(f"weight statistics not found: {path}") from None
    except OSError as e:
        raise MlxReportError(f"{path.name}: cannot read ({e.strerror or e})") from None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        reason = f"missing {e}" if isinstance(e, KeyError) else str(e)
        raise MlxReportError(f"{path.name}: not an mlx-report weight statistics file ({reason})") from None
    known = {t.name for t in graph.tensors}
    unknown = [s.name for s in report.tensors if s.name not in known]
    if unknown:
        raise MlxReportError(f"{path.name} does not describe this model: {len(unknown)} tensor(s) "
                             f"it has are not in the archive, e.g. {unknown[0]}")
    return report


def _check(req: BuildRequest) -> list[str]:
    """Refuse bad flags before any work; the sections to build."""
    from .render.report import PDF_VARIANTS, SECTIONS, check_date, output_format

    if req.output is None and req.archive is None:
        raise InputSpecError("give -o report.pdf|report.html, --archive DIR, or both")
    fmt = output_format(req.output) if req.output is not None else None  # wrong extension: fail now
    if req.archive is not None:
        from .archive import check_archive_dir

        check_archive_dir(req.archive, [req.model])
        if req.output is not None and req.output.resolve().is_relative_to(req.archive.resolve()):
            raise InputSpecError(f"-o {req.output} lies inside --archive {req.archive}, which is "
                                 f"replaced as a whole: write the report elsewhere (the archive "
                                 f"has its own report.pdf and report.html)")
    try:
        check_date(req.date)
    except ValueError as e:
        raise InputSpecError(str(e)) from None
    if req.pdf_variant is not None and (req.pdf_variant not in PDF_VARIANTS
                                        or (fmt != "pdf" and req.archive is None)):
        raise InputSpecError(f"--pdf-variant {req.pdf_variant!r}: use {' or '.join(PDF_VARIANTS)} "
                             f"with a .pdf output or --archive")
    return [s for s in SECTIONS if s not in req.dropped]


def _from_archive(req: BuildRequest):
    """(graph, weight statistics, files to protect) of an archived JSON."""
    given = [flag for flag, value in (("--input", req.inputs), ("--arg", req.args),
                                      ("--dtype", req.dtype), ("--weights", req.weights),
                                      ("--measure", req.measure)) if value]
    if given:
        raise InputSpecError(f"{', '.join(given)} cannot apply to an archived JSON: it is "
                             f"rebuilt as traced")
    protect = [Path(req.model)] + ([req.weights_stats] if req.weights_stats else [])
    if req.output is not None:
        from .output import check_output

        check_output(req.output, protect)
    graph = read_archive(Path(req.model))
    stats = (read_weights_stats(req.weights_stats, graph)
             if req.weights_stats and not req.no_weights else None)
    return graph, stats, protect


def _from_model(req: BuildRequest, sections: list[str], say: Callable[[str], None]):
    """(graph, weight statistics, files to protect) of a model: trace it, measure its weights."""
    import mlx.core as mx

    from .loading import check_model_target
    from .output import check_output
    from .pipeline import input_paths_of, trace_target
    from .render.report import build_report
    from .trace import TraceFailed

    if req.weights_stats is not None:
        raise InputSpecError("--weights-stats applies to an archived JSON; a model's "
                             "statistics are computed from its weights")
    check_model_target(req.model)
    if not req.inputs:
        raise InputSpecError(f"{req.model} is a model: give --input so it can be traced "
                             f"(or rebuild from an archived .json)")
    mx.random.seed(REPORT_SEED)
    if req.output is not None:
        check_output(req.output, input_paths_of(req.model, req.weights))
    try:
        traced = trace_target(req.model, req.inputs, req.args, req.dtype, weights=req.weights,
                              strict=req.strict, hash_weights=True,
                              spread_init=req.weights is None and not req.no_weights)
    except TraceFailed as failed:  # a report whose first page explains the failure; exit 4
        if req.output is not None:
            partial = [s for s in sections if s != "weights"]
            build_report(failed.graph, req.output, sections=partial, date=req.date, title=req.title,
                         depth=req.depth, protect=input_paths_of(req.model, req.weights))
            say(f"wrote {req.output} (partial trace: its first page explains the failure)")
        raise
    graph, protect = traced.graph, traced.input_paths
    if req.measure:
        from .trace.measure import measure_traced
        measure_traced(traced, req.inputs)
    device = mx.default_device()
    graph.meta["device"] = (f"{str(device.type).rsplit('.', 1)[-1]} "
                            f"({platform.system()} {platform.machine()})")
    random_init = graph.meta.get("weights", "random initialisation") == "random initialisation"
    if random_init:
        graph.meta["seed"] = REPORT_SEED
    if req.no_weights:
        return graph, None, protect
    from .analysis.weights import tensor_sources, weight_stats

    sources = tensor_sources(traced.loaded.model, graph.tensors)
    del traced  # the sources hold the only references: each tensor is freed once measured
    gc.collect()  # the model sits in reference cycles: free it now, not at exit
    label = (f"random initialisation (mx.random.seed({REPORT_SEED}))" if random_init
             else f"checkpoint {graph.meta.get('weights')}")
    return graph, weight_stats(sources, source=label, progress=sys.stderr.isatty()), protect


def _status(message: str) -> ContextManager:
    """A spinner with `message` on a terminal's stderr (the PDF of a 7B model takes ~10 s)."""
    if not sys.stderr.isatty():
        return nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(message)


def build(req: BuildRequest, say: Callable[[str], None] = print) -> None:
    """Write the report and/or the archive `req` asks for; `say` reports each file written."""
    from .render.report import build_report

    sections = _check(req)
    rebuilt_from = None
    if is_archive_json(req.model):
        graph, stats, protect = _from_archive(req)
        rebuilt_from = Path(req.model).name
    else:
        graph, stats, protect = _from_model(req, sections, say)
    files = None
    if req.archive is not None:  # every check, and every archive file made, before writing any
        from .archive import archive_files, check_archive_dir

        check_archive_dir(req.archive, protect)
        with _status(f"making the archive {req.archive.name}/"):
            files = archive_files(graph, stats, sections=sections, date=req.date, title=req.title,
                                  depth=req.depth, pdf_variant=req.pdf_variant,
                                  rebuilt_from=rebuilt_from)
    if req.output is not None:
        with _status(f"writing {req.output.name}"):
            build_report(graph, req.output, weights=stats, sections=sections, date=req.date,
                         title=req.title, depth=req.depth, pdf_variant=req.pdf_variant,
                         protect=protect, rebuilt_from=rebuilt_from)
        say(f"wrote {req.output}")
    if req.archive is not None and files is not None:
        from .archive import manifest, write_archive

        command = {"model": req.model, "inputs": list(req.inputs), "args": list(req.args),
                   "dtype": req.dtype, "weights": str(req.weights) if req.weights else None,
                   "strict": req.strict,
                   "weights_stats": str(req.weights_stats) if req.weights_stats else None,
                   "sections": sections, "depth": req.depth, "title": req.title,
                   "pdf_variant": req.pdf_variant}
        write_archive(req.archive, files, manifest(files, graph, command, date=req.date),
                      protect=protect)
        say(f"wrote {req.archive}/ ({len(files) + 1} files)")
