"""Tiny models that each exercise one hard case for tracing and counting (golden-output tests).

`EDGE_CASES[name] = (factory, positional inputs, keyword inputs)`, every input given as
`(shape, dtype name)`; `make_inputs(name)` turns them into arrays.
"""

from collections.abc import Callable

import mlx.core as mx
import mlx.nn as nn

InputSpec = tuple[tuple[int, ...], str]


class ReusedModule(nn.Module):
    """One Linear registered as `fc` and `fc_alias`, called twice in sequence."""

    def __init__(self, dims: int = 16):
        super().__init__()
        self.fc = nn.Linear(dims, dims)
        self.fc_alias = self.fc
        self.act = nn.ReLU()

    def __call__(self, x: mx.array) -> mx.array:
        return self.fc(self.act(self.fc(x)))


class TiedWeights(nn.Module):
    """Embedding and output projection hold the same weight array (counted once)."""

    def __init__(self, vocab: int = 100, dims: int = 32):
        super().__init__()
        self.embed = nn.Embedding(vocab, dims)
        self.mix = nn.Linear(dims, dims)
        self.out = nn.Linear(dims, vocab, bias=False)
        self.out.weight = self.embed.weight

    def __call__(self, tokens: mx.array) -> mx.array:
        return self.out(self.mix(self.embed(tokens)))


class Frozen(nn.Module):
    """Two Linear layers; the factory freezes the first."""

    def __init__(self, in_dims: int = 16, hidden: int = 32, out_dims: int = 4):
        super().__init__()
        self.l1 = nn.Linear(in_dims, hidden)
        self.act = nn.ReLU()
        self.l2 = nn.Linear(hidden, out_dims)

    def __call__(self, x: mx.array) -> mx.array:
        return self.l2(self.act(self.l1(x)))


def make_frozen() -> Frozen:
    model = Frozen()
    model.l1.freeze()
    return model


class ConvBN(nn.Module):
    """Conv2d -> BatchNorm -> ReLU on NHWC input (running stats are frozen parameters)."""

    def __init__(self, in_channels: int = 3, channels: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm(channels)
        self.relu = nn.ReLU()

    def __call__(self, x: mx.array) -> mx.array:
        return self.relu(self.bn(self.conv(x)))


def make_batchnorm() -> ConvBN:
    model = ConvBN()
    model.eval()
    return model


class QuantMLP(nn.Module):
    """MLP with dims that are multiples of 64; the factory quantizes it to 4 bits."""

    def __init__(self, in_dims: int = 128, hidden: int = 256, out_dims: int = 64):
        super().__init__()
        self.fc1 = nn.Linear(in_dims, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out_dims)

    def __call__(self, x: mx.array) -> mx.array:
        return self.fc2(self.act(self.fc1(x)))


def make_quantized() -> QuantMLP:
    model = QuantMLP()
    nn.quantize(model, group_size=64, bits=4)  # in place: Linear -> QuantizedLinear
    return model


class MultiIO(nn.Module):
    """Two inputs, two outputs: a tuple, or a dict when `as_dict` is set."""

    def __init__(self, dims: int = 16, as_dict: bool = False):
        super().__init__()
        self.as_dict = as_dict
        self.enc_a = nn.Linear(dims, dims)
        self.enc_b = nn.Linear(dims, dims)
        self.head_sum = nn.Linear(dims, 4)
        self.head_prod = nn.Linear(dims, 2)

    def __call__(self, a: mx.array, b: mx.array):
        ha, hb = self.enc_a(a), self.enc_b(b)
        logits, score = self.head_sum(ha + hb), self.head_prod(ha * hb)
        return {"logits": logits, "score": score} if self.as_dict else (logits, score)


class KwargsInput(nn.Module):
    """Single-head attention whose additive `mask` arrives as a keyword argument."""

    def __init__(self, dims: int = 16):
        super().__init__()
        self.qkv = nn.Linear(dims, 3 * dims)
        self.out = nn.Linear(dims, dims)
        self.scale = dims**-0.5

    def __call__(self, x: mx.array, mask: mx.array | None = None) -> mx.array:
        q, k, v = mx.split(self.qkv(x), 3, axis=-1)
        scores = (q @ k.swapaxes(-1, -2)) * self.scale
        if mask is not None:
            scores = scores + mask
        return self.out(mx.softmax(scores, axis=-1) @ v)


class NoParams(nn.Module):
    """Only activations and pooling on NHWC input: no parameters at all."""

    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2, stride=2)
        self.gelu = nn.GELU()
        self.avg = nn.AvgPool2d(2, stride=2)
        self.softmax = nn.Softmax()

    def __call__(self, x: mx.array) -> mx.array:
        return self.softmax(self.avg(self.gelu(self.pool(self.relu(x)))))


class Block(nn.Module):
    """Depth 3: its child, a Sequential (depth 4) of Linear and ReLU (depth 5), sits in a dict."""

    def __init__(self, dims: int):
        super().__init__()
        self.parts = {"mix": nn.Sequential(nn.Linear(dims, dims), nn.ReLU())}

    def __call__(self, x: mx.array) -> mx.array:
        return x + self.parts["mix"](x)


