"""Exports (JSON round trip, GraphML/GEXF, LaTeX, Markdown, CSV) and diffs between versions."""

from __future__ import annotations

import json
import os
import re
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


# -- value changes, labels, drift order and cosine ------------------------------------------------

def _checkpoints(tmp_path: Path) -> None:
    """a/b checkpoints (w: a with only w changed): w scaled by 1.1, n gets a NaN, z all zeros, tiny changed below float32
    resolution of the squared difference (1e-30 -> 2e-30), same identical, c cast to float16."""
    a = {"w": mx.arange(1, 9, dtype=mx.float32), "n": mx.array([1.0, 2.0, 3.0]), "z": mx.zeros((5,)),
         "tiny": mx.array([1e-30, 1.0]), "same": mx.array([0.5, -0.5]), "c": mx.array([1.0, 2.0])}
    b = dict(a, w=a["w"] * 1.1, n=mx.array([1.0, float("nan"), 3.0]), tiny=mx.array([2e-30, 1.0]),
             c=a["c"].astype(mx.float16))
    mx.save_safetensors(str(tmp_path / "a.safetensors"), a)
    mx.save_safetensors(str(tmp_path / "b.safetensors"), b)
    mx.save_safetensors(str(tmp_path / "a2.safetensors"), a)
    mx.save_safetensors(str(tmp_path / "w.safetensors"), dict(a, w=a["w"] * 1.1))   # values only


def test_value_changes_count_for_fail_on_any(tmp_path: Path) -> None:
    from mlx_report.compare import compare, load_side

    _checkpoints(tmp_path)
    only_values = run_cli("diff", "a.safetensors", "w.safetensors", "--fail-on", "any", cwd=tmp_path)
    assert only_values.returncode == 8, only_values.stderr      # was 0: values changed, nothing structural
    assert "0 changed, 1 values changed, drift measured on 6" in only_values.stdout
    r = run_cli("diff", "a.safetensors", "b.safetensors", "--fail-on", "any", "--format", "json", cwd=tmp_path)
    assert r.returncode == 8, r.stderr
    d = json.loads(r.stdout)
    tensors = {t["name"]: t for t in d["tensors"]}
    for name in ("w", "n", "tiny"):                               # tiny: drift 0 in float32, still changed
        assert (tensors[name]["status"], tensors[name]["what"]) == ("values changed", ["values"]), name
    assert tensors["tiny"]["drift"]["relative_l2"] == 0.0
    assert (tensors["c"]["status"], tensors["c"]["what"]) == ("changed", ["dtype"])  # 1.0, 2.0 exact in f16
    assert tensors["same"]["status"] == tensors["z"]["status"] == "same"
    assert tensors["same"]["drift"]["identical"] is True and tensors["w"]["drift"]["identical"] is False
    assert d["summary"]["tensors"] == {"added": 0, "removed": 0, "changed": 1, "values_changed": 3,
                                       "drift_measured": 6}
    assert d["summary"]["differs"] == {"params": False, "shapes": False, "values": True, "any": True}
    assert run_cli("diff", "a.safetensors", "a2.safetensors", "--fail-on", "any", cwd=tmp_path).returncode == 0

    result = compare(*(load_side(str(tmp_path / n), [], None, None, None) for n in ("a.safetensors", "b.safetensors")))
    assert result.matches("values") and result.matches("any") and not result.matches("shapes")
    same = compare(*(load_side(str(tmp_path / n), [], None, None, None) for n in ("a.safetensors", "a2.safetensors")))
    assert not same.matches("values") and not same.matches("any")
    no_drift = compare(*(load_side(str(tmp_path / n), [], None, None, None)
                         for n in ("a.safetensors", "b.safetensors")), drift=False)
    assert not no_drift.values_compared and not no_drift.matches("values")   # not compared: not claimed

    from mlx_report.render.diff_text import render_diff_markdown, render_diff_text
    from mlx_report.render.report_diff import diff_html

    text = render_diff_text(result)
    assert "Tensors: 0 added, 0 removed, 1 changed, 3 values changed, drift measured on 6" in text
    assert "values changed" not in render_diff_text(no_drift)               # unknown, so not "0"
    assert "| w | values changed |" in render_diff_markdown(result)
    html = diff_html(result)
    assert "Differences found" in html and "No difference" not in html
    assert '<span class="mono">values</span> differs · <span class="mono">any</span> differs' in html
    assert re.search(r'>w</td><td class="st-changed">values changed</td>', html)
    assert '<span class="mono">values</span> not compared' in diff_html(no_drift)


