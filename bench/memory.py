"""Memory truth: mlx-report's peak-activation estimate beside MLX's measured peak.

24 configurations: ResNet-18/50, MobileNetV2, ViT-B/16, GPT-2 small and the encoder
sample, batch 1 and 8, float32 and float16. Each runs in a fresh process
(`python bench/memory.py --child NAME BATCH DTYPE`): trace (the estimate), then one
real forward pass with random weights (trace/measure.py: weights and inputs resident
first, peak - resident, inputs added back so both figures count inputs alike).

Measured figures are real runs; they are cached in bench/results.json ("memory") with
the MLX version and machine, and re-measured when those change or with --remeasure.
The estimate is always recomputed (milliseconds). `python bench/memory.py` alone
prints the table; bench/run.py calls `run()`.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import MAIN_PY, ROOT, run_child  # noqa: E402

# name -> (sample file, build kwargs, input shape with B for the batch, input kind)
MODELS: dict[str, tuple[str, dict, tuple, str]] = {
    "resnet18": ("resnet", {"depth": 18}, ("B", 3, 224, 224), "float"),
    "resnet50": ("resnet", {"depth": 50}, ("B", 3, 224, 224), "float"),
    "mobilenet_v2": ("mobilenet", {}, ("B", 3, 224, 224), "float"),
    "vit_b_16": ("vit", {}, ("B", 3, 224, 224), "float"),
    "gpt2": ("gpt2", {}, ("B", 128), "tokens"),
    "encoder": ("encoder", {}, ("B", 128, 256), "float"),
}
BATCHES = (1, 8)
DTYPES = ("float32", "float16")
TOLERANCE = 0.10


def configs() -> list[tuple[str, int, str]]:
    return [(m, b, d) for m in MODELS for b in BATCHES for d in DTYPES]


def child(name: str, batch: int, dtype: str, measure: bool) -> dict:
    """Estimate (and measure) one configuration in this process; a JSON-able dict."""
    sys.path.insert(0, str(ROOT))
    import mlx.core as mx

    from mlx_models import load_sample
    from mlx_report.trace import trace
    from mlx_report.trace.measure import measure_forward

    sample, kwargs, shape, kind = MODELS[name]
    model = load_sample(sample).build_model(**kwargs)
    dt = getattr(mx, dtype)
    model.set_dtype(dt)
    shape = tuple(batch if d == "B" else d for d in shape)
    x = mx.zeros(shape, dtype=mx.int32) if kind == "tokens" else mx.zeros(shape, dtype=dt)
    start = time.perf_counter()
    graph = trace(model, x)
    t = graph.totals
    out = {"name": name, "batch": batch, "dtype": dtype, "macs": t.macs, "input_bytes": t.input_bytes,
           "estimate": t.peak_activation_bytes, "trace_s": round(time.perf_counter() - start, 3)}
    if measure:
        del graph
        start = time.perf_counter()
        m = measure_forward(model, (x,))
        out["measured"] = m.peak_bytes + t.input_bytes
        out["measure_s"] = round(time.perf_counter() - start, 1)
    return out


def _key(name: str, batch: int, dtype: str) -> str:
    return f"{name}/b{batch}/{dtype}"


def _environment() -> dict:
    import importlib.metadata as md

    return {"mlx": md.version("mlx"), "machine": platform.machine(), "system": platform.system()}


def run(remeasure: bool = False, log=print) -> dict:
    """Estimate every configuration; measure those not cached for this environment."""
    path = HERE / "results.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    cached = stored.get("memory", {})
    env = _environment()
    if cached.get("environment") != env:
        cached = {}
    rows = {}
    for name, batch, dtype in configs():
        key = _key(name, batch, dtype)
        old = cached.get("rows", {}).get(key)
        measure = remeasure or old is None or "measured" not in old
        cmd = [MAIN_PY, str(HERE / "memory.py"), "--child", name, str(batch), dtype]
        if not measure:
            cmd.append("--estimate-only")
        r = run_child(cmd, timeout=1800)
        if not r["ok"] or r["out"] is None:
            log(f"  {key}: FAILED {r.get('error')}")
            continue
        row = r["out"]
        if not measure:
            row["measured"], row["measure_s"] = old["measured"], old.get("measure_s")
            row["measured_cached"] = True
        row["ratio"] = row["estimate"] / row["measured"] if row["measured"] else None
        rows[key] = row
        log(f"  {key}: estimate {row['estimate'] / 1e6:.1f} MB, measured {row['measured'] / 1e6:.1f} MB"
            f" ({row['ratio']:.3f}x){' (cached)' if not measure else ''}")
    result = {"environment": env, "tolerance": TOLERANCE, "rows": rows,
              "within": sum(1 for r in rows.values() if r["ratio"] and abs(r["ratio"] - 1) <= TOLERANCE)}
    stored["memory"] = result
    path.write_text(json.dumps(stored, indent=2) + "\n")
    return result


def markdown(result: dict) -> list[str]:
    env = result["environment"]
    lines = [f"Peak activation memory of one forward pass (inputs included, weights excluded), "
             f"MLX {env['mlx']} CPU, {env['system']} {env['machine']}: estimate (trace, nothing evaluated) "
             f"vs measured (`mx.get_peak_memory()`, random weights). Within ±{result['tolerance']:.0%}: "
             f"{result['within']} of {len(result['rows'])}.", "",
             "| model | batch | dtype | GMAC | estimate | measured | estimate / measured |",
             "| :-- | --: | :-- | --: | --: | --: | --: |"]
    for r in result["rows"].values():
        lines.append(f"| {r['name']} | {r['batch']} | {r['dtype']} | {r['macs'] / 1e9:.1f} | "
                     f"{r['estimate'] / 1e6:.1f} MB | {r['measured'] / 1e6:.1f} MB | {r['ratio']:.3f} |")
    return lines


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--child"]:
        print(json.dumps(child(args[1], int(args[2]), args[3], "--estimate-only" not in args)))
    else:
        res = run(remeasure="--remeasure" in args)
        print("\n".join(markdown(res)))
