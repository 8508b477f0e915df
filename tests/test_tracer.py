"""The tracer: what it records (calls, paths, edges, shapes) and what it leaves behind
(nothing: same parameter arrays, classes, MLX functions, compile state, train/eval modes),
after a successful trace and after a forward pass that raises.
"""

from __future__ import annotations

import sys

import mlx.core as mx
import mlx.nn as nn
import pytest
from mlx.utils import tree_flatten

import mlx_report
from mlx_report.trace import TraceFailed
from tests.models.edge_cases import TwoHolders
from tests.conftest import build_sample, compile_enabled, traced_sample
from tests.models import edge_cases as ec


def trace_edge(name: str) -> mlx_report.ModelGraph:
    factory = ec.EDGE_CASES[name][0]
    args, kwargs = ec.make_inputs(name)
    return mlx_report.trace(factory(), *args, **kwargs)


def label(graph, node_id: str) -> str:
    """`path#call_index` for calls, the id for inputs/outputs."""
    d = graph.node(node_id)
    return f"{d['path']}#{d['call_index']}" if d["kind"] == "call" else node_id


def edges(graph) -> set[tuple[str, str]]:
    return {(label(graph, u), label(graph, v)) for u, v, _ in graph.data_edges()}


# --- restoration ------------------------------------------------------------------------

def snapshot(model: nn.Module) -> dict:
    classes = {cls for _, m in model.named_modules() for cls in type(m).__mro__} | {nn.Module}
    return {
        "params": [(k, v) for k, v in tree_flatten(model.parameters())],
        "calls": {cls: vars(cls).get("__call__") for cls in classes},
        "class_attrs": {cls: dict(vars(cls)) for cls in classes},
        "py_modules": {name: dict(vars(sys.modules[name])) for name in sorted(
            {cls.__module__ for cls in classes} | {n for n in sys.modules if n.startswith("mlx.nn")})
            if name in sys.modules},
        "mx": {n: getattr(mx, n) for n in dir(mx) if not n.startswith("_")},
        "fast": {n: getattr(mx.fast, n) for n in dir(mx.fast) if not n.startswith("_")},
        "array": dict(vars(mx.array)),
        "nn": {n: getattr(nn, n) for n in dir(nn) if not n.startswith("_")},
        "modes": [(m, m.training) for _, m in model.named_modules()],
        "module_attrs": [(m, dict(vars(m))) for _, m in model.named_modules()],
        "compile": compile_enabled(),
    }


def assert_restored(before: dict, model: nn.Module) -> None:
    after = snapshot(model)
    assert [k for k, _ in after["params"]] == [k for k, _ in before["params"]]
    for (key, a), (_, b) in zip(before["params"], after["params"]):
        assert a is b, f"parameter {key} was replaced"
    for cls, fn in before["calls"].items():
        assert vars(cls).get("__call__") is fn, f"{cls.__name__}.__call__ left patched"
    for cls, attrs in before["class_attrs"].items():
        changed = [k for k, v in attrs.items() if vars(cls).get(k) is not v]
        assert not changed and vars(cls).keys() == attrs.keys(), (cls.__name__, changed)
    for name, attrs in before["py_modules"].items():
        changed = [k for k, v in attrs.items() if after["py_modules"][name].get(k) is not v]
        assert not changed, f"module {name}: {changed[:5]} left replaced"
    for space in ("mx", "fast", "array", "nn"):
        changed = [n for n, f in before[space].items() if after[space].get(n) is not f]
        assert not changed, f"{space} functions left wrapped: {changed[:5]}"
    assert [(id(m), t) for m, t in after["modes"]] == [(id(m), t) for m, t in before["modes"]]
    for (m, attrs_before), (_, attrs_after) in zip(before["module_attrs"], after["module_attrs"]):
        assert attrs_after.keys() == attrs_before.keys()
        assert all(attrs_after[k] is v for k, v in attrs_before.items() if k != "_training"), m
    assert after["compile"] == before["compile"]


def test_model_restored_after_success():
    model, x = build_sample("resnet18")
    model.train()                      # BatchNorm in training mode replaces its running stats
    model.layer1.eval()                # mixed modes must come back as they were
    before = snapshot(model)
    mean_before = model.bn1.running_mean
    graph = mlx_report.trace(model, x)
    assert graph.totals.calls > 0
    assert model.bn1.running_mean is mean_before
    assert_restored(before, model)
    model(x)                           # untraced (and lazy): the forward pass does replace them
    assert model.bn1.running_mean is not mean_before


