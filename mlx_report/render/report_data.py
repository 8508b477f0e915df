"""What each report section shows, as plain rows and strings for the templates.

Reads the ModelGraph, the analysis results and the weight statistics; never MLX.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..analysis import breakdown
from ..analysis.table import build_table
from ..analysis.weights import WeightReport, WeightStats
from ..export import CONVENTIONS
from ..graph import ModelGraph
from . import plots
from .format import fmt_bytes, fmt_int, fmt_percent, fmt_shapes, fmt_si


@dataclass
class Fact:
    label: str
    value: str
    mono: bool = False


@dataclass
class Figure:
    """A key-figure card: a headline number, its exact value and details."""

    label: str
    value: str
    exact: str
    details: list[str] = field(default_factory=list)


@dataclass
class Cell:
    text: str
    sort: Any = None          # value the HTML table sorts by (numbers sort numerically)
    cls: str = ""


def _num(n: int | None) -> Cell:
    return Cell(fmt_int(n), -1 if n is None else n, "num")


def _both(n: int) -> str:
    return fmt_int(n) if n < 1000 else f"{fmt_si(n)} ({fmt_int(n)})"


# -- title -------------------------------------------------------------------------------------

def _weights_source(graph: ModelGraph, weights: WeightReport | None) -> list[Fact]:
    meta = graph.meta
    label = meta.get("weights") or (weights.source if weights else "random initialisation")
    facts = [Fact("Weights", label)]
    if label == "random initialisation" and meta.get("seed") is not None:
        facts[0].value += f" (mx.random.seed({meta['seed']}) before building the model)"
    for name, digest in (meta.get("weights_sha256") or {}).items():
        facts.append(Fact(f"sha256 of {name}", digest, mono=True))
    if meta.get("weights_mismatch"):
        facts.append(Fact("Checkpoint mismatch", str(meta["weights_mismatch"])))
    return facts


def title_facts(graph: ModelGraph, weights: WeightReport | None, version: str,
                date: str | None) -> list[Fact]:
    """Rows of the title page: model, source, weights, inputs, versions, device."""
    meta = graph.meta
    facts = [Fact("Model", graph.model_name), Fact("Class", graph.model_type)]
    if meta.get("source"):
        facts.append(Fact("Source file", str(meta["source"])))
    if meta.get("source_sha256"):
        facts.append(Fact("sha256 of source", str(meta["source_sha256"]), mono=True))
    if meta.get("factory"):
        facts.append(Fact("Built by", str(meta["factory"]), mono=True))
    facts += _weights_source(graph, weights)
    inputs = meta.get("inputs") or [fmt_shapes(graph.node(n)["shapes"]) for n in graph.inputs()]
    facts.append(Fact("Input", "; ".join(str(i) for i in inputs), mono=True))
    facts.append(Fact("Dtype", str(meta.get("dtype", "as built"))))
    versions = f"mlx-report {version}"
    if meta.get("mlx_version"):
        versions += f", MLX {meta['mlx_version']}"
    if meta.get("python_version"):
        versions += f", Python {meta['python_version']}"
    facts.append(Fact("Versions", versions))
    if meta.get("device"):
        facts.append(Fact("Device", str(meta["device"])))
    if date:
        facts.append(Fact("Date", date))
    return facts


# -- key figures -------------------------------------------------------------------------------

def key_figures(graph: ModelGraph) -> list[Figure]:
    """The numbers at a glance, each with its exact value."""
    t = graph.totals
    frozen = f"non-trainable {fmt_int(t.non_trainable_params)}"
    if t.running_stat_params:
        frozen += f" (BatchNorm running stats {fmt_int(t.running_stat_params)})"
    estimated = t.param_bytes + t.input_bytes + t.peak_activation_bytes
    return [
        Figure("Parameters", fmt_si(t.params), fmt_int(t.params),
               [f"trainable {fmt_int(t.trainable_params)}", frozen]),
        Figure("MACs", fmt_si(t.macs), fmt_int(t.macs),
               [f"FLOPs {_both(t.flops)} = 2 × MACs",
                f"elementwise FLOPs (apart) {_both(t.elementwise_flops)}"]),
        Figure("Parameter memory", fmt_bytes(t.param_bytes), f"{fmt_int(t.param_bytes)} bytes",
               ["real storage (quantized weights packed)"]),
        Figure("Activation memory", fmt_bytes(t.activation_bytes),
               f"{fmt_int(t.activation_bytes)} bytes",
               ["sum of leaf-call outputs",
                f"peak live (estimate) {fmt_bytes(t.peak_activation_bytes)} "
                f"({fmt_int(t.peak_activation_bytes)} bytes)"]),
        Figure("Input", fmt_bytes(t.input_bytes), f"{fmt_int(t.input_bytes)} bytes",
               [f"params + input + peak activations ≈ {fmt_bytes(estimated)}"]),
        Figure("Structure", f"{fmt_int(t.calls)} calls", f"depth {t.max_depth}",
               ["module calls in one forward pass", "deepest call level (model = 0)"]),
    ]


# -- summary table -----------------------------------------------------------------------------

@dataclass
class TreeRow:
    node_id: str
    parent: str | None
    depth: int
    label: str
    type: str
    count: int
    cells: list[Cell]
    expanded: bool
    error: str | None


TREE_HEADERS = ["Layer (type)", "Input shape", "Output shape", "Params", "Param %", "MACs",
                "Trainable"]
TREE_WIDTHS = [32, 15, 15, 11, 7, 12, 8]


def tree_rows(graph: ModelGraph, depth: int, fold: bool = True) -> tuple[list[TreeRow], list[str]]:
    """The folded hierarchical summary table; parents link rows for the collapsible tree."""
    table = build_table(graph, depth=depth, fold=fold)
    rows: list[TreeRow] = []
    stack: list[tuple[int, str]] = []
    for r in table.rows:
        while stack and stack[-1][0] >= r.depth:
            stack.pop()
        parent = stack[-1][1] if stack else None
        stack.append((r.depth, r.node_id))
        label = r.type if r.depth == 0 else r.name
        params = Cell("(reused)", -1, "num") if r.reused else _num(r.params)
        percent = Cell("--" if r.reused else fmt_percent(r.params_percent), r.params_percent or 0, "num")
        rows.append(TreeRow(
            node_id=r.node_id, parent=parent, depth=r.depth, label=label, type=r.type,
            count=r.count, expanded=r.expanded, error=r.error,
            cells=[Cell(fmt_shapes(r.input_shapes), None, "shape"),
                   Cell(fmt_shapes(r.output_shapes), None, "shape"),
                   params, percent, _num(r.macs), Cell(r.trainable)],
        ))
    return rows, list(table.notes)


# -- costs -------------------------------------------------------------------------------------

@dataclass
class Costs:
    type_svg: str
    blocks_svg: str
    activation_svg: str
    top: list[list[Cell]]
    top_headers: list[str]
    top_widths: list[float]


def costs(graph: ModelGraph, top_n: int = 10) -> Costs:
    """The three cost charts and the most expensive calls."""
    types = breakdown.by_type(graph)
    blocks = breakdown.blocks(graph)
    leaves = breakdown.leaves(graph)
    owner = breakdown.block_of(graph, [b.node_id for b in blocks])
    total = graph.totals.macs or 1
    top = []
    for i, c in enumerate(breakdown.top_calls(graph, top_n), 1):
        top.append([Cell(str(i), i, "num"), Cell(c.path, c.path, "path"), Cell(c.type),
                    Cell(fmt_shapes(c.output_shapes), None, "shape"), _num(c.macs_self),
                    Cell(f"{100 * c.macs_self / total:.1f}%", c.macs_self, "num"),
                    Cell(fmt_bytes(c.output_bytes), c.output_bytes, "num")])
    return Costs(
        type_svg=plots.type_chart(types),
        blocks_svg=plots.blocks_chart(blocks),
        activation_svg=plots.activation_chart(
            leaves, [owner.get(c.node_id, -1) for c in leaves], [b.path for b in blocks],
            graph.totals.peak_activation_bytes),
        top=top,
        top_headers=["#", "Call", "Type", "Output shape", "MACs (self)", "Share", "Output"],
        top_widths=[4, 33, 12, 17, 14, 8, 12],
    )


# -- weights -----------------------------------------------------------------------------------

def _g(x: float | None) -> str:
    """A statistic with 4 significant digits; '--' when absent."""
    if x is None:
        return "--"
    return "0" if x == 0 else f"{x:.4g}"


def _stat_cell(x: float | None) -> Cell:
    return Cell(_g(x), x if x is not None else float("-inf"), "num")


@dataclass
class Weights:
    headers: list[str]
    widths: list[float]
    rows: list[list[Cell]]
    flagged: list[tuple[str, str]]
    notes: list[str]
    groups: list[dict[str, Any]]
    has_stats: bool


def weights(graph: ModelGraph, report: WeightReport | None) -> Weights:
    """The per-tensor table (with statistics when computed), flags and distribution plots."""
    stats: dict[str, WeightStats] = {s.name: s for s in report.tensors} if report else {}
    headers = ["Tensor", "Shape", "Dtype", "Params", "Bytes", "Trainable"]
    widths = [45, 14, 14, 9, 10, 8]
    if report:
        headers[-1] = "Train."
        headers += ["Mean", "Std", "Min", "Max", "Abs max", "Zeros", "NaN", "Inf"]
        widths = [26, 8, 8, 7, 7, 4, 6.5, 6, 6.5, 6, 6, 5.5, 3.5, 3.5]
    rows = []
    for t in graph.tensors:
        name = t.name + (f" (= {', '.join(t.aliases)})" if t.aliases else "")
        kind = {"running_stat": " · stat", "quant_aux": " · quant"}.get(t.kind, "")
        row = [Cell(name, t.name, "path"), Cell("×".join(map(str, t.shape)) or "scalar", None, "shape"),
               Cell(t.dtype + kind), _num(t.params), _num(t.nbytes),
               Cell("✓" if t.trainable else "✗", int(t.trainable), "tick")]
        s = stats.get(t.name)
        if report and s is not None:
            row += [_stat_cell(s.mean), _stat_cell(s.std), _stat_cell(s.min), _stat_cell(s.max),
                    _stat_cell(s.abs_max),
                    Cell(f"{100 * s.zero_fraction:.2f}%", s.zero_fraction, "num"),
                    Cell(fmt_int(s.nan_count), s.nan_count, "num bad" if s.nan_count else "num"),
                    Cell(fmt_int(s.inf_count), s.inf_count, "num bad" if s.inf_count else "num")]
        elif report:
            row += [Cell("--", None, "num")] * 8
        rows.append(row)
    flagged = [(s.name, "; ".join(s.flags)) for s in report.flagged()] if report else []
    notes = []
    if report:
        notes.append(f"Values: {report.source}." if report.source else "")
        notes.append(report.sampling_note())
        quantized = sorted({s.quantized for s in report.tensors if s.quantized})
        if quantized:
            notes.append("Quantized weights (" + "; ".join(quantized) + ") were dequantized with "
                         "mx.dequantize for statistics; Bytes and Params give their real packed "
                         "storage and logical element count.")
    return Weights(headers=headers, widths=widths, rows=rows, flagged=flagged, notes=[n for n in notes if n],
                   groups=_distribution_groups(report) if report else [], has_stats=bool(report))


def _distribution_groups(report: WeightReport) -> list[dict[str, Any]]:
    """Small multiples per group (layer type + parameter), in first-appearance order."""
    order: list[str] = []
    members: dict[str, list[WeightStats]] = {}
    for s in report.tensors:
        if not s.hist_counts or s.kind != "weight":
            continue
        if s.group not in members:
            order.append(s.group)
        members.setdefault(s.group, []).append(s)
    out = []
    for group in order:
        bins = report.groups[group]
        tensors = members[group]
        constants = sorted({s.min for s in tensors if s.min == s.max})
        if all(s.min == s.max for s in tensors):  # nothing to draw: say which constants
            out.append({"name": group, "count": len(tensors), "plots": [],
                        "constant": ", ".join(_g(v) for v in constants)})
            continue
        plots_ = []
        for s in tensors:
            note = f"constant {_g(s.min)}" if s.min == s.max else f"μ {_g(s.mean)}  σ {_g(s.std)}"
            plots_.append(plots.histogram(s.hist_counts, bins.lo, bins.width, s.name, note,
                                          flagged=bool(s.flags)))
        out.append({"name": group, "count": len(plots_), "lo": _g(bins.lo), "hi": _g(bins.hi),
                    "width": _g(bins.width), "bins": bins.count, "plots": plots_, "constant": ""})
    return out


# -- definitions -------------------------------------------------------------------------------

CONVENTION_TITLES = {
    "mac": "MAC", "flops": "FLOPs", "params": "Parameters", "activation_bytes": "Activation memory",
    "peak_activation_bytes": "Peak live activations", "self_total": "Self and total",
}


def definitions(graph: ModelGraph, report: WeightReport | None, table_notes: list[str]
                ) -> dict[str, Any]:
    """Definitions of every number, the uncounted ops and the table notes."""
    items = [(CONVENTION_TITLES.get(k, k), v) for k, v in CONVENTIONS.items()]
    items.append(("Units", "SI prefixes for counts (K = 10^3, M = 10^6, G = 10^9, T = 10^12); "
                           "bytes in SI units (1 KB = 1,000 bytes, 1 MB = 10^6 bytes)."))
    items.append(("Params and MACs by layer type", "a type's own parameters (each module counted "
                  "once) and the self MACs of its calls; self MACs sum to the model total."))
    if report:
        items.append(("Weight statistics", "mean, std (population), zero fraction and histograms "
                      "describe the finite values; min, max, abs max and the NaN/Inf counts cover "
                      "all elements."))
        items.append(("Histograms", "bins are shared within a layer type and parameter name (e.g. "
                      "Conv2d.weight): power-of-two widths on a grid aligned at zero, so each "
                      "tensor's counts are exact; bar heights are scaled to each tensor's tallest bin."))
        items.append(("Flags", f"NaN/Inf: any non-finite element; dead: a weight tensor whose "
                      f"elements are all zero; outlier: max |x − mean| > {report.outlier_k:g} × std."))
    uncounted = sorted(graph.uncounted_ops.items())
    return {"items": items, "uncounted": uncounted, "notes": table_notes,
            "value_reads": list(graph.meta.get("value_reads", []))}


# -- appendix ----------------------------------------------------------------------------------

APPENDIX_HEADERS = ["#", "Call", "Type", "Input shape", "Output shape", "Params", "MACs self",
                    "MACs total", "Output bytes", "Config"]
APPENDIX_WIDTHS = [3.5, 24, 9, 12, 12, 7.5, 8.5, 8.5, 7.5, 7]


def _short_config(type_name: str, config: str) -> str:
    """The diagram's compact configuration ('64→128, k3 s2'); the full text if unavailable."""
    try:
        from .graphviz import short_config  # the diagram module's helper, optional here
        return short_config(type_name, config or "")
    except Exception:
        return config or ""


def appendix_rows(graph: ModelGraph) -> list[list[Cell]]:
    """Every module call in call order with its raw figures."""
    rows = []
    for i, node_id in enumerate(graph.calls()):
        d = graph.node(node_id)
        path = d["path"] or graph.model_name
        if d["call_index"]:
            path += f" (call {d['call_index'] + 1})"
        rows.append([
            Cell(str(i), i, "num"), Cell(("· " * d["depth"]) + path, i, "path"), Cell(d["type"]),
            Cell(fmt_shapes(d["input_shapes"]), None, "shape"),
            Cell(fmt_shapes(d["output_shapes"]), None, "shape"),
            Cell("(reused)", -1, "num") if d["call_index"] else _num(d.get("params", 0)),
            _num(d.get("macs_self", 0)), _num(d.get("macs_total", 0)),
            _num(d.get("output_bytes", 0)), Cell(_short_config(d["type"], d.get("config", "")), None, "config"),
        ])
    return rows
