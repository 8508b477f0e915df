"""The HTML/PDF report and the weight statistics behind it.

Statistics are checked against numpy on small tensors set by hand; the report is
built end to end from a tiny model file through the `build` command, in process.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten
from typer.testing import CliRunner

from mlx_report.analysis import weights as weights_mod
from mlx_report.analysis.weights import model_weight_stats
from mlx_report.random_init import spread_random_init
from mlx_report.cli import app
from mlx_report.render.report import SECTIONS, build_report, report_html
from mlx_report.trace import trace
from mlx_report.trace.params import collect_tensors
from tests.models.edge_cases import make_quantized

TINY = textwrap.dedent('''
    import mlx.core as mx
    import mlx.nn as nn


    class Block(nn.Module):
        def __init__(self, dims: int):
            super().__init__()
            self.conv = nn.Conv2d(dims, dims, 3, padding=1)
            self.act = nn.ReLU()

        def __call__(self, x):
            return x + self.act(self.conv(x))


    class TinyNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.norm = nn.BatchNorm(8)
            self.blocks = nn.Sequential(Block(8), Block(8))
            self.head = nn.Linear(8, 10)

        def __call__(self, x):
            x = self.blocks(self.norm(self.stem(x)))
            return self.head(x.mean(axis=(1, 2)))


    def build_model():
        model = TinyNet()
        model.eval()
        return model
''')
TOTAL_PARAMS = 3 * 3 * 3 * 8 + 8 + 4 * 8 + 2 * (9 * 8 * 8 + 8) + 8 * 10 + 10
PDFTOTEXT = shutil.which("pdftotext")
PDFINFO = shutil.which("pdfinfo")
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.py"
    path.write_text(TINY)
    return path


def build(tiny: Path, out: Path, *extra: str) -> None:
    result = runner.invoke(app, ["build", str(tiny), "--input", "1,16,16,3", "-o", str(out), *extra])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def pdf(tiny: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pdf") / "report.pdf"
    build(tiny, out)
    return out


@pytest.fixture(scope="module")
def html_text(tiny: Path, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("html") / "report.html"
    build(tiny, out)
    return out.read_text(encoding="utf-8")


# -- weight statistics ------------------------------------------------------------------------

def stats_of(model: nn.Module, **options):
    tensors, _ = collect_tensors(model)
    return {s.name: s for s in model_weight_stats(model, tensors, **options).tensors}


def test_statistics_match_numpy():
    model = nn.Sequential(nn.Linear(64, 48), nn.Linear(48, 8))
    w = np.random.default_rng(1).normal(0.3, 2.0, size=(48, 64)).astype(np.float32)
    w[::7, ::5] = 0.0
    model.layers[0].weight = mx.array(w)
    s = stats_of(model)["layers.0.weight"]
    assert s.min == float(w.min()) and s.max == float(w.max())
    assert s.abs_max == float(np.abs(w).max())
    assert s.mean == pytest.approx(float(w.mean()), rel=1e-5)
    assert s.std == pytest.approx(float(w.std()), rel=1e-5)
    assert s.zero_fraction == float((w == 0).mean())
    assert s.nan_count == 0 and s.inf_count == 0
    assert sum(s.hist_counts) == w.size and not s.sampled and s.count == w.size


def test_nan_and_inf_are_counted_and_moments_use_finite_values():
    model = nn.Sequential(nn.Linear(32, 16))
    w = np.random.default_rng(2).uniform(-1, 1, size=(16, 32)).astype(np.float32)
    w[0, :3] = np.nan
    w[1, 0], w[2, 5] = np.inf, -np.inf
    model.layers[0].weight = mx.array(w)
    s = stats_of(model)["layers.0.weight"]
    finite = w[np.isfinite(w)]
    assert (s.nan_count, s.inf_count) == (3, 2)
    assert s.min == float(finite.min()) and s.max == float(finite.max())
    assert s.mean == pytest.approx(float(finite.mean()), rel=1e-5)
    assert s.std == pytest.approx(float(finite.std()), rel=1e-5)
    assert sum(s.hist_counts) == finite.size
    assert "NaN ×3" in s.flags and "Inf ×2" in s.flags


def test_flags_dead_and_outlier_tensors():
    model = nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 64), nn.Linear(64, 64))
    model.layers[0].weight = mx.zeros((64, 64))
    spiky = np.random.default_rng(3).normal(0, 0.02, size=(64, 64)).astype(np.float32)
    spiky[5, 5] = 5.0  # ~ 60 σ
    model.layers[1].weight = mx.array(spiky)
    model.layers[2].bias = mx.zeros((64,))
    s = stats_of(model)
    assert s["layers.0.weight"].flags == ["dead: all zero"]
    assert any(f.startswith("outlier") for f in s["layers.1.weight"].flags)
    assert s["layers.2.bias"].flags == []      # a zero bias is an ordinary init, not dead
    assert s["layers.2.weight"].flags == []


def test_quantized_weights_are_dequantized_and_storage_is_real():
    model = make_quantized()
    s = stats_of(model)["fc1.weight"]
    q = model.fc1
    dense = np.array(mx.dequantize(q.weight, q.scales, q.biases, group_size=q.group_size, bits=q.bits))
    assert s.quantized == "4-bit affine, group size 64"
    assert s.elements == dense.size == 128 * 256
    assert s.nbytes == q.weight.nbytes and s.dtype == "uint32"
    assert s.mean == pytest.approx(float(dense.mean()), rel=1e-4, abs=1e-7)
    assert s.std == pytest.approx(float(dense.std()), rel=1e-5)
    assert s.min == float(dense.min()) and s.max == float(dense.max())


def test_sampling_above_threshold_keeps_extremes_exact():
    model = nn.Sequential(nn.Linear(300, 200))
    w = np.random.default_rng(4).normal(size=(200, 300)).astype(np.float32)
    model.layers[0].weight = mx.array(w)
    tensors, _ = collect_tensors(model)
    report = model_weight_stats(model, tensors, sample_threshold=1000, sample_size=5000)
    s = {t.name: t for t in report.tensors}
    assert report.sampled and "seed 0" in report.sampling_note()
    assert s["layers.0.weight"].sampled and s["layers.0.weight"].count == 5000
    assert not s["layers.0.bias"].sampled          # smaller than the sample: read whole
    assert s["layers.0.weight"].min == float(w.min()) and s["layers.0.weight"].max == float(w.max())
    assert s["layers.0.weight"].mean == pytest.approx(float(w.mean()), abs=0.05)
    assert sum(s["layers.0.weight"].hist_counts) == 5000
    again = model_weight_stats(model, tensors, sample_threshold=1000, sample_size=5000)
    assert again.tensors[1].mean == s["layers.0.weight"].mean  # fixed seed: same sample
    below = model_weight_stats(model, tensors)                  # default threshold: exact
    assert not below.sampled


def test_random_init_spread_over_streams_draws_the_same_values():
    """Streams only schedule the work: the draws depend on the keys, so the values match."""
    def build():
        mx.random.seed(7)
        return nn.Sequential(nn.Embedding(50, 16), nn.Linear(16, 32), nn.Conv1d(4, 8, 3))

    plain = dict(tree_flatten(build().parameters()))
    originals = {n: getattr(mx.random, n) for n in ("uniform", "normal", "bernoulli")}
    with spread_random_init():
        assert mx.random.uniform is not originals["uniform"]
        spread_model = build()
        picked = mx.random.uniform(0, 1, [3], mx.float32, None, mx.cpu)  # positional stream kept
    spread = dict(tree_flatten(spread_model.parameters()))
    assert {n: getattr(mx.random, n) for n in originals} == originals  # patch undone
    assert plain.keys() == spread.keys() and picked.shape == (3,)
    for name in plain:
        assert np.array_equal(np.array(plain[name]), np.array(spread[name])), name
    tensors, _ = collect_tensors(spread_model)
    by_name = {s.name: s for s in model_weight_stats(spread_model, tensors).tensors}
    assert by_name["layers.1.weight"].min == float(np.array(plain["layers.1.weight"]).min())


def test_overlapping_spread_random_init_restores_mx_random():
    """Two uses that exit out of order (two threads building models) still restore it."""
    original = mx.random.normal
    first, second = spread_random_init(), spread_random_init()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert mx.random.normal is not original      # the second use is still inside
    second.__exit__(None, None, None)
    assert mx.random.normal is original


def test_histograms_share_bins_within_a_group():
    model = nn.Sequential(nn.Linear(16, 16), nn.Linear(16, 16))
    model.layers[0].weight = mx.array(np.linspace(-1, 1, 256, dtype=np.float32).reshape(16, 16))
    model.layers[1].weight = mx.array(np.linspace(0, 0.1, 256, dtype=np.float32).reshape(16, 16))
    tensors, _ = collect_tensors(model)
    report = model_weight_stats(model, tensors)
    bins = report.groups["Linear.weight"]
    assert bins.lo <= -1 and bins.hi >= 1 and 24 <= bins.count <= 48
    a, b = (t for t in report.tensors if t.group == "Linear.weight")
    assert len(a.hist_counts) == len(b.hist_counts) == bins.count
    assert sum(a.hist_counts) == sum(b.hist_counts) == 256
    edges = np.array(bins.edges)   # exact: numpy with the same edges agrees bin by bin
    assert a.hist_counts == np.histogram(np.linspace(-1, 1, 256, dtype=np.float32), edges)[0].tolist()


# -- the HTML report --------------------------------------------------------------------------

class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.ids: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for key, value in attrs:
            if key in ("src", "href", "xlink:href", "action", "poster", "data") and value:
                self.refs.append(value)
            if key == "id":
                self.ids.append(value)


def test_html_is_self_contained_with_every_section(html_text: str):
    parser = _Refs()
    parser.feed(html_text)
    assert all(r.startswith("#") or r.startswith("data:") for r in parser.refs), parser.refs
    assert "link" not in parser.tags and "iframe" not in parser.tags
    assert not re.search(r"url\((?!#)", html_text) and "@import" not in html_text
    assert not re.search(r"(src|href)=\"(https?|file):", html_text)
    assert set(SECTIONS) <= set(parser.ids)
    assert len(parser.ids) == len(set(parser.ids)), "duplicate element ids"
    assert "random initialisation" in html_text and f"{TOTAL_PARAMS:,}" in html_text


def test_sections_can_be_left_out(tiny: Path):
    graph = trace(_load(tiny), mx.zeros((1, 16, 16, 3)))
    for name in SECTIONS:
        kept = [s for s in SECTIONS if s != name]
        text = report_html(graph, sections=kept)
        assert f'id="{name}"' not in text
        assert all(f'id="{s}"' in text for s in kept)


def test_cli_flags_drop_sections_and_bad_extension_fails(tiny: Path, tmp_path: Path):
    out = tmp_path / "r.html"
    build(tiny, out, "--no-diagram", "--no-costs", "--no-table", "--no-appendix")
    text = out.read_text()
    for name in ("diagram", "costs", "table", "appendix"):
        assert f'id="{name}"' not in text
    assert 'id="weights"' in text
    result = runner.invoke(app, ["build", str(tiny), "--input", "1,16,16,3", "-o", str(tmp_path / "r.docx")])
    assert result.exit_code == 7 and "end the output name in .pdf or .html" in result.output
    assert not (tmp_path / "r.docx").exists()


def test_no_weights_evaluates_nothing(tiny: Path, tmp_path: Path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("weight statistics ran under --no-weights")

    monkeypatch.setattr(weights_mod, "weight_stats", refuse)
    wide = tmp_path / "wide.py"
    wide.write_text("import mlx.nn as nn\n\ndef build_model():\n    return nn.Linear(512, 512)\n")
    mx.reset_peak_memory()
    result = runner.invoke(app, ["build", str(wide), "--input", "1,512", "-o", str(tmp_path / "r.html"),
                                 "--no-weights"])
    assert result.exit_code == 0, result.output
    assert mx.get_peak_memory() < 10_000  # the 1 MB weight was never materialised
    text = (tmp_path / "r.html").read_text()
    assert "Weight statistics were not computed" in text and "weight" in text


def _load(path: Path) -> nn.Module:
    from mlx_report.loading import load_model

    return load_model(str(path)).model


# -- the PDF ----------------------------------------------------------------------------------

def test_pdf_is_byte_identical_on_rebuild(tiny: Path, pdf: Path, tmp_path: Path):
    again = tmp_path / "again.pdf"
    build(tiny, again)
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(pdf.read_bytes()).digest()
    if PDFINFO:
        info = subprocess.run([PDFINFO, str(pdf)], capture_output=True, text=True).stdout
        assert "CreationDate" not in info and "ModDate" not in info
        dated = tmp_path / "dated.pdf"
        build(tiny, dated, "--date", "2024-05-01")
        info = subprocess.run([PDFINFO, "-isodates", str(dated)], capture_output=True, text=True).stdout
        assert re.search(r"CreationDate:\s+2024-05-01", info), info


@pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext (poppler-utils) not installed")
def test_pdf_text_is_searchable(pdf: Path):
    text = subprocess.run([PDFTOTEXT, "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    for title in ("Key figures", "Architecture diagram", "Summary table", "Where the cost is",
                  "Weights", "Definitions and uncounted ops", "Appendix: every module call"):
        assert title in text
    assert f"{TOTAL_PARAMS:,}" in text                  # the totals as exact numbers
    assert "Page 1 of" in text
    pages = int(re.search(r"Page 1 of (\d+)", text).group(1))
    assert pages > 1
    diagram = next(p for p in text.split("\f") if "Figure 1." in p or "diagram unavailable" in p)
    if "diagram unavailable" not in diagram:
        assert "stem" in diagram and "Conv2d" in diagram  # diagram labels are text
    assert "Linear.weight" in text                        # plot text is searchable too


def test_build_report_api_writes_html(tiny: Path, tmp_path: Path):
    graph = trace(_load(tiny), mx.zeros((1, 16, 16, 3)))
    path = build_report(graph, tmp_path / "api.html", sections=("title", "figures"))
    assert path.read_text().count("<section") == 2


def test_readme_python_api_flow(tiny: Path, tmp_path: Path):
    """The README's Python API block: trace, weight statistics, report, spread init."""
    import mlx_report

    with mlx_report.spread_random_init():
        model = _load(tiny)
    graph = mlx_report.trace(model, mx.zeros((1, 16, 16, 3)))
    svg = mlx_report.render_graph(graph, tmp_path / "arch.svg", depth=2)
    assert svg.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    stats = mlx_report.model_weight_stats(model, graph.tensors)
    assert {t.name for t in stats.tensors} == {t.name for t in graph.tensors}
    path = mlx_report.build_report(graph, tmp_path / "api.html", weights=stats, date="2026-11-22")
    text = path.read_text(encoding="utf-8")
    assert "2026-11-22" in text and stats.tensors[0].name in text


