"""mlx-report: see an MLX model — shapes, parameters, MACs and memory of one lazy trace."""

from .graph import ModelGraph
from .render.graphviz import render_graph
from .render.report import build_report
from .summary import ModelSummary, summary
from .trace import trace

__version__ = "0.1.0"
__all__ = ["ModelGraph", "ModelSummary", "build_report", "render_graph", "summary", "trace",
           "__version__"]
