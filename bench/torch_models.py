"""PyTorch twins of the benchmark's MLX models: the same layers, shapes and parameter counts.

Each twin mirrors one MLX model module for module, so every tool sees the same
architecture on both sides:

- `resnet50()`      samples/resnet.py (torchvision's ResNet-50 v1.5, written by hand:
                    torchvision from PyPI does not load with this torch build)
- `vit_b_16()`      samples/vit.py (torchvision's vit_b_16 layout)
- `encoder()`       samples/encoder.py (`nn.TransformerEncoder`, batch_first, pre-LN)
- `gpt2()`          samples/gpt2.py (GPT-2 small; lm_head tied to wte, as nanoGPT and
                    Hugging Face write it)
- `shared_tied()`   bench/mlx_models.py SharedTied (one Linear called twice and
                    registered under two names, an output projection tied to the embedding)
- `llama(...)`      samples/llama.py (Llama-2; 7B by default)

Only `torch` is imported: this file runs in the peers' environment.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# --------------------------------------------------------------------------- ResNet-50


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride), 1x1 expand by 4, residual."""

    expansion = 4

    def __init__(self, cin: int, channels: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv1x1(cin, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = conv1x1(channels, channels * self.expansion)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, layers: tuple[int, int, int, int] = (3, 4, 6, 3), num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self._inplanes = 64
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * Bottleneck.expansion, num_classes)

    def _make_layer(self, channels: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._inplanes != channels * Bottleneck.expansion:
            downsample = nn.Sequential(
                conv1x1(self._inplanes, channels * Bottleneck.expansion, stride),
                nn.BatchNorm2d(channels * Bottleneck.expansion),
            )
        layers = [Bottleneck(self._inplanes, channels, stride, downsample)]
        self._inplanes = channels * Bottleneck.expansion
        layers += [Bottleneck(self._inplanes, channels) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet50() -> ResNet:
    return ResNet((3, 4, 6, 3))


# --------------------------------------------------------------------------- ViT-B/16


class MLPBlock(nn.Sequential):
    def __init__(self, dims: int, mlp_dims: int):
        super().__init__(nn.Linear(dims, mlp_dims), nn.GELU(), nn.Dropout(0.0),
                         nn.Linear(mlp_dims, dims), nn.Dropout(0.0))


class EncoderBlock(nn.Module):
    """Pre-LN: x + attn(ln_1(x)), then x + mlp(ln_2(x)); attention is nn.MultiheadAttention."""

    def __init__(self, dims: int, heads: int, mlp_dims: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dims, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(dims, heads, dropout=0.0, batch_first=True)
        self.dropout = nn.Dropout(0.0)
        self.ln_2 = nn.LayerNorm(dims, eps=1e-6)
        self.mlp = MLPBlock(dims, mlp_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = x + self.dropout(y)
        return x + self.mlp(self.ln_2(x))


class ViTEncoder(nn.Module):
    def __init__(self, seq: int, depth: int, dims: int, heads: int, mlp_dims: int):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq, dims).normal_(std=0.02))
        self.dropout = nn.Dropout(0.0)
        self.layers = nn.Sequential(*[EncoderBlock(dims, heads, mlp_dims) for _ in range(depth)])
        self.ln = nn.LayerNorm(dims, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


class VisionTransformer(nn.Module):
    def __init__(self, image_size: int = 224, patch_size: int = 16, dims: int = 768, depth: int = 12,
                 heads: int = 12, mlp_dims: int = 3072, num_classes: int = 1000):
        super().__init__()
        self.patch_size, self.dims = patch_size, dims
        self.conv_proj = nn.Conv2d(3, dims, patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dims))
        seq = (image_size // patch_size) ** 2 + 1
        self.encoder = ViTEncoder(seq, depth, dims, heads, mlp_dims)
        self.heads = nn.Sequential()
        self.heads.add_module("head", nn.Linear(dims, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x)                                  # (B, dims, H/p, W/p)
        x = x.reshape(x.shape[0], self.dims, -1).permute(0, 2, 1)
        cls = self.class_token.expand(x.shape[0], -1, -1)
        x = self.encoder(torch.cat([cls, x], dim=1))
        return self.heads(x[:, 0])


def vit_b_16() -> VisionTransformer:
    return VisionTransformer()


# --------------------------------------------------------------------------- Encoder


def encoder(num_layers: int = 4, dims: int = 256, heads: int = 8, mlp_dims: int = 1024) -> nn.Module:
    """`nn.TransformerEncoder` shaped like MLX's: pre-LN, ReLU, final LayerNorm.

    MLX's MultiHeadAttention projects without biases, so the twin's attention biases
    (in_proj_bias, out_proj.bias) are removed: both models then have 3,155,456
    parameters. (This also turns off torch's fused inference fast path, which would hide
    the attention from module hooks; the layers run their ordinary submodules.)
    """
    layer = nn.TransformerEncoderLayer(dims, heads, mlp_dims, dropout=0.0, activation="relu",
                                       batch_first=True, norm_first=True)
    model = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(dims),
                                  enable_nested_tensor=False)
    for lyr in model.layers:
        lyr.self_attn.in_proj_bias = None
        lyr.self_attn.out_proj.bias = None
    return model


# --------------------------------------------------------------------------- GPT-2


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = self.c_attn(x).reshape(B, L, 3, self.n_head, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(out.transpose(1, 2).reshape(B, L, D))


class GPT2MLP(nn.Module):
    def __init__(self, n_embd: int):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.act = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(4 * n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.act(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=1e-5)
        self.attn = CausalSelfAttention(n_embd, n_head)
        self.ln_2 = nn.LayerNorm(n_embd, eps=1e-5)
        self.mlp = GPT2MLP(n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    def __init__(self, n_layer: int = 12, n_head: int = 12, n_embd: int = 768, vocab_size: int = 50257,
                 n_ctx: int = 1024):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(n_ctx, n_embd)
        self.h = nn.ModuleList([GPT2Block(n_embd, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd, eps=1e-5)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.wte(tokens) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def gpt2() -> GPT2:
    return GPT2()


# --------------------------------------------------------------------------- reused + tied


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

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.out(self.fc(self.act(self.fc(self.embed(tokens)))))


def shared_tied() -> SharedTied:
    return SharedTied()


# --------------------------------------------------------------------------- Llama-2


class RMSNorm(nn.Module):
    def __init__(self, dims: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dims))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotary embedding, non-traditional (rotate-half) layout as MLX's nn.RoPE(traditional=False)."""
    L, D = x.shape[-2], x.shape[-1]
    inv = base ** (-torch.arange(0, D, 2, dtype=torch.float32, device=x.device) / D)
    ang = torch.arange(L, dtype=torch.float32, device=x.device)[:, None] * inv[None, :]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class LlamaAttention(nn.Module):
    def __init__(self, dim: int, n_heads: int, n_kv_heads: int):
        super().__init__()
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        hd = dim // n_heads
        self.q_proj = nn.Linear(dim, n_heads * hd, bias=False)
        self.k_proj = nn.Linear(dim, n_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(dim, n_kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(n_heads * hd, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        q = self.q_proj(x).reshape(B, L, self.n_heads, -1).transpose(1, 2)
        k = self.k_proj(x).reshape(B, L, self.n_kv_heads, -1).transpose(1, 2)
        v = self.v_proj(x).reshape(B, L, self.n_kv_heads, -1).transpose(1, 2)
        q, k = rope(q), rope(k)
        if self.n_kv_heads != self.n_heads:
            r = self.n_heads // self.n_kv_heads
            k, v = k.repeat_interleave(r, dim=1), v.repeat_interleave(r, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(B, L, -1))


class LlamaMLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaBlock(nn.Module):
    def __init__(self, dim: int, n_heads: int, n_kv_heads: int, hidden: int):
        super().__init__()
        self.input_layernorm = RMSNorm(dim)
        self.self_attn = LlamaAttention(dim, n_heads, n_kv_heads)
        self.post_attention_layernorm = RMSNorm(dim)
        self.mlp = LlamaMLP(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x + self.self_attn(self.input_layernorm(x))
        return h + self.mlp(self.post_attention_layernorm(h))


class Llama(nn.Module):
    def __init__(self, dim: int = 4096, n_layers: int = 32, n_heads: int = 32, n_kv_heads: int = 32,
                 vocab_size: int = 32000, hidden_dim: int = 11008):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab_size, dim)
        self.layers = nn.ModuleList([LlamaBlock(dim, n_heads, n_kv_heads, hidden_dim)
                                     for _ in range(n_layers)])
        self.norm = RMSNorm(dim)
        self.lm_head = nn.Linear(dim, vocab_size, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed_tokens(tokens)
        for layer in self.layers:
            h = layer(h)
        return self.lm_head(self.norm(h))


def llama(n_layers: int = 32, **kw) -> Llama:
    return Llama(n_layers=n_layers, **kw)


# --------------------------------------------------------------------------- registry

# name -> (factory, input shape, input dtype)
MODELS = {
    "resnet50": (resnet50, (1, 3, 224, 224), torch.float32),
    "vit_b_16": (vit_b_16, (1, 3, 224, 224), torch.float32),
    "encoder": (encoder, (1, 128, 256), torch.float32),
    "gpt2": (gpt2, (1, 128), torch.int64),
    "shared_tied": (shared_tied, (1, 32), torch.int64),
    "llama7b": (llama, (1, 128), torch.int64),
}


def make_input(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    return torch.zeros(shape, dtype=dtype)
