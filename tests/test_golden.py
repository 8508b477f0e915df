"""Golden-output tests (as torchinfo keeps one per edge case): the text table and the JSON of
every model in tests/models/edge_cases.py, byte for byte.

Regenerate after an intended change with

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_golden.py

and read the diff: every number in these files was checked by hand when written.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

import mlx_report
from mlx_report.export import graph_from_dict, to_json
from tests.conftest import edge_case_params
from tests.models.edge_cases import EDGE_CASES, make_inputs

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN", "") not in ("", "0")

# golden name -> (edge case, ModelSummary options)
TEXT_CASES: dict[str, tuple[str, dict]] = {name: (name, {}) for name in EDGE_CASES}
TEXT_CASES.update({
    "deep_nesting-depth1": ("deep_nesting", {"depth": 1}),
    "deep_nesting-depth2": ("deep_nesting", {"depth": 2}),
    # depth 3 is the default: "deep_nesting"
    "deep_nesting-depthinf": ("deep_nesting", {"depth": math.inf}),
    "deep_nesting-depthinf-nofold": ("deep_nesting", {"depth": math.inf, "fold": False}),
    "repeated_blocks-nofold": ("repeated_blocks", {"fold": False}),
})


def trace_case(name: str) -> mlx_report.ModelGraph:
    factory = EDGE_CASES[name][0]
    args, kwargs = make_inputs(name)
    return mlx_report.trace(factory(), *args, **kwargs)


def check_golden(path: Path, actual: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"missing golden file {path}; run with UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{path.name} differs from the golden file (UPDATE_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize("golden", [
    g for g in sorted(TEXT_CASES)])
def test_text_golden(golden):
    case, options = TEXT_CASES[golden]
    text = str(mlx_report.ModelSummary(trace_case(case), **options))
    check_golden(GOLDEN / "text" / f"{golden}.txt", text)


@pytest.mark.parametrize("case", edge_case_params())
def test_json_golden(case):
    check_golden(GOLDEN / "json" / f"{case}.json", mlx_report.ModelSummary(trace_case(case)).to_json())


def test_every_edge_case_has_goldens():
    assert {p.stem for p in (GOLDEN / "json").glob("*.json")} == set(EDGE_CASES)
    assert {p.stem for p in (GOLDEN / "text").glob("*.txt")} == set(TEXT_CASES)


@pytest.mark.parametrize("case", edge_case_params())
def test_json_deterministic(case):
    """Two independent traces of freshly built models give the same bytes."""
    first = mlx_report.ModelSummary(trace_case(case)).to_json()
    second = mlx_report.ModelSummary(trace_case(case)).to_json()
    assert first == second


TOTAL_KEYS = {"params", "trainable_params", "non_trainable_params", "macs", "flops",
              "param_bytes", "activation_bytes"}
LAYER_KEYS = {"path", "type", "call_index", "depth", "input_shapes", "output_shapes",
              "params", "macs_self", "macs_total"}


@pytest.mark.parametrize("case", edge_case_params())
def test_json_required_keys(case):
    graph = trace_case(case)
    data = json.loads(mlx_report.ModelSummary(graph).to_json())
    assert data["schema_version"] == 1
    assert TOTAL_KEYS <= data["totals"].keys()
    assert all(isinstance(data["totals"][k], int) for k in TOTAL_KEYS)
    assert data["totals"]["flops"] == 2 * data["totals"]["macs"]
    assert isinstance(data["uncounted_ops"], dict)
    assert len(data["layers"]) == graph.totals.calls
    for layer in data["layers"]:
        assert LAYER_KEYS <= layer.keys()
        assert all(isinstance(s, list) and all(isinstance(d, int) for d in s)
                   for s in layer["input_shapes"] + layer["output_shapes"])
    root = data["layers"][0]
    assert (root["path"], root["depth"], root["call_index"]) == ("", 0, 0)
    assert root["macs_total"] == data["totals"]["macs"]


@pytest.mark.parametrize("case", edge_case_params())
def test_json_round_trip(case):
    """graph_from_dict(json) gives back the same JSON and the same text table."""
    graph = trace_case(case)
    text = to_json(graph)
    rebuilt = graph_from_dict(json.loads(text))
    assert to_json(rebuilt) == text
    for options in ({}, {"depth": math.inf, "fold": False}):
        assert str(mlx_report.ModelSummary(rebuilt, **options)) == \
            str(mlx_report.ModelSummary(graph, **options))