class Failing(nn.Module):
    """Updates BatchNorm stats, flips a child to eval, then raises three calls deep."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm(4)
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(5, 2))

    def __call__(self, x):
        h = self.bn(x)          # training mode: replaces bn.running_mean / running_var
        self.bn.eval()          # a mode change inside the forward pass
        return self.body(h)


def test_model_restored_after_exception():
    model = Failing()
    model.train()
    before = snapshot(model)
    mean_before = model.bn.running_mean
    with pytest.raises(TraceFailed) as info:
        mlx_report.trace(model, mx.zeros((2, 4)))
    assert "body.layers.2 (Linear)" in str(info.value)
    assert_restored(before, model)
    assert model.bn.training is True
    assert model.bn.running_mean is mean_before
    # the forward pass really did change them: run it without the tracer
    with pytest.raises(ValueError):
        model(mx.zeros((2, 4)))
    assert model.bn.running_mean is not mean_before and model.bn.training is False


def test_compile_state_restored_enabled():
    assert compile_enabled()
    mlx_report.trace(*build_sample("mlp"))
    assert compile_enabled()
    with pytest.raises(TraceFailed):
        mlx_report.trace(Failing(), mx.zeros((2, 4)))
    assert compile_enabled()


def test_compile_state_restored_when_user_disabled_it():
    mx.disable_compile()
    try:
        mlx_report.trace(*build_sample("mlp"))
        assert not compile_enabled()
    finally:
        mx.enable_compile()


def test_trace_evaluates_nothing_small_model():
    model, x = build_sample("llama_tiny")
    mx.reset_peak_memory()
    mlx_report.trace(model, x)
    assert mx.get_peak_memory() < 64 * 1024


# --- calls, paths, reuse ----------------------------------------------------------------

class Thrice(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def __call__(self, x):
        for _ in range(3):
            x = self.fc(x)
        return x


def test_module_called_n_times_gives_n_calls():
    g = mlx_report.trace(Thrice(), mx.zeros((1, 8)))
    calls = [g.node(n) for n in g.calls() if g.node(n)["path"] == "fc"]
    assert [d["call_index"] for d in calls] == [0, 1, 2]
    assert len({d["module_index"] for d in calls}) == 1
    assert g.totals.params == 72 and g.totals.macs == 3 * 64
    assert edges(g) >= {("in:0", "fc#0"), ("fc#0", "fc#1"), ("fc#1", "fc#2")}
    s = mlx_report.ModelSummary(g)
    assert [r.reused for r in s.table().rows] == [False, False, True, True]


def test_shared_module_keeps_all_paths():
    g = trace_edge("reused_module")
    fc_calls = [g.node(n) for n in g.calls() if g.node(n)["type"] == "Linear"]
    assert len(fc_calls) == 2
    for d in fc_calls:
        assert d["paths"] == ["fc", "fc_alias"]
        assert d["path"] == "fc"


class Aliased(nn.Module):
    """One Linear registered as `a` and `b`; called through each name, and from a loop."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = self.a
        self.inner = nn.Module()
        self.inner.c = nn.Linear(4, 4)
        self.d = self.inner.c

    def __call__(self, x):
        y = self.a(self.b(x))            # b runs first, then a
        y = self.b(
            y
        )                                # a call over several lines
        for layer in [self.a]:           # no attribute at the call: the first name
            y = layer(y)
        return self.inner.c(self.d(y))   # a nested name: its last attribute decides


def test_shared_module_takes_the_name_it_was_called_through():
    g = mlx_report.trace(Aliased(), mx.zeros((1, 4)))
    calls = [g.node(n) for n in g.calls() if g.node(n)["type"] == "Linear"]
    assert [d["path"] for d in calls] == ["b", "a", "b", "a", "d", "inner.c"]
    assert calls[0]["paths"] == ["a", "b"]
    assert [d["call_index"] for d in calls[:4]] == [0, 1, 2, 3]


def test_shared_module_called_under_each_parent_gets_that_path():
    g = mlx_report.trace(TwoHolders(), mx.zeros((1, 8)))
    shared = [g.node(n) for n in g.calls() if g.node(n)["type"] == "Linear"]
    assert [(d["path"], d["call_index"]) for d in shared] == [("a.shared", 0), ("b.shared", 1)]
    assert all(d["paths"] == ["a.shared", "b.shared"] for d in shared)
    assert [g.node(d["parent"])["path"] for d in shared] == ["a", "b"]


def test_containment_and_depths():
    g = trace_edge("deep_nesting")
    linear = next(n for n in g.calls() if g.node(n)["path"] == "body.layers.1.blocks.0.parts.mix.layers.0")
    assert g.node(linear)["depth"] == 5
    chain = [g.node(a)["path"] for a in g.ancestors(linear)]
    assert chain == ["body.layers.1.blocks.0.parts.mix", "body.layers.1.blocks.0", "body.layers.1",
                     "body", ""]
    for n in g.calls():
        for child in g.children(n):
            assert g.node(child)["parent"] == n
            assert g.node(child)["depth"] == g.node(n)["depth"] + 1
    assert g.totals.max_depth == 5


# --- dataflow ---------------------------------------------------------------------------