class Stage(nn.Module):
    """Depth 2: children kept in a list container."""

    def __init__(self, dims: int, n: int = 2):
        super().__init__()
        self.blocks = [Block(dims) for _ in range(n)]

    def __call__(self, x: mx.array) -> mx.array:
        for block in self.blocks:
            x = block(x)
        return x


class DeepNesting(nn.Module):
    """Module calls 5 levels deep: body (Sequential) > Stage > Block > parts["mix"] > Linear."""

    def __init__(self, dims: int = 8):
        super().__init__()
        self.body = nn.Sequential(Stage(dims), Stage(dims))
        self.head = nn.Linear(dims, 2)

    def __call__(self, x: mx.array) -> mx.array:
        return self.head(self.body(x))


class ResBlock(nn.Module):
    """x + Linear(ReLU(Linear(x))) with a configurable hidden width."""

    def __init__(self, dims: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dims, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, dims)

    def __call__(self, x: mx.array) -> mx.array:
        return x + self.fc2(self.act(self.fc1(x)))


class GatedBlock(nn.Module):
    """x + sigmoid(gate(x)) * value(x): a different class closing the stack."""

    def __init__(self, dims: int):
        super().__init__()
        self.gate = nn.Linear(dims, dims)
        self.value = nn.Linear(dims, dims)

    def __call__(self, x: mx.array) -> mx.array:
        return x + mx.sigmoid(self.gate(x)) * self.value(x)


class RepeatedBlocks(nn.Module):
    """Six identical ResBlocks, then a wider ResBlock and a GatedBlock (fold to x6 + 2)."""

    def __init__(self, dims: int = 32):
        super().__init__()
        self.blocks = nn.Sequential(
            *[ResBlock(dims, 2 * dims) for _ in range(6)],
            ResBlock(dims, 4 * dims),
            GatedBlock(dims),
        )

    def __call__(self, x: mx.array) -> mx.array:
        return self.blocks(x)


