"""Graphviz architecture diagrams of a ModelGraph: DOT source, SVG/PDF/PNG files, Jupyter SVG.

`build_dot` turns the visible graph (analysis/visible.py) into DOT with HTML-like
labels; `render_graph` runs Graphviz (`dot`, else the `graphviz-pure` wheel) and
writes the file atomically. SVG output is post-processed for embedding:
deterministic bytes, prefixed ids, `<title>` and `<desc>`. Never imports MLX.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import graphviz

from ..analysis.visible import DEFAULT_BUDGET, VisibleGraph, VisibleNode, visible_graph
from ..errors import RenderError
from ..escape import html_text
from ..graph import ModelGraph
from ..output import write_atomic
from .format import fmt_bytes, fmt_si
from .style import (FONT, FONT_FALLBACKS, HEAT_TITLES, HIGHLIGHT_TITLES, HIGHLIGHTS,
                    SVG_FONT_STACK, Style, get_style, io_text_color)

FIELDS = ("type", "shape", "params", "macs", "config")
HEATS = ("macs", "params", "memory")
FORMATS = ("svg", "pdf", "png", "dot")
DEFAULT_DEPTH = 2
ENGINE_TIMEOUT = 120  # seconds; a layout that takes longer is reported, never waited on


@dataclass
class Diagram:
    """DOT source of one diagram plus what the SVG needs around it."""

    source: str
    title: str
    description: str
    id_prefix: str
    notes: list[str] = field(default_factory=list)


# -- short text ------------------------------------------------------------------------------

def fmt_dims(shape: Sequence[int]) -> str:
    """(1, 128, 4096) -> 1×128×4096"""
    return "×".join(str(d) for d in shape) if len(shape) else "scalar"


def _num(n: int | float) -> str:
    """Three significant digits with an SI suffix: 16.8 M, 202 M, 6.74 G."""
    if abs(n) < 1000:
        return f"{n:,}"
    text = fmt_si(n, 2)
    value, unit = text.split(" ")
    digits = 2 if float(value) < 10 else 1 if float(value) < 100 else 0
    return fmt_si(n, digits)


def _pairs(config: str) -> tuple[list[str], dict[str, str]]:
    """Split an `_extra_repr` into positional values and key=value pairs (tuples kept whole)."""
    parts, depth, cur = [], 0, ""
    for ch in config:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    positional = [p for p in parts if "=" not in p]
    named = dict(p.split("=", 1) for p in parts if "=" in p)
    return positional, named


def _spatial(value: str | None, default: str) -> str:
    """'(3, 3)' -> '3', '(3, 1)' -> '3×1', '2' -> '2'; '' when equal to `default`."""
    if value is None:
        return ""
    nums = re.findall(r"-?\d+", value)
    if not nums:
        return ""
    text = nums[0] if len(set(nums)) == 1 else "×".join(nums)
    return "" if text == default else text


def short_config(type_name: str, config: str) -> str:
    """Key configuration in a few characters: '64→128, k3 s2' (conv), '4096→11008' (linear)."""
    if not config:
        return ""
    pos, kw = _pairs(config)
    if "Conv" in type_name and len(pos) >= 2:
        bits = [f"k{_spatial(kw.get('kernel_size'), '') or '?'}"]
        for key, letter, default in (("stride", "s", "1"), ("padding", "p", "0"), ("dilation", "d", "1")):
            v = _spatial(kw.get(key), default)
            if v:
                bits.append(letter + v)
        if kw.get("groups", "1") not in ("1",):
            bits.append("g" + kw["groups"])
        return f"{pos[0]}→{pos[1]}, " + " ".join(bits)
    if "input_dims" in kw and ("output_dims" in kw or "hidden_size" in kw):
        out = f"{kw['input_dims']}→{kw.get('output_dims') or kw['hidden_size']}"
        return out + (f", {kw['bits']}-bit" if "bits" in kw else "")
    if "Embedding" in type_name and len(pos) >= 2:
        return f"{pos[0]} × {pos[1]}" + (f", {kw['bits']}-bit" if "bits" in kw else "")
    if "Pool" in type_name and "kernel_size" in kw:
        bits = [f"k{_spatial(kw['kernel_size'], '')}"]
        for key, letter, default in (("stride", "s", "1"), ("padding", "p", "0")):
            v = _spatial(kw.get(key), default)
            if v:
                bits.append(letter + v)
        return " ".join(bits)
    if type_name == "GroupNorm" and len(pos) >= 2:
        return f"{pos[1]}, {pos[0]} groups"
    if "p" in kw and type_name.startswith("Dropout"):
        return f"p={float(kw['p']):.3g}"
    keep = [p for p in pos if len(p) <= 12]
    keep += [f"{k}={_round(v)}" for k, v in kw.items() if _worth_showing(k, v)]
    text = ", ".join(keep)
    return text if len(text) <= 32 else text[:31] + "…"


def _round(value: str) -> str:
    try:
        return f"{float(value):.3g}" if "." in value else value
    except ValueError:
        return value


_QUIET_KEYS = {"eps", "momentum", "affine", "track_running_stats", "bias", "mode", "align_corners",
               "traditional", "pytorch_compatible", "nonlinearity", "group_size"}


def _worth_showing(key: str, value: str) -> bool:
    return key not in _QUIET_KEYS and "<" not in value and len(value) <= 16


def _local_name(graph: ModelGraph, node_id: str, parent: str | None) -> str:
    """The path of a call relative to the drawn cluster around it."""
    path = graph.node(node_id)["path"]
    if not path:
        return graph.model_name
    if parent is not None:
        prefix = graph.node(parent)["path"]
        if prefix and path.startswith(prefix + "."):
            return path[len(prefix) + 1:]
    return path


def _fold_name(first: str, last: str) -> str:
    """'layers.0', 'layers.31' -> 'layers.0–31'."""
    a, b = re.match(r"(.*?)(\d+)$", first), re.match(r"(.*?)(\d+)$", last)
    if a and b and a.group(1) == b.group(1):
        return f"{first}–{b.group(2)}"
    return f"{first} … {last}"


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "model"


def _dot_id(node_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", node_id)


def _e(text: Any) -> str:
    """Text for an HTML-like label or SVG: markup escaped, control characters as `\\x1b`."""
    return html_text(str(text))


# -- figures and heat ------------------------------------------------------------------------

def _figures(graph: ModelGraph, node: VisibleNode) -> dict[str, int]:
    """Params, MACs and output bytes of a drawn node, summed over a fold's members.

    Params are counted as in the table: an array shared with an earlier call (a tied
    weight) belongs to that call, so the boxes add up to the model's total.
    """
    calls = [graph.node(c) for c in node.calls]
    return {
        "params": 0 if node.call_number > 1 else sum(d.get("params_counted", d.get("params", 0))
                                                     for d in calls),
        "macs": sum(d.get("macs_total", 0) for d in calls),
        "memory": sum(d.get("output_bytes", 0) for d in calls),
    }


@dataclass
class Heat:
    """Bins of one cost over the drawn boxes: the top step from half the largest value, ×4 steps below."""

    kind: str
    edges: list[float]      # lower bound of each palette step, ascending
    palette: tuple[str, ...]

    def colour(self, value: int) -> str | None:
        if value <= 0:
            return None
        return self.palette[max([0] + [i for i, lo in enumerate(self.edges) if value >= lo])]


HEAT_STEP = 4


def _heat(graph: ModelGraph, vis: VisibleGraph, kind: str, style: Style) -> Heat | None:
    values = [_figures(graph, n)[kind] for n in vis.boxes() if n.kind == "call"]
    top = max(values, default=0)
    if top <= 0:
        return None
    palette = style.heat[kind]
    n = len(palette)
    return Heat(kind, [top / 2 / HEAT_STEP ** (n - 1 - i) for i in range(n)], palette)


def _heat_legend(heat: Heat, style: Style, folded: bool = False) -> str:
    """The palette steps; with folded clusters drawn open, says their boxes are one block's."""
    fmt = fmt_bytes if heat.kind == "memory" else _num
    swatch = f'<TD BORDER="1" COLOR="{style.node_border}" BGCOLOR="{{}}">{{}}</TD>'
    cells = [f"<TD>{_e(HEAT_TITLES[heat.kind])}</TD>", swatch.format(style.node_fill, "0")]
    cells.append(swatch.format(heat.palette[0], f"&lt; {_e(fmt(int(heat.edges[1])))}"))
    for colour, lo in list(zip(heat.palette, heat.edges))[1:]:
        cells.append(swatch.format(colour, f"≥ {_e(fmt(int(lo)))}"))
    if folded:
        cells.append(f'<TD><FONT COLOR="{style.muted}">inside a ×N block: one block\'s</FONT></TD>')
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="3" CELLPADDING="3"><TR>'
            + "".join(cells) + "</TR></TABLE>>")


