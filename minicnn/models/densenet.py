"""DenseNets (Huang, Liu, van der Maaten & Weinberger 2017, "Densely Connected Convolutional Networks").

Inside a dense block every layer receives the concatenation of *all* earlier feature maps of the
block and adds ``growth_rate`` (k) new ones: layer l sees k0 + (l - 1) k channels. Each layer is the
"BC" bottleneck  BN-ReLU-conv1x1 (4k filters) - BN-ReLU-conv3x3 (k filters); between blocks a
transition BN-ReLU-conv1x1-avgpool2x2 halves the size and compresses the channels by 0.5.

ImageNet DenseNets (Table 1), in torchvision's layout
-----------------------------------------------------
    stage            output (224 input)  121        169        201        161 (k=48)
    conv0, pool0     112 -> 56           7x7 conv stride 2 (2k filters), BN, ReLU, 3x3 max-pool /2
    denseblock1      56x56               6          6          6          6
    transition1      28x28
    denseblock2      28x28               12         12         12         12
    transition2      14x14
    denseblock3      14x14               24         32         48         36
    transition3      7x7
    denseblock4      7x7                 16         32         32         24
    norm5, ReLU, global average pool, classifier (linear)
    params                               7,978,856  14,149,480 20,013,928 28,681,000

Keys equal torchvision's: ``features.conv0``, ``features.norm0``, ``features.denseblock1.denselayer1.
norm1/conv1/norm2/conv2``, ``features.transition1.norm/conv``, ``features.norm5``, ``classifier``.
Initialisation as torchvision: convs Kaiming-normal (fan_in), BN weight 1 / bias 0, classifier bias 0.

CIFAR DenseNet-BC (Sec. 4)
--------------------------
``densenet_bc100``: depth L = 100, k = 12, three dense blocks of (100 - 4) / 6 = 16 bottleneck layers
on 32x32, 16x16 and 8x8 maps, compression 0.5; the stem is one 3x3 conv with 2k = 24 filters (no
pooling): 769,162 parameters. The global pooling is adaptive, so 28x28 single-channel input
(``in_channels=1``) works as well (28 -> 14 -> 7).

The repeated concatenation makes a block's memory grow with the square of its depth (each layer's
input is a fresh copy); the "memory-efficient" recomputation of the paper's follow-up is not done.
"""
import math
from collections import OrderedDict

from .. import concat
from .. import functional as F
from .. import nn
from ..nn import init
from ..tensor import Tensor

__all__ = ["DenseNet", "densenet121", "densenet161", "densenet169", "densenet201",
           "densenet_cifar", "densenet_bc100"]


class _DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (bn_size * k) - BN-ReLU-conv3x3 (k) on the concatenation of its inputs."""

    def __init__(self, num_input_features, growth_rate, bn_size, drop_rate=0.0):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, padding=1, bias=False)
        self.drop_rate = float(drop_rate)

    def forward(self, inputs):
        x = inputs if isinstance(inputs, Tensor) else concat(list(inputs), axis=1)
        out = self.conv1(self.relu1(self.norm1(x)))
        out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class _DenseBlock(nn.ModuleDict):
    """``denselayer1`` ... ``denselayerN``; returns the input and every layer's output, concatenated."""

    def __init__(self, num_layers, num_input_features, bn_size, growth_rate, drop_rate=0.0):
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}", _DenseLayer(num_input_features + i * growth_rate,
                                                              growth_rate, bn_size, drop_rate))

    def forward(self, init_features):
        features = [init_features]
        for layer in self.values():
            features.append(layer(features))
        return concat(features, axis=1)


class _Transition(nn.Sequential):
    """BN-ReLU-conv1x1-avgpool2x2: halves the size, compresses the channels."""

    def __init__(self, num_input_features, num_output_features):
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(num_input_features, num_output_features, kernel_size=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    """torchvision's DenseNet; ``small_inputs=True`` uses the CIFAR stem (one 3x3 conv, no pooling)."""

    def __init__(self, growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64, bn_size=4,
                 drop_rate=0.0, num_classes=1000, in_channels=3, compression=0.5, small_inputs=False):
        super().__init__()
        if small_inputs:
            stem = [("conv0", nn.Conv2d(in_channels, num_init_features, kernel_size=3, padding=1,
                                        bias=False))]
        else:
            stem = [("conv0", nn.Conv2d(in_channels, num_init_features, kernel_size=7, stride=2,
                                        padding=3, bias=False)),
                    ("norm0", nn.BatchNorm2d(num_init_features)),
                    ("relu0", nn.ReLU()),
                    ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))]
        self.features = nn.Sequential(OrderedDict(stem))

        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}", _DenseBlock(
                num_layers, num_features, bn_size, growth_rate, drop_rate))
            num_features += num_layers * growth_rate
            if i != len(block_config) - 1:
                out_features = int(math.floor(num_features * compression))
                self.features.add_module(f"transition{i + 1}", _Transition(num_features, out_features))
                num_features = out_features
        self.features.add_module("norm5", nn.BatchNorm2d(num_features))
        self.classifier = nn.Linear(num_features, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                init.ones_(m.weight)
                init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                init.zeros_(m.bias)

    def forward(self, x):
        features = self.features(x)
        out = F.relu(features)
        out = F.flatten(F.adaptive_avg_pool2d(out, (1, 1)), 1)
        return self.classifier(out)


def densenet121(num_classes=1000, in_channels=3, **kwargs):
    """DenseNet-121 (k=32): 7,978,856 parameters."""
    return DenseNet(32, (6, 12, 24, 16), 64, num_classes=num_classes, in_channels=in_channels, **kwargs)


def densenet161(num_classes=1000, in_channels=3, **kwargs):
    """DenseNet-161 (k=48): 28,681,000 parameters."""
    return DenseNet(48, (6, 12, 36, 24), 96, num_classes=num_classes, in_channels=in_channels, **kwargs)


def densenet169(num_classes=1000, in_channels=3, **kwargs):
    """DenseNet-169 (k=32): 14,149,480 parameters."""
    return DenseNet(32, (6, 12, 32, 32), 64, num_classes=num_classes, in_channels=in_channels, **kwargs)


def densenet201(num_classes=1000, in_channels=3, **kwargs):
    """DenseNet-201 (k=32): 20,013,928 parameters."""
    return DenseNet(32, (6, 12, 48, 32), 64, num_classes=num_classes, in_channels=in_channels, **kwargs)


def densenet_cifar(depth=100, growth_rate=12, num_classes=10, in_channels=3, compression=0.5, **kwargs):
    """A CIFAR DenseNet-BC of depth L (three blocks of (L - 4) / 6 bottleneck layers)."""
    if (depth - 4) % 6 != 0:
        raise ValueError(f"DenseNet-BC depth must be 6n+4 (40, 100, 190 ...), got {depth}")
    n = (depth - 4) // 6
    return DenseNet(growth_rate, (n, n, n), 2 * growth_rate, num_classes=num_classes,
                    in_channels=in_channels, compression=compression, small_inputs=True, **kwargs)


def densenet_bc100(num_classes=10, in_channels=3, **kwargs):
    """CIFAR DenseNet-BC (L=100, k=12): 769,162 parameters."""
    return densenet_cifar(100, 12, num_classes=num_classes, in_channels=in_channels, **kwargs)
