"""`mlx-report stats` on a checkpoint of at least 1 GB: throughput and peak memory.

Standalone: `python bench/stats_bench.py [--dtype float32|bfloat16] [--runs 3] [--keep DIR]`.
Writes a safetensors file of several tensors (the largest ~256 MB) into a temporary
directory, runs `python -m mlx_report stats FILE` in a fresh process `--runs` times
(the terminal table, and `--format json`, which also hashes the file), and prints one
JSON object on one line: median wall time (process start to exit, imports included),
throughput (file size / wall), peak RSS (os.wait4, the largest of the runs), the largest
tensor and the targets (`meets`). MB are 10^6 bytes; `--indent 2` for people.

The file has just been written, so it is read from the page cache: this measures
mlx-report, not the disk. It is written by a child process: a child's ru_maxrss starts
at its parent's high-water mark (fork/exec keeps it), so the parent stays small.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() \
    else sys.executable
MB = 10**6
TARGET_MB_S = 500.0
RSS_SLACK = 300 * MB
DTYPES = {"float32": ("F32", 4), "bfloat16": ("BF16", 2)}


def layout(dtype: str) -> list[tuple[str, tuple[int, ...]]]:
    """A transformer-like checkpoint of ~1.07 GB: a 268 MB (256 MiB) embedding table, then
    layers of repeated shapes (twice the vocabulary and layers in bfloat16)."""
    k = 4 // DTYPES[dtype][1]
    layers = [(f"layers.{i}.{name}", shape) for i in range(4 * k) for name, shape in (
        ("attn.qkv.weight", (6144, 2048)), ("attn.out.weight", (2048, 2048)),
        ("mlp.up.weight", (8192, 2048)), ("mlp.down.weight", (2048, 8192)),
        ("norm.weight", (2048,)))]
    return [("embed.weight", (32768 * k, 2048))] + layers + [("norm.weight", (2048,))]




def write_checkpoint(path: Path, dtype: str) -> tuple[int, int, int]:
    """Write `layout(dtype)` as safetensors (values ~ N(0, 0.02), written tensor by tensor);
    (file bytes, largest tensor bytes, tensors)."""
    code, itemsize = DTYPES[dtype]
    tensors = layout(dtype)
    header, offset = {}, 0
    for name, shape in tensors:
        n = int(np.prod(shape)) * itemsize
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for name, shape in tensors:
            x = rng.standard_normal(int(np.prod(shape)), dtype=np.float32) * np.float32(0.02)
            if dtype == "bfloat16":  # the top half of each float32 (round toward zero)
                f.write((x.view(np.uint32) >> 16).astype(np.uint16).tobytes())
            else:
                f.write(x.tobytes())
    largest = max(int(np.prod(s)) for _, s in tensors) * itemsize
    return path.stat().st_size, largest, len(tensors)


def run_once(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS bytes of one fresh process (Linux ru_maxrss is KiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err}")
    rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return wall, rss


def measure(cmd: list[str], runs: int, size: int) -> dict:
    """Median wall seconds, throughput and the largest peak RSS over `runs` fresh processes."""
    results = [run_once(cmd) for _ in range(runs)]
    wall = statistics.median(w for w, _ in results)
    return {"runs": runs, "wall_s": round(wall, 3), "wall_s_runs": [round(w, 3) for w, _ in results],
            "throughput_mb_s": round(size / MB / wall, 1),
            "peak_rss_mb": round(max(r for _, r in results) / MB, 1)}


def run(dtype: str = "float32", runs: int = 3, keep: Path | None = None) -> dict:
    """Make the checkpoint, measure the terminal table (the figures, against the targets) and
    `--format json` (which also hashes the file), return everything."""
    with tempfile.TemporaryDirectory(prefix="mlx-report-stats-bench-") as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"bench-{dtype}.safetensors"
        started = time.perf_counter()
        out = subprocess.run([PYTHON, __file__, "--write", str(path), "--dtype", dtype],
                             capture_output=True, text=True, check=True).stdout
        size, largest, count = json.loads(out)
        made = time.perf_counter() - started
        base = [PYTHON, "-m", "mlx_report", "stats", str(path)]
        table = measure(base, runs, size)
        as_json = measure(base + ["--format", "json"], runs, size)
    rss_limit = (2 * largest + RSS_SLACK) / MB
    fast, small = table["throughput_mb_s"] >= TARGET_MB_S, table["peak_rss_mb"] < rss_limit
    return {
        "benchmark": "mlx-report stats CHECKPOINT (terminal table)", "dtype": dtype,
        "file_mb": round(size / MB, 1), "tensors": count, "largest_tensor_mb": round(largest / MB, 1),
        **table,
        "target_throughput_mb_s": TARGET_MB_S, "target_peak_rss_mb": round(rss_limit, 1),
        "meets": fast and small, "meets_throughput": fast, "meets_peak_rss": small,
        "json_with_sha256": as_json, "write_s": round(made, 1),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the checkpoint here and keep it")
    parser.add_argument("--indent", type=int, default=None, help="indent the JSON")
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)  # the child that writes
    options = parser.parse_args()
    if options.write:
        print(json.dumps(write_checkpoint(options.write, options.dtype)))
        return
    print(json.dumps(run(options.dtype, options.runs, options.keep), indent=options.indent))


if __name__ == "__main__":
    main()
