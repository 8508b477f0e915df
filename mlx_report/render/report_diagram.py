"""The report's architecture diagrams: an overview that fits the page, then blocks in detail.

Uses the diagram renderer (render/graphviz.py) through `render_graph` into a temporary
.svg file, imported lazily: when it is missing or fails, the section says why instead.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..analysis.folding import find_folds
from ..analysis.subgraph import block_graph
from ..graph import ModelGraph

PT_PER_MM = 72 / 25.4
PAGE_W_MM = 180.0        # A4 portrait text width in the report's page setup
PAGE_H_MM = 222.0        # what a figure may take on one page, caption included
MIN_SCALE = 0.5          # below this, 10 pt labels fall under 5 pt: draw less instead
MAX_DETAILS = 6
DEFAULT_DEPTH = 3


@dataclass
class DiagramFigure:
    svg: str
    caption: str
    width_mm: float
    height_mm: float


@dataclass
class DiagramSection:
    figures: list[DiagramFigure] = field(default_factory=list)
    unavailable: str | None = None
    notes: list[str] = field(default_factory=list)


def _size_pt(svg: str) -> tuple[float, float]:
    m = re.search(r'<svg\b[^>]*?\bwidth="([\d.]+)pt"[^>]*?\bheight="([\d.]+)pt"', svg)
    if not m:
        raise ValueError("the diagram SVG has no size in points")
    return float(m.group(1)), float(m.group(2))


def _render(graph: ModelGraph, depth: int, prefix: str) -> str:
    from .graphviz import render_graph  # lazy: the report works without the diagram module

    with tempfile.TemporaryDirectory(prefix="mlx-report-") as tmp:
        path = Path(tmp) / "diagram.svg"
        render_graph(graph, path, depth=depth, fold=True, style="paper", id_prefix=prefix)
        return path.read_text(encoding="utf-8")


def fit(svg: str, caption: str, width_mm: float = PAGE_W_MM, height_mm: float = PAGE_H_MM
        ) -> tuple[DiagramFigure, float]:
    """The figure scaled into width × height (never enlarged) and the scale it needed."""
    w_pt, h_pt = _size_pt(svg)
    w_mm, h_mm = w_pt / PT_PER_MM, h_pt / PT_PER_MM
    scale = min(1.0, width_mm / w_mm, height_mm / h_mm)
    svg = re.sub(r'(<svg\b[^>]*?)\s+width="[\d.]+pt"\s+height="[\d.]+pt"', r"\1", svg, count=1)
    svg = re.sub(r"<\?xml[^>]*>\s*", "", svg)
    return DiagramFigure(svg, caption, round(w_mm * scale, 1), round(h_mm * scale, 1)), scale


def _largest_fitting(graph: ModelGraph, depth: int, prefix: str, caption: str
                     ) -> tuple[DiagramFigure, int]:
    """The deepest drawing at or below `depth` that fits the page at MIN_SCALE or more."""
    d = depth
    while True:
        figure, scale = fit(_render(graph, d, f"{prefix}-d{d}"), caption)
        if scale >= MIN_SCALE or d <= 1:
            return figure, d
        d -= 1


def _detail_blocks(graph: ModelGraph, shown_depth: int, wanted_depth: int) -> list[str]:
    """Calls at the drawn depth whose insides were cut off, one per distinct structure."""
    folds = find_folds(graph)
    seen: set[str] = set()
    out = []
    for n in graph.calls():
        d = graph.node(n)
        if d["depth"] != shown_depth or not d["children"] or d["call_index"]:
            continue
        if n in folds and folds[n].first != n:
            continue
        key = _structure(graph, n)
        if key in seen:
            continue
        subtree_depth = max(graph.node(c)["depth"] for c in _descendants(graph, n))
        if subtree_depth <= shown_depth or shown_depth >= wanted_depth:
            continue
        seen.add(key)
        out.append(n)
    return out[:MAX_DETAILS]


def _structure(graph: ModelGraph, n: str) -> tuple:
    """Types of the call and its subtree, sizes ignored: blocks differing only in width match."""
    return (graph.node(n)["type"], tuple(_structure(graph, c) for c in graph.children(n)))


def _descendants(graph: ModelGraph, n: str) -> list[str]:
    out = [n]
    for c in graph.children(n):
        out += _descendants(graph, c)
    return out


def diagram_section(graph: ModelGraph, depth: int | None = None) -> DiagramSection:
    """Overview at the deepest depth that fits a page; blocks cut off by it drawn in detail."""
    wanted = DEFAULT_DEPTH if depth is None else max(depth, 1)
    section = DiagramSection()
    try:
        overview, shown = _largest_fitting(graph, wanted, "overview",
                                           f"{graph.model_name}: call depth {wanted}")
    except Exception as e:  # the renderer is optional: say why there is no drawing
        section.unavailable = f"{type(e).__name__}: {e}".strip()
        return section
    overview.caption = (f"Architecture of {graph.model_name} ({graph.model_type}) down to call depth "
                        f"{shown}; identical consecutive blocks drawn once with ×N. Edges follow "
                        f"the data: a sum (a residual connection) is fed by an edge from each of "
                        f"its terms' producers.")
    section.figures.append(overview)
    if shown < wanted:
        section.notes.append(f"At depth {wanted} the diagram is too large to read as one figure "
                             f"(a page): the overview is drawn at depth {shown} and its blocks "
                             f"follow in detail.")
    for i, n in enumerate(_detail_blocks(graph, shown, wanted)):
        d = graph.node(n)
        sub = block_graph(graph, n)
        try:
            fig, sub_depth = _largest_fitting(sub, max(wanted - d["depth"], 1), f"block{i}",
                                              "")
        except Exception as e:
            section.notes.append(f"block {d['path']} could not be drawn: {e}")
            continue
        levels = "one level" if sub_depth == 1 else f"{sub_depth} levels"
        fig.caption = (f"Block {d['path']} ({d['type']}) in detail, {levels} below it; other "
                       f"blocks of the same structure differ only in their sizes.")
        section.figures.append(fig)
    return section