# -- labels ----------------------------------------------------------------------------------

def _shape_text(shapes: Sequence[Sequence[int]], dtypes: Sequence[str]) -> str:
    parts = []
    for s, t in list(zip(shapes, dtypes))[:3]:
        parts.append(fmt_dims(s) + ("" if t == "float32" else f" {t}"))
    if len(shapes) > 3:
        parts.append(f"+{len(shapes) - 3}")
    return ", ".join(parts)


def _badge(node: VisibleNode, style: Style) -> str:
    """A header cell: ×N on a dark chip for folds, 'call k/n' for reused modules; '' otherwise."""
    if node.count > 1:  # a fixed size, or the chip stretches when a lower row is wider
        text = f"×{node.count}"
        width, height = round(style.font_size * 0.62 * len(text)) + 10, round(style.font_size) + 6
        return (f'<TD BGCOLOR="{style.badge_fill}" STYLE="rounded" CELLPADDING="2" FIXEDSIZE="TRUE" '
                f'WIDTH="{width}" HEIGHT="{height}"><FONT COLOR="{style.badge_text}"><B>{text}</B></FONT></TD>')
    if node.call_number:  # same font size as the header: mixed sizes in one row misalign
        return f'<TD><FONT COLOR="{style.muted}">call {node.call_number}/{node.call_total}</FONT></TD>'

    return ""


