"""ResNet-18/34/50/101/152, layer for layer as torchvision (v1.5: stride on the 3x3 conv).

Takes torch-style NCHW images and transposes once at the stem to MLX's NHWC.

    mlx-report summary samples/resnet.py --input 1,3,224,224 --arg depth=18
"""

from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding, no bias (it is followed by BatchNorm)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class Downsample(nn.Module):
    """Projection shortcut: conv1x1 + BatchNorm (torchvision's `downsample`)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv = conv1x1(in_channels, out_channels, stride)
        self.bn = nn.BatchNorm(out_channels)

    def __call__(self, x: mx.array) -> mx.array:
        return self.bn(self.conv(x))


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: Downsample | None = None,
    ):
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm(channels)
        self.relu = nn.ReLU()  # one ReLU module, called twice, as in torchvision
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm(channels)
        self.downsample = downsample

    def __call__(self, x: mx.array) -> mx.array:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride), 1x1 expand by 4, residual (ResNet-50+)."""

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: Downsample | None = None,
    ):
        super().__init__()
        self.conv1 = conv1x1(in_channels, channels)
        self.bn1 = nn.BatchNorm(channels)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm(channels)
        self.conv3 = conv1x1(channels, channels * self.expansion)
        self.bn3 = nn.BatchNorm(channels * self.expansion)
        self.relu = nn.ReLU()  # one ReLU module, called three times, as in torchvision
        self.downsample = downsample

    def __call__(self, x: mx.array) -> mx.array:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


Block = type[BasicBlock] | type[Bottleneck]


class GlobalAvgPool2d(nn.Module):
    """Mean over the spatial axes of NHWC input: (B, H, W, C) -> (B, C)."""

    def __call__(self, x: mx.array) -> mx.array:
        return x.mean(axis=(1, 2))


@dataclass
class ResNetConfig:
    block: Block
    layers: tuple[int, int, int, int]
    num_classes: int = 1000
    in_channels: int = 3
    channels_last: bool = False


CONFIGS: dict[int, tuple[Block, tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    """Stem (conv7x7/2, BN, ReLU, maxpool/2), four stages, global average pool, fc."""

    def __init__(self, config: ResNetConfig):
        super().__init__()
        self.in_channels = config.in_channels
        self.channels_last = config.channels_last
        self.conv1 = nn.Conv2d(
            config.in_channels, 64, 7, stride=2, padding=3, bias=False
        )
        self.bn1 = nn.BatchNorm(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self._inplanes = 64
        self.layer1 = self._make_layer(config.block, 64, config.layers[0])
        self.layer2 = self._make_layer(config.block, 128, config.layers[1], stride=2)
        self.layer3 = self._make_layer(config.block, 256, config.layers[2], stride=2)
        self.layer4 = self._make_layer(config.block, 512, config.layers[3], stride=2)
        self.avgpool = GlobalAvgPool2d()
        self.fc = nn.Linear(512 * config.block.expansion, config.num_classes)

    def _make_layer(
        self, block: Block, channels: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._inplanes != channels * block.expansion:
            downsample = Downsample(self._inplanes, channels * block.expansion, stride)
        layers = [block(self._inplanes, channels, stride, downsample)]
        self._inplanes = channels * block.expansion
        layers += [block(self._inplanes, channels) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _to_nhwc(self, x: mx.array) -> mx.array:
        """Check the layout and bring NCHW input to NHWC (the one transpose)."""
        c = self.in_channels
        if x.ndim != 4:
            raise ValueError(
                f"ResNet expects a 4-D image batch, got shape {tuple(x.shape)}; "
                f"pass --input 1,{c},224,224 (NCHW)."
            )
        if self.channels_last:
            if x.shape[-1] != c:
                raise ValueError(
                    f"ResNet built with channels_last=True expects NHWC input (B, H, W, {c}), "
                    f"got {tuple(x.shape)}; pass --input 1,224,224,{c} "
                    f"or build without channels_last for NCHW input."
                )
            return x
        if x.shape[1] != c:
            hint = (
                f"this looks like NHWC (channels last); pass NCHW --input "
                f"{x.shape[0]},{c},{x.shape[1]},{x.shape[2]}, or build the model with "
                f"channels_last=True (--arg channels_last=True) to feed NHWC directly"
                if x.shape[-1] == c
                else f"pass NCHW input such as --input 1,{c},224,224"
            )
            raise ValueError(
                f"ResNet expects NCHW input (B, {c}, H, W) but got {tuple(x.shape)}: {hint}."
            )
        return x.transpose(0, 2, 3, 1)

    def __call__(self, x: mx.array) -> mx.array:
        x = self._to_nhwc(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x))


def build_model(
    depth: int = 50, num_classes: int = 1000, channels_last: bool = False
) -> ResNet:
    """ResNet-`depth` (18, 34, 50, 101 or 152) in eval mode, for NCHW input by default."""
    if depth not in CONFIGS:
        raise ValueError(f"ResNet depth must be one of {sorted(CONFIGS)}, got {depth}.")
    block, layers = CONFIGS[depth]
    model = ResNet(
        ResNetConfig(block, layers, num_classes, channels_last=channels_last)
    )
    model.eval()
    return model
