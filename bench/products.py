"""Product figures against the issues' targets: diagram, reports and checkpoint stats.

Each command runs in fresh processes (medians); the targets are the acceptance figures
of issues 3, 4 and 5 on this 2-core machine.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from measure import MAIN_PY, ROOT, measure, run_child

CLI = [MAIN_PY, "-m", "mlx_report"]

# (label, command after `mlx-report`, output file name, target seconds, target peak RSS MB)
CASES = [
    ("Llama-2-7B diagram, default depth, SVG (trace included)",
     ["graph", "samples/llama.py", "--input", "1,128:int32", "-o"], "llama.svg", 2.0, None),
    ("ResNet-50 full PDF report",
     ["build", "samples/resnet.py", "--input", "1,3,224,224", "-o"], "resnet.pdf", 20.0, None),
    ("Llama-2-7B PDF report, sampled weight statistics",
     ["build", "samples/llama.py", "--input", "1,128:int32", "-o"], "llama.pdf", 60.0, 2048.0),
]


def run(runs: int, log=print) -> dict:
    rows = []
    log(f"products: {runs} fresh processes per row, medians")
    with tempfile.TemporaryDirectory() as tmp:
        for label, args, out_name, target_s, target_mb in CASES:
            m = measure(CLI + args + [str(Path(tmp) / out_name)], runs)
            ok = m["wall_s"] <= target_s and (target_mb is None or m["peak_rss_mb"] <= target_mb)
            rows.append({"case": label, "target_s": target_s, "target_rss_mb": target_mb, "meets": ok, **m})
            log(f"  {label:52s} wall {m['wall_s']:6.2f} s (target {target_s:g} s)  "
                f"peak RSS {m['peak_rss_mb']:.0f} MB  {'ok' if ok else 'MISSES TARGET'}")
    stats = _stats_bench(log)
    return {"rows": rows, "stats": stats}


def _stats_bench(log) -> dict | None:
    """bench/stats_bench.py: `mlx-report stats` over a >= 1 GB checkpoint."""
    script = ROOT / "bench" / "stats_bench.py"
    if not script.exists():
        return None
    r = subprocess.run([MAIN_PY, str(script)], cwd=ROOT, capture_output=True, text=True)
    lines = [ln for ln in r.stdout.strip().splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        log(f"  stats bench failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
        return None
    result = json.loads(lines[-1])
    log(f"  stats over {result.get('file_mb', 0):.0f} MB: {result.get('throughput_mb_s', 0):.0f} MB/s, "
        f"peak RSS {result.get('peak_rss_mb', 0):.0f} MB")
    return result


def markdown(products: dict) -> list[str]:
    lines = ["| product | wall time | target | peak RSS | meets |", "| :-- | --: | --: | --: | :-: |"]
    for r in products["rows"]:
        target = f"< {r['target_s']:g} s" + (f", < {r['target_rss_mb'] / 1024:g} GB" if r["target_rss_mb"] else "")
        lines.append(f"| {r['case']} | {r['wall_s']:.2f} s | {target} | {r['peak_rss_mb']:.0f} MB | "
                     f"{'yes' if r['meets'] else '**no**'} |")
    s = products.get("stats")
    if s:
        lines.append(f"| `mlx-report stats` over a {s.get('file_mb', 0):.0f} MB checkpoint | {s.get('wall_s', 0):.2f} s "
                     f"({s.get('throughput_mb_s', 0):.0f} MB/s) | ≥ 500 MB/s, RSS < 2 × largest tensor + 300 MB "
                     f"({2 * s.get('largest_tensor_mb', 0) + 300:.0f} MB) | {s.get('peak_rss_mb', 0):.0f} MB | "
                     f"{'yes' if s.get('meets') else '**no**'} |")
    return lines