def _label_table(header: str, badge: str, rows: list[str], align: str = "CENTER",
                 frame: str | None = None) -> str:
    """Header (name and type) with an optional badge cell beside it, then one row per line.

    `frame` draws a rounded border of that colour around the table, inside the node: the
    second outline of a folded box (graphviz's `peripheries` spill over cluster borders).
    """
    span = ' COLSPAN="2"' if badge else ""
    out = [f'<TR><TD ALIGN="{align}">{header}</TD>{badge}</TR>']
    out += [f'<TR><TD ALIGN="{align}"{span}>{r}</TD></TR>' for r in rows]
    border = f'BORDER="1" STYLE="rounded" COLOR="{frame}" CELLPADDING="2"' if frame else 'BORDER="0" CELLPADDING="1"'
    return f'<<TABLE {border} CELLBORDER="0" CELLSPACING="2">' + "".join(out) + "</TABLE>>"


def _header(name: str, type_name: str, style: Style) -> str:
    type_text = f' <FONT COLOR="{style.muted}">{_e(type_name)}</FONT>' if type_name else ""
    return f"<B>{_e(name)}</B>{type_text}"


def _name(graph: ModelGraph, vis: VisibleGraph, node: VisibleNode) -> str:
    parent = node.parent if node.parent in vis.nodes else None
    name = _local_name(graph, node.id, parent)
    if node.count > 1:
        name = _fold_name(name, _local_name(graph, node.members[-1], parent))
    return name


def _figure_row(figs: dict[str, int], fields: Sequence[str], node: VisibleNode,
                graph: ModelGraph) -> str:
    bits = []
    if "params" in fields and figs["params"]:
        bits.append(f"{_num(figs['params'])} params")
    elif "params" in fields and graph.node(node.id).get("params"):
        bits.append("params shared")  # a later call of a module, or a tied weight
    if "macs" in fields and figs["macs"]:
        bits.append(f"{_num(figs['macs'])} MACs")
    return " · ".join(bits)


def _small(text: str, style: Style) -> str:
    return f'<FONT COLOR="{style.muted}" POINT-SIZE="{style.small_size}">{_e(text)}</FONT>'


def _node_label(graph: ModelGraph, vis: VisibleGraph, node: VisibleNode,
                fields: Sequence[str], style: Style) -> str:
    d = graph.node(node.id)
    header = _header(_name(graph, vis, node), d["type"] if "type" in fields else "", style)
    rows = []
    config = short_config(d["type"], d.get("config", "")) if "config" in fields else ""
    if config:
        rows.append(_e(config))
    if "shape" in fields and d["output_shapes"]:
        rows.append(_e(_shape_text(d["output_shapes"], d["output_dtypes"])))
    figures = _figure_row(_figures(graph, node), fields, node, graph)
    if figures:
        rows.append(_small(figures, style))
    frame = style.node_border if node.count > 1 and style.fold_frame else None
    return _label_table(header, _badge(node, style), rows, frame=frame)


