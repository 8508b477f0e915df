"""The report's charts as inline SVG text: costs by type, along the blocks, activations, histograms.

Hand-written SVG rather than matplotlib: these are bars and a few labels, drawn
straight from counts the analysis already has; no plotting dependency to install
or import (matplotlib's import alone is ~1 s, and ~40 ms per figure times ~160
small multiples for ResNet-50), bytes are deterministic by construction (no ids,
hash salts or dates), and every label stays a <text> element, searchable in the PDF.
"""

from __future__ import annotations

import html
import math
from typing import Sequence

from ..analysis.breakdown import CallCost, TypeCost
from ..escape import terminal_safe
from .format import fmt_bytes, fmt_si
from .style import HEAT_PALETTES, SVG_FONT_STACK

PARAMS_COLOUR = HEAT_PALETTES["params"][-1]
MACS_COLOUR = HEAT_PALETTES["macs"][-1]
MEMORY_COLOUR = HEAT_PALETTES["memory"][-1]
HIST_COLOUR = "#4A6FA5"
FLAG_COLOUR = "#C00000"
TEXT = "#222222"
MUTED = "#666666"
GRID = "#DDDDDD"
BAND = "#F2F2F2"
WIDTH = 720


def _e(text: object) -> str:
    return html.escape(terminal_safe(str(text)), quote=True)