def test_same_named_archives_are_labelled_by_folder(tmp_path: Path) -> None:
    from mlx_report.compare import compare, load_side
    from mlx_report.render.diff_text import render_diff_text
    from mlx_report.render.report_diff import diff_html

    s = summary(resnet.build_model(depth=18), (1, 3, 32, 32), depth=1, verbose=0)
    for folder in ("releases/v1", "releases/v2", "other/v1"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "model.json").write_text(s.to_json())
    side = lambda p: load_side(str(tmp_path / p), [], None, None, None)
    result = compare(side("releases/v1/model.json"), side("releases/v2/model.json"))
    assert (result.label_a, result.label_b) == ("v1/model.json", "v2/model.json")
    assert render_diff_text(result).startswith("A: v1/model.json\nB: v2/model.json\n")
    html = diff_html(result, *(side(f"releases/v{i}/model.json").graph for i in (1, 2)))
    assert '<h1 class="doc-title">v1/model.json → v2/model.json</h1>' in html
    assert "Side A, v1/model.json (ResNet)" in html and "Side A</th><td>v1/model.json:" in html
    # Same last folder: one more level; the same file twice keeps its plain name.
    deeper = compare(side("releases/v1/model.json"), side("other/v1/model.json"))
    assert (deeper.label_a, deeper.label_b) == ("releases/v1/model.json", "other/v1/model.json")
    same = compare(side("releases/v1/model.json"), side("releases/v1/model.json"))
    assert (same.label_a, same.label_b) == ("model.json", "model.json")
    # Different names are left alone, as are checkpoints with different names.
    (tmp_path / "releases/v1/other.json").write_text(s.to_json())
    plain = compare(side("releases/v1/model.json"), side("releases/v1/other.json"))
    assert (plain.label_a, plain.label_b) == ("model.json", "other.json")


def test_cosine_undefined_for_non_finite_and_zero_norm() -> None:
    import math

    from mlx_report.analysis.drift import tensor_drift

    x = mx.array([1.0, 2.0, 3.0])
    nan = tensor_drift(x, mx.array([1.0, float("nan"), 3.0]))
    assert math.isnan(nan.cosine) and math.isnan(nan.relative_l2) and not nan.identical   # was cosine 1.0
    assert math.isnan(tensor_drift(mx.array([1.0, float("inf"), 3.0]), x).cosine)
    both_nan = tensor_drift(mx.array([float("nan"), 1.0]), mx.array([float("nan"), 1.0]))
    assert both_nan.identical and math.isnan(both_nan.cosine)
    zeros = tensor_drift(mx.zeros((4,)), mx.zeros((4,)))
    assert zeros.cosine is None and zeros.identical and zeros.relative_l2 == 0.0        # was cosine 1.0
    grew = tensor_drift(mx.zeros((2,)), mx.array([1.0, 0.0]))
    assert grew.cosine is None and grew.relative_l2 == math.inf and not grew.identical  # was cosine 0.0
    assert tensor_drift(x, -x).cosine == pytest.approx(-1.0)
    assert tensor_drift(x, x).cosine == pytest.approx(1.0) and tensor_drift(x, x).identical


