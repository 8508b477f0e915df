"""MobileNetV2, layer for layer as torchvision's `mobilenet_v2` (3,504,872 parameters).

Takes torch-style NCHW images and transposes once at the stem to MLX's NHWC.
Module paths follow torchvision (`features.1.conv.0.0`, `classifier.1`), so a
converted torchvision checkpoint loads by name.

    mlx-report summary samples/mobilenet.py --input 1,3,224,224
"""

import mlx.core as mx
import mlx.nn as nn

# (expansion t, output channels c, repeats n, first stride s): torchvision's table.
INVERTED_RESIDUAL_SETTING = [
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of `divisor`, never below 90% of `value` (torchvision)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


class ConvBNReLU6(nn.Sequential):
    """Conv (no bias) + BatchNorm + ReLU6, torchvision's `Conv2dNormActivation`."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1,
                 groups: int = 1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=(kernel - 1) // 2,
                      groups=groups, bias=False),
            nn.BatchNorm(out_channels),
            nn.ReLU6(),
        )


class InvertedResidual(nn.Module):
    """1x1 expand, 3x3 depthwise (carries the stride), 1x1 linear project, residual if shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = int(round(in_channels * expand_ratio))
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(in_channels, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm(out_channels),
        ]
        self.conv = nn.Sequential(*layers)

    def __call__(self, x: mx.array) -> mx.array:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class GlobalAvgPool2d(nn.Module):
    """Mean over the spatial axes of NHWC input: (B, H, W, C) -> (B, C)."""

    def __call__(self, x: mx.array) -> mx.array:
        return x.mean(axis=(1, 2))


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0) for NCHW input: features, global pool, dropout + linear."""

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2):
        super().__init__()
        channels = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [ConvBNReLU6(3, channels, stride=2)]
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            out = make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(channels, out, s if i == 0 else 1, t))
                channels = out
        features.append(ConvBNReLU6(channels, last, kernel=1))
        self.features = nn.Sequential(*features)
        self.pool = GlobalAvgPool2d()
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))

    def __call__(self, x: mx.array) -> mx.array:
        x = self.features(x.transpose(0, 2, 3, 1))
        return self.classifier(self.pool(x))


def build_model(num_classes: int = 1000, width_mult: float = 1.0) -> MobileNetV2:
    """MobileNetV2 in eval mode, for NCHW input (defaults: 3,504,872 parameters)."""
    model = MobileNetV2(num_classes, width_mult)
    model.eval()
    return model
