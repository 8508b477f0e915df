"""Llama-2 decoder (defaults: Llama-2-7B, 6.74B parameters), in the style of mlx-examples.

Input is int32 token ids (B, L). Building and tracing are lazy, so the 7B default costs nothing:

    mlx-report summary samples/llama.py --input 1,128:int32
    mlx-report summary samples/llama.py --input 1,16:int32 --arg size=tiny
"""

import math
from dataclasses import dataclass, fields, replace

import mlx.core as mx
import mlx.nn as nn


@dataclass
class ModelArgs:
    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    n_kv_heads: int | None = 32
    vocab_size: int = 32000
    hidden_dim: int = 11008
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_traditional: bool = False

    def __post_init__(self):
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.dim % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"dim ({self.dim}) must be divisible by n_heads ({self.n_heads}), "
                f"and n_heads by n_kv_heads ({self.n_kv_heads})."
            )


SIZES: dict[str, ModelArgs] = {
    "7b": ModelArgs(),
    "13b": ModelArgs(
        dim=5120, n_layers=40, n_heads=40, n_kv_heads=40, hidden_dim=13824
    ),
    "tiny": ModelArgs(
        dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=512, hidden_dim=176
    ),
}


class Attention(nn.Module):
    """Causal self-attention with RoPE and grouped-query (n_kv_heads <= n_heads) support."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.n_heads = args.n_heads
        self.n_kv_heads = args.n_kv_heads
        head_dim = args.dim // args.n_heads
        self.scale = 1.0 / math.sqrt(head_dim)
        self.q_proj = nn.Linear(args.dim, args.n_heads * head_dim, bias=False)
        self.k_proj = nn.Linear(args.dim, args.n_kv_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(args.dim, args.n_kv_heads * head_dim, bias=False)
        self.o_proj = nn.Linear(args.n_heads * head_dim, args.dim, bias=False)
        self.rope = nn.RoPE(
            head_dim, traditional=args.rope_traditional, base=args.rope_theta
        )

    def __call__(self, x: mx.array) -> mx.array:
        B, L, _ = x.shape
        q = self.q_proj(x).reshape(B, L, self.n_heads, -1).transpose(0, 2, 1, 3)
        k = self.k_proj(x).reshape(B, L, self.n_kv_heads, -1).transpose(0, 2, 1, 3)
        v = self.v_proj(x).reshape(B, L, self.n_kv_heads, -1).transpose(0, 2, 1, 3)
        q, k = self.rope(q), self.rope(k)
        if self.n_kv_heads != self.n_heads:
            # Grouped-query attention: each kv head serves n_heads // n_kv_heads query heads.
            repeats = self.n_heads // self.n_kv_heads
            k, v = mx.repeat(k, repeats, axis=1), mx.repeat(v, repeats, axis=1)
        out = mx.fast.scaled_dot_product_attention(
            q, k, v, scale=self.scale, mask="causal"
        )
        return self.o_proj(out.transpose(0, 2, 1, 3).reshape(B, L, -1))


class MLP(nn.Module):
    """SwiGLU feed-forward: down(silu(gate(x)) * up(x))."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden_dim, bias=False)
        self.up_proj = nn.Linear(dim, hidden_dim, bias=False)
        self.down_proj = nn.Linear(hidden_dim, dim, bias=False)

    def __call__(self, x: mx.array) -> mx.array:
        return self.down_proj(nn.silu(self.gate_proj(x)) * self.up_proj(x))


class TransformerBlock(nn.Module):
    """Pre-norm decoder layer: x + attn(norm(x)), then h + mlp(norm(h))."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.input_layernorm = nn.RMSNorm(args.dim, eps=args.norm_eps)
        self.self_attn = Attention(args)
        self.post_attention_layernorm = nn.RMSNorm(args.dim, eps=args.norm_eps)
        self.mlp = MLP(args.dim, args.hidden_dim)

    def __call__(self, x: mx.array) -> mx.array:
        h = x + self.self_attn(self.input_layernorm(x))
        return h + self.mlp(self.post_attention_layernorm(h))


class Llama(nn.Module):
    """Token embedding, decoder layers, final RMSNorm and an untied lm_head."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.embed_tokens = nn.Embedding(args.vocab_size, args.dim)
        self.layers = [TransformerBlock(args) for _ in range(args.n_layers)]
        self.norm = nn.RMSNorm(args.dim, eps=args.norm_eps)
        self.lm_head = nn.Linear(args.dim, args.vocab_size, bias=False)

    def __call__(self, tokens: mx.array) -> mx.array:
        if tokens.ndim != 2 or mx.issubdtype(tokens.dtype, mx.floating):
            raise ValueError(
                f"Llama expects int32 token ids of shape (B, L), got {tokens.dtype} "
                f"{tuple(tokens.shape)}; pass e.g. --input 1,128:int32."
            )
        h = self.embed_tokens(tokens)
        for layer in self.layers:
            h = layer(h)
        return self.lm_head(self.norm(h))


def build_model(size: str = "7b", **overrides) -> Llama:
    """Llama-2 of a named size ("7b", "13b", "tiny") with any ModelArgs field overridden."""
    if size.lower() not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}.")
    known = {f.name for f in fields(ModelArgs)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(
            f"unknown Llama arguments {sorted(unknown)}; known: {sorted(known)}."
        )
    base = SIZES[size.lower()]
    if (
        "n_heads" in overrides
        and "n_kv_heads" not in overrides
        and base.n_kv_heads == base.n_heads
    ):
        overrides["n_kv_heads"] = overrides[
            "n_heads"
        ]  # keep plain multi-head attention
    return Llama(replace(base, **overrides))