def test_pdf_bookmarks_follow_the_sections(tiny: Path):
    import weasyprint

    graph = trace(_load(tiny), mx.zeros((1, 16, 16, 3)))
    document = weasyprint.HTML(string=report_html(graph, target="pdf")).render()
    labels = [b[0] for b in document.make_bookmark_tree()]  # (label, target, children, state)
    assert labels[:3] == ["Title page", "Key figures", "Architecture diagram"]
    assert "Appendix: every module call" in labels


@pytest.mark.skipif(shutil.which("pdfdetach") is None, reason="pdfdetach (poppler-utils) not installed")
def test_archival_pdf_carries_the_json(tiny: Path, tmp_path: Path):
    out = tmp_path / "archive.pdf"
    build(tiny, out, "--pdf-variant", "pdf/a-3b", "--no-appendix")
    listing = subprocess.run(["pdfdetach", "-list", str(out)], capture_output=True, text=True).stdout
    assert "report.json" in listing
    subprocess.run(["pdfdetach", "-save", "1", "-o", str(tmp_path / "r.json"), str(out)], check=True)
    import json

    data = json.loads((tmp_path / "r.json").read_text())
    assert data["totals"]["params"] == TOTAL_PARAMS and "weight_statistics" in data


def test_pdf_text_tables_cut_names_but_never_numbers_or_headers():
    """A clipped figure would read as another number: 850,000,871,424 must stay whole."""
    from mlx_report.render.report_data import Cell, num_cell, text_table

    rows = [[Cell("layers.0.self_attn.q_proj.weight"), num_cell(850_000_871_424), Cell("✓")]]
    table = text_table(["Tensor", "MACs", "Trainable"], rows, caps=[12, 8, 3])
    assert "850,000,871,424" in table.lines[0]
    assert "…" in table.lines[0] and "q_proj" not in table.lines[0]   # names are cut on the left
    assert table.header.split() == ["Tensor", "MACs", "Trainable"]


def test_histogram_labels_keep_the_block_and_the_tensor():
    from mlx_report.render.report_weights import short_name

    assert short_name("layer4.layers.0.downsample.conv.weight", 32) == "layer4.layers.0.….conv.weight"
    assert short_name("encoder.layers.3.self_attention.in_proj.bias", 32) == "encoder.layers.3.….in_proj.bias"
    assert short_name("encoder.layers.11.self_attention.out_proj.weight", 32) == "encoder.….11.….out_proj.weight"
    assert short_name("fc.weight", 32) == "fc.weight"
    assert len(short_name("x" * 50, 32)) == 32
