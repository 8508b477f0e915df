"""Architecture diagrams: visible nodes and edges, DOT golden files, SVG for embedding, engines, CLI.

Regenerate the golden DOT files after an intended change with

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_graphviz.py

and read the diff before committing it.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import stat
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

import mlx_report
from mlx_report.analysis.visible import visible_graph
from mlx_report.cli import app
from mlx_report.errors import InputSpecError, RenderError
from mlx_report.render import graphviz as gv
from mlx_report.render.graphviz import (DiagramSVG, build_diagram, build_dot, find_engine,
                                        postprocess_svg, render_graph, render_svg, repr_svg,
                                        short_config)
from tests.conftest import ROOT, traced_sample
from tests.models.edge_cases import EDGE_CASES, make_inputs

GOLDEN = Path(__file__).resolve().parent / "golden" / "dot"
UPDATE = os.environ.get("UPDATE_GOLDEN", "") not in ("", "0")
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz `dot` is not installed")
REAL_WHICH = shutil.which


def trace_case(name: str) -> mlx_report.ModelGraph:
    factory, _, _ = EDGE_CASES[name]
    args, kwargs = make_inputs(name)
    return mlx_report.trace(factory(), *args, **kwargs)


def boxes(dot: str) -> list[str]:
    """Ids of drawn nodes (calls, inputs, outputs) in DOT source."""
    return re.findall(r"^\s*((?:c\d+|in_\w+|out_\w+)) \[", dot, flags=re.M)


def clusters(dot: str) -> list[str]:
    return re.findall(r"subgraph cluster_(\w+)", dot)


def edges(dot: str) -> set[tuple[str, str]]:
    return set(re.findall(r"^\s*(\w+) -> (\w+)", dot, flags=re.M))


def call_of(graph: mlx_report.ModelGraph, path: str, call_index: int = 0) -> str:
    return next(n for n in graph.calls()
                if graph.node(n)["path"] == path and graph.node(n)["call_index"] == call_index)


# -- visible graph and DOT structure --------------------------------------------------------

@pytest.mark.parametrize("depth, n_boxes, n_clusters", [
    (0, 3, 0),     # the model as one box, its input and output
    (1, 12, 0),    # stem (4), layer1-4, avgpool, fc, input, output
    (2, 15, 4),    # layer1 folds its two blocks (×2); layer2-4 show block 0 and block 1
    (3, 53, 11),   # blocks opened: 8 + 6 (layer1, folded) + 3 × (7 + 6); 4 stage + 7 block clusters
])
def test_resnet18_nodes_and_clusters_by_depth(depth, n_boxes, n_clusters):
    dot = build_dot(traced_sample("resnet18"), depth=depth)
    assert len(boxes(dot)) == n_boxes
    assert len(clusters(dot)) == n_clusters
    assert len(set(boxes(dot))) == n_boxes


def test_deep_nesting_depths_and_no_fold():
    graph = trace_case("deep_nesting")
    counts = [len(boxes(build_dot(graph, depth=d, fold=False))) for d in range(6)]
    # model | body, head | 2 stages | 4 blocks | each block's mix (a Sequential) | Linear, ReLU
    assert counts == [3, 4, 5, 7, 7, 11]
    assert len(clusters(build_dot(graph, depth=math.inf, fold=False))) == 1 + 2 + 4 + 4
    # folded: the two identical Stages, and in the first the two identical Blocks, ×2 each
    folded = build_dot(graph, depth=5)
    assert len(boxes(folded)) == 5 and folded.count(">×2<") == 2


def test_edges_are_declared_at_top_level():
    dot = build_dot(traced_sample("resnet18"), depth=3)
    depth = 0
    for line in dot.splitlines():
        depth += line.count("{") - line.count("}")
        if "->" in line:
            assert depth == 1, f"edge inside a cluster: {line.strip()}"


def test_resnet_block_residual_edges():
    graph = traced_sample("resnet18")
    dot = build_dot(graph, depth=3, fold=False)
    found = edges(dot)
    maxpool = call_of(graph, "maxpool")
    # layer1.0: identity shortcut, the block's input goes straight to the closing relu (call 2)
    close = call_of(graph, "layer1.layers.0.relu", 1)
    assert (maxpool, close) in found
    assert (maxpool, call_of(graph, "layer1.layers.0.conv1")) in found
    assert (maxpool, call_of(graph, "layer1.layers.0.conv2")) not in found
    # layer2.0: projection shortcut, downsample (a box at depth 3) feeds the closing relu
    down = call_of(graph, "layer2.layers.0.downsample")
    assert (down, call_of(graph, "layer2.layers.0.relu", 1)) in found
    assert (call_of(graph, "layer2.layers.0.bn2"), call_of(graph, "layer2.layers.0.relu", 1)) in found


def test_cluster_producer_resolves_to_inner_calls():
    graph = traced_sample("resnet18")
    vis = visible_graph(graph, depth=2)
    # layer1 is a cluster: its consumer layer2's block 0 is fed by layer1's (folded) last block
    first = call_of(graph, "layer1.layers.0")
    pairs = {(e.src, e.dst) for e in vis.edges}
    assert (first, call_of(graph, "layer2.layers.0")) in pairs
    assert all(e.src != call_of(graph, "layer1") for e in vis.edges)  # clusters are never endpoints
    assert all(not vis.nodes[e.dst].is_cluster for e in vis.edges)


def test_llama_fold_x32():
    graph = traced_sample("llama7b")
    dot = build_dot(graph)
    assert dot.count(">×32<") == 1 and "layers.0–31" in dot
    assert len(boxes(dot)) == 9    # input, embed, the 4 sublayers of one block, norm, lm_head, output
    assert len(clusters(dot)) == 1
    unfolded = build_dot(graph, fold=False)
    assert len(clusters(unfolded)) == 32 and ">×32<" not in unfolded
    # no edge from one block of the fold to the next: it would loop back onto the first block
    vis = visible_graph(graph)
    order = list(vis.nodes)
    assert all(order.index(e.src) < order.index(e.dst) for e in vis.edges)


@needs_dot
def test_llama_default_depth_fits_one_page(tmp_path):
    svg = render_svg(traced_sample("llama7b"))
    width, height = (float(v) for v in re.search(r'width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups())
    assert height <= 11 * 72 and width <= 8.5 * 72


def test_expand_opens_a_block_and_splits_its_fold():
    graph = traced_sample("llama7b")
    vis = visible_graph(graph, depth=1, expand=["layers.5.mlp"])
    block5 = call_of(graph, "layers.5")
    assert vis.nodes[block5].is_cluster and vis.nodes[call_of(graph, "layers.5.mlp")].is_cluster
    counts = sorted(n.count for n in vis.nodes.values() if n.count > 1)
    assert counts == [5, 26]       # layers.0–4 and layers.6–31 stay folded around it
    with pytest.raises(InputSpecError, match="did you mean"):
        visible_graph(graph, expand=["layers.5.mpl"])


def test_node_budget_lowers_depth_with_a_note():
    graph = traced_sample("llama7b")
    vis = visible_graph(graph, depth=3, fold=False, budget=200)
    assert vis.depth == 2 and len(vis.nodes) <= 200
    assert vis.notes and "depth lowered from 3 to 2" in vis.notes[0]
    diagram = build_diagram(graph, depth=3, fold=False, budget=200)
    assert diagram.notes == vis.notes and "depth lowered" in diagram.description
    assert visible_graph(graph, depth=math.inf).depth == 3   # no hang on an unbounded depth


def test_reused_module_is_marked_not_folded():
    graph = trace_case("reused_module")
    dot = build_dot(graph, depth=1)
    assert "call 1/2" in dot and "call 2/2" in dot
    assert "×2" not in dot
    assert dot.count("dashed") == 2
    vis = visible_graph(graph, depth=1)
    assert sorted(n.call_number for n in vis.nodes.values() if n.call_total == 2) == [1, 2]


def test_inputs_and_outputs_are_distinct_nodes():
    graph = trace_case("multi_io")
    dot = build_dot(graph, depth=1)
    assert {"in_0", "in_1", "out_0", "out_1"} <= set(boxes(dot))
    # each output comes from its own head, though the model's returns_from names both
    outputs = {(a, b) for a, b in edges(dot) if b.startswith("out_")}
    assert outputs == {(call_of(graph, "head_sum"), "out_0"), (call_of(graph, "head_prod"), "out_1")}
    kw = build_dot(trace_case("kwargs_input"), depth=1)
    assert "in_mask" in boxes(kw) and ">mask<" in kw


@pytest.mark.parametrize("type_name, config, expected", [
    ("Conv2d", "3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), dilation=1, groups=1, bias=False",
     "3→64, k7 s2 p3"),
    ("Conv2d", "64, 128, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=1, groups=1, bias=False",
     "64→128, k3 s2 p1"),
    ("Conv1d", "8, 8, kernel_size=3, stride=1, padding=0, dilation=2, groups=8, bias=True", "8→8, k3 d2 g8"),
    ("Linear", "input_dims=4096, output_dims=11008, bias=False", "4096→11008"),
    ("QuantizedLinear", "input_dims=128, output_dims=64, bias=True, group_size=64, bits=4, mode=affine",
     "128→64, 4-bit"),
    ("Embedding", "32000, 4096", "32000 × 4096"),
    ("MaxPool2d", "kernel_size=(3, 3), stride=(2, 2), padding=(1, 1)", "k3 s2 p1"),
    ("RMSNorm", "4096, eps=1e-05", "4096"),
    ("BatchNorm", "64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True", "64"),
    ("Dropout", "p=0.09999999999999998", "p=0.1"),
    ("ReLU", "", ""),
])
def test_short_config(type_name, config, expected):
    assert short_config(type_name, config) == expected


def test_fields_and_options():
    graph = traced_sample("resnet18")
    bare = build_dot(graph, fields=("type",), edge_labels="none", title="")
    assert "params" not in bare and "MACs" not in bare and "label=\" " not in bare
    assert "112×112" not in bare
    lr = build_dot(graph, rankdir="LR", style="slides")
    assert "rankdir=LR" in lr and "fontsize=14" in lr
    for bad in ({"fields": ("type", "colour")}, {"heat": "flops"}, {"rankdir": "BT"},
                {"style": "poster"}, {"edge_labels": "dtype"}):
        with pytest.raises(ValueError):
            build_dot(graph, **bad)


def test_heat_legend():
    dot = build_dot(traced_sample("resnet18"), depth=1, heat="macs")
    assert "heat_legend" in dot and "MACs" in dot
    assert "#FD8D3C" in dot  # the costliest step is used
    for kind in ("params", "memory"):
        assert "heat_legend" in build_dot(traced_sample("resnet18"), depth=1, heat=kind)


def test_font_is_one_sans_serif():
    dot = build_dot(traced_sample("vit_b16"), style="paper")
    fonts = set(re.findall(r'fontname="([^"]+)"', dot))
    assert fonts == {"Liberation Sans"}
    assert "Mono" not in dot and "Courier" not in dot


# -- golden DOT -----------------------------------------------------------------------------

GOLDEN_CASES = {
    "reused_module": lambda: build_dot(trace_case("reused_module")),
    "deep_nesting-depth2": lambda: build_dot(trace_case("deep_nesting"), depth=2),
    "deep_nesting-depth5-nofold": lambda: build_dot(trace_case("deep_nesting"), depth=5, fold=False),
    "repeated_blocks": lambda: build_dot(trace_case("repeated_blocks"), depth=2),
    "multi_io": lambda: build_dot(trace_case("multi_io")),
    "tied_weights": lambda: build_dot(trace_case("tied_weights")),
    "resnet18-depth2": lambda: build_dot(traced_sample("resnet18")),
    "llama7b-depth2": lambda: build_dot(traced_sample("llama7b")),
    "vit_b16-depth3-heat": lambda: build_dot(traced_sample("vit_b16"), depth=3, heat="macs"),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_dot_golden(name):
    actual = GOLDEN_CASES[name]()
    path = GOLDEN / f"{name}.dot"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"missing golden file {path}; run with UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8"), f"{path.name} differs (UPDATE_GOLDEN=1 rewrites it)"


def test_boxes_add_up_to_the_total_with_tied_weights():
    """A tied weight is counted in the first box that holds it, as in the table:
    embed 100×32 = 3,200 + mix 32×32+32 = 1,056 = 4,256, and `out` shows "params shared"."""
    graph = trace_case("tied_weights")
    assert graph.totals.params == 100 * 32 + 32 * 32 + 32
    boxes = {line.split(" ", 1)[0].strip(): line for line in build_dot(graph).splitlines()
             if "<B>" in line and "[label" in line}
    assert "3.20 K params" in boxes["c1"] and "1.06 K params" in boxes["c2"]
    assert "params shared" in boxes["c3"] and "3.20 K params" not in boxes["c3"]


# -- SVG for embedding ----------------------------------------------------------------------

@needs_dot
def test_svg_is_deterministic_prefixed_and_titled(tmp_path):
    graph = traced_sample("resnet18")
    a = render_graph(graph, tmp_path / "a.svg").read_bytes()
    b = render_graph(graph, tmp_path / "b.svg").read_bytes()
    assert a == b
    svg = a.decode()
    ElementTree.fromstring(a)  # still well-formed XML after post-processing
    assert "<!--" not in svg and str(tmp_path) not in svg
    ids = re.findall(r'\bid="([^"]+)"', svg)
    assert ids and all(i.startswith("resnet-") for i in ids)
    assert len(ids) == len(set(ids))
    assert re.search(r"<svg\b[^>]*>\s*<title id=\"resnet-title\">ResNet</title>\s*<desc ", svg)
    assert "<text" in svg and ">conv1<" in svg       # text kept as text, searchable
    other = render_svg(graph, id_prefix="second")
    assert set(re.findall(r'\bid="([^"]+)"', other)).isdisjoint(ids)


def test_postprocess_svg_rewrites_references():
    raw = ('<?xml version="1.0"?>\n<!-- Generated by graphviz -->\n<svg width="1pt">\n'
           '<g id="graph0"><a xlink:href="#node1"/><path fill="url(#l_1)"/></g>\n</svg>')
    out = postprocess_svg(raw, "Fig 1", "T <1>", "D & d")
    assert 'id="fig-1-graph0"' in out and 'href="#fig-1-node1"' in out and "url(#fig-1-l_1)" in out
    assert "<title id=\"fig-1-title\">T &lt;1&gt;</title>" in out and "D &amp; d" in out
    assert "<!--" not in out and out.endswith("\n")


@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".pdf", b"%PDF"), (".png", b"\x89PNG"), (".dot", b"digraph")])
def test_other_formats(tmp_path, suffix, magic):
    out = render_graph(trace_case("reused_module"), tmp_path / f"arch{suffix}")
    assert out.read_bytes().startswith(magic)


@needs_dot
def test_jupyter_repr():
    graph = trace_case("reused_module")
    svg = DiagramSVG(graph, depth=1)._repr_svg_()
    assert svg.startswith("<?xml") and "</svg>" in svg
    assert repr_svg(graph).count("<svg") == 1


# -- engines --------------------------------------------------------------------------------

def _hide(monkeypatch, *names: str, extra: dict[str, str] | None = None) -> None:
    """Make shutil.which blind to `names` (and see `extra`), and hide the venv's bin/ too."""
    def which(name, *a, **k):
        if extra and name in extra:
            return extra[name]
        return None if name in names else REAL_WHICH(name, *a, **k)
    monkeypatch.setattr(gv.shutil, "which", which)
    monkeypatch.setattr(gv, "_beside_python", lambda name: None)