def test_residual_edge_skips_the_block():
    """ResNet-18 BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + x). The block's final
    ReLU call (relu#1) receives the previous block's output directly, skipping conv1/conv2."""
    g = traced_sample("resnet18")
    e = edges(g)
    assert ("layer1.layers.0#0", "layer1.layers.1.relu#1") in e       # the skip connection
    assert ("layer1.layers.1.bn2#0", "layer1.layers.1.relu#1") in e   # the residual branch
    assert ("layer1.layers.0#0", "layer1.layers.1.conv1#0") in e
    assert ("layer1.layers.0#0", "layer1.layers.1.conv2#0") not in e
    # projection shortcut: the downsample output meets the main branch at relu#1
    assert ("layer2.layers.0.downsample#0", "layer2.layers.0.relu#1") in e
    data = g.graph.edges[next((u, v) for u, v, _ in g.data_edges()
                              if (label(g, u), label(g, v)) == ("layer1.layers.0#0", "layer1.layers.1.relu#1"))]
    assert data["shapes"] == [(1, 56, 56, 64)]


def test_edges_through_functional_code():
    """Reshape/transpose/indexing/concatenate between calls keep the producer."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(4, 8), nn.Linear(4, 4), nn.Linear(12, 2)

        def __call__(self, x):
            h = self.a(x).reshape(2, 2, 4).transpose(0, 2, 1)[..., 0]   # (2, 4)
            return self.c(mx.concatenate([h, self.b(x), x], axis=-1))

    g = mlx_report.trace(Net(), mx.zeros((2, 4)))
    assert edges(g) >= {("in:0", "a#0"), ("in:0", "b#0"), ("a#0", "c#0"), ("b#0", "c#0"),
                        ("in:0", "c#0"), ("#0", "out:0")}


def test_shapes_and_dtypes_recorded():
    g = traced_sample("llama_tiny")
    assert g.node("in:0")["shapes"] == [(1, 16)] and g.node("in:0")["dtypes"] == ["int32"]
    embed = next(g.node(n) for n in g.calls() if g.node(n)["path"] == "embed_tokens")
    assert (embed["input_shapes"], embed["input_dtypes"]) == ([(1, 16)], ["int32"])
    assert (embed["output_shapes"], embed["output_dtypes"]) == ([(1, 16, 64)], ["float32"])
    k = next(g.node(n) for n in g.calls() if g.node(n)["path"] == "layers.0.self_attn.k_proj")
    assert k["output_shapes"] == [(1, 16, 32)]            # tiny: 2 kv heads x 16
    assert g.node("out:0")["shapes"] == [(1, 16, 512)]

    model, x = build_sample("llama_tiny")
    model.set_dtype(mx.bfloat16)
    g16 = mlx_report.trace(model, x)
    root = g16.node("c0")
    assert root["output_dtypes"] == ["bfloat16"] and root["output_bytes"] == 16 * 512 * 2


def test_keyword_inputs():
    g = trace_edge("kwargs_input")
    assert g.node("in:mask")["shapes"] == [(2, 8, 8)]
    assert g.node("in:0")["shapes"] == [(2, 8, 16)]
    assert g.node("c0")["input_shapes"] == [(2, 8, 16), (2, 8, 8)]
    assert g.graph.edges["in:mask", "c0"]["shapes"] == [(2, 8, 8)]
    assert g.totals.input_bytes == 4 * (2 * 8 * 16 + 2 * 8 * 8)


@pytest.mark.parametrize("case", ["multi_io", "multi_io_dict"])
def test_tuple_and_dict_outputs(case):
    g = trace_edge(case)
    assert g.outputs() == ["out:0", "out:1"]
    assert [g.node(o)["shapes"] for o in g.outputs()] == [[(2, 4)], [(2, 2)]]
    assert {("#0", "out:0"), ("#0", "out:1"), ("enc_a#0", "head_sum#0"), ("enc_b#0", "head_sum#0"),
            ("enc_a#0", "head_prod#0"), ("enc_b#0", "head_prod#0")} <= edges(g)
    assert g.node("c0")["output_shapes"] == [(2, 4), (2, 2)]


# --- mx.compile inside a model ----------------------------------------------------------

@mx.compile
def compiled_relu(x):
    return mx.maximum(x, 0)


class CompiledForward(nn.Module):
    """__call__ goes through an mx.compile'd bound method, calling submodules inside."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)
        self._fwd = mx.compile(self._forward)

    def _forward(self, x):
        return self.b(compiled_relu(self.a(x)))

    def __call__(self, x):
        return self._fwd(x)


def test_compiled_function_still_shows_module_calls():
    model = CompiledForward()
    x = mx.zeros((1, 4))
    model(x)                     # warm the compile cache: later compiled calls skip Python
    g = mlx_report.trace(model, x)
    assert [label(g, n) for n in g.calls()] == ["#0", "a#0", "b#0"]
    assert g.totals.macs == 2 * 16
    assert {("in:0", "a#0"), ("a#0", "b#0"), ("#0", "out:0")} <= edges(g)
    assert compile_enabled()


ACTIVATIONS = {"relu": nn.relu}   # as transformers' ACT2FN: compiled functions in a dict


class ActFromDict(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

    def __call__(self, x):
        return self.b(ACTIVATIONS["relu"](self.a(x)))


def test_edge_through_compiled_function_held_in_a_dict():
    g = mlx_report.trace(ActFromDict(), mx.zeros((1, 4)))
    assert ("a#0", "b#0") in edges(g)
