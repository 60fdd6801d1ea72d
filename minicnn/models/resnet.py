"""ResNets (He, Zhang, Ren & Sun 2016, "Deep Residual Learning for Image Recognition").

ImageNet ResNets (Table 1), in torchvision's layout
---------------------------------------------------
    stage    output (224 input)  18              34              50 / 101 / 152
    conv1    64x112x112          7x7, 64, stride 2 (+ BN, ReLU), then 3x3 max-pool stride 2
    layer1   56x56               [3x3 64, 3x3 64] x2  ... x3     [1x1 64, 3x3 64, 1x1 256] x3 / x3 / x3
    layer2   28x28               [3x3 128] x2 x2      ... x4     [1x1 128, 3x3 128, 1x1 512] x4 / x4 / x8
    layer3   14x14               [3x3 256] x2 x2      ... x6     [1x1 256, 3x3 256, 1x1 1024] x6 / x23 / x36
    layer4   7x7                 [3x3 512] x2 x2      ... x3     [1x1 512, 3x3 512, 1x1 2048] x3 / x3 / x3
             1x1                 global average pool, fc 1000
    params                       11,689,512      21,797,672      25,557,032 / 44,549,160 / 60,192,808

Module names, state-dict keys and shapes equal torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer1.0.downsample.0``/``.1``, ``fc`` ...), so its weights load unchanged. As torchvision (the "v1.5"
variant), a ``Bottleneck`` that downsamples puts the stride on its 3x3 conv, not on the first 1x1.
A block whose input and output shapes differ gets a projection shortcut (1x1 conv with stride + BN,
"option B"); the others add the input unchanged. Initialisation as torchvision: convs Kaiming-normal
(fan_out, ReLU gain), batch norm weight 1 / bias 0 (``zero_init_residual=True`` zeroes the last BN of
each block so that every block starts as the identity), fc PyTorch's default.

CIFAR ResNets (Sec. 4.2) and their plain twins
----------------------------------------------
    stage      output (32x32 input)   layers
    conv1      16x32x32               3x3, 16 (+ BN, ReLU)
    layer1     16x32x32               [3x3 16, 3x3 16] x n
    layer2     32x16x16               [3x3 32, 3x3 32] x n   (first conv stride 2)
    layer3     64x8x8                 [3x3 64, 3x3 64] x n   (first conv stride 2)
               64                     global average pool, fc 10
    depth 6n+2:  resnet20 (n=3) 269,722   resnet32 464,154   resnet44 658,586
                 resnet56 853,018         resnet110 (n=18) 1,727,962

The shortcuts are "option A": parameter-free identity. Where a stage halves the size and doubles the
width, the shortcut takes every other pixel (``x[:, :, ::2, ::2]``) and pads the new channels with
zeros. ``plain20`` ... ``plain110`` are the same networks without shortcuts (the paper's Fig. 6
comparison: deeper plain nets train *worse*), so their parameter counts are identical.
The global average pooling is adaptive, so 28x28 single-channel input (Fashion-MNIST, with
``in_channels=1``) goes through unchanged (28 -> 14 -> 7 -> 1).
"""
from .. import concat
from .. import functional as F
from .. import nn
from ..backend import get_array_module
from ..nn import init
from ..tensor import Tensor

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "conv3x3", "conv1x1",
           "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
           "CifarResNet", "CifarBasicBlock", "resnet_cifar",
           "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
           "plain20", "plain32", "plain44", "plain56", "plain110"]


