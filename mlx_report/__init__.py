"""mlx-report: see an MLX model — shapes, parameters, MACs and memory of one lazy trace."""

from .graph import ModelGraph
from .summary import ModelSummary, summary
from .trace import trace


def __getattr__(name: str):
    """`render_graph` and `build_report` load their renderers on first use (fast start-up)."""
    if name == "render_graph":
        from .render.graphviz import render_graph
        return render_graph
    if name == "build_report":
        from .render.report import build_report
        return build_report
    raise AttributeError(f"module 'mlx_report' has no attribute {name!r}")

__version__ = "0.1.0"
__all__ = ["ModelGraph", "ModelSummary", "build_report", "render_graph", "summary", "trace",
           "__version__"]
