"""Run the command line interface with ``python -m mlx_report``."""

from mlx_report.cli import app

app(prog_name="mlx-report")
