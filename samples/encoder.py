"""A 4-layer transformer encoder (d=256, 8 heads, ff=1024) from `mlx.nn.TransformerEncoder`.

Input is a float sequence of embeddings (B, L, dims):

    mlx-report summary samples/encoder.py --input 2,128,256
"""

import mlx.core as mx
import mlx.nn as nn


class Encoder(nn.Module):
    """Wraps `nn.TransformerEncoder` so the model is called with one input and no mask."""

    def __init__(self, num_layers: int, dims: int, num_heads: int, mlp_dims: int):
        super().__init__()
        self.encoder = nn.TransformerEncoder(
            num_layers=num_layers, dims=dims, num_heads=num_heads, mlp_dims=mlp_dims
        )

    def __call__(self, x: mx.array) -> mx.array:
        return self.encoder(x, mask=None)


def build_model(
    num_layers: int = 4, dims: int = 256, num_heads: int = 8, mlp_dims: int = 1024
) -> Encoder:
    """Pre-LN transformer encoder (defaults: 3,155,456 parameters)."""
    return Encoder(num_layers, dims, num_heads, mlp_dims)
