"""Issue 11, "truth" cases: no hang, no silent wrong number, the model left as it was.

Each test names the case of the issue it covers. Nothing big is evaluated.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import pytest

from mlx_report.errors import ModelLoadError, TraceError
from mlx_report.trace import trace
from mlx_report.trace.tree import find_cycle
from tests.models import edge_cases as ec

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlx_report", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def write_model(folder: Path, body: str, name: str = "model.py") -> str:
    path = folder / name
    path.write_text("import mlx.core as mx\nimport mlx.nn as nn\n" + textwrap.dedent(body))
    return str(path)


def one_error(result: subprocess.CompletedProcess, code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# --- 1. a module that contains itself ------------------------------------------------------

def test_cycle_found_without_walking_forever():
    assert find_cycle(ec.SelfContaining()) == ("me", "")
    assert find_cycle(ec.AncestorCycle()) == ("blocks.0.back.0", "")
    assert find_cycle(ec.ReusedModule()) is None   # a shared module is no cycle


def test_cycle_refused_by_trace():
    with pytest.raises(ModelLoadError, match="cycle: me refers back to the model itself"):
        trace(ec.SelfContaining(), mx.zeros((1, 4)))


def test_cycle_refused_by_cli_without_hanging(tmp_path):
    path = write_model(tmp_path, """
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)
                self.inner = nn.Sequential(nn.ReLU())
                self.inner.owner = self
            def __call__(self, x):
                return self.inner(self.fc(x))
        def model():
            return M()
        """)
    line = one_error(run_cli("summary", path, "--input", "1,4", timeout=30), 3)
    assert "inner.owner refers back to the model itself" in line
