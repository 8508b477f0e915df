"""GPT-2 (defaults: the 124M "small" model) with the lm_head tied to the token embedding.

Input is int32 token ids (B, L), L <= n_ctx:

    mlx-report summary samples/gpt2.py --input 1,1024:int32
"""

import math
from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn


@dataclass
class GPT2Config:
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    vocab_size: int = 50257
    n_ctx: int = 1024
    layer_norm_epsilon: float = 1e-5


class CausalSelfAttention(nn.Module):
    """Fused c_attn (q, k, v in one Linear with bias), causal attention, c_proj."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(
                f"n_embd ({config.n_embd}) must be divisible by n_head ({config.n_head})."
            )
        self.n_head = config.n_head
        self.scale = 1.0 / math.sqrt(config.n_embd // config.n_head)
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)

    def __call__(self, x: mx.array) -> mx.array:
        B, L, D = x.shape
        qkv = self.c_attn(x).reshape(B, L, 3, self.n_head, -1).transpose(2, 0, 3, 1, 4)
        out = mx.fast.scaled_dot_product_attention(
            qkv[0], qkv[1], qkv[2], scale=self.scale, mask="causal"
        )
        return self.c_proj(out.transpose(0, 2, 1, 3).reshape(B, L, D))


class MLP(nn.Module):
    """c_fc (4x), tanh-approximated GELU, c_proj."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.act = nn.GELU(approx="precise")  # GPT-2's tanh approximation ("gelu_new")
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)

    def __call__(self, x: mx.array) -> mx.array:
        return self.c_proj(self.act(self.c_fc(x)))


class Block(nn.Module):
    """Pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def __call__(self, x: mx.array) -> mx.array:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    """Token + learned position embeddings, blocks, ln_f, logits through the tied wte."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_ctx, config.n_embd)
        self.h = [Block(config) for _ in range(config.n_layer)]
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)

    def __call__(self, tokens: mx.array) -> mx.array:
        if tokens.ndim != 2 or mx.issubdtype(tokens.dtype, mx.floating):
            raise ValueError(
                f"GPT-2 expects int32 token ids of shape (B, L), got {tokens.dtype} "
                f"{tuple(tokens.shape)}; pass e.g. --input 1,1024:int32."
            )
        L = tokens.shape[1]
        if L > self.config.n_ctx:
            raise ValueError(f"sequence length {L} exceeds n_ctx={self.config.n_ctx}.")
        x = self.wte(tokens) + self.wpe(mx.arange(L))
        for block in self.h:
            x = block(x)
        return self.wte.as_linear(self.ln_f(x))


def build_model(
    n_layer: int = 12,
    n_head: int = 12,
    n_embd: int = 768,
    vocab_size: int = 50257,
    n_ctx: int = 1024,
) -> GPT2:
    """GPT-2 (defaults: GPT-2 small, 124,439,808 parameters with wte counted once)."""
    return GPT2(GPT2Config(n_layer, n_head, n_embd, vocab_size, n_ctx))
