"""Core figures: the mlx-report CLI on the Llama-2-7B sample, end to end.

The Llama-2-7B sample (6.74 B params, never materialised) summarised to JSON by the
command line, in fresh processes, and the same at other layer counts and widths.
"""

from __future__ import annotations

import json
import subprocess

from measure import MAIN_PY, ROOT, measure

CLI = [MAIN_PY, "-m", "mlx_report"]

# (label, extra CLI arguments)
CASES = [("Llama-2-7B (32 layers, dim 4096)", [])]
CASES += [(f"Llama, {n} layers, dim 4096", ["--arg", f"n_layers={n}"]) for n in (1, 8, 80)]
CASES += [(f"Llama, 32 layers, dim {d}", ["--arg", f"dim={d}", "--arg", f"hidden_dim={d * 11008 // 4096}"])
          for d in (1024, 2048, 8192)]


def llama_cmd(*args: str) -> list[str]:
    return CLI + ["summary", "samples/llama.py", "--input", "1,128:int32", "--format", "json", *args]


def params_and_calls(*args: str) -> tuple[int, int]:
    out = subprocess.run(llama_cmd(*args), cwd=ROOT, capture_output=True, text=True, check=True).stdout
    totals = json.loads(out)["totals"]
    return totals["params"], totals["calls"]


def run(runs: int) -> dict:
    rows = []
    print(f"core: mlx-report CLI, {runs} fresh processes per row, medians", flush=True)
    for label, extra in CASES:
        params, calls = params_and_calls(*extra)
        m = measure(llama_cmd(*extra), runs)
        rows.append({"case": label, "params": params, "calls": calls, **m})
        print(f"  {label:36s} params {params / 1e9:7.2f} G  calls {calls:5d}  "
              f"wall {m['wall_s']:.2f} s  peak RSS {m['peak_rss_mb']:.0f} MB", flush=True)
    baseline = measure(CLI + ["version"], runs)
    return {"runs": runs, "command": "mlx-report summary samples/llama.py --input 1,128:int32 --format json",
            "startup": baseline, "rows": rows}


def markdown(core: dict, machine_line: str) -> list[str]:
    lines = [
        f"{machine_line}; median of {core['runs']} fresh processes; `{core['command']}`.",
        "",
        "| model | params | module calls | wall time | peak RSS |",
        "| :-- | --: | --: | --: | --: |",
    ]
    for r in core["rows"]:
        lines.append(f"| {r['case']} | {r['params'] / 1e9:.2f} G | {r['calls']} | {r['wall_s']:.2f} s | "
                     f"{r['peak_rss_mb']:.0f} MB |")
    b = core["startup"]
    lines.append(f"| (startup only: `mlx-report version`) | | | {b['wall_s']:.2f} s | {b['peak_rss_mb']:.0f} MB |")
    return lines
