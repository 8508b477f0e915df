"""The shape rules for Linear and Embedding give exactly what exporting the call gives."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import pytest

import mlx_report

from mlx_report.trace.costs import count_function
from mlx_report.trace.layer_rules import leaf_cost

ALWAYS = lambda a: True  # noqa: E731  every argument counts as an activation here


def exported(module: nn.Module, x: mx.array):
    return count_function(lambda a: module(a), x)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(7,), (3, 7), (2, 5, 7), (2, 3, 4, 7), (0, 7)])
@pytest.mark.parametrize("dtype", [mx.float32, mx.bfloat16, mx.float16])
def test_linear_rule_matches_export(bias, shape, dtype):
    layer = nn.Linear(7, 11, bias=bias)
    layer.set_dtype(dtype)
    x = mx.zeros(shape, dtype)
    ruled = leaf_cost(layer, (x,), {}, ALWAYS)
    assert ruled == exported(layer, x)
    batch = 1
    for d in shape[:-1]:
        batch *= d
    assert ruled.macs == batch * 7 * 11                       # M·K·N
    assert ruled.elementwise_flops == (batch * 11 if bias else 0)  # one bias add per output


@pytest.mark.parametrize("shape", [(5,), (2, 9), (3, 4, 6)])
def test_embedding_rule_matches_export(shape):
    layer = nn.Embedding(50, 16)
    x = mx.zeros(shape, mx.int32)
    ruled = leaf_cost(layer, (x,), {}, ALWAYS)
    assert ruled == exported(layer, x) and ruled.macs == 0 and ruled.elementwise_flops == 0


class ScaledLinear(nn.Linear):
    def __call__(self, x):
        return super().__call__(x) * 2.0


class PlainSubclass(nn.Linear):
    pass


def test_rules_only_take_the_stock_call_on_one_activation():
    layer = nn.Linear(4, 3)
    x = mx.zeros((2, 4))
    assert leaf_cost(ScaledLinear(4, 3), (x,), {}, ALWAYS) is None      # own __call__: export
    assert leaf_cost(PlainSubclass(4, 3), (x,), {}, ALWAYS) is not None  # stock __call__
    assert leaf_cost(layer, (x,), {}, lambda a: False) is None          # a constant input
    assert leaf_cost(layer, (x, x), {}, ALWAYS) is None
    assert leaf_cost(layer, (mx.zeros((2, 5)),), {}, ALWAYS) is None    # wrong width
    assert leaf_cost(layer, (x.astype(mx.float16),), {}, ALWAYS) is None  # mixed dtypes
    assert leaf_cost(nn.Embedding(10, 4), (x,), {}, ALWAYS) is None    # float indices
    q = nn.QuantizedLinear(64, 32)
    assert leaf_cost(q, (mx.zeros((2, 64)),), {}, ALWAYS) is None       # no rule: exported


COST_FIELDS = ("macs_total", "macs_self", "elementwise_flops_total", "elementwise_flops_self",
               "uncounted")


def _costs(graph):
    return {n: tuple(graph.node(n)[f] for f in COST_FIELDS) for n in graph.calls()}


@pytest.mark.parametrize("name", ["encoder", "gpt2", "llama_tiny", "vit_b16", "resnet18", "mlp"])
def test_whole_samples_count_the_same_with_and_without_rules(name, monkeypatch):
    """Every call's costs, ruled leaves or all exported: identical, model by model."""
    from mlx_report.trace import call_costs
    from tests.conftest import build_sample

    model, x = build_sample(name)
    ruled = mlx_report.trace(model, x)
    monkeypatch.setattr(call_costs, "leaf_cost", lambda *a, **k: None)
    exported_only = mlx_report.trace(model, x)
    assert _costs(ruled) == _costs(exported_only)
    assert ruled.totals.macs == exported_only.totals.macs > 0


@pytest.mark.parametrize("name", ["reused_module", "tied_weights", "frozen", "quantized",
                                  "kwargs_input", "functional_ops", "repeated_blocks"])
def test_edge_cases_count_the_same_with_and_without_rules(name, monkeypatch):
    from mlx_report.trace import call_costs
    from tests.models.edge_cases import EDGE_CASES, make_inputs

    model = EDGE_CASES[name][0]()
    args, kwargs = make_inputs(name)
    ruled = mlx_report.trace(model, *args, **kwargs)
    monkeypatch.setattr(call_costs, "leaf_cost", lambda *a, **k: None)
    assert _costs(ruled) == _costs(mlx_report.trace(model, *args, **kwargs))
