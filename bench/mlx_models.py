"""The benchmark's MLX models: the project's samples, plus two written here.

- `shared_tied`: one Linear called twice (and registered under two names) and an output
  projection whose weight is the embedding's (twin of torch_models.SharedTied).
- `gpt2_q4`: samples/gpt2.py after `nn.quantize(model, group_size=64, bits=4)`.

Only MLX is imported, so both the project's environment (mlx-report) and the peers'
environment (mlxsummary) can load these.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Callable

import mlx.core as mx
import mlx.nn as nn

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def load_sample(name: str):
    """Import samples/<name>.py as a module (the samples are plain files, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_sample_{name}", SAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SharedTied(nn.Module):
    """`fc` is called twice (and also registered as `fc_alias`); `out` shares embed's weight."""

    def __init__(self, vocab: int = 1000, dims: int = 256):
        super().__init__()
        self.embed = nn.Embedding(vocab, dims)
        self.fc = nn.Linear(dims, dims)
        self.fc_alias = self.fc
        self.act = nn.ReLU()
        self.out = nn.Linear(dims, vocab, bias=False)
        self.out.weight = self.embed.weight

    def __call__(self, tokens: mx.array) -> mx.array:
        return self.out(self.fc(self.act(self.fc(self.embed(tokens)))))


def gpt2_q4() -> nn.Module:
    model = load_sample("gpt2").build_model()
    nn.quantize(model, group_size=64, bits=4)  # Linear and Embedding -> 4-bit, in place
    return model


def _sample(name: str) -> Callable[..., nn.Module]:
    return lambda **kw: load_sample(name).build_model(**kw)


# name -> (factory, input shape, input dtype); inputs are zeros, as `mlx-report --input` makes.
MODELS: dict[str, tuple[Callable[..., nn.Module], tuple[int, ...], Any]] = {
    "resnet50": (_sample("resnet"), (1, 3, 224, 224), mx.float32),
    "vit_b_16": (_sample("vit"), (1, 3, 224, 224), mx.float32),
    "encoder": (_sample("encoder"), (1, 128, 256), mx.float32),
    "gpt2": (_sample("gpt2"), (1, 128), mx.int32),
    "shared_tied": (SharedTied, (1, 32), mx.int32),
    "gpt2_q4": (gpt2_q4, (1, 128), mx.int32),
    "llama7b": (_sample("llama"), (1, 128), mx.int32),
}