class FunctionalOps(nn.Module):
    """Compute with a bare parameter `w` via `@`, `mx.einsum` and fused SDPA (no submodules)."""

    def __init__(self, dims: int = 32, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.w = mx.random.normal((dims, dims)) * dims**-0.5

    def __call__(self, x: mx.array) -> mx.array:
        B, L, D = x.shape
        q = x @ self.w
        k = mx.einsum("bld,de->ble", x, self.w)
        split = lambda t: t.reshape(B, L, self.heads, -1).transpose(0, 2, 1, 3)
        out = mx.fast.scaled_dot_product_attention(
            split(q), split(k), split(x), scale=(D // self.heads) ** -0.5
        )
        return out.transpose(0, 2, 1, 3).reshape(B, L, D)


class Holder(nn.Module):
    """Calls the module it holds."""

    def __init__(self, shared):
        super().__init__()
        self.shared = shared

    def __call__(self, x):
        return self.shared(x)


class TwoHolders(nn.Module):
    """One Linear held by two parent modules (shared, not reused by one parent)."""

    def __init__(self):
        super().__init__()
        shared = nn.Linear(8, 8)
        self.a, self.b = Holder(shared), Holder(shared)

    def __call__(self, x):
        return self.b(self.a(x))


EDGE_CASES: dict[
    str, tuple[Callable[[], nn.Module], list[InputSpec], dict[str, InputSpec]]
] = {
    "reused_module": (ReusedModule, [((2, 16), "float32")], {}),
    "tied_weights": (TiedWeights, [((2, 8), "int32")], {}),
    "frozen": (make_frozen, [((2, 16), "float32")], {}),
    "batchnorm": (make_batchnorm, [((1, 8, 8, 3), "float32")], {}),
    "quantized": (make_quantized, [((2, 128), "float32")], {}),
    "multi_io": (MultiIO, [((2, 16), "float32"), ((2, 16), "float32")], {}),
    "multi_io_dict": (
        lambda: MultiIO(as_dict=True),
        [((2, 16), "float32"), ((2, 16), "float32")],
        {},
    ),
    "kwargs_input": (
        KwargsInput,
        [((2, 8, 16), "float32")],
        {"mask": ((2, 8, 8), "float32")},
    ),
    "no_params": (NoParams, [((1, 8, 8, 4), "float32")], {}),
    "deep_nesting": (DeepNesting, [((2, 8), "float32")], {}),
    "repeated_blocks": (RepeatedBlocks, [((2, 32), "float32")], {}),
    "functional_ops": (FunctionalOps, [((2, 8, 32), "float32")], {}),
}


def make_inputs(name: str) -> tuple[list[mx.array], dict[str, mx.array]]:
    """Example arrays for a case: zeros of the given shape and dtype (lazy, never evaluated)."""
    _, args, kwargs = EDGE_CASES[name]
    make = lambda spec: mx.zeros(spec[0], dtype=getattr(mx, spec[1]))
    return [make(s) for s in args], {k: make(s) for k, s in kwargs.items()}


# --- Cases of issue 11 (tests/test_truth.py); not golden cases, so not in EDGE_CASES. ---

class SelfContaining(nn.Module):
    """Holds itself as a child: MLX's named_modules() never ends."""

    def __init__(self, dims: int = 4):
        super().__init__()
        self.fc = nn.Linear(dims, dims)
        self.me = self

    def __call__(self, x: mx.array) -> mx.array:
        return self.fc(x)


class AncestorCycle(nn.Module):
    """A grandchild refers back to the root through a list: a longer cycle."""

    def __init__(self, dims: int = 4):
        super().__init__()
        self.blocks = [nn.Sequential(nn.Linear(dims, dims))]
        self.blocks[0].back = [self]

    def __call__(self, x: mx.array) -> mx.array:
        return self.blocks[0](x)


class GradInForward(nn.Module):
    """Adds the input gradient of sum(fc(x)**2), 2*fc(x) @ W, to fc(x)."""

    def __init__(self, dims: int = 4):
        super().__init__()
        self.fc = nn.Linear(dims, dims)

    def __call__(self, x: mx.array) -> mx.array:
        g = mx.grad(lambda y: (self.fc(y) ** 2).sum())(x)
        return self.fc(x) + g


class TransformsInForward(nn.Module):
    """vmap, value_and_grad and checkpoint inside a forward pass, then a Linear."""

    def __init__(self, dims: int = 4):
        super().__init__()
        self.fc = nn.Linear(dims, dims)

    def __call__(self, x: mx.array) -> mx.array:
        rows = mx.vmap(lambda r: r * mx.arange(r.shape[0]))(x)           # row * [0, 1, 2, ...]
        value, grad = mx.value_and_grad(lambda y: (y ** 3).sum())(x)      # 3 x**2
        twice = mx.checkpoint(lambda y: 2 * y)(x)
        return self.fc(rows + grad + twice + value)


class RowLoop(nn.Module):
    """Like mlx-lm's dbrx MoE: iterates over the rows of an activation, one expert per row."""

    def __init__(self, dims: int = 8, hidden: int = 16, experts: int = 2):
        super().__init__()
        self.router = nn.Linear(dims, experts, bias=False)
        self.experts = [nn.Linear(dims, hidden, bias=False) for _ in range(experts)]

    def __call__(self, x: mx.array) -> mx.array:
        h = self.router(x)                        # (rows, dims) -> (rows, experts)
        outs = []
        for i, xt in enumerate(h @ mx.zeros((h.shape[-1], x.shape[-1])) + x):   # rows of an activation
            outs.append(self.experts[i % len(self.experts)](xt[None]))
        return mx.concatenate(outs, axis=0)


class BareScale(nn.Module):
    """Skips super().__init__() (as a norm in mlx-lm's recurrent_gemma does)."""

    def __init__(self, dims: int = 4):  # noqa: no super().__init__() on purpose
        self.weight = mx.ones((dims,))

    def __call__(self, x: mx.array) -> mx.array:
        return x * self.weight


class HoldsBare(nn.Module):
    def __init__(self, dims: int = 4):
        super().__init__()
        self.fc = nn.Linear(dims, dims)
        self.scale = BareScale(dims)

    def __call__(self, x: mx.array) -> mx.array:
        return self.scale(self.fc(x))


from dataclasses import dataclass  # noqa: E402
from typing import NamedTuple  # noqa: E402


@dataclass
class ModelOutput:
    """Like Hugging Face's ModelOutput: arrays in named fields."""

    logits: mx.array
    hidden: mx.array


class Pair(NamedTuple):
    first: mx.array
    second: mx.array


class DataclassOut(nn.Module):
    """Returns a dataclass; its head takes a dataclass and returns a NamedTuple."""

    def __init__(self, dims: int = 8, vocab: int = 16):
        super().__init__()
        self.body = nn.Linear(dims, dims)
        self.head = DataclassHead(dims, vocab)

    def __call__(self, x: mx.array) -> ModelOutput:
        h = self.body(x)
        pair = self.head(ModelOutput(logits=h, hidden=h))
        return ModelOutput(logits=pair.first, hidden=pair.second)


class DataclassHead(nn.Module):
    def __init__(self, dims: int, vocab: int):
        super().__init__()
        self.w = mx.zeros((dims, vocab))

    def __call__(self, out: ModelOutput) -> Pair:
        return Pair(first=out.logits @ self.w, second=out.hidden)


class Slow(nn.Module):
    """Sleeps between its calls, so two threads tracing it overlap."""

    def __init__(self, dims: int = 8, layers: int = 3, pause: float = 0.05):
        super().__init__()
        self.layers = [nn.Linear(dims, dims) for _ in range(layers)]
        self.pause = pause

    def __call__(self, x: mx.array) -> mx.array:
        import time
        for layer in self.layers:
            time.sleep(self.pause)
            x = layer(x) + x
        return x