def conv3x3(in_planes, out_planes, stride=1, groups=1):
    """3x3 convolution with padding 1, no bias (batch norm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, groups=groups,
                     bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64):
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 (reduce) -> 3x3 (stride here, torchvision v1.5) -> 1x1 (expand x4), plus the shortcut."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ResNet: ``block`` is BasicBlock or Bottleneck, ``layers`` the blocks per stage."""

    def __init__(self, block, layers, num_classes=1000, in_channels=3, zero_init_residual=False,
                 groups=1, width_per_group=64):
        super().__init__()
        self.inplanes = 64
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                init.ones_(m.weight)
                init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    init.zeros_(m.bn2.weight)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups, base_width=self.base_width))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = F.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet18(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-18: 11,689,512 parameters."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, **kwargs)


def resnet34(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-34: 21,797,672 parameters."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, **kwargs)


def resnet50(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-50: 25,557,032 parameters."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, **kwargs)


def resnet101(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-101: 44,549,160 parameters."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes, in_channels, **kwargs)


def resnet152(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-152: 60,192,808 parameters."""
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes, in_channels, **kwargs)


# -- CIFAR ---------------------------------------------------------------------------------------
def _identity_shortcut_a(x, planes):
    """Option A: subsample by 2 (every other pixel) and zero-pad the channels up to ``planes``."""
    x = x[:, :, ::2, ::2]
    missing = planes - x.shape[1]
    before, after = missing // 2, missing - missing // 2
    xp = get_array_module(x.data)
    n, _, h, w = x.shape
    parts = [Tensor(xp.zeros((n, before, h, w), dtype=x.dtype))] if before else []
    parts.append(x)
    if after:
        parts.append(Tensor(xp.zeros((n, after, h, w), dtype=x.dtype)))
    return concat(parts, axis=1)


class CifarBasicBlock(nn.Module):
    """Two 3x3 convs with an option-A identity shortcut (``shortcut=False``: a plain block)."""
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, shortcut=True):
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.shortcut = shortcut
        self.planes = planes
        self.reshape_shortcut = stride != 1 or in_planes != planes

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut:
            out = out + (_identity_shortcut_a(x, self.planes) if self.reshape_shortcut else x)
        return self.relu(out)


class CifarResNet(nn.Module):
    """The 6n+2-layer CIFAR ResNet (``shortcut=False``: the plain network of the same depth)."""

    def __init__(self, depth=20, num_classes=10, in_channels=3, shortcut=True, widths=(16, 32, 64)):
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56, 110 ...), got {depth}")
        n = (depth - 2) // 6
        self.in_planes = widths[0]
        self.conv1 = conv3x3(in_channels, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.layer1 = self._make_layer(widths[0], n, 1, shortcut)
        self.layer2 = self._make_layer(widths[1], n, 2, shortcut)
        self.layer3 = self._make_layer(widths[2], n, 2, shortcut)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[2], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                init.ones_(m.weight)
                init.zeros_(m.bias)

    def _make_layer(self, planes, blocks, stride, shortcut):
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(CifarBasicBlock(self.in_planes, planes, s, shortcut))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet_cifar(depth, num_classes=10, in_channels=3, shortcut=True, **kwargs):
    """A CIFAR ResNet of any depth 6n+2 (``shortcut=False``: its plain twin)."""
    return CifarResNet(depth, num_classes, in_channels, shortcut, **kwargs)


def resnet20(num_classes=10, in_channels=3, **kwargs):
    """CIFAR ResNet-20 (n=3): 269,722 parameters."""
    return CifarResNet(20, num_classes, in_channels, True, **kwargs)


def resnet32(num_classes=10, in_channels=3, **kwargs):
    """CIFAR ResNet-32 (n=5): 464,154 parameters."""
    return CifarResNet(32, num_classes, in_channels, True, **kwargs)


def resnet44(num_classes=10, in_channels=3, **kwargs):
    """CIFAR ResNet-44 (n=7): 658,586 parameters."""
    return CifarResNet(44, num_classes, in_channels, True, **kwargs)


def resnet56(num_classes=10, in_channels=3, **kwargs):
    """CIFAR ResNet-56 (n=9): 853,018 parameters."""
    return CifarResNet(56, num_classes, in_channels, True, **kwargs)


def resnet110(num_classes=10, in_channels=3, **kwargs):
    """CIFAR ResNet-110 (n=18): 1,727,962 parameters."""
    return CifarResNet(110, num_classes, in_channels, True, **kwargs)


def plain20(num_classes=10, in_channels=3, **kwargs):
    """Plain 20-layer CIFAR network (ResNet-20 without shortcuts): 269,722 parameters."""
    return CifarResNet(20, num_classes, in_channels, False, **kwargs)


def plain32(num_classes=10, in_channels=3, **kwargs):
    """Plain 32-layer CIFAR network: 464,154 parameters."""
    return CifarResNet(32, num_classes, in_channels, False, **kwargs)


def plain44(num_classes=10, in_channels=3, **kwargs):
    """Plain 44-layer CIFAR network: 658,586 parameters."""
    return CifarResNet(44, num_classes, in_channels, False, **kwargs)


def plain56(num_classes=10, in_channels=3, **kwargs):
    """Plain 56-layer CIFAR network: 853,018 parameters."""
    return CifarResNet(56, num_classes, in_channels, False, **kwargs)


def plain110(num_classes=10, in_channels=3, **kwargs):
    """Plain 110-layer CIFAR network: 1,727,962 parameters."""
    return CifarResNet(110, num_classes, in_channels, False, **kwargs)
