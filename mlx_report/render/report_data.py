"""What each report section shows, as plain rows and strings for the templates.

Reads the ModelGraph, the analysis results and the weight statistics; never MLX.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..analysis import breakdown
from ..analysis.table import build_table
from ..analysis.weights import WeightReport
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


def num_cell(n: int | None) -> Cell:
    return Cell(fmt_int(n), -1 if n is None else n, "num")


def _both(n: int) -> str:
    return fmt_int(n) if n < 1000 else f"{fmt_si(n)} ({fmt_int(n)})"


# -- long tables as aligned text (PDF) ---------------------------------------------------------

TEXT_TABLE_WIDTH_PT = 750.0   # A4 landscape text width (757 pt), less the block's padding
PORTRAIT_TABLE_WIDTH_PT = 500.0   # A4 portrait text width (510 pt), less the padding
MONO_ADVANCE = 0.602          # advance width of DejaVu/Liberation Mono, in em


@dataclass
class TextTable:
    """A long table laid out as aligned monospace lines: one box per row for the PDF renderer
    instead of one per cell (a 300-row, 14-column table lays out ten times faster)."""

    header: str
    lines: list[str]
    font_pt: float


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def text_table(headers: list[str], rows: list[list[Cell]], caps: list[int],
               width_pt: float = TEXT_TABLE_WIDTH_PT) -> TextTable:
    """Columns padded to their widest cell; text cells longer than `caps[i]` are cut on the
    left. Numbers and headers are never cut: a clipped figure would read as another number."""
    right = [bool(rows) and "num" in rows[0][i].cls for i in range(len(headers))]
    widths = []
    for i, (h, cap) in enumerate(zip(headers, caps)):
        widest = max([0] + [len(r[i].text) for r in rows])
        widths.append(max(len(h), widest if right[i] else min(cap, widest)))

    def line(cells: list[str]) -> str:
        parts = [(_fit(c, w).rjust(w) if r else _fit(c, w).ljust(w))
                 for c, w, r in zip(cells, widths, right)]
        return "  ".join(parts).rstrip()

    chars = sum(widths) + 2 * (len(widths) - 1)
    font = max(5.0, min(7.5, width_pt / (max(chars, 1) * MONO_ADVANCE)))
    return TextTable(header=line(headers), lines=[line([c.text for c in r]) for r in rows],
                     font_pt=round(font, 2))


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
                date: str | None, rebuilt_from: str | None = None) -> list[Fact]:
    """Rows of the title page: model, source, weights, inputs, versions, device."""
    meta = graph.meta
    facts = [Fact("Model", graph.model_name), Fact("Class", graph.model_type)]
    if rebuilt_from:
        facts.append(Fact("Rebuilt from", f"{rebuilt_from}: an archived mlx-report JSON, without "
                                          f"running the model code"))
    if meta.get("source"):
        facts.append(Fact("Source file", str(meta["source"])))
    if meta.get("source_sha256"):
        facts.append(Fact("sha256 of source", str(meta["source_sha256"]), mono=True))
    if meta.get("factory"):
        facts.append(Fact("Built by", str(meta["factory"]), mono=True))
    facts += _weights_source(graph, weights)
    nodes = graph.inputs()
    specs = meta.get("inputs") or [""] * len(nodes)
    described = []
    for spec, n in zip(specs, nodes):
        d = graph.node(n)
        arrays = ", ".join(f"{fmt_shapes([s])} {t}" for s, t in zip(d["shapes"], d["dtypes"]))
        described.append(f"{spec} → {arrays}" if spec else arrays)
    facts.append(Fact("Input", "; ".join(described) or "--", mono=True))
    dtypes = sorted({t.dtype for t in graph.tensors if t.kind != "quant_aux"})
    dtype = str(meta.get("dtype", "as built"))
    if dtypes:
        dtype += f" (parameters: {', '.join(dtypes)})"
    facts.append(Fact("Dtype", dtype))
    versions = f"mlx-report {version}"
    if meta.get("mlx_version"):
        versions += f", MLX {meta['mlx_version']}"
    if meta.get("python_version"):
        versions += f", Python {meta['python_version']}"
    if rebuilt_from:
        versions = (f"traced with MLX {meta.get('mlx_version', '?')}, Python "
                    f"{meta.get('python_version', '?')}; rebuilt by mlx-report {version}")
    facts.append(Fact("Versions", versions))
    if meta.get("device"):
        facts.append(Fact("Device", str(meta["device"])))
    if date:
        facts.append(Fact("Date", date))
    return facts


# -- key figures -------------------------------------------------------------------------------

def _storage_note(graph: ModelGraph) -> str:
    """How the parameter bytes are stored: dtypes, largest share first; packed when quantized."""
    by_dtype: dict[str, int] = {}
    for t in graph.tensors:
        by_dtype[t.dtype] = by_dtype.get(t.dtype, 0) + t.nbytes
    dtypes = ", ".join(d for d, _ in sorted(by_dtype.items(), key=lambda kv: (-kv[1], kv[0])))
    quantized = any(t.kind == "quant_aux" for t in graph.tensors)
    return f"as stored: {dtypes or 'no parameters'}" + (" (quantized weights packed)" if quantized else "")


def key_figures(graph: ModelGraph) -> list[Figure]:
    """The numbers at a glance, each with its exact value."""
    t = graph.totals
    frozen = f"non-trainable {fmt_int(t.non_trainable_params)}"
    if t.running_stat_params:
        frozen += f" (BatchNorm running stats {fmt_int(t.running_stat_params)})"
    estimated = t.param_bytes + t.peak_activation_bytes  # the peak includes the inputs
    return [
        Figure("Parameters", fmt_si(t.params), fmt_int(t.params),
               [f"trainable {fmt_int(t.trainable_params)}", frozen]),
        Figure("MACs", fmt_si(t.macs), fmt_int(t.macs),
               [f"FLOPs {_both(t.flops)} = 2 × MACs",
                f"elementwise FLOPs (apart) {_both(t.elementwise_flops)}"]),
        Figure("Parameter memory", fmt_bytes(t.param_bytes), f"{fmt_int(t.param_bytes)} bytes",
               [_storage_note(graph)]),
        Figure("Activation memory", fmt_bytes(t.activation_bytes),
               f"{fmt_int(t.activation_bytes)} bytes",
               ["sum of leaf-call outputs",
                f"peak, inputs included (estimate, MLX CPU) {fmt_bytes(t.peak_activation_bytes)} "
                f"({fmt_int(t.peak_activation_bytes)} bytes)",
                *([f"peak measured (mx.get_peak_memory) {fmt_bytes(t.measured_peak_bytes)} "
                   f"({fmt_int(t.measured_peak_bytes)} bytes)"] if t.measured_peak_bytes is not None else [])]),
        Figure("Estimated total memory", fmt_bytes(estimated), f"{fmt_int(estimated)} bytes",
               ["parameters + peak activation memory (estimate)",
                f"inputs {fmt_bytes(t.input_bytes)} ({fmt_int(t.input_bytes)} bytes), in the peak"]),
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
TREE_WIDTHS = [31, 14, 14, 11, 7, 15, 8]   # % of the width; MACs fit 17 digits and commas


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
        params = Cell("(reused)", -1, "num") if r.reused else num_cell(r.params)
        percent = Cell("--" if r.reused else fmt_percent(r.params_percent), r.params_percent or 0, "num")
        rows.append(TreeRow(
            node_id=r.node_id, parent=parent, depth=r.depth, label=label, type=r.type,
            count=r.count, expanded=r.expanded, error=r.error,
            cells=[Cell(fmt_shapes(r.input_shapes), None, "shape"),
                   Cell(fmt_shapes(r.output_shapes), None, "shape"),
                   params, percent, num_cell(r.macs), Cell(r.trainable)],
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
                    Cell(fmt_shapes(c.output_shapes), None, "shape"), num_cell(c.macs_self),
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


# -- definitions -------------------------------------------------------------------------------

CONVENTION_TITLES = {
    "mac": "MAC", "flops": "FLOPs", "params": "Parameters", "activation_bytes": "Activation memory",
    "peak_activation_bytes": "Peak activation memory", "self_total": "Self and total",
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
        items += weight_definitions(report)
    uncounted = sorted(graph.uncounted_ops.items())
    return {"items": items, "uncounted": uncounted, "notes": table_notes,
            "value_reads": list(graph.meta.get("value_reads", []))}


def weight_definitions(report: WeightReport, grouped_by: str = "a layer type and parameter name "
                       "(e.g. Conv2d.weight)") -> list[tuple[str, str]]:
    """Definitions of the weight statistics, histograms and flags."""
    return [
        ("Weight statistics", "mean, std (population), zero fraction and histograms describe the "
         "finite values; min, max, abs max and the NaN/Inf counts cover all elements."),
        ("Histograms", f"bins are shared within {grouped_by}: power-of-two widths on a grid "
         f"aligned at zero, so each tensor's counts are exact; bar heights are scaled to each "
         f"tensor's tallest bin."),
        ("Flags", f"NaN/Inf: any non-finite element; dead: a weight tensor whose elements are all "
         f"zero; outlier: max |x − mean| > {report.outlier_k:g} × std."),
    ]


# -- appendix ----------------------------------------------------------------------------------

APPENDIX_HEADERS = ["#", "Call", "Type", "Input shape", "Output shape", "Params", "MACs self",
                    "MACs total", "Output bytes", "Config"]
APPENDIX_WIDTHS = [3.5, 22, 8.5, 11.5, 11.5, 7.5, 8.5, 8.5, 7.5, 10.5]


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
            Cell("(reused)", -1, "num") if d["call_index"] else num_cell(d.get("params", 0)),
            num_cell(d.get("macs_self", 0)), num_cell(d.get("macs_total", 0)),
            num_cell(d.get("output_bytes", 0)), Cell(_short_config(d["type"], d.get("config", "")), None, "config"),
        ])
    return rows
