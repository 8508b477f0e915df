"""A small MLP classifier for flattened 28x28 MNIST digits (784 -> 512 -> 512 -> 10).

Input is a batch of flattened images (B, 784):

    mlx-report summary samples/mlp.py --input 64,784
"""

from itertools import pairwise

import mlx.core as mx
import mlx.nn as nn


class MLP(nn.Module):
    """`depth` hidden layers of Linear -> ReLU -> Dropout, then a Linear classifier."""

    def __init__(
        self,
        in_dims: int,
        hidden: int,
        depth: int,
        num_classes: int,
        dropout: float = 0.2,
    ):
        super().__init__()
        dims = [in_dims] + [hidden] * depth
        self.layers = [
            nn.Sequential(nn.Linear(d_in, d_out), nn.ReLU(), nn.Dropout(dropout))
            for d_in, d_out in pairwise(dims)
        ]
        self.classifier = nn.Linear(dims[-1], num_classes)

    def __call__(self, x: mx.array) -> mx.array:
        x = x.reshape(x.shape[0], -1)  # accept (B, 784) or image-shaped (B, 28, 28)
        for layer in self.layers:
            x = layer(x)
        return self.classifier(x)


def build_model(
    in_dims: int = 784, hidden: int = 512, depth: int = 2, num_classes: int = 10
) -> MLP:
    """MNIST MLP (defaults: 669,706 parameters) in eval mode (Dropout off)."""
    model = MLP(in_dims, hidden, depth, num_classes)
    model.eval()
    return model