def _cluster_label(graph: ModelGraph, vis: VisibleGraph, node: VisibleNode,
                   fields: Sequence[str], style: Style) -> str:
    d = graph.node(node.id)
    header = _header(_name(graph, vis, node), d["type"] if "type" in fields else "", style)
    figures = _figure_row(_figures(graph, node), fields, node, graph)
    if figures and node.count > 1:
        figures += f" in {node.count} blocks"
    return _label_table(header, _badge(node, style), [_small(figures, style)] if figures else [], "LEFT")


def _io_label(graph: ModelGraph, node_id: str, style: Style) -> str:
    d = graph.node(node_id)
    kind = d["kind"]
    name = d.get("name", "")
    title = kind if name.isdigit() and len(graph.inputs() if kind == "input" else graph.outputs()) == 1 \
        else (f"{kind} {name}" if name.isdigit() else name)
    colour = io_text_color(style)
    shape = _shape_text(d.get("shapes", []), d.get("dtypes", []))
    return (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
            f'<TR><TD><FONT COLOR="{colour}"><B>{_e(title)}</B></FONT></TD></TR>'
            f'<TR><TD><FONT COLOR="{colour}">{_e(shape)}</FONT></TD></TR></TABLE>>')


# -- DOT -------------------------------------------------------------------------------------

def check_options(fields: Sequence[str] = FIELDS, heat: str | None = None, rankdir: str = "TB",
                  edge_labels: str = "shape", style: str | Style = "paper",
                  highlight: dict[str, str] | None = None) -> None:
    """Raise ValueError naming the first unknown option value."""
    get_style(style)
    bad_kinds = sorted({k for k in (highlight or {}).values() if k not in HIGHLIGHTS})
    if bad_kinds:
        raise ValueError(f"unknown highlight kind(s) {', '.join(bad_kinds)}; choose from "
                         f"{', '.join(HIGHLIGHTS)}")
    bad = [f for f in fields if f not in FIELDS]
    if bad:
        raise ValueError(f"unknown field(s) {', '.join(bad)}; choose from {','.join(FIELDS)}")
    if heat is not None and heat not in HEATS:
        raise ValueError(f"unknown heat {heat!r}; choose one of {', '.join(HEATS)}")
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"rankdir must be TB or LR, got {rankdir!r}")
    if edge_labels not in ("shape", "none"):
        raise ValueError(f"edge_labels must be 'shape' or 'none', got {edge_labels!r}")


def _title_label(title: str, subtitle: str, style: Style) -> str:
    sub = (f'<TR><TD><FONT POINT-SIZE="{style.small_size}" COLOR="{style.muted}">{_e(subtitle)}</FONT></TD></TR>'
           if subtitle else "")
    return (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2">'
            f'<TR><TD><FONT POINT-SIZE="{style.title_size}"><B>{_e(title)}</B></FONT></TD></TR>{sub}</TABLE>>')


def _subtitle(graph: ModelGraph, fields: Sequence[str] = FIELDS) -> str:
    t = graph.totals
    bits = []
    if t.params and "params" in fields:
        bits.append(f"{_num(t.params)} params")
    if t.macs and "macs" in fields:
        bits.append(f"{_num(t.macs)} MACs")
    shapes = [_shape_text(graph.node(n).get("shapes", []), graph.node(n).get("dtypes", []))
              for n in graph.inputs()]
    if shapes:
        bits.append("input " + "; ".join(shapes))
    return " · ".join(bits)


def _edge_label(vis: VisibleGraph, graph: ModelGraph, edge, fields: Sequence[str]) -> str:
    """The edge's shapes, unless the producer's box already shows exactly that shape."""
    src = vis.nodes.get(edge.src)
    if src is not None and not src.is_cluster:
        d = graph.node(edge.src)
        shown = d.get("shapes", []) if src.kind == "input" else \
            d["output_shapes"] if "shape" in fields else None
        if shown is not None and [tuple(s) for s in shown] == edge.shapes:
            return ""
    return _shape_text(edge.shapes[:2], edge.dtypes[:2]) + (" …" if len(edge.shapes) > 2 else "")


