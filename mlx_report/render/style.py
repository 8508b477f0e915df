"""Every font, colour, size and shape of the diagrams, in one place.

A new style is a new `Style(...)` entry in `STYLES`. Colours are chosen to stay
distinct in grayscale; the heat palettes run from light to mid tones so black
text stays readable on every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# One sans-serif family with metric-compatible fallbacks (Liberation Sans = Arial metrics).
FONT = "Liberation Sans"
FONT_FALLBACKS = ("Arial", "DejaVu Sans")
SVG_FONT_STACK = "Liberation Sans,Arimo,Arial,Helvetica,sans-serif"

HEAT_PALETTES: dict[str, tuple[str, ...]] = {
    # ColorBrewer sequential, the lighter 5 of 9 classes: black text reads on every step,
    # and the steps stay apart in grayscale.
    "macs": ("#FFF5EB", "#FEE6CE", "#FDD0A2", "#FDAE6B", "#FD8D3C"),
    "params": ("#F7FBFF", "#DEEBF7", "#C6DBEF", "#9ECAE1", "#6BAED6"),
    "memory": ("#FCFBFD", "#EFEDF5", "#DADAEB", "#BCBDDC", "#9E9AC8"),
}
HEAT_TITLES = {"macs": "MACs", "params": "Parameters", "memory": "Output memory"}

# Diff highlights (kind -> outline, fill, outline style): green, red and amber differ in hue
# for colour readers and in fill and dash for grayscale prints.
HIGHLIGHTS: dict[str, tuple[str, str | None, str]] = {
    "added": ("#1A7F37", "#DDF2E3", "solid"),
    "removed": ("#C62828", "#FBE2E2", "dashed"),
    "changed": ("#D98A00", None, "solid"),
    "failed": ("#C62828", "#FBE2E2", "solid"),
}
HIGHLIGHT_TITLES = {"added": "added", "removed": "removed", "changed": "changed (or holds a change)",
                    "failed": "raised here (partial trace)"}


@dataclass(frozen=True)
class Style:
    """How a diagram looks; sizes in points, colours as #RRGGBB."""

    name: str
    font: str = FONT
    font_size: float = 10.0          # node text
    title_size: float = 12.0         # the figure title
    cluster_size: float = 10.0       # cluster titles
    small_size: float = 8.0          # figures (params, MACs), edge labels, badges
    text: str = "#000000"
    muted: str = "#505050"           # type names, figures, edge labels
    node_fill: str = "#FFFFFF"
    node_border: str = "#333333"
    node_penwidth: float = 1.0
    weight_fill: str = "#F2F2F2"     # calls that own parameters (conv, linear, ...)
    io_fill: str = "#DDDDDD"         # model inputs and outputs
    io_border: str = "#333333"
    cluster_fills: tuple[str, ...] = ("#F7F7F7", "#EDEDED", "#E4E4E4")   # by nesting level
    cluster_border: str = "#9A9A9A"
    cluster_penwidth: float = 1.0
    badge_fill: str = "#333333"      # the ×N of a folded run
    badge_text: str = "#FFFFFF"
    fold_frame: bool = True          # a folded box draws a second, inner outline
    fold_margin: str = "0.04,0.03"   # node margin around that inner outline
    reuse_border_style: str = "dashed"
    error_border: str = "#C00000"    # the call where a failed trace stopped
    edge_color: str = "#444444"
    edge_penwidth: float = 1.0
    arrow_size: float = 0.6
    nodesep: float = 0.25            # inches
    ranksep: float = 0.25
    node_margin: str = "0.08,0.04"
    png_dpi: int = 150
    heat: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(HEAT_PALETTES))
    # diff highlights: outline colour, fill (None keeps the usual one) and outline style
    highlight: dict[str, tuple[str, str | None, str]] = field(default_factory=lambda: dict(HIGHLIGHTS))
    highlight_penwidth: float = 2.6

    def cluster_fill(self, level: int) -> str:
        return self.cluster_fills[min(level, len(self.cluster_fills) - 1)]


PAPER = Style(name="paper")

SLIDES = replace(
    PAPER,
    name="slides",
    font_size=14.0, title_size=18.0, cluster_size=14.0, small_size=11.0,
    text="#1B1B1B", muted="#3C4A5A",
    node_border="#1F4E79", node_penwidth=1.6, weight_fill="#DCE9F7",
    io_fill="#1F4E79", io_border="#1F4E79",
    cluster_fills=("#F3F7FB", "#E7EFF7", "#DCE6F2"), cluster_border="#7C98B6",
    cluster_penwidth=1.4, badge_fill="#C0504D",
    edge_color="#2F3B48", edge_penwidth=1.6, arrow_size=0.8,
    nodesep=0.35, ranksep=0.4, node_margin="0.12,0.06",
)

STYLES: dict[str, Style] = {"paper": PAPER, "slides": SLIDES}


def get_style(name: str | Style) -> Style:
    """The style called `name` (or `name` itself when already a Style)."""
    if isinstance(name, Style):
        return name
    try:
        return STYLES[name]
    except KeyError:
        raise ValueError(f"unknown style {name!r}; choose one of {', '.join(STYLES)}") from None


def io_text_color(style: Style) -> str:
    """Text colour on input/output nodes (white on dark fills)."""
    return "#FFFFFF" if _luminance(style.io_fill) < 0.4 else style.text


def _luminance(hex_colour: str) -> float:
    r, g, b = (int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
