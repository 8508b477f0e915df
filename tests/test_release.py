"""Release workflows: `stats` on checkpoints alone, rebuilding reports from archived JSON,
`build --archive` (byte-identical twice), and diff reports with highlighted diagrams."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from typer.testing import CliRunner

from mlx_report.analysis import weights as weights_mod
from mlx_report.analysis.checkpoint_stats import checkpoint_stats
from mlx_report.analysis.weights import TensorSource, WeightReport, weight_stats
from mlx_report.cli import app
from mlx_report.graph import TensorInfo
from tests.test_diff_export import VERSIONS

PDFTOTEXT = shutil.which("pdftotext")
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _arrays() -> dict[str, np.ndarray]:
    """float32 with zeros, a float16 tensor, and one with a NaN and an Inf."""
    rng = np.random.default_rng(7)
    w = rng.normal(0.1, 2.0, size=(300, 200)).astype(np.float32)
    w[::5, ::3] = 0.0
    bad = rng.normal(size=(40, 50)).astype(np.float32)
    bad[0, 0], bad[1, 1] = np.nan, np.inf
    return {"layers.0.fc.weight": w, "layers.1.fc.weight": 2 * w,
            "layers.0.fc.bias": rng.uniform(-1, 1, size=(300,)).astype(np.float32),
            "emb.weight": rng.normal(size=(64, 32)).astype(np.float16), "bad.weight": bad}


def _check_numbers(stats: dict, arrays: dict[str, np.ndarray]) -> None:
    for name, a in arrays.items():
        s = stats[name]
        x = a.astype(np.float32).reshape(-1)
        fin = x[np.isfinite(x)]
        assert s["min"] == float(fin.min()) and s["max"] == float(fin.max()), name
        assert s["abs_max"] == float(np.abs(fin).max()), name
        assert s["mean"] == pytest.approx(float(fin.mean(dtype=np.float64)), rel=1e-5, abs=1e-7), name
        assert s["std"] == pytest.approx(float(fin.std(dtype=np.float64)), rel=1e-5), name
        assert s["zero_fraction"] == float((x == 0).mean()), name
        assert s["nan_count"] == int(np.isnan(x).sum()) and s["inf_count"] == int(np.isinf(x).sum())
        assert sum(s["hist_counts"]) == fin.size, name


@pytest.fixture
def ckpt(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    arrays = _arrays()
    path = tmp_path / "model.safetensors"
    mx.save_safetensors(str(path), {k: mx.array(v) for k, v in arrays.items()})
    return path, arrays


def _stats_json(*args) -> dict:
    result = invoke("stats", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- stats ------------------------------------------------------------------------------------

def test_stats_of_a_safetensors_file_match_numpy(ckpt):
    path, arrays = ckpt
    data = _stats_json(path)
    stats = {t["name"]: t for t in data["tensors"]}
    _check_numbers(stats, arrays)
    assert data["checkpoint"]["files"][0]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert stats["bad.weight"]["flags"] == ["NaN ×1", "Inf ×1"]
    assert stats["emb.weight"]["dtype"] == "float16" and stats["emb.weight"]["trainable"] is None
    # the same parameter of every layer shares its histogram bins
    assert stats["layers.0.fc.weight"]["group"] == stats["layers.1.fc.weight"]["group"] == "layers.*.fc.weight"
    assert WeightReport.from_dict(data).tensors[0].name == "bad.weight"   # JSON round trip


def test_stats_of_a_sharded_set_and_npz(ckpt, tmp_path: Path):
    _, arrays = ckpt
    shards = tmp_path / "sharded"
    shards.mkdir()
    names = sorted(arrays)
    parts = {"model-00001-of-00002.safetensors": names[:2], "model-00002-of-00002.safetensors": names[2:]}
    weight_map = {}
    for file, keys in parts.items():
        mx.save_safetensors(str(shards / file), {k: mx.array(arrays[k]) for k in keys})
        weight_map.update({k: file for k in keys})
    (shards / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    for target in (shards / "model.safetensors.index.json", shards):
        data = _stats_json(target)
        assert data["checkpoint"]["format"] == "sharded safetensors"
        assert len(data["checkpoint"]["files"]) == 2 and "2 shards" in data["checkpoint"]["label"]
        _check_numbers({t["name"]: t for t in data["tensors"]}, arrays)
    npz = tmp_path / "w.npz"
    np.savez(npz, **arrays)
    data = _stats_json(npz)
    assert data["checkpoint"]["format"] == "npz"
    _check_numbers({t["name"]: t for t in data["tensors"]}, arrays)


def test_chunked_reading_gives_the_same_figures(ckpt, monkeypatch):
    """Tensors spread over many chunks: extremes and histograms exact, moments merged."""
    path, arrays = ckpt
    whole = {s.name: s for s in checkpoint_stats(path).report.tensors}
    monkeypatch.setattr(weights_mod, "CHUNK_BYTES", 4096 * 4)   # 4096 float32 per chunk
    pieces = {s.name: s for s in checkpoint_stats(path).report.tensors}
    for name, s in whole.items():
        t = pieces[name]
        assert (t.min, t.max, t.nan_count, t.inf_count, t.hist_counts) == \
            (s.min, s.max, s.nan_count, s.inf_count, s.hist_counts), name
        assert t.mean == pytest.approx(s.mean, rel=1e-6, abs=1e-9) and t.std == pytest.approx(s.std, rel=1e-6)


def test_sampled_file_reading_matches_the_in_memory_path(ckpt, monkeypatch):
    """The file reader and the array path draw the same sample; extremes stay exact."""
    path, arrays = ckpt
    monkeypatch.setattr(weights_mod, "CHUNK_BYTES", 4096 * 4)
    options = dict(sample_threshold=1000, sample_size=500)
    from_file = {s.name: s for s in checkpoint_stats(path, **options).report.tensors}
    w = arrays["layers.0.fc.weight"]
    info = TensorInfo("layers.0.fc.weight", [], w.shape, "float32", w.size, w.nbytes, True)
    in_memory = weight_stats([TensorSource(info, mx.array(w), "layers.*.fc", "weight")],
                             sample=True, sample_size=500).tensors[0]
    s = from_file["layers.0.fc.weight"]
    assert s.sampled and s.count == 500 and s.min == float(w.min()) and s.max == float(w.max())
    assert s.mean == pytest.approx(in_memory.mean, rel=1e-6) and s.zero_fraction == in_memory.zero_fraction


def test_stats_formats(ckpt, tmp_path: Path):
    path, arrays = ckpt
    text = invoke("stats", path)
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0].startswith("Checkpoint: model.safetensors (safetensors, 1 file")
    assert lines[3] == "1 flagged tensor:" and "bad.weight: NaN ×1; Inf ×1" in lines[4]  # flags on top
    assert re.search(r"layers\.0\.fc\.weight\s+300×200\s+float32\s+60,000\s+240,000", text.stdout)
    rows = list(csv.DictReader(io.StringIO(invoke("stats", path, "-f", "csv").stdout)))
    by_name = {r["name"]: r for r in rows}
    assert len(rows) == len(arrays) and float(by_name["layers.0.fc.weight"]["max"]) == float(arrays["layers.0.fc.weight"].max())
    assert by_name["bad.weight"]["nan_count"] == "1"
    md = invoke("stats", path, "-f", "markdown").stdout
    assert "| Tensor | Shape | Dtype | Params |" in md and "| `emb.weight` | 64×32 | float16 |" in md
    for ext in ("json", "csv", "md"):
        out = tmp_path / f"stats.{ext}"
        assert invoke("stats", path, "-o", out).exit_code == 0 and out.stat().st_size > 100
    assert json.loads((tmp_path / "stats.json").read_text())["weight_statistics_version"] == 1
    bad = invoke("stats", path, "-f", "csv", "-o", tmp_path / "x.json")
    assert bad.exit_code == 2 and "does not match" in bad.output


def test_packed_weights_are_listed_not_measured(tmp_path: Path):
    w = mx.random.normal((64, 128))
    q, scales, biases = mx.quantize(w, group_size=64, bits=4)
    path = tmp_path / "q.safetensors"
    mx.save_safetensors(str(path), {"fc.weight": q, "fc.scales": scales, "fc.biases": biases,
                                    "fc.bias": mx.zeros((64,))})
    text = invoke("stats", path).stdout
    assert "1 packed quantized weight (uint32 with .scales beside them, e.g. fc.weight)" in text
    stats = {t["name"]: t for t in _stats_json(path)["tensors"]}
    assert stats["fc.weight"]["mean"] is None and "packed" in stats["fc.weight"]["quantized"]
    assert stats["fc.scales"]["kind"] == "quant_aux" and stats["fc.scales"]["mean"] is not None


def test_corrupt_or_truncated_checkpoint_exits_5(ckpt, tmp_path: Path):
    path, _ = ckpt
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(path.read_bytes()[:5000])
    corrupt = tmp_path / "bad.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json!!!!!}" + b"\x00" * 64)
    for bad, expected in ((truncated, "lies outside the file"), (corrupt, "corrupt safetensors header")):
        r = subprocess.run([sys_python(), "-m", "mlx_report", "stats", str(bad)], capture_output=True, text=True)
        assert r.returncode == 5, r.stderr
        assert r.stderr.startswith(f"error: {bad.name}:") and expected in r.stderr
        assert "Traceback" not in r.stderr and r.stdout == ""


def sys_python() -> str:
    import sys

    return sys.executable


def test_stats_html_and_pdf_reports(ckpt, tmp_path: Path):
    path, arrays = ckpt
    html = tmp_path / "stats.html"
    assert invoke("stats", path, "-o", html).exit_code == 0
    text = html.read_text()
    assert 'id="weights"' in text and "1 flagged tensor" in text and "layers.*.fc.weight" in text
    assert "<svg" in text and not re.search(r"(src|href)=\"(https?|file):", text)  # self-contained
    assert hashlib.sha256(path.read_bytes()).hexdigest() in text
    pdf, again = tmp_path / "stats.pdf", tmp_path / "again.pdf"
    assert invoke("stats", path, "-o", pdf).exit_code == 0
    assert invoke("stats", path, "-o", again).exit_code == 0
    assert pdf.read_bytes() == again.read_bytes() and pdf.read_bytes().startswith(b"%PDF")
    if PDFTOTEXT:
        words = subprocess.run([PDFTOTEXT, "-layout", str(pdf), "-"], capture_output=True, text=True).stdout
        assert "Checkpoint statistics".upper().replace(" ", "") in words.upper().replace(" ", "")
        assert "bad.weight" in words and "Weight distributions" in words and "Definitions" in words


# -- rebuild and archive ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("net")
    (folder / "net.py").write_text(VERSIONS)
    return folder / "net.py"


def _section(html: str, section: str) -> str:
    m = re.search(rf'<section id="{section}"[^>]*>.*?</section>', html, flags=re.S)
    assert m, section
    return m.group(0)


def test_rebuild_from_json_matches_the_original(net: Path, tmp_path: Path):
    archive = tmp_path / "release"
    assert invoke("build", net, "-i", "2,16", "-o", tmp_path / "original.html", "--archive", archive).exit_code == 0
    original = (tmp_path / "original.html").read_text()
    plain = invoke("build", archive / "model.json", "-o", tmp_path / "rebuilt.html")
    assert plain.exit_code == 0, plain.output
    rebuilt = (tmp_path / "rebuilt.html").read_text()
    for section in ("figures", "table", "costs", "appendix"):
        assert _section(rebuilt, section) == _section(original, section), section
    assert "rebuilt from an archive" in rebuilt and "model.json: an archived mlx-report JSON" in rebuilt
    assert "without weight statistics" in _section(rebuilt, "weights")
    with_stats = invoke("build", archive / "model.json", "--weights-stats", archive / "weights-stats.json",
                        "-o", tmp_path / "full.html")
    assert with_stats.exit_code == 0, with_stats.output
    assert _section((tmp_path / "full.html").read_text(), "weights") == _section(original, "weights")
    # the JSON of `export -o` rebuilds too; model options cannot apply to it
    assert invoke("export", net, "-i", "2,16", "-o", tmp_path / "m.json").exit_code == 0
    assert invoke("build", tmp_path / "m.json", "-o", tmp_path / "m.pdf").exit_code == 0
    wrong = invoke("build", tmp_path / "m.json", "-i", "2,16", "-o", tmp_path / "x.html")
    assert wrong.exit_code == 2 and "--input cannot apply to an archived JSON" in wrong.output


def test_archive_twice_gives_identical_bytes(net: Path, tmp_path: Path):
    first, second = tmp_path / "a" / "v1", tmp_path / "b"
    for target in (first, second):
        result = invoke("build", net, "-i", "2,16", "--archive", target)
        assert result.exit_code == 0, result.output
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(["report.pdf", "report.html", "architecture.svg", "model.json",
                            "weights-stats.json", "manifest.json"])
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    manifest = json.loads((first / "manifest.json").read_text())
    listed = {f["name"]: f for f in manifest["files"]}
    assert set(listed) == set(names) - {"manifest.json"}
    for name, entry in listed.items():
        payload = (first / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(payload).hexdigest() and entry["bytes"] == len(payload)
    assert manifest["command"]["inputs"] == ["2,16"] and manifest["versions"]["mlx"] == mx.__version__
    assert "date" not in manifest and "2024" not in (first / "manifest.json").read_text()
    stats = WeightReport.from_dict(json.loads((first / "weights-stats.json").read_text()))
    assert stats.total_params == json.loads((first / "model.json").read_text())["totals"]["params"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    refused = invoke("build", net, "-i", "2,16", "--archive", a_file)
    assert refused.exit_code == 7 and "is a file" in refused.output
    assert invoke("build", net, "-i", "2,16").exit_code == 2   # neither -o nor --archive
    # a directory of other files (a source folder) is refused; an earlier archive is replaced
    crowded = tmp_path / "src"
    crowded.mkdir()
    (crowded / "model.py").write_text("# mine")
    refused = invoke("build", net, "-i", "2,16", "--archive", crowded)
    assert refused.exit_code == 7 and "already holds other files" in refused.output
    assert sorted(p.name for p in crowded.iterdir()) == ["model.py"]
    assert invoke("build", net, "-i", "2,16", "--archive", first).exit_code == 0


# -- diff report ------------------------------------------------------------------------------

def _side_svg(html: str, prefix: str) -> str:
    m = re.search(rf'<svg\b[^>]*aria-labelledby="{prefix}-title.*?</svg>', html, flags=re.S)
    assert m, prefix
    return m.group(0)


def _marked(svg: str, graph: dict, kind: str) -> set[str]:
    """Module paths of the boxes and clusters outlined as `kind` in a side's SVG."""
    ids = {layer["id"]: layer["path"] for layer in graph["layers"]}
    titles = re.findall(rf'<g id="[^"]*" class="(?:node|cluster) highlight_{kind}">\s*<title>(?:cluster_)?([^<]+)</title>', svg)
    return {ids[t] for t in titles}