def _digraph(name: str, st: Style, rankdir: str) -> graphviz.Digraph:
    """An empty diagram with the style's defaults for the graph, nodes and edges."""
    return graphviz.Digraph(name=name, graph_attr={
        "rankdir": rankdir, "newrank": "true", "nodesep": str(st.nodesep), "ranksep": str(st.ranksep),
        "fontname": st.font, "fontsize": str(st.cluster_size), "fontcolor": st.text,
        "bgcolor": "white", "pad": "0.1", "outputorder": "edgesfirst", "labelloc": "t",
        "labeljust": "c",
    }, node_attr={
        "shape": "box", "style": "rounded,filled", "fontname": st.font, "fontsize": str(st.font_size),
        "fontcolor": st.text, "color": st.node_border, "fillcolor": st.node_fill,
        "penwidth": str(st.node_penwidth), "margin": st.node_margin,
    }, edge_attr={
        "color": st.edge_color, "penwidth": str(st.edge_penwidth), "arrowsize": str(st.arrow_size),
        "fontname": st.font, "fontsize": str(st.small_size), "fontcolor": st.muted,
    })


def _box_attrs(graph: ModelGraph, node: VisibleNode, st: Style, heat: Heat | None) -> dict[str, str]:
    """Fill, border and margin of a drawn call: weights tinted (or heat), reuse dashed, errors red."""
    d = graph.node(node.id)
    attrs: dict[str, str] = {}
    if d.get("params", 0) and node.call_number <= 1:
        attrs["fillcolor"] = st.weight_fill
    if heat is not None:
        attrs["fillcolor"] = heat.colour(_figures(graph, node)[heat.kind]) or st.node_fill
    if node.call_number:
        attrs["style"] = f"rounded,filled,{st.reuse_border_style}"
    if node.count > 1:
        attrs["margin"] = st.fold_margin
    if d.get("error"):
        attrs["color"], attrs["penwidth"] = st.error_border, str(st.node_penwidth * 2)
    return attrs


def _highlights(graph: ModelGraph, vis: VisibleGraph, highlight: dict[str, str]) -> dict[str, str]:
    """Drawn node id -> highlight kind: its own path's (first of added, removed, changed among
    folded members), else "changed" for a box hiding a highlighted call inside it."""
    order = list(HIGHLIGHTS)
    kinds = _call_kinds(graph, highlight)
    out: dict[str, str] = {}
    for n in vis.nodes.values():
        if n.kind != "call" or n.parent is None:  # the model itself is the canvas
            continue
        own = {highlight[graph.node(c)["path"]] for c in n.calls if graph.node(c)["path"] in highlight}
        if own:
            out[n.id] = min(own, key=order.index)
        elif not n.is_cluster and any(c in kinds for c in n.calls):
            out[n.id] = "changed"
    return out


def _call_kinds(graph: ModelGraph, highlight: dict[str, str]) -> dict[str, str]:
    """Call id -> its path's highlight kind, "changed" when only calls inside it have one:
    blocks of different kinds never fold together (an added block stays apart)."""
    out: dict[str, str] = {}
    for n in reversed(list(graph.calls())):  # children before their parents
        path = graph.node(n)["path"]
        if path in highlight:
            out[n] = highlight[path]
        elif any(c in out for c in graph.children(n)):
            out[n] = "changed"
    return out


def _highlight_attrs(kind: str, st: Style) -> dict[str, str]:
    """Outline colour and width, fill and dash of a highlighted box or cluster."""
    colour, fill, dash = st.highlight[kind]
    attrs = {"color": colour, "penwidth": str(st.highlight_penwidth), "class": f"highlight_{kind}",
             "style": "rounded,filled" + ("," + dash if dash != "solid" else "")}
    if fill:
        attrs["fillcolor"] = fill
    return attrs


def _highlight_legend(kinds: Sequence[str], st: Style) -> str:
    lead = "Forward pass:" if set(kinds) == {"failed"} else "Compared with the other side:"
    cells = [f"<TD>{lead}</TD>"]
    for kind in kinds:
        colour, fill, dash = st.highlight[kind]
        style = ' STYLE="dashed"' if dash == "dashed" else ""
        cells.append(f'<TD BORDER="2" COLOR="{colour}" BGCOLOR="{fill or st.node_fill}"{style}>'
                     f'{_e(HIGHLIGHT_TITLES[kind])}</TD>')
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="4" CELLPADDING="3"><TR>'
            + "".join(cells) + "</TR></TABLE>>")


