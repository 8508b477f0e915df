"""`make bench`: mlx-report beside the tools people use, measured in fresh processes.

1. cross-check the analytic truth (bench/truth.py) with PyTorch's FlopCounterMode;
2. side by side (bench/peers.py): params, MACs, wall time, summary-call time and peak
   RSS of mlx-report, mlxsummary, torchinfo, fvcore and calflops on the same
   architectures, plus the Llama-2-7B config;
3. scaling: mlx-report's summary call on Llama-style models of 1-80 layers and
   dims 1024-8192, plotted to docs/scaling.svg;
4. core (bench/core.py): the mlx-report CLI on the Llama-2-7B sample, end to end;
5. products (bench/products.py): the diagram, PDF reports and checkpoint stats against
   their targets. `python bench/run.py --products-only` runs this part alone;
6. memory (bench/memory.py): the peak-activation estimate beside `mx.get_peak_memory()`
   on 24 configurations (measured figures cached per MLX version and machine);
   `python bench/run.py --memory-only` runs this part alone.

Writes bench/results.json and bench/results.md and prints the tables. The peers'
environment bench/.venv-peers comes from bench/setup_peers.sh (`make bench` runs it).

Runs per measurement (medians): BENCH_RUNS_FAST (MLX tools and scaling, default 5),
BENCH_RUNS_SLOW (PyTorch tools, default 3), BENCH_RUNS_LARGE (PyTorch tools on the 7B
row, default 3), BENCH_RUNS (core, default 5). BENCH_SKIP_LARGE=1 leaves the 7B row out.
`python bench/run.py --markdown-only` re-renders results.md from results.json.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import core  # noqa: E402
import peers  # noqa: E402
import memory  # noqa: E402
import products  # noqa: E402
from measure import MAIN_PY, PEERS_PY, ROOT  # noqa: E402

RUNS_FAST = int(os.environ.get("BENCH_RUNS_FAST", "5"))
RUNS_SLOW = int(os.environ.get("BENCH_RUNS_SLOW", "3"))
RUNS_LARGE = int(os.environ.get("BENCH_RUNS_LARGE", "3"))
RUNS_CORE = int(os.environ.get("BENCH_RUNS", "5"))
SKIP_LARGE = os.environ.get("BENCH_SKIP_LARGE", "") not in ("", "0")

VERSIONS_SNIPPET = """
import json, importlib.metadata as md
names = {names!r}
out = {{}}
for n in names:
    try:
        out[n] = md.version(n)
    except md.PackageNotFoundError:
        out[n] = None
