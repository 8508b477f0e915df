"""mlx-report: see an MLX model — shapes, parameters, MACs and memory of one lazy trace."""

from .graph import ModelGraph
from .summary import ModelSummary, summary
from .trace import trace


def __getattr__(name: str):
    """Renderers and weight statistics load on first use (fast start-up)."""
    if name == "render_graph":
        from .render.graphviz import render_graph
        return render_graph
    if name == "build_report":
        from .render.report import build_report
        return build_report
    if name == "model_weight_stats":
        from .analysis.weights import model_weight_stats
        return model_weight_stats
    if name == "spread_random_init":
        from .random_init import spread_random_init
        return spread_random_init
    raise AttributeError(f"module 'mlx_report' has no attribute {name!r}")

__version__ = "0.1.0"
__all__ = ["ModelGraph", "ModelSummary", "build_report", "model_weight_stats", "render_graph",
           "spread_random_init", "summary", "trace", "__version__"]