def build_diagram(graph: ModelGraph, depth: int = DEFAULT_DEPTH, expand: Sequence[str] = (),
                  fold: bool = True, fields: Sequence[str] = FIELDS, style: str | Style = "paper",
                  heat: str | None = None, rankdir: str = "TB", edge_labels: str = "shape",
                  title: str | None = None, id_prefix: str | None = None,
                  budget: int = DEFAULT_BUDGET, highlight: dict[str, str] | None = None) -> Diagram:
    """The diagram of `graph` at `depth`: DOT source, title, description and notes.

    `highlight` maps module paths to "added", "removed" or "changed" (a diff): those boxes
    and clusters get a coloured outline, and a box hiding such a call inside is "changed";
    a legend names the kinds shown.
    """
    fields = tuple(fields)
    failed = graph.meta.get("failed") or {}
    if highlight is None and failed.get("node") in graph.graph:  # a partial trace: mark the failure
        highlight = {graph.node(failed["node"])["path"]: "failed"}
    check_options(fields, heat, rankdir, edge_labels, style, highlight)
    st = get_style(style)
    keys = _call_kinds(graph, highlight) if highlight else None
    vis = visible_graph(graph, depth=depth, expand=tuple(expand), fold=fold, budget=budget,
                        fold_keys=keys)
    heat_map = _heat(graph, vis, heat, st) if heat else None
    marks = _highlights(graph, vis, highlight) if highlight else {}
    title = graph.model_name if title is None else title
    dot = _digraph(_slug(graph.model_name), st, rankdir)
    if title:
        dot.attr(label=_title_label(title, _subtitle(graph, fields), st))

    for n in vis.nodes.values():
        if n.kind != "call":
            dot.node(_dot_id(n.id), label=_io_label(graph, n.id, st), style="filled",
                     fillcolor=st.io_fill, color=st.io_border)

    def add(target: graphviz.Digraph, node: VisibleNode, level: int) -> None:
        if node.is_cluster and node.parent is None:  # the model itself is the canvas
            for c in node.children:
                add(target, vis.nodes[c], 0)
            return
        if node.is_cluster:  # titled by a plain node, not a label: edges route around nodes
            with target.subgraph(name=f"cluster_{_dot_id(node.id)}") as sub:
                sub.attr(label="", style="rounded,filled", fillcolor=st.cluster_fill(level),
                         color=st.cluster_border, penwidth=str(st.cluster_penwidth))
                if node.id in marks:
                    sub.attr(**_highlight_attrs(marks[node.id], st))
                sub.node(_title_id(node.id), label=_cluster_label(graph, vis, node, fields, st),
                         shape="plain", style="")
                for c in node.children:
                    add(sub, vis.nodes[c], level + 1)
                if node.id in firsts:  # the title on the rank of the first item, left of it
                    with sub.subgraph() as same:
                        same.attr(rank="same")
                        same.node(_title_id(node.id))
                        same.node(firsts[node.id])
            return
        node_style = replace(st, muted=st.text) if heat_map else st  # grey fades on heat
        attrs = _box_attrs(graph, node, st, heat_map)
        if node.id in marks:
            attrs.update(_highlight_attrs(marks[node.id], st))
        target.node(_dot_id(node.id), label=_node_label(graph, vis, node, fields, node_style), **attrs)

    firsts = _first_items(vis)
    if graph.root in vis.nodes:
        add(dot, vis.nodes[graph.root], 0)

    for cluster, first in firsts.items():  # each title left of its cluster's first item
        dot.edge(_title_id(cluster), first, style="invis")
    for e in vis.edges:  # all at the top level: an edge inside a cluster pulls its nodes in
        label = _edge_label(vis, graph, e, fields) if edge_labels == "shape" else ""
        dot.edge(_dot_id(e.src), _dot_id(e.dst), **({"label": f" {label} "} if label else {}))

    if heat_map is not None:
        folded_open = any(n.is_cluster and n.count > 1 for n in vis.nodes.values())
        dot.node("heat_legend", label=_heat_legend(heat_map, st, folded_open), shape="plain", style="")
        sinks = [_dot_id(n.id) for n in vis.nodes.values() if n.kind == "output"]
        for s in sinks[:1]:
            dot.edge(s, "heat_legend", style="invis")
    if marks:
        kinds = [k for k in HIGHLIGHTS if k in marks.values()]
        dot.node("highlight_legend", label=_highlight_legend(kinds, st), shape="plain", style="")
        sinks = [_dot_id(n.id) for n in vis.nodes.values() if n.kind == "output"]
        for s in sinks[:1]:
            dot.edge(s, "highlight_legend", style="invis")

    description = _describe(graph, vis, fold)
    return Diagram(source=dot.source, title=title or graph.model_name, description=description,
                   id_prefix=id_prefix or _slug(graph.model_name), notes=list(vis.notes))


