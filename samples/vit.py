"""Vision Transformer ViT-B/16, module for module as torchvision `vit_b_16`.

Takes torch-style NCHW images and transposes once at the patch embedding to MLX's NHWC.

    mlx-report summary samples/vit.py --input 1,3,224,224
"""

import math
from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn


@dataclass
class ViTConfig:
    image_size: int = 224
    patch_size: int = 16
    dims: int = 768
    depth: int = 12
    heads: int = 12
    mlp_dims: int = 3072
    num_classes: int = 1000
    in_channels: int = 3
    norm_eps: float = 1e-6

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


class SelfAttention(nn.Module):
    """Multi-head self-attention with torch's fused in-projection (3*dims, bias) and out_proj."""

    def __init__(self, dims: int, heads: int):
        super().__init__()
        if dims % heads:
            raise ValueError(f"dims ({dims}) must be divisible by heads ({heads}).")
        self.heads = heads
        self.scale = 1.0 / math.sqrt(dims // heads)
        self.in_proj = nn.Linear(dims, 3 * dims, bias=True)
        self.out_proj = nn.Linear(dims, dims, bias=True)

    def __call__(self, x: mx.array) -> mx.array:
        B, L, _ = x.shape
        qkv = self.in_proj(x).reshape(B, L, 3, self.heads, -1).transpose(2, 0, 3, 1, 4)
        out = mx.fast.scaled_dot_product_attention(
            qkv[0], qkv[1], qkv[2], scale=self.scale
        )
        return self.out_proj(out.transpose(0, 2, 1, 3).reshape(B, L, -1))


class MLP(nn.Module):
    """Linear -> GELU (exact) -> Linear, as torchvision's MLPBlock."""

    def __init__(self, dims: int, mlp_dims: int):
        super().__init__()
        self.fc1 = nn.Linear(dims, mlp_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(mlp_dims, dims)

    def __call__(self, x: mx.array) -> mx.array:
        return self.fc2(self.act(self.fc1(x)))


class EncoderBlock(nn.Module):
    """Pre-LN transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.dims, eps=config.norm_eps)
        self.self_attention = SelfAttention(config.dims, config.heads)
        self.ln_2 = nn.LayerNorm(config.dims, eps=config.norm_eps)
        self.mlp = MLP(config.dims, config.mlp_dims)

    def __call__(self, x: mx.array) -> mx.array:
        x = x + self.self_attention(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    """Adds the learned position embedding, runs the blocks, applies the final LayerNorm."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.pos_embedding = (
            mx.random.normal((1, config.num_patches + 1, config.dims)) * 0.02
        )
        self.layers = [EncoderBlock(config) for _ in range(config.depth)]
        self.ln = nn.LayerNorm(config.dims, eps=config.norm_eps)

    def __call__(self, x: mx.array) -> mx.array:
        x = x + self.pos_embedding
        for layer in self.layers:
            x = layer(x)
        return self.ln(x)


class VisionTransformer(nn.Module):
    """Patchify (conv), prepend the class token, encode, classify from the class token."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        if config.image_size % config.patch_size:
            raise ValueError("image_size must be a multiple of patch_size.")
        self.config = config
        p = config.patch_size
        self.conv_proj = nn.Conv2d(
            config.in_channels, config.dims, p, stride=p, bias=True
        )
        self.class_token = mx.zeros((1, 1, config.dims))
        self.encoder = Encoder(config)
        self.head = nn.Linear(config.dims, config.num_classes)

    def _to_nhwc(self, x: mx.array) -> mx.array:
        """Check the NCHW layout and size, then transpose to NHWC (the one transpose)."""
        c, s = self.config.in_channels, self.config.image_size
        if x.ndim != 4 or x.shape[1] != c:
            hint = (
                f"this looks like NHWC (channels last); pass NCHW --input {x.shape[0]},{c},{s},{s}"
                if x.ndim == 4 and x.shape[-1] == c
                else f"pass NCHW input such as --input 1,{c},{s},{s}"
            )
            raise ValueError(
                f"ViT expects NCHW input (B, {c}, {s}, {s}) but got {tuple(x.shape)}: {hint}."
            )
        if tuple(x.shape[2:]) != (s, s):
            raise ValueError(
                f"ViT was built for {s}x{s} images (position embedding is fixed) but got "
                f"{x.shape[2]}x{x.shape[3]}; pass --input 1,{c},{s},{s} or --arg image_size=..."
            )
        return x.transpose(0, 2, 3, 1)

    def __call__(self, x: mx.array) -> mx.array:
        x = self.conv_proj(self._to_nhwc(x))  # (B, H/p, W/p, dims)
        B = x.shape[0]
        x = x.reshape(B, -1, self.config.dims)
        cls = mx.broadcast_to(self.class_token, (B, 1, self.config.dims))
        x = self.encoder(mx.concatenate([cls, x], axis=1))
        return self.head(x[:, 0])


def build_model(
    image_size: int = 224,
    patch_size: int = 16,
    dims: int = 768,
    depth: int = 12,
    heads: int = 12,
    mlp_dims: int = 3072,
    num_classes: int = 1000,
) -> VisionTransformer:
    """ViT (defaults: ViT-B/16, 86.6M parameters) in eval mode, for NCHW input."""
    config = ViTConfig(
        image_size, patch_size, dims, depth, heads, mlp_dims, num_classes
    )
    model = VisionTransformer(config)
    model.eval()
    return model
