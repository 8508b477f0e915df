"""Side by side: mlx-report and the tools people use today, on the same architectures.

Every measurement is one fresh process (`bench/child.py`): wall time from start to
exit (imports included), the summary call alone (timed inside the child), peak RSS
(`os.wait4`). Within a row the tools take turns run by run, so a slow spell of the
shared machine hits them alike; ratios (peer / mlx-report) come from the same row.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

import truth
from measure import MAIN_PY, PEERS_PY, ROOT, median, run_child

CHILD = str(ROOT / "bench" / "child.py")


@dataclass(frozen=True)
class Tool:
    name: str
    python: str
    framework: str        # "mlx": runs the MLX model; "torch": runs the PyTorch twin
    package: str          # distribution name, for the version


TOOLS = {
    "mlx-report": Tool("mlx-report", MAIN_PY, "mlx", "mlx-report"),
    "mlxsummary": Tool("mlxsummary", PEERS_PY, "mlx", "mlxsummary"),
    "torchinfo": Tool("torchinfo", PEERS_PY, "torch", "torchinfo"),
    "fvcore": Tool("fvcore", PEERS_PY, "torch", "fvcore"),
    "calflops": Tool("calflops", PEERS_PY, "torch", "calflops"),
}
ALL = tuple(TOOLS)
MLX_ONLY = ("mlx-report", "mlxsummary")


@dataclass(frozen=True)
class Row:
    key: str              # bench/truth.py TRUTH key = model name in mlx_models / torch_models
    label: str
    tools: tuple[str, ...] = ALL
    large: bool = False


ROWS = [
    Row("resnet50", "ResNet-50"),
    Row("vit_b_16", "ViT-B/16"),
    Row("encoder", "Transformer encoder, 4 layers, d=256"),
    Row("gpt2", "GPT-2 124M, tied embeddings"),
    Row("shared_tied", "Module reused twice + tied weight"),
    Row("gpt2_q4", "GPT-2 124M, 4-bit nn.quantize (MLX only)", MLX_ONLY),
    Row("llama7b", "Llama-2-7B config", large=True),
]

# Llama-style scaling: (layers, dim); hidden = dim * 11008 / 4096 as in Llama-2-7B.
SCALING = [(1, 4096), (8, 4096), (32, 4096), (80, 4096), (32, 1024), (32, 2048), (32, 8192)]


def _mem_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def llama_layers_that_fit() -> tuple[int, int]:
    """Most Llama-2-7B layers (32 = the whole model) whose bfloat16 weights fit now.

    Needs 2 bytes per parameter plus 5 % and 1.5 GB for torch, activations and the
    tool (measured: 13.5 GB of weights peak at 13.5-14.4 GB RSS).
    """
    available = _mem_available()
    for n in (32, 28, 24, 20, 16, 12, 8, 4, 2, 1):
        if truth.llama(n_layers=n).params * 2 * 1.05 + 1.5e9 <= available:
            return n, available
    return 0, available


def child_cmd(tool: Tool, model: str, kw: dict, torch_large: bool) -> list[str]:
    cmd = [tool.python, CHILD, tool.name, model]
    for k, v in kw.items():
        cmd += ["--kw", f"{k}={v!r}"]
    if torch_large and tool.framework == "torch":
        cmd += ["--dtype", "bfloat16", "--fill"]
    return cmd


def _deviation(value: int | None, expected: int) -> float | None:
    return None if value is None else (value - expected) / expected * 100


def run_row(row: Row, runs_fast: int, runs_slow: int, runs_large: int, log) -> dict:
    kw, t = {}, truth.TRUTH[row.key]
    note = None
    if row.large:
        layers, available = llama_layers_that_fit()
        note = (f"PyTorch tools: weights in bfloat16, allocated and filled ({available / 2**30:.1f} GiB "
                f"available at the start of the row)")
        if layers == 0:
            return {"key": row.key, "label": row.label, "skipped": "not enough memory for one layer"}
        if layers < 32:
            kw = {"n_layers": layers}
            t = truth.llama(n_layers=layers)
            note += f"; only {layers} of 32 layers fit, so every tool ran that size"
    runs = {name: (runs_fast if TOOLS[name].framework == "mlx" else (runs_large if row.large else runs_slow))
            for name in row.tools}
    samples: dict[str, list[dict]] = {name: [] for name in row.tools}
    for i in range(max(runs.values())):
        for name in row.tools:
            if i < runs[name]:
                r = run_child(child_cmd(TOOLS[name], row.key, kw, row.large))
                samples[name].append(r)
                status = "ok" if r["ok"] else f"FAILED: {r['error']}"
                log(f"    {row.key:12s} {name:10s} run {i + 1}/{runs[name]}  wall {r['wall_s']:6.2f} s  "
                    f"RSS {r['peak_rss_mb']:7.0f} MB  {status}")
    tools = {}
    for name, rs in samples.items():
        ok = [r for r in rs if r["ok"] and r["out"]]
        entry: dict = {"runs": len(rs), "ok_runs": len(ok)}
        if not ok:
            entry["error"] = rs[0].get("error", "no output")
            tools[name] = entry
            continue
        outs = [r["out"] for r in ok]
        params, macs = outs[0]["params"], outs[0]["macs"]
        if any((o["params"], o["macs"]) != (params, macs) for o in outs):
            entry["warning"] = "figures differed between runs"
        entry.update({
            "params": params, "macs": macs,
            "params_dev_pct": _deviation(params, t.params), "macs_dev_pct": _deviation(macs, t.macs),
            "wall_s": median([r["wall_s"] for r in ok]),
            "summary_s": median([o["summary_s"] for o in outs]),
            "import_s": median([o["import_s"] for o in outs]),
            "build_s": median([o["build_s"] for o in outs]),
            "peak_rss_mb": median([r["peak_rss_mb"] for r in ok]),
        })
        if "calls" in outs[0]:
            entry["calls"] = outs[0]["calls"]
        if len(ok) < len(rs):
            entry["error"] = next(r.get("error") for r in rs if not r["ok"])
        tools[name] = entry
    base = tools.get("mlx-report", {})
    for name, e in tools.items():
        if name != "mlx-report" and "wall_s" in e and "wall_s" in base:
            e["ratio"] = {k: e[k] / base[k] for k in ("wall_s", "summary_s", "peak_rss_mb")}
    return {"key": row.key, "label": row.label, "input": t.input, "kw": kw, "note": note,
            "truth": {"params": t.params, "macs": t.macs, "terms": t.terms}, "tools": tools}


def crosscheck(rows: list[dict]) -> dict:
    """FlopCounterMode (train mode, FLOPs/2) and de-duplicated numel on the PyTorch twins."""
    out = subprocess.run([PEERS_PY, str(ROOT / "bench" / "crosscheck.py")], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    counted = json.loads(out.stdout.strip().splitlines()[-1])
    result = {}
    for name, c in counted.items():
        t = truth.TRUTH[name]
        result[name] = {**c, "agrees": c["params"] == t.params and c["macs"] == t.macs}
    # The quantized GPT-2 has no PyTorch twin; its logical counts are GPT-2's.
    if "gpt2" in result:
        result["gpt2_q4"] = {**result["gpt2"], "via": "gpt2 (same logical counts)"}
    return result


def run_scaling(runs: int, log) -> list[dict]:
    """mlx-report's summary call on Llama-style models: cost follows calls, not params."""
    tool = TOOLS["mlx-report"]
    rows = []
    for layers, dim in SCALING:
        kw = {"n_layers": layers, "dim": dim, "hidden_dim": dim * 11008 // 4096}
        rs = [run_child(child_cmd(tool, "llama7b", kw, False)) for _ in range(runs)]
        ok = [r for r in rs if r["ok"] and r["out"]]
        if not ok:
            rows.append({"layers": layers, "dim": dim, "error": rs[0].get("error")})
            log(f"    scaling {layers:3d} layers, dim {dim:5d}: FAILED {rs[0].get('error')}")
            continue
        o = ok[0]["out"]
        row = {"layers": layers, "dim": dim, "params": o["params"], "calls": o.get("calls"),
               "summary_s": median([r["out"]["summary_s"] for r in ok]),
               "wall_s": median([r["wall_s"] for r in ok]),
               "peak_rss_mb": median([r["peak_rss_mb"] for r in ok]), "runs": len(ok)}
        rows.append(row)
        log(f"    scaling {layers:3d} layers, dim {dim:5d}: params {row['params'] / 1e9:6.2f} G  "
            f"calls {row['calls']:5d}  summary {row['summary_s']:.3f} s  RSS {row['peak_rss_mb']:.0f} MB")
    return rows


# ----------------------------------------------------------------------------- markdown


def _int(v: int | None) -> str:
    return "—" if v is None else f"{v:,}"


def _dev(d: float | None) -> str:
    if d is None:
        return ""
    if d == 0:
        return "exact"
    return f"{d:+.2g} %" if abs(d) < 10 else f"{d:+.0f} %"


def _secs(s: float) -> str:
    if s >= 10:
        return f"{s:.0f} s"
    if s >= 1:
        return f"{s:.1f} s"
    return f"{s * 1000:.0f} ms" if s >= 0.01 else f"{s * 1000:.1f} ms"


def _mb(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 10240 else f"{mb:.0f} MB"


def _ratio(r: float | None) -> str:
    if r is None:
        return ""
    return f"{r:.2g}×" if r < 10 else f"{r:.0f}×"


def side_by_side_markdown(rows: list[dict], check: dict, versions: dict) -> list[str]:
    lines = [
        "| model, input | tool | params | Δ | MACs | Δ | wall | summary call | peak RSS "
        "| wall ÷ mlx-report | summary ÷ mlx-report | RSS ÷ mlx-report |",
        "| :-- | :-- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
    ]
    notes = []
    for row in rows:
        if "skipped" in row:
            lines.append(f"| {row['label']} | skipped: {row['skipped']} |" + " |" * 10)
            continue
        c = check.get(row["key"], {})
        if not c or "agrees" not in c or row["kw"]:
            mark = "FlopCounterMode: not run"
        elif c["agrees"]:
            mark = "FlopCounterMode agrees" + (" on the GPT-2 twin" if "via" in c else "")
        else:
            mark = f"FlopCounterMode DISAGREES: {c['params']:,} params, {c['macs']:,} MACs"
        t = row["truth"]
        lines.append(f"| **{row['label']}**, {row['input']} | truth ({mark}) | {_int(t['params'])} | | "
                     f"{_int(t['macs'])} | | | | | | | |")
        for name, e in row["tools"].items():
            tool = f"{name} {versions.get(TOOLS[name].package, '')}".strip()
            if "wall_s" not in e:
                lines.append(f"| | {tool} | failed | | failed | | | | | | | |")
                notes.append(f"{row['label']}, {name}: failed in all {e['runs']} runs: `{e['error']}`")
                continue
            ratio = e.get("ratio", {})
            lines.append(
                f"| | {tool} | {_int(e['params'])} | {_dev(e['params_dev_pct'])} | {_int(e['macs'])} | "
                f"{_dev(e['macs_dev_pct'])} | {_secs(e['wall_s'])} | {_secs(e['summary_s'])} | "
                f"{_mb(e['peak_rss_mb'])} | {_ratio(ratio.get('wall_s'))} | {_ratio(ratio.get('summary_s'))} | "
                f"{_ratio(ratio.get('peak_rss_mb'))} |")
            if e.get("error"):
                notes.append(f"{row['label']}, {name}: {e['runs'] - e['ok_runs']} of {e['runs']} runs failed: "
                             f"`{e['error']}`")
        if row.get("note"):
            notes.append(f"{row['label']}: {row['note']}.")
    return lines, notes


def scaling_markdown(rows: list[dict]) -> list[str]:
    lines = ["| layers | dim | params | module calls | summary call | wall | peak RSS |",
             "| --: | --: | --: | --: | --: | --: | --: |"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['layers']} | {r['dim']} | failed: `{r['error']}` | | | | |")
            continue
        lines.append(f"| {r['layers']} | {r['dim']} | {r['params'] / 1e9:.2f} G | {r['calls']} | "
                     f"{_secs(r['summary_s'])} | {_secs(r['wall_s'])} | {_mb(r['peak_rss_mb'])} |")
    return lines


def slower_than_torchinfo(rows: list[dict]) -> list[str]:
    """Rows where mlx-report is not faster than torchinfo (wall or summary call)."""
    found = []
    for row in rows:
        tools = row.get("tools", {})
        m, ti = tools.get("mlx-report", {}), tools.get("torchinfo", {})
        if "wall_s" not in ti:
            continue
        if "wall_s" not in m:
            found.append(f"{row['label']}: mlx-report failed")
            continue
        for k in ("wall_s", "summary_s"):
            if m[k] >= ti[k]:
                found.append(f"{row['label']}: {k} mlx-report {m[k]:.3f} s vs torchinfo {ti[k]:.3f} s")
    return found