def _title_id(cluster_id: str) -> str:
    return f"{_dot_id(cluster_id)}_title"


def _first_items(vis: VisibleGraph) -> dict[str, str]:
    """For each cluster, the DOT id of its first item not fed from inside it: its title sits beside it."""
    inside: dict[str, set[str]] = {}

    def collect(n: VisibleNode) -> set[str]:
        found = {n.id}
        for c in n.children:
            found |= collect(vis.nodes[c])
        inside[n.id] = found
        return found

    for n in vis.nodes.values():
        if n.parent is None and n.kind == "call":
            collect(n)
    preds: dict[str, set[str]] = {}
    for e in vis.edges:
        preds.setdefault(e.dst, set()).add(e.src)
    out: dict[str, str] = {}
    for k in vis.clusters():
        if k.parent is None:  # the model is the canvas, not a cluster
            continue
        for c in k.children:
            members = inside[c]
            if not any(p in inside[k.id] and p not in members for m in members for p in preds.get(m, ())):
                out[k.id] = _title_id(c) if vis.nodes[c].is_cluster else _dot_id(c)
                break
    return out


def _describe(graph: ModelGraph, vis: VisibleGraph, fold: bool) -> str:
    boxes = sum(1 for n in vis.boxes() if n.kind == "call")
    folds = [n.count for n in vis.nodes.values() if n.count > 1]
    text = (f"Architecture of {graph.model_name} ({graph.model_type}) drawn by mlx-report: "
            f"depth {vis.depth}, {boxes} boxes, {len(vis.clusters())} groups")
    if folds:
        text += ", repeated blocks folded (" + ", ".join(f"×{c}" for c in folds) + ")"
    sub = _subtitle(graph)
    text += (f"; {sub}" if sub else "") + "."
    return text + "".join(f" Note: {n}." for n in vis.notes)


def build_dot(graph: ModelGraph, **options: Any) -> str:
    """DOT source of the architecture diagram (options as in `build_diagram`)."""
    return build_diagram(graph, **options).source


# -- engines ---------------------------------------------------------------------------------

def find_engine(fmt: str) -> list[str]:
    """The command that lays out DOT into `fmt`: system `dot`, else `graphviz-pure`."""
    dot = shutil.which("dot")
    if dot:
        return [dot]
    pure = shutil.which("graphviz-pure") or _beside_python("graphviz-pure")
    if pure and fmt != "pdf":
        return [pure]
    if pure:
        raise RenderError("PDF output needs Graphviz `dot` (graphviz-pure writes SVG/PNG only): "
                          "install graphviz (apt-get install graphviz | brew install graphviz) "
                          "or write .svg")
    raise RenderError("no Graphviz engine found: install graphviz (apt-get install graphviz | "
                      "brew install graphviz) or `pip install graphviz-pure` (SVG/PNG only)")


def is_pure(cmd: Sequence[str]) -> bool:
    """Whether an engine command is the graphviz-pure wheel rather than Graphviz `dot`."""
    return Path(cmd[0]).name.startswith("graphviz-pure")


