"""One measurement: build a model, summarise it with one tool, print one JSON line.

    python bench/child.py TOOL MODEL [--kw key=value ...] [--dtype bfloat16]

TOOL is mlx-report or mlxsummary (MLX models, bench/mlx_models.py) or torchinfo,
fvcore, calflops (PyTorch twins, bench/torch_models.py). The parent (bench/peers.py)
starts a fresh interpreter per measurement and takes wall time and peak RSS itself;
this prints what only the child can see:

    {"params": ..., "macs": ..., "import_s": ..., "build_s": ..., "summary_s": ...}

`summary_s` is the summary call alone, including rendering the tool's table the way
it prints it (into a buffer); `params`/`macs` are the figures the tool reports
(null when it reports none).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))


def _kw(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = ast.literal_eval(value)
    return out


# ----------------------------------------------------------------------------- MLX tools


def run_mlx(tool: str, model_name: str, kw: dict) -> dict:
    t0 = time.perf_counter()
    import mlx.core as mx

    if tool == "mlx-report":
        import mlx_report
    else:
        import mlxsummary
    import mlx_models
    t1 = time.perf_counter()
    factory, shape, dtype = mlx_models.MODELS[model_name]
    model = factory(**kw)
    x = mx.zeros(shape, dtype=dtype)
    t2 = time.perf_counter()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        if tool == "mlx-report":
            s = mlx_report.summary(model, inputs=[x], verbose=1)  # traces and prints the table
        else:
            mlxsummary.summary(model)  # prints its table; it takes no input and counts no MACs
    t3 = time.perf_counter()
    if tool == "mlx-report":
        # Its headline total includes BatchNorm running statistics (MLX keeps them as
        # frozen parameters); it reports them apart and prints the total without them.
        params, macs = s.total_params - s.running_stat_params, s.total_macs
        extra = {"calls": s.graph.totals.calls} if hasattr(s.graph.totals, "calls") else {}
    else:
        params, macs, extra = mlxsummary.count_params(model), None, {}
    return {"params": params, "macs": macs, "import_s": t1 - t0, "build_s": t2 - t1,
            "summary_s": t3 - t2, **extra}


# ----------------------------------------------------------------------------- torch tools


def run_torch(tool: str, model_name: str, kw: dict, dtype: str | None, fill: bool) -> dict:
    t0 = time.perf_counter()
    import torch

    if tool == "torchinfo":
        import torchinfo
    elif tool == "fvcore":
        from fvcore.nn import FlopCountAnalysis, flop_count_table, parameter_count
    elif tool == "calflops":
        from calflops import calculate_flops
    import torch_models
    t1 = time.perf_counter()
    factory, shape, in_dtype = torch_models.MODELS[model_name]
    if dtype:
        torch.set_default_dtype(getattr(torch, dtype))
    if fill:
        # Allocate every weight on the CPU and write it (as loading a checkpoint would),
        # skipping PyTorch's random initialisation: for Llama-2-7B that alone takes about
        # two minutes on 2 cores and is no part of what a summary tool costs.
        with torch.device("meta"):
            model = factory(**kw)
        model = model.to_empty(device="cpu")
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(0.01)
        model.eval()
    else:
        model = factory(**kw).eval()
    x = torch_models.make_input(shape, in_dtype)
    t2 = time.perf_counter()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        if tool == "torchinfo":
            stats = torchinfo.summary(model, input_data=[x], depth=3, verbose=1)
            params, macs = stats.total_params, stats.total_mult_adds
        elif tool == "fvcore":
            # fvcore's "flops" are MACs: one fused multiply-add counts as one.
            analysis = FlopCountAnalysis(model, (x,))
            print(flop_count_table(analysis, max_depth=3))
            params, macs = parameter_count(model)[""], analysis.total()
        else:
            _flops, macs, params = calculate_flops(model, args=[x], print_results=True,
                                                   print_detailed=True, output_as_string=False)
    t3 = time.perf_counter()
    return {"params": int(params), "macs": int(macs), "import_s": t1 - t0, "build_s": t2 - t1,
            "summary_s": t3 - t2}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tool", choices=["mlx-report", "mlxsummary", "torchinfo", "fvcore", "calflops"])
    ap.add_argument("model")
    ap.add_argument("--kw", action="append", default=[], help="key=value for the model factory")
    ap.add_argument("--dtype", default=None, help="torch default dtype for the weights (e.g. bfloat16)")
    ap.add_argument("--fill", action="store_true",
                    help="allocate the weights and fill them with a constant instead of random init")
    args = ap.parse_args()
    kw = _kw(args.kw)
    if args.tool in ("mlx-report", "mlxsummary"):
        out = run_mlx(args.tool, args.model, kw)
    else:
        out = run_torch(args.tool, args.model, kw, args.dtype, args.fill)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
