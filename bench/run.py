"""`make bench`: how fast mlx-report is, measured in fresh processes, medians of runs.

Core figures: the Llama-2-7B sample (6.74 B params, never materialised) summarised to
JSON end to end, and how the cost scales with the number of module calls versus the
number of parameters. Writes bench/results.json and bench/results.md.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
CLI = [sys.executable, "-m", "mlx_report"]


def measure(cmd: list[str], runs: int = RUNS) -> dict:
    """Median wall seconds and median peak RSS (MB) of `cmd` over fresh processes."""
    walls, rss = [], []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - start)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{proc.stderr.read().decode()}")
        proc.stderr.close()
        rss.append(usage.ru_maxrss / 1024)  # Linux reports KiB
    return {"wall_s": round(statistics.median(walls), 3), "peak_rss_mb": round(statistics.median(rss), 1),
            "runs": runs}


def llama_cmd(*args: str) -> list[str]:
    return CLI + ["summary", "samples/llama.py", "--input", "1,128:int32", "--format", "json", *args]


def params_and_calls(*args: str) -> tuple[int, int]:
    out = subprocess.run(llama_cmd(*args), cwd=ROOT, capture_output=True, text=True, check=True).stdout
    totals = json.loads(out)["totals"]
    return totals["params"], totals["calls"]


def main() -> None:
    import mlx.core as mx

    rows = []
    print(f"mlx-report core benchmark: {RUNS} fresh processes per row, medians", flush=True)
    cases = [("Llama-2-7B (32 layers, dim 4096)", [])]
    cases += [(f"Llama, {n} layers, dim 4096", ["--arg", f"n_layers={n}"]) for n in (1, 8, 80)]
    cases += [(f"Llama, 32 layers, dim {d}", ["--arg", f"dim={d}", "--arg", f"hidden_dim={d * 11008 // 4096}"])
              for d in (1024, 2048, 8192)]
    for label, extra in cases:
        params, calls = params_and_calls(*extra)
        m = measure(llama_cmd(*extra))
        rows.append({"case": label, "params": params, "calls": calls, **m})
        print(f"  {label:36s} params {params / 1e9:7.2f} G  calls {calls:5d}  "
              f"wall {m['wall_s']:.2f} s  peak RSS {m['peak_rss_mb']:.0f} MB", flush=True)
    baseline = measure(CLI + ["version"])
    machine = {
        "date": time.strftime("%Y-%m-%d"), "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "system": platform.system(), "python": platform.python_version(), "mlx": mx.__version__,
    }
    result = {"machine": machine, "startup": baseline, "rows": rows}
    (ROOT / "bench" / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"Measured {machine['date']} on {machine['cpu_count']} cores ({machine['system']} {machine['machine']}), "
        f"Python {machine['python']}, MLX {machine['mlx']}; median of {RUNS} fresh processes; "
        f"`mlx-report summary samples/llama.py --input 1,128:int32 --format json`.",
        "",
        "| model | params | module calls | wall time | peak RSS |",
        "| :-- | --: | --: | --: | --: |",
    ]
    for r in rows:
        lines.append(f"| {r['case']} | {r['params'] / 1e9:.2f} G | {r['calls']} | {r['wall_s']:.2f} s | "
                     f"{r['peak_rss_mb']:.0f} MB |")
    lines.append(f"| (startup only: `mlx-report version`) | | | {baseline['wall_s']:.2f} s | "
                 f"{baseline['peak_rss_mb']:.0f} MB |")
    (ROOT / "bench" / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