def test_diff_report_highlights_a_widened_layer_and_an_added_block(net: Path, tmp_path: Path):
    folder = net.parent
    assert invoke("export", net, "-i", "2,16", "-o", folder / "v1.json").exit_code == 0
    assert invoke("export", net, "-i", "2,16", "-a", "hidden=48", "-a", "blocks=3",
                  "-o", folder / "v2.json").exit_code == 0
    out = tmp_path / "diff.html"
    result = invoke("diff", folder / "v1.json", folder / "v2.json", "-o", out, "--fail-on", "shapes")
    assert result.exit_code == 8, result.output          # the report is written and CI still fails
    html = out.read_text()
    a, b = _side_svg(html, "diff-a"), _side_svg(html, "diff-b")
    v1, v2 = (json.loads((folder / f"v{i}.json").read_text()) for i in (1, 2))
    assert "blocks.2" in _marked(b, v2, "added")
    assert not _marked(a, v1, "added") and not _marked(b, v2, "removed")
    assert {"blocks.0.fc1", "blocks.0.fc2"} <= _marked(a, v1, "changed") & _marked(b, v2, "changed")
    assert "head" not in _marked(a, v1, "changed") | _marked(b, v2, "changed")   # unchanged
    assert "Compared with the other side:" in b and "added" in b
    for section in ("diagrams", "modules", "tensors", "definitions"):
        assert f'id="{section}"' in html
    modules = _section(html, "modules")
    assert re.search(r"blocks\.2</td><td[^>]*>added</td>", modules)
    assert "+816" in modules                                                 # fc1 of the new block
    pdf = tmp_path / "diff.pdf"
    assert invoke("diff", folder / "v1.json", folder / "v2.json", "-o", pdf).exit_code == 0
    assert pdf.read_bytes().startswith(b"%PDF")


def test_checkpoint_diff_report_has_tables_only(tmp_path: Path):
    a = {"w": mx.array(np.arange(1, 65, dtype=np.float32)), "b": mx.zeros((2,))}
    b = {"w": a["w"] * 1.5, "b": mx.zeros((2,)), "new": mx.ones((3,))}
    mx.save_safetensors(str(tmp_path / "a.safetensors"), a)
    mx.save_safetensors(str(tmp_path / "b.safetensors"), b)
    out = tmp_path / "d.html"
    assert invoke("diff", tmp_path / "a.safetensors", tmp_path / "b.safetensors", "-o", out).exit_code == 0
    html = out.read_text()
    assert 'id="diagrams"' not in html and "<svg" not in html
    drift = _section(html, "drift")
    assert drift.index(">w<") < drift.index(">b<")                           # largest change first
    assert ">0.5<" in drift and 'id="tensors"' in html and ">new<" in _section(html, "tensors")