print(json.dumps(out))
"""


def versions() -> dict:
    def ask(python: str, names: list[str]) -> dict:
        out = subprocess.run([python, "-c", VERSIONS_SNIPPET.format(names=names)], capture_output=True,
                             text=True, check=True).stdout
        return json.loads(out)

    v = ask(MAIN_PY, ["mlx-report", "mlx"])
    peer = ask(PEERS_PY, ["torch", "torchinfo", "fvcore", "calflops", "transformers", "mlxsummary", "mlx",
                          "matplotlib"])
    v.update({k: val for k, val in peer.items() if k != "mlx"})
    v["mlx (peers' environment)"] = peer["mlx"]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "mlx_report"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        v["mlx-report commit"] = commit + (" (+ uncommitted changes in mlx_report/)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        pass
    return v


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    ram = None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
        with open("/proc/meminfo") as f:
            ram = round(int(next(ln for ln in f if ln.startswith("MemTotal")).split()[1]) / 2**20, 1)
    except (OSError, StopIteration):
        pass
    return {"date": time.strftime("%Y-%m-%d"), "cpu": cpu, "cpu_count": os.cpu_count(), "ram_gib": ram,
            "machine": platform.machine(), "system": platform.system(), "python": platform.python_version()}


def main() -> None:
    started = time.perf_counter()
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    if not Path(PEERS_PY).exists():
        raise SystemExit("bench: the peers' environment is missing; run `make bench` (bench/setup_peers.sh)")
    mach, vers = machine(), versions()

    log("cross-check: truth vs PyTorch FlopCounterMode (train mode, meta device)")
    check = peers.crosscheck(peers.ROWS)
    for name, c in check.items():
        if name == "error":
            log(f"  cross-check FAILED: {c}")
        elif not c["agrees"]:
            log(f"  {name}: FlopCounterMode DISAGREES with truth.py: params {c['params']:,}, MACs {c['macs']:,}")
    log(f"  {sum(1 for c in check.values() if isinstance(c, dict) and c.get('agrees'))} of "
        f"{len(check)} models agree")

    log(f"side by side: MLX tools {RUNS_FAST} runs, PyTorch tools {RUNS_SLOW} "
        f"({RUNS_LARGE} on the 7B row), fresh processes, medians")
    rows = []
    for row in peers.ROWS:
        if row.large and SKIP_LARGE:
            continue
        log(f"  {row.label}")
        rows.append(peers.run_row(row, RUNS_FAST, RUNS_SLOW, RUNS_LARGE, log))

    log(f"scaling: mlx-report summary call, Llama-style models, {RUNS_FAST} runs")
    scaling = peers.run_scaling(RUNS_FAST, log)

    core_result = core.run(RUNS_CORE)
    products_result = products.run(3, log)
    log("memory: estimate vs mx.get_peak_memory(), 24 configurations")
    memory_result = memory.run(log=log)

    result = {"machine": mach, "versions": vers, "runs": {"mlx_tools": RUNS_FAST, "torch_tools": RUNS_SLOW,
              "torch_tools_7b": RUNS_LARGE, "core": RUNS_CORE},
              "crosscheck": check, "side_by_side": rows, "scaling": scaling, "core": core_result,
              "products": products_result, "memory": memory_result,
              "slower_than_torchinfo": peers.slower_than_torchinfo(rows)}
    result["bench_seconds"] = round(time.perf_counter() - started)
    (ROOT / "bench" / "results.json").write_text(json.dumps(result, indent=2) + "\n")

    plot = subprocess.run([PEERS_PY, str(ROOT / "bench" / "plot.py")], cwd=ROOT, capture_output=True, text=True)
    if plot.returncode != 0:
        log(f"plot failed: {plot.stderr.strip().splitlines()[-1] if plot.stderr.strip() else plot.returncode}")

    md = markdown(result)
    (ROOT / "bench" / "results.md").write_text("\n".join(md) + "\n")
    print()
    print("\n".join(md))
    if result["slower_than_torchinfo"]:
        print("\nmlx-report was NOT faster than torchinfo on: " + "; ".join(result["slower_than_torchinfo"]))
    print(f"\nbench: {result['bench_seconds']} s; wrote bench/results.json, bench/results.md, docs/scaling.svg")


def markdown(result: dict) -> list[str]:
    m, v, runs = result["machine"], result["versions"], result["runs"]
    machine_line = (f"Measured {m['date']} on {m['cpu']} ({m['cpu_count']} cores, {m['ram_gib']} GiB RAM, "
                    f"{m['system']} {m['machine']}, shared with other jobs), Python {m['python']}")
    peers_line = ", ".join(f"{k} {v[k]}" for k in ("torch", "torchinfo", "fvcore", "calflops", "transformers",
                                                     "mlxsummary") if v.get(k))
    table, notes = peers.side_by_side_markdown(result["side_by_side"], result["crosscheck"], v)
    lines = [
        f"{machine_line}; mlx-report {v.get('mlx-report')} (commit {v.get('mlx-report commit', '?')}), "
        f"MLX {v.get('mlx')}; peers: {peers_line}. Whole run: {result['bench_seconds'] / 60:.1f} min.",
        "",
        "### Side by side",
        "",
        f"Medians of fresh processes: {runs['mlx_tools']} runs of each MLX tool, {runs['torch_tools']} of each "
        f"PyTorch tool ({runs['torch_tools_7b']} on the 7B row). **params**: learnable parameters, each distinct "
        "tensor once (BatchNorm running statistics excluded; 4-bit weights at their logical size). **MACs**: "
        "multiply-accumulates of matmuls, convolutions and both attention products. **truth**: the formulas in "
        "`bench/truth.py`, cross-checked with PyTorch's FlopCounterMode. **Δ**: deviation from the truth. "
        "**wall**: process start to exit, imports and model building included. **summary call**: the tool's "
        "summary function alone, rendering its table included. — : the tool reports no such figure.",
        "",
        *table,
    ]
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    lines += ["", "### Scaling", "",
              f"mlx-report's summary call on Llama-style models, input (1, 128), {runs['mlx_tools']} runs "
              "(hidden size = dim × 11008 / 4096). Plot: `docs/scaling.svg`.", "",
              *peers.scaling_markdown(result["scaling"]),
              "", "### Core: the command line", "",
              *core.markdown(result["core"], machine_line)]
    if result.get("products"):
        lines += ["", "### Products: diagram, reports, checkpoint stats", "",
                  f"{machine_line}; fresh processes, medians of 3.", "",
                  *products.markdown(result["products"])]
    if result.get("memory"):
        lines += ["", "### Memory: estimate vs measured", "", *memory.markdown(result["memory"])]
    return lines


if __name__ == "__main__":
    if sys.argv[1:] == ["--products-only"]:  # measure the products, merge into results.json
        path = ROOT / "bench" / "results.json"
        result = json.loads(path.read_text())
        result["products"] = products.run(3)
        path.write_text(json.dumps(result, indent=2) + "\n")
        (ROOT / "bench" / "results.md").write_text("\n".join(markdown(result)) + "\n")
    elif sys.argv[1:] == ["--memory-only"]:  # memory.run merges into results.json itself
        path = ROOT / "bench" / "results.json"
        memory.run()
        result = json.loads(path.read_text())
        (ROOT / "bench" / "results.md").write_text("\n".join(markdown(result)) + "\n")
        print("\n".join(memory.markdown(result["memory"])))
    elif sys.argv[1:] == ["--markdown-only"]:  # re-render results.md from results.json
        md = markdown(json.loads((ROOT / "bench" / "results.json").read_text()))
        (ROOT / "bench" / "results.md").write_text("\n".join(md) + "\n")
        print("\n".join(md))
    elif sys.argv[1:]:
        sys.exit(__doc__.strip() if sys.argv[1:] in (["-h"], ["--help"])
                 else f"unknown arguments {' '.join(sys.argv[1:])}; see `python bench/run.py --help`")
    else:
        main()