def _fake_pure(tmp_path: Path) -> Path:
    """A stand-in `graphviz-pure` that logs its arguments and runs the real dot."""
    log = tmp_path / "pure.log"
    script = tmp_path / "graphviz-pure"
    script.write_text(f"#!{sys.executable}\nimport subprocess, sys\n"
                      f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
                      f"sys.exit(subprocess.run([{REAL_WHICH('dot')!r}] + sys.argv[1:]).returncode)\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@needs_dot
def test_fallback_engine_when_dot_is_absent(tmp_path, monkeypatch):
    fake = _fake_pure(tmp_path)
    _hide(monkeypatch, "dot", extra={"graphviz-pure": str(fake)})
    assert find_engine("svg") == [str(fake)]
    out = render_graph(trace_case("reused_module"), tmp_path / "a.svg")
    assert "<title" in out.read_text() and "-Tsvg" in (tmp_path / "pure.log").read_text()
    with pytest.raises(RenderError, match="PDF output needs Graphviz"):
        render_graph(trace_case("reused_module"), tmp_path / "a.pdf")
    assert not (tmp_path / "a.pdf").exists()


def test_real_graphviz_pure_when_installed(tmp_path, monkeypatch):
    pure = REAL_WHICH("graphviz-pure") or gv._beside_python("graphviz-pure")
    if not pure:
        pytest.skip("graphviz-pure is not installed")
    _hide(monkeypatch, "dot", extra={"graphviz-pure": pure})
    svg = render_graph(traced_sample("llama7b"), tmp_path / "a.svg").read_text()
    assert "×32" in svg and '<title id="llama-title">' in svg
    assert render_graph(traced_sample("llama7b"), tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")


def test_clear_error_without_any_engine(tmp_path, monkeypatch):
    _hide(monkeypatch, "dot", "graphviz-pure")
    with pytest.raises(RenderError, match="apt-get install graphviz.*pip install graphviz-pure"):
        render_graph(trace_case("reused_module"), tmp_path / "a.svg")
    assert repr_svg(trace_case("reused_module")) is None
    # .dot needs no engine
    assert render_graph(trace_case("reused_module"), tmp_path / "a.dot").read_text().startswith("digraph")


# -- CLI ------------------------------------------------------------------------------------

@needs_dot
@pytest.mark.parametrize("suffix", [".svg", ".dot", ".pdf"])
def test_cli_graph(tmp_path, suffix):
    out = tmp_path / f"arch{suffix}"
    result = CliRunner().invoke(app, [
        "graph", str(ROOT / "samples" / "resnet.py"), "--input", "1,3,224,224", "-a", "depth=18",
        "-o", str(out), "--depth", "2", "--expand", "layer2.layers.0", "--fields", "type,shape,params",
        "--heat", "params", "--rankdir", "LR",
    ])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith({".svg": b"<?xml", ".dot": b"digraph", ".pdf": b"%PDF"}[suffix])
    if suffix == ".dot":
        assert b"rankdir=LR" in data and b"heat_legend" in data and b"MACs" not in data


@pytest.mark.parametrize("extra, code, message", [
    (["-o", "arch.txt"], 6, "end the output name in .svg"),
    (["-o", "arch.svg", "--heat", "flops"], 2, "unknown heat"),
    (["-o", "arch.svg", "--fields", "type,size"], 2, "unknown field"),
    (["-o", "arch.svg", "--expand", "layer9"], 2, "did you mean"),
])
def test_cli_graph_errors(tmp_path, extra, code, message):
    extra = [str(tmp_path / e) if e.startswith("arch") else e for e in extra]
    result = CliRunner().invoke(app, ["graph", str(ROOT / "samples" / "mlp.py"), "--input", "4,784", *extra])
    assert result.exit_code == code, result.output
    assert message in result.output
