"""Exports (JSON round trip, GraphML/GEXF, LaTeX, Markdown, CSV) and diffs between versions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import networkx as nx
import pytest

from mlx_report import summary
from mlx_report.analysis.table import build_table
from mlx_report.export import graph_from_dict, to_gexf, to_graphml, to_json
from mlx_report.render.tabular import table_to_latex
from mlx_report.summary import ModelSummary

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "latex"
sys.path.insert(0, str(ROOT / "samples"))

import resnet  # noqa: E402

VERSIONS = '''
import mlx.core as mx
import mlx.nn as nn

class Block(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(d, hidden)
        self.fc2 = nn.Linear(hidden, d)
    def __call__(self, x):
        return x + self.fc2(nn.relu(self.fc1(x)))

class Net(nn.Module):
    def __init__(self, hidden: int = 32, blocks: int = 2):
        super().__init__()
        self.blocks = [Block(16, hidden) for _ in range(blocks)]
        self.head = nn.Linear(16, 4)
    def __call__(self, x):
        for b in self.blocks:
            x = b(x)
        return self.head(x)
'''


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlx_report", *args], cwd=cwd, capture_output=True, text=True)


def small_resnet() -> ModelSummary:
    return summary(resnet.build_model(depth=18), (1, 3, 64, 64), depth=2, verbose=0)


def test_json_round_trip_gives_the_same_summary_text() -> None:
    s = small_resnet()
    rebuilt = graph_from_dict(json.loads(s.to_json()))
    assert to_json(rebuilt) == s.to_json()
    assert str(ModelSummary(rebuilt, depth=2)) == str(s)


def test_graphml_and_gexf_read_back_and_are_deterministic() -> None:
    s = small_resnet()
    for write, read in ((to_graphml, nx.parse_graphml), (to_gexf, nx.read_gexf)):
        text = write(s.graph)
        assert text == write(small_resnet().graph)
        if read is nx.read_gexf:
            import io
            g = read(io.BytesIO(text.encode()))
        else:
            g = read(text)
        calls = [n for n, d in g.nodes(data=True) if d.get("kind") == "call"]
        assert len(calls) == s.graph.totals.calls
        kinds = {d.get("kind") for _, _, d in g.edges(data=True)}
        assert kinds == {"data", "contains"}


def test_latex_golden_and_compiles_when_pdflatex_exists(tmp_path: Path) -> None:
    s = small_resnet()
    tex = table_to_latex(s.graph, build_table(s.graph, depth=2), caption="ResNet-18 at 64×64", siunitx=False)
    golden = GOLDEN / "resnet18_depth2.tex"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(tex)
    assert tex == golden.read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"layers.0-1 (BasicBlock) $\times2$" in tex  # layer1 folds
    if shutil.which("pdflatex"):
        doc = tmp_path / "t.tex"
        doc.write_text("\\documentclass{article}\\usepackage{booktabs}\\usepackage[utf8]{inputenc}"
                       "\\usepackage{newunicodechar}\\newunicodechar{×}{$\\times$}"
                       "\\begin{document}" + tex + "\\end{document}\n")
        r = subprocess.run(["pdflatex", "-interaction=nonstopmode", doc.name], cwd=tmp_path, capture_output=True)
        assert r.returncode == 0, r.stdout[-2000:]


def test_latex_siunitx_and_escaping() -> None:
    s = small_resnet()
    tex = table_to_latex(s.graph, build_table(s.graph, depth=1), caption="50% of_it & more", siunitx=True)
    assert r"\caption{50\% of\_it \& more}" in tex
    assert r"\num{11699112}" in tex


def test_export_command_writes_each_format(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(VERSIONS)
    for ext in ("json", "graphml", "gexf", "md", "tex", "csv"):
        r = run_cli("export", "net.py", "--input", "2,16", "-o", f"out.{ext}", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / f"out.{ext}").stat().st_size > 100
    bad = run_cli("export", "net.py", "--input", "2,16", "-o", "out.xlsx", cwd=tmp_path)
    assert bad.returncode == 7 and "use one of .json .graphml .gexf .md .tex .csv" in bad.stderr
    assert not (tmp_path / "out.xlsx").exists()


def test_diff_of_two_versions_reports_the_deltas(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(VERSIONS)
    assert run_cli("export", "net.py", "--input", "2,16", "-o", "v1.json", cwd=tmp_path).returncode == 0
    # v2: hidden layers widened 32 -> 48, one block added.
    assert run_cli("export", "net.py", "--input", "2,16", "-a", "hidden=48", "-a", "blocks=3",
                   "-o", "v2.json", cwd=tmp_path).returncode == 0
    r = run_cli("diff", "v1.json", "v2.json", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    by_path = {m["path"]: m for m in d["modules"]}
    block = lambda h: (16 * h + h) + (h * 16 + 16)  # fc1 and fc2 with biases
    assert by_path["blocks.2"]["status"] == "added"
    assert by_path["blocks.2"]["params_b"] == block(48)
    assert by_path["blocks.0.fc1"]["what"] == ["shape", "params", "macs"]
    assert by_path["blocks.0.fc1"]["params_b"] - by_path["blocks.0.fc1"]["params_a"] == 16 * 16 + 16
    assert by_path["blocks.0.fc1"]["macs_b"] - by_path["blocks.0.fc1"]["macs_a"] == 2 * 16 * 16
    assert d["totals_b"]["params"] - d["totals_a"]["params"] == 3 * block(48) - 2 * block(32)
    assert by_path["head"] if "head" in by_path else True
    added = {t["name"] for t in d["tensors"] if t["status"] == "added"}
    assert added == {"blocks.2.fc1.weight", "blocks.2.fc1.bias", "blocks.2.fc2.weight", "blocks.2.fc2.bias"}
    assert run_cli("diff", "v1.json", "v2.json", "--fail-on", "shapes", cwd=tmp_path).returncode == 8
    assert run_cli("diff", "v1.json", "v1.json", "--fail-on", "any", cwd=tmp_path).returncode == 0
    md = run_cli("diff", "v1.json", "v2.json", "-o", "diff.md", cwd=tmp_path)
    assert md.returncode == 0 and "| blocks.2 | added | Block |" in (tmp_path / "diff.md").read_text()


def test_diff_checkpoints_measures_drift(tmp_path: Path) -> None:
    a = {"w": mx.array([1.0, 2.0, 3.0, 4.0]), "b": mx.zeros((2,))}
    b = {"w": mx.array([1.0, 2.0, 3.0, 5.0]), "b": mx.zeros((2,)), "new": mx.ones((3,))}
    mx.save_safetensors(str(tmp_path / "a.safetensors"), a)
    mx.save_safetensors(str(tmp_path / "b.safetensors"), b)
    r = run_cli("diff", "a.safetensors", "b.safetensors", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    tensors = {t["name"]: t for t in json.loads(r.stdout)["tensors"]}
    w = tensors["w"]["drift"]
    # ||b-a|| / ||a|| = 1 / sqrt(30); mean shift 0.25; cosine = 34 / (sqrt(30) * sqrt(39))
    assert w["relative_l2"] == pytest.approx(1 / 30 ** 0.5, rel=1e-6)
    assert w["mean_shift"] == pytest.approx(0.25, rel=1e-6)
    assert w["cosine"] == pytest.approx(34 / (30 ** 0.5 * 39 ** 0.5), rel=1e-6)
    assert tensors["new"]["status"] == "added"
