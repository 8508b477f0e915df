"""Fresh-process measurements: wall time and peak RSS of one child, its JSON output."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAIN_PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() \
    else sys.executable
PEERS_PY = str(ROOT / "bench" / ".venv-peers" / "bin" / "python")


def _rss_mb(maxrss: int) -> float:
    # Linux reports ru_maxrss in KiB, macOS in bytes; MB here are MiB.
    return maxrss / 1024 / 1024 if sys.platform == "darwin" else maxrss / 1024


def run_child(cmd: list[str], timeout: float = 900.0) -> dict:
    """Run `cmd` once in a fresh process; wall seconds (start to exit, so including the
    interpreter's start-up and imports), peak RSS (MB, from `os.wait4`), the last JSON
    line it printed (or None) and, when it failed, the last line of its stderr."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        lines = out.read().decode(errors="replace").strip().splitlines()
        errlines = [ln for ln in err.read().decode(errors="replace").strip().splitlines() if ln.strip()]
    result = {"wall_s": wall, "peak_rss_mb": _rss_mb(usage.ru_maxrss), "ok": code == 0, "out": None}
    if code == 0 and lines:
        try:
            result["out"] = json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    if code != 0:
        result["error"] = (errlines[-1] if errlines else f"exit code {code}")[:300]
        if code < 0:
            result["error"] = f"killed (signal {-code}; timeout {timeout:.0f} s or out of memory)"
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def measure(cmd: list[str], runs: int) -> dict:
    """Median wall seconds and median peak RSS (MB) of `cmd` over `runs` fresh processes."""
    walls, rss = [], []
    for _ in range(runs):
        r = run_child(cmd)
        if not r["ok"]:
            raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{r['error']}")
        walls.append(r["wall_s"])
        rss.append(r["peak_rss_mb"])
    return {"wall_s": round(median(walls), 3), "peak_rss_mb": round(median(rss), 1), "runs": runs}
