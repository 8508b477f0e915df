"""Partial traces end to end: the diagram marks the failing call, the report explains it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BAD = '''
import mlx.nn as nn

class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)
    def __call__(self, x):
        return self.fc(x)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = [Block(16), Block(16), Block(32)]
    def __call__(self, x):
        for b in self.blocks:
            x = b(x)
        return x
'''

MESSAGE = "forward pass failed in blocks.2.fc (Linear) with input shapes [(4, 16)]"


def run(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    (tmp / "bad.py").write_text(BAD)
    return subprocess.run([sys.executable, "-m", "mlx_report", *args], cwd=tmp, capture_output=True,
                          text=True)


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz dot")
def test_graph_draws_partial_trace_with_failing_call_marked(tmp_path: Path) -> None:
    r = run(tmp_path, "graph", "bad.py", "-i", "4,16", "-o", "bad.dot")
    assert r.returncode == 4
    assert MESSAGE in r.stderr and "Traceback" not in r.stderr
    dot = (tmp_path / "bad.dot").read_text()
    assert "highlight_failed" in dot and "raised here (partial trace)" in dot


def test_build_writes_report_explaining_the_failure(tmp_path: Path) -> None:
    r = run(tmp_path, "build", "bad.py", "-i", "4,16", "-o", "bad.html")
    assert r.returncode == 4 and MESSAGE in r.stderr
    html = (tmp_path / "bad.html").read_text()
    assert "The forward pass failed: this report covers a partial trace." in html
    assert MESSAGE in html
    assert "bad.py" in html  # provenance of the partial trace is kept


def test_summary_prints_table_up_to_failure(tmp_path: Path) -> None:
    r = run(tmp_path, "summary", "bad.py", "-i", "4,16")
    assert r.returncode == 4
    assert "fc (Linear)  ✗ FAILED" in r.stdout and "PARTIAL TRACE" in r.stdout
    assert r.stderr.strip().splitlines() == [f"error: {r.stderr.strip()[7:]}"]
