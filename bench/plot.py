"""docs/scaling.svg from bench/results.json (runs in the peers' environment: matplotlib).

Deterministic output: a fixed `svg.hashsalt`, no date metadata, text kept as text.

    bench/.venv-peers/bin/python bench/plot.py [results.json] [out.svg]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("svg")
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main(src: Path, dst: Path) -> None:
    plt.rcParams.update({"svg.hashsalt": "mlx-report-bench", "svg.fonttype": "none",
                         "font.family": "DejaVu Sans", "font.size": 9})
    rows = [r for r in json.loads(src.read_text())["scaling"] if "error" not in r]
    depth = sorted((r for r in rows if r["dim"] == 4096), key=lambda r: r["layers"])
    width = sorted((r for r in rows if r["layers"] == 32), key=lambda r: r["dim"])
    fig, axes = plt.subplots(2, 2, figsize=(9, 6), sharey="row")
    series = [(depth, "o-", "layers 1 → 80 (dim 4096)", lambda r: f"{r['layers']} L"),
              (width, "s--", "dim 1024 → 8192 (32 layers)", lambda r: f"dim {r['dim']}")]
    for col, (xkey, xlabel, xscale, xdiv) in enumerate([("calls", "module calls", "linear", 1),
                                                        ("params", "parameters (billions)", "log", 1e9)]):
        for row_i, (ykey, ylabel, scale) in enumerate([("summary_s", "summary call (ms)", 1000),
                                                       ("peak_rss_mb", "peak RSS (MB)", 1)]):
            ax = axes[row_i][col]
            for data, style, label, tag in series:
                xs = [r[xkey] / xdiv for r in data]
                ys = [r[ykey] * scale for r in data]
                ax.plot(xs, ys, style, label=label)
                if col == 0 and tag is series[1][3]:
                    continue  # all widths sit at the same call count: no per-point labels
                for r, x, y in zip(data, xs, ys):
                    if tag is series[1][3] and r["dim"] == 4096:
                        continue  # the 32-layer, dim-4096 point is labelled by the depth series
                    ax.annotate(tag(r), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
            ax.set_xscale(xscale)
            if xscale == "log":
                ax.set_xticks([0.5, 1, 2, 5, 10, 20])
                ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
                ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_ylim(bottom=0)
            ax.grid(True, alpha=0.3)
            if row_i == 1:
                ax.set_xlabel(xlabel)
            if col == 0:
                ax.set_ylabel(ylabel)
    axes[0][0].legend(loc="upper left", fontsize=8)
    axes[0][0].set_xlim(left=0)
    axes[1][0].set_xlim(left=0)
    fig.suptitle("mlx-report on Llama-style models, input (1, 128): cost follows module calls, "
                 "not parameters", fontsize=10)
    fig.tight_layout()
    dst.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dst, format="svg", metadata={"Date": None})


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0]) if args else ROOT / "bench" / "results.json",
         Path(args[1]) if len(args) > 1 else ROOT / "docs" / "scaling.svg")