def _beside_python(name: str) -> str | None:
    """A console script installed in the running interpreter's bin/ (a venv not on PATH)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


@functools.lru_cache(maxsize=None)
def _system_font() -> str:
    """FONT when fontconfig finds it, else the first fallback it finds; FONT without fontconfig."""
    fc = shutil.which("fc-match")
    if not fc:
        return FONT
    for name in (FONT, *FONT_FALLBACKS):
        try:
            found = subprocess.run([fc, "-f", "%{family}", name], capture_output=True, text=True,
                                   timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return FONT
        if name.lower() in found.lower():
            return name
    return FONT


def run_engine(source: str, fmt: str, dpi: int = 150) -> bytes:
    """Lay out DOT `source` into `fmt` bytes with the engine `find_engine` picks."""
    cmd = find_engine(fmt)
    # graphviz-pure measures Liberation Sans right but draws PNG text in its bundled fonts,
    # where only Arial/Helvetica map to the sans-serif one (Arimo, same metrics).
    font = "Arial" if is_pure(cmd) else _system_font()
    if font != FONT:
        source = source.replace(f'fontname="{FONT}"', f'fontname="{font}"')
    args = cmd + [f"-T{fmt}"] + ([f"-Gdpi={dpi}"] if fmt == "png" else [])
    env = dict(os.environ, SOURCE_DATE_EPOCH="0")
    try:
        proc = subprocess.run(args, input=source.encode(), capture_output=True,
                              timeout=ENGINE_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        raise RenderError(f"Graphviz took over {ENGINE_TIMEOUT} s: lower --depth or use --fold") from None
    except OSError as e:
        raise RenderError(f"cannot run {cmd[0]}: {e}") from e
    if proc.returncode != 0 or not proc.stdout:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise RenderError(f"{Path(cmd[0]).name} failed: {message[0] if message else 'no output'}")
    return proc.stdout


# -- SVG for embedding -----------------------------------------------------------------------

def postprocess_svg(svg: str, id_prefix: str, title: str, description: str) -> str:
    """Deterministic, embeddable SVG: no comments, ids prefixed, `<title>`/`<desc>` first."""
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.S)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg, flags=re.S)
    p = _slug(id_prefix)
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{p}-{m.group(1)}"', svg)
    svg = re.sub(r'(href=")#([^"]+)"', lambda m: f'{m.group(1)}#{p}-{m.group(2)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{p}-{m.group(1)})", svg)
    svg = re.sub(r'font-family="[^"]*"', f'font-family="{SVG_FONT_STACK}"', svg)
    head = (f'<title id="{p}-title">{_e(title)}</title>\n'
            f'<desc id="{p}-desc">{_e(description)}</desc>\n')
    svg = re.sub(r"(<svg\b[^>]*)>\s*",
                 lambda m: f'{m.group(1)} role="img" aria-labelledby="{p}-title {p}-desc">\n{head}',
                 svg, count=1)
    svg = svg.replace("\r\n", "\n")
    return svg if svg.endswith("\n") else svg + "\n"


def diagram_bytes(diagram: Diagram, fmt: str, style: str | Style = "paper") -> bytes:
    """The diagram as `fmt` bytes (svg, pdf, png or dot)."""
    if fmt == "dot":
        return diagram.source.encode()
    if fmt not in FORMATS:
        raise RenderError(f"unknown diagram format {fmt!r}; use .svg, .pdf, .png or .dot")
    data = run_engine(diagram.source, fmt, dpi=get_style(style).png_dpi)
    if fmt == "svg":
        text = postprocess_svg(data.decode(), diagram.id_prefix, diagram.title, diagram.description)
        return text.encode()
    return data


def output_format(path: str | os.PathLike) -> str:
    """The diagram format named by a file's extension (svg, pdf, png, dot/gv)."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt == "gv":
        return "dot"
    if fmt not in FORMATS:
        raise RenderError(f"cannot tell the diagram format from {path.name!r}: "
                          f"end the output name in .svg, .pdf, .png or .dot")
    return fmt


def render_graph(graph: ModelGraph, path: str | os.PathLike, protect: Sequence[Path] = (),
                 **options: Any) -> Path:
    """Write the diagram of `graph` to `path`; the extension picks the format."""
    target = Path(path)
    fmt = output_format(target)
    diagram = build_diagram(graph, **options)
    return write_atomic(target, diagram_bytes(diagram, fmt, options.get("style", "paper")),
                        protect=protect)


def render_svg(graph: ModelGraph, **options: Any) -> str:
    """The diagram as embeddable SVG text."""
    diagram = build_diagram(graph, **options)
    return diagram_bytes(diagram, "svg", options.get("style", "paper")).decode()


def repr_svg(graph: ModelGraph) -> str | None:
    """Jupyter's `_repr_svg_` for a ModelGraph: the default diagram, or None without Graphviz."""
    try:
        return render_svg(graph)
    except RenderError:
        return None


class DiagramSVG:
    """A diagram with options that shows itself in Jupyter: `DiagramSVG(graph, depth=3)`."""

    def __init__(self, graph: ModelGraph, **options: Any):
        self.graph = graph
        self.options = options

    def _repr_svg_(self) -> str | None:
        try:
            return render_svg(self.graph, **self.options)
        except RenderError:
            return None

    def save(self, path: str | os.PathLike) -> Path:
        return render_graph(self.graph, path, **self.options)