def _n(x: float) -> str:
    """A coordinate with one decimal, no trailing zeros: deterministic and short."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _svg(width: float, height: float, body: list[str], title: str, desc: str = "") -> str:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(width)}" height="{_n(height)}" '
            f'viewBox="0 0 {_n(width)} {_n(height)}" font-family="{SVG_FONT_STACK}" '
            f'role="img" class="chart">')
    meta = f"<title>{_e(title)}</title>" + (f"<desc>{_e(desc)}</desc>" if desc else "")
    return "\n".join([head, meta, *body, "</svg>"]) + "\n"


def _text(x: float, y: float, text: str, size: float = 10, anchor: str = "start",
          fill: str = TEXT, weight: str = "normal", rotate: float | None = None) -> str:
    extra = f' transform="rotate({_n(rotate)} {_n(x)} {_n(y)})"' if rotate is not None else ""
    bold = ' font-weight="bold"' if weight == "bold" else ""
    return (f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" text-anchor="{anchor}" '
            f'fill="{fill}"{bold}{extra}>{_e(text)}</text>')


def _rect(x: float, y: float, w: float, h: float, fill: str, extra: str = "") -> str:
    return (f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(max(w, 0))}" height="{_n(max(h, 0))}" '
            f'fill="{fill}"{extra}/>')


def _bars(boxes: list[tuple[float, float, float, float]], fill: str) -> str:
    """Many rectangles as one <path>: a fraction of the elements for the PDF renderer to draw."""
    d = "".join(f"M{_n(x)} {_n(y)}h{_n(w)}v{_n(h)}h{_n(-w)}z" for x, y, w, h in boxes if w > 0 and h > 0)
    return f'<path d="{d}" fill="{fill}"/>' if d else ""


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str = GRID, dash: bool = False) -> str:
    d = ' stroke-dasharray="3,2"' if dash else ""
    return (f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{stroke}" '
            f'stroke-width="0.8"{d}/>')


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def _nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above `value`."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * exp >= value * 0.999999:
            return step * exp
    return 10 * exp


# -- params and MACs by layer type -------------------------------------------------------------

def type_chart(rows: Sequence[TypeCost], limit: int = 14) -> str:
    """Horizontal bars per layer type: own params (left panel) and self MACs (right panel)."""
    rows = list(rows)
    if len(rows) > limit:
        rest = rows[limit - 1:]
        rows = rows[:limit - 1] + [TypeCost(f"{len(rest)} other types", sum(r.calls for r in rest),
                                            sum(r.params for r in rest), sum(r.macs for r in rest))]
    label_w, panel_w, gap, row_h, top = 150.0, 230.0, 50.0, 18.0, 34.0
    height = top + row_h * len(rows) + 10
    body: list[str] = []
    panels = (("Parameters (own)", PARAMS_COLOUR, [r.params for r in rows], fmt_si),
              ("MACs (self)", MACS_COLOUR, [r.macs for r in rows], fmt_si))
    for p, (title, colour, values, fmt) in enumerate(panels):
        x0 = label_w + p * (panel_w + gap)
        total = sum(values) or 1
        peak = max(values, default=0) or 1  # a partial trace may have no rows
        body.append(_text(x0, 14, title, 11, weight="bold"))
        body.append(_line(x0, top - 6, x0, height - 8, MUTED))
        for i, v in enumerate(values):
            y = top + i * row_h
            w = (panel_w - 62) * v / peak
            body.append(_rect(x0, y, w, row_h - 5, colour))
            label = f"{fmt(v)} ({100 * v / total:.0f}%)" if v else "–"
            body.append(_text(x0 + w + 4, y + row_h - 8, label, 9, fill=MUTED))
    for i, r in enumerate(rows):
        y = top + i * row_h
        body.append(_text(label_w - 8, y + row_h - 8, _clip(r.type, 24), 10, anchor="end"))
    width = label_w + 2 * panel_w + gap
    return _svg(width, height, body, "Parameters and MACs by layer type",
                "Own parameters (counted once per module) and self MACs summed per layer type.")


# -- along the blocks ------------------------------------------------------------------------

def _axis_label(v: float, unit: str = "") -> str:
    """Axis numbers: 250 M, 2.5 G, 10 MB (no needless decimals)."""
    fmt = fmt_bytes if unit == "bytes" else fmt_si
    text = fmt(v, 1)
    return text.replace(".0 ", " ")


def _axis_ticks(x0: float, y0: float, h: float, w: float, top_value: float, unit: str = "") -> list[str]:
    out = []
    for frac in (0.0, 0.5, 1.0):
        y = y0 + h - frac * h
        out.append(_line(x0, y, x0 + w, y, GRID))
        out.append(_text(x0 - 4, y + 3, _axis_label(top_value * frac, unit) if frac else "0", 8,
                         anchor="end", fill=MUTED))
    return out


def blocks_chart(blocks: Sequence[CallCost]) -> str:
    """Per-block MACs (top) and params (bottom) in call order, block names below."""
    n = max(len(blocks), 1)
    left, right, panel_h, gap, top = 58.0, 10.0, 80.0, 34.0, 24.0
    plot_w = WIDTH - left - right
    step = plot_w / n
    names = [_clip(b.path, 18) for b in blocks]
    label_h = 6.0 + 5.2 * max((len(s) for s in names), default=4) * 0.72
    height = top + 2 * panel_h + gap + label_h + 8
    body: list[str] = []
    panels = (("MACs per block", MACS_COLOUR, [b.macs for b in blocks]),
              ("Parameters per block", PARAMS_COLOUR, [b.params for b in blocks]))
    for p, (title, colour, values) in enumerate(panels):
        y0 = top + p * (panel_h + gap)
        peak = _nice_max(max(values, default=0))
        body.append(_text(left, y0 - 12, title, 11, weight="bold"))
        body += _axis_ticks(left, y0, panel_h, plot_w, peak)
        body.append(_bars([(left + i * step + step * 0.15, y0 + panel_h - panel_h * v / peak,
                             step * 0.7, panel_h * v / peak) for i, v in enumerate(values)], colour))
    base = top + 2 * panel_h + gap + 4
    size = min(9.0, max(5.5, step * 0.8))
    for i, name in enumerate(names):
        x = left + (i + 0.5) * step + size * 0.35
        body.append(_text(x, base, name, size, anchor="end", fill=TEXT, rotate=-60))
    return _svg(WIDTH, height, body, "MACs and parameters along the depth of the model",
                "One bar per top-level block in call order (Sequential containers looked through).")


# -- activations -------------------------------------------------------------------------------

def activation_chart(leaves: Sequence[CallCost], block_index: Sequence[int],
                     block_names: Sequence[str], peak_live: int = 0) -> str:
    """Output bytes of each leaf call in call order, blocks as bands, the live peak dashed."""
    n = max(len(leaves), 1)
    left, right, top, plot_h = 58.0, 10.0, 30.0, 110.0
    plot_w = WIDTH - left - right
    step = plot_w / n
    values = [c.output_bytes for c in leaves]
    peak = _nice_max(max([*values, peak_live], default=0))
    body: list[str] = [_text(left, 14, "Output bytes of each leaf call, in call order", 11,
                             weight="bold")]
    # bands: runs of leaves in the same block
    runs: list[tuple[int, int, int]] = []
    for i, b in enumerate(block_index):
        if runs and runs[-1][2] == b:
            runs[-1] = (runs[-1][0], i + 1, b)
        else:
            runs.append((i, i + 1, b))
    label_y = top + plot_h + 8
    longest = 4
    for r, (start, end, b) in enumerate(runs):
        x, w = left + start * step, (end - start) * step
        if r % 2 == 0:
            body.append(_rect(x, top, w, plot_h, BAND))
        if 0 <= b < len(block_names) and w >= 7:
            name = _clip(block_names[b], 16)
            longest = max(longest, len(name))
            body.append(_text(x + w / 2 + 3, label_y, name, 7.5, anchor="end", fill=MUTED, rotate=-60))
    body += _axis_ticks(left, top, plot_h, plot_w, peak, "bytes")
    body.append(_bars([(left + i * step, top + plot_h - plot_h * v / peak, max(step * 0.85, 0.6),
                        plot_h * v / peak) for i, v in enumerate(values)], MEMORY_COLOUR))
    if peak_live:
        y = top + plot_h - plot_h * peak_live / peak
        body.append(_line(left, y, left + plot_w, y, FLAG_COLOUR, dash=True))
        body.append(_text(left + plot_w - 2, y - 3, f"peak activation memory (estimate, MLX CPU): "
                                                     f"{fmt_bytes(peak_live)}", 8.5, anchor="end",
                          fill=FLAG_COLOUR))
    height = label_y + longest * 7.5 * 0.5 + 8
    return _svg(WIDTH, height, body, "Activation memory along the forward pass",
                "Bars: output bytes of each leaf module call in call order; bands: top-level blocks.")


# -- weight distributions ----------------------------------------------------------------------

def _tick(v: float) -> str:
    if v == 0:
        return "0"
    text = f"{v:.3g}"
    return text.replace("e-0", "e-").replace("e+0", "e")


def histogram(counts: Sequence[int], lo: float, width: float, name: str,
              flagged: bool = False) -> str:
    """One small multiple: a tensor's counts on its group's bins, scaled to its tallest bin.

    Bars only: the x range is the group's, stated once above the grid, and a dashed line
    marks zero. The tensor's name goes beside it in HTML, where the PDF renderer sets text
    far faster than inside SVG (it places SVG text glyph by glyph).
    """
    w, h = 150.0, 48.0
    px, pw, py, ph = 2.0, 146.0, 2.0, 42.0
    peak = max(counts, default=0) or 1
    bw = pw / max(len(counts), 1)
    boxes = []
    for i, c in enumerate(counts):
        if c:
            bh = max(ph * c / peak, 0.6)
            boxes.append((px + i * bw, py + ph - bh, bw * 0.92, bh))
    body = [_bars(boxes, FLAG_COLOUR if flagged else HIST_COLOUR),
            _line(px, py + ph + 0.5, px + pw, py + ph + 0.5, MUTED)]
    hi = lo + width * len(counts)
    if lo < 0 < hi:
        x0 = px + pw * (0 - lo) / (hi - lo)
        body.append(_line(x0, py, x0, py + ph + 2, MUTED, dash=True))
    return _svg(w, h, body, f"Distribution of {name}")
