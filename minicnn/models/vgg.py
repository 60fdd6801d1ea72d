"""VGG (Simonyan & Zisserman 2015), configurations A, B, D, E of Table 1, in torchvision's layout.

Every conv is 3x3 with stride 1 and padding 1 (the spatial size is kept); "M" is 2x2 max-pooling
with stride 2 (the size halves). Two stacked 3x3 convs see a 5x5 window, three see 7x7, with fewer
parameters (3 * 9 C^2 = 27 C^2 against 49 C^2) and more non-linearities.

    config  A (vgg11)   B (vgg13)   D (vgg16)   E (vgg19)     output at 224x224 input
            64          64 64       64 64       64 64         64x224x224
            M           M           M           M             64x112x112
            128         128 128     128 128     128 128       128x112x112
            M           M           M           M             128x56x56
            256 256     256 256     256 256 256 256 x4        256x56x56
            M           M           M           M             256x28x28
            512 512     512 512     512 x3      512 x4        512x28x28
            M           M           M           M             512x14x14
            512 512     512 512     512 x3      512 x4        512x14x14
            M           M           M           M             512x7x7
    FC 4096 - ReLU - dropout - FC 4096 - ReLU - dropout - FC 1000
    params  132,863,336 133,047,848 138,357,544 143,667,240  (``_bn``: + 4 per conv channel, e.g.
                                                               vgg16_bn 138,365,992)

Module layout and state-dict keys equal torchvision's (``features.<i>``, ``avgpool``,
``classifier.<i>``), so torchvision's weights load as they are. ``avgpool`` is
``AdaptiveAvgPool2d((7, 7))``: the identity at 224x224 input, and what lets other sizes through.
The ``_bn`` variants put BatchNorm2d between every conv and its ReLU (not in the paper; torchvision's).

Initialisation as torchvision: convs Kaiming-normal (fan_out, ReLU gain), biases 0; batch norm
weight 1, bias 0; linear layers N(0, 0.01^2), biases 0.
"""
from .. import functional as F
from .. import nn
from ..nn import init

__all__ = ["VGG", "make_layers", "cfgs", "vgg11", "vgg13", "vgg16", "vgg19",
           "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]

cfgs = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


def make_layers(cfg, batch_norm=False, in_channels=3):
    """The ``features`` Sequential of a configuration list (ints: 3x3 conv widths; "M": max-pool)."""
    layers = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU())
            in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, features, num_classes=1000, init_weights=True, dropout=0.5, hidden=4096):
        super().__init__()
        self.features = features
        channels = [m.weight.shape[0] for m in features if isinstance(m, nn.Conv2d)][-1]
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(channels * 7 * 7, hidden),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    init.ones_(m.weight)
                    init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    init.normal_(m.weight, 0.0, 0.01)
                    init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = F.flatten(x, 1)
        return self.classifier(x)


def _vgg(cfg, batch_norm, num_classes=1000, in_channels=3, **kwargs):
    return VGG(make_layers(cfgs[cfg], batch_norm=batch_norm, in_channels=in_channels),
               num_classes=num_classes, **kwargs)


def vgg11(num_classes=1000, in_channels=3, **kwargs):
    """VGG-11 (config A): 132,863,336 parameters."""
    return _vgg("A", False, num_classes, in_channels, **kwargs)


def vgg13(num_classes=1000, in_channels=3, **kwargs):
    """VGG-13 (config B): 133,047,848 parameters."""
    return _vgg("B", False, num_classes, in_channels, **kwargs)


def vgg16(num_classes=1000, in_channels=3, **kwargs):
    """VGG-16 (config D): 138,357,544 parameters."""
    return _vgg("D", False, num_classes, in_channels, **kwargs)


def vgg19(num_classes=1000, in_channels=3, **kwargs):
    """VGG-19 (config E): 143,667,240 parameters."""
    return _vgg("E", False, num_classes, in_channels, **kwargs)


def vgg11_bn(num_classes=1000, in_channels=3, **kwargs):
    """VGG-11 with batch norm: 132,868,840 parameters."""
    return _vgg("A", True, num_classes, in_channels, **kwargs)


def vgg13_bn(num_classes=1000, in_channels=3, **kwargs):
    """VGG-13 with batch norm: 133,053,736 parameters."""
    return _vgg("B", True, num_classes, in_channels, **kwargs)


def vgg16_bn(num_classes=1000, in_channels=3, **kwargs):
    """VGG-16 with batch norm: 138,365,992 parameters."""
    return _vgg("D", True, num_classes, in_channels, **kwargs)


def vgg19_bn(num_classes=1000, in_channels=3, **kwargs):
    """VGG-19 with batch norm: 143,678,248 parameters."""
    return _vgg("E", True, num_classes, in_channels, **kwargs)