def test_drift_sorted_largest_first_everywhere(tmp_path: Path) -> None:
    from mlx_report.compare import compare, load_side
    from mlx_report.render.diff_text import render_diff_markdown, render_diff_text
    from mlx_report.render.report_diff import diff_html

    base = mx.arange(1, 9, dtype=mx.float32)
    a = {"a_small": base, "b_big": base, "c_mid": base, "d_mid": base, "e_nan": base, "f_zero": mx.zeros((3,))}
    b = {"a_small": base * 1.01, "b_big": base * 3, "c_mid": base * 1.5, "d_mid": base * 1.5,
         "e_nan": mx.concatenate([base[:7], mx.array([float("nan")])]), "f_zero": mx.zeros((3,)),
         "g_added": base}
    mx.save_safetensors(str(tmp_path / "a.safetensors"), a)
    mx.save_safetensors(str(tmp_path / "b.safetensors"), b)
    result = compare(*(load_side(str(tmp_path / n), [], None, None, None) for n in ("a.safetensors", "b.safetensors")))
    order = ["e_nan", "b_big", "c_mid", "d_mid", "a_small", "f_zero", "g_added"]  # NaN first, ties by name
    assert [t.name for t in result.tensors] == order                             # was alphabetical
    assert [t["name"] for t in result.to_dict()["tensors"]] == order
    strict = json.loads(json.dumps(result.to_dict()), parse_constant=lambda c: pytest.fail(c))
    assert strict["tensors"][0]["drift"]["relative_l2"] is None        # NaN → null, valid JSON
    text = render_diff_text(result)
    rows = [line.split()[0] for line in text.splitlines() if line.split()[:1] and line.split()[0] in order]
    assert rows == order
    md = [line.split("|")[1].strip() for line in render_diff_markdown(result).splitlines()
          if line.startswith("| ") and line.split("|")[1].strip() in order]
    assert md == order
    zero_row = next(line for line in text.splitlines() if line.split()[:1] == ["f_zero"])
    nan_row = next(line for line in text.splitlines() if line.split()[:1] == ["e_nan"])
    assert zero_row.rstrip().endswith("—") and nan_row.rstrip().endswith("nan")  # both were 1.000000
    html = diff_html(result)
    drift = re.search(r'<section id="drift".*?</section>', html, re.S).group(0)
    assert re.findall(r'<td class="path">([^<]+)</td>', drift) == order[:-1]
    assert "Largest drift</th><td>e_nan: relative L2 nan, cosine nan" in html


def test_one_model_with_two_checkpoints_is_labelled_by_checkpoint(tmp_path: Path) -> None:
    """`diff net.py net.py --weights-a v1 --weights-b v2`: the sides are told apart by weights."""
    (tmp_path / "net.py").write_text("import mlx.nn as nn\n\n"
                                     "def build_model():\n    return nn.Sequential(nn.Linear(4, 3))\n")
    w = mx.arange(12, dtype=mx.float32).reshape(3, 4)
    mx.save_safetensors(str(tmp_path / "v1.safetensors"), {"layers.0.weight": w, "layers.0.bias": mx.zeros((3,))})
    mx.save_safetensors(str(tmp_path / "v2.safetensors"), {"layers.0.weight": w * 2, "layers.0.bias": mx.zeros((3,))})
    r = run_cli("diff", "net.py", "net.py", "-i", "1,4", "--weights-a", "v1.safetensors",
                "--weights-b", "v2.safetensors", "--fail-on", "values", cwd=tmp_path)
    assert r.returncode == 8, r.stderr
    assert "net.py + v1.safetensors" in r.stdout and "net.py + v2.safetensors" in r.stdout


def test_module_whose_input_changed_shows_the_input_shapes(tmp_path: Path) -> None:
    """A Linear whose input widened keeps its output shape: the cell shows what changed."""
    from mlx_report.render.diff_text import module_cells

    (tmp_path / "m.py").write_text("import mlx.nn as nn\n\ndef build_model(width: int = 8):\n"
                                   "    return nn.Sequential(nn.Linear(4, width), nn.Linear(width, 2))\n")
    for name, width in (("a", 8), ("b", 12)):
        assert run_cli("export", "m.py", "-i", "1,4", "-a", f"width={width}", "-o", f"{name}.json",
                       cwd=tmp_path).returncode == 0
    from mlx_report.compare import compare, load_side

    result = compare(load_side(str(tmp_path / "a.json"), [], None, None, None),
                     load_side(str(tmp_path / "b.json"), [], None, None, None))
    cells = {m.path: module_cells(m) for m in result.modules}
    assert cells["layers.1"][3] == "in [1, 8] → [1, 12], out [1, 2]"
    assert cells["layers.0"][3] == "[1, 8] → [1, 12]"
