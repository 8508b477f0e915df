"""Shared fixtures: sample models loaded by path, cached lazy traces, an MLX compile-state probe.

Nothing here evaluates a model: samples are built lazily (random weights are never
materialised) and traced with `mlx_report.trace`, which only builds the lazy graph.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import mlx.core as mx
import pytest

import mlx_report
from tests.models.edge_cases import EDGE_CASES

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def load_sample_module(name: str) -> ModuleType:
    """Import samples/<name>.py by path, as the CLI loads a user's model file."""
    spec = importlib.util.spec_from_file_location(f"sample_{name}_for_tests", SAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# name -> (sample file, factory kwargs, input shape, input dtype); inputs kept small.
SAMPLE_TRACES = {
    "resnet18": ("resnet", {"depth": 18}, (1, 3, 224, 224), mx.float32),
    "resnet50": ("resnet", {"depth": 50}, (1, 3, 224, 224), mx.float32),
    "vit_b16": ("vit", {}, (1, 3, 224, 224), mx.float32),
    "encoder": ("encoder", {}, (1, 128, 256), mx.float32),
    "gpt2": ("gpt2", {}, (1, 128), mx.int32),
    "llama7b": ("llama", {}, (1, 128), mx.int32),
    "llama_tiny": ("llama", {"size": "tiny"}, (1, 16), mx.int32),
    "mlp": ("mlp", {}, (4, 784), mx.float32),
}

_graph_cache: dict[str, mlx_report.ModelGraph] = {}


def build_sample(name: str):
    """(model, example input) for a SAMPLE_TRACES entry; both lazy."""
    file, kwargs, shape, dtype = SAMPLE_TRACES[name]
    model = load_sample_module(file).build_model(**kwargs)
    return model, mx.zeros(shape, dtype=dtype)


def traced_sample(name: str) -> mlx_report.ModelGraph:
    """The ModelGraph of a sample, traced once per test session (graphs are read-only)."""
    if name not in _graph_cache:
        model, x = build_sample(name)
        _graph_cache[name] = mlx_report.trace(model, x)
    return _graph_cache[name]


@pytest.fixture
def sample_graph():
    """`sample_graph("resnet50")` -> cached ModelGraph."""
    return traced_sample


@pytest.fixture
def sample_module():
    """`sample_module("resnet")` -> the imported samples/resnet.py."""
    return load_sample_module


def compile_enabled() -> bool:
    """Whether `mx.compile` is active, observed from outside (MLX has no getter).

    A compiled function runs its Python body once to trace and then replays the
    cached graph; with compilation disabled the body runs on every call.
    """
    runs = []

    @mx.compile
    def probe(x):
        runs.append(1)
        return x + 1

    x = mx.zeros((1,))
    probe(x)
    probe(x)
    return len(runs) == 1


@pytest.fixture(autouse=True)
def _compile_left_enabled():
    """Every test starts and ends with compilation enabled (MLX's default)."""
    mx.enable_compile()
    yield
    mx.enable_compile()


def edge_case_params(names=None) -> list:
    """Edge-case names for parametrize."""
    return sorted(EDGE_CASES) if names is None else list(names)
