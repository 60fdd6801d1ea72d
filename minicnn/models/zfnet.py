"""ZFNet (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks"), Fig. 3.

    layer  filters       size, stride    output (224x224x3 input)          params (default)
    conv1  96            7x7, 2 (pad 1)  96x110x110 -> pool 55x55, norm          14,208
    conv2  256           5x5, 2          256x26x26  -> pool 13x13, norm         614,656
    conv3  384 (512)     3x3, 1 (pad 1)  384x13x13                              885,120
    conv4  384 (1024)    3x3, 1 (pad 1)  384x13x13                            1,327,488
    conv5  256 (512)     3x3, 1 (pad 1)  256x13x13  -> pool 6x6               884,992
    fc6    4096 (dropout 0.5 before)                                        37,752,832
    fc7    4096 (dropout 0.5 before)                                        16,781,312
    fc8    1000                                                              4,097,000
                                                                   total  62,357,608

What changed from AlexNet, found by looking at the visualizations: conv1 7x7 with stride 2 instead
of 11x11 with stride 4 (fewer dead and aliased filters), and conv2 stride 2. The pooling is 3x3 with
stride 2, rounding up (``ceil_mode=True``) so that the figure's sizes 110 -> 55 and 26 -> 13 come
out; "contrast normalization across feature maps" is AlexNet's LRN with the AlexNet paper's
constants (see ``alexnet.PAPER_LRN``), after the pooling as in the figure.

``conv345=(512, 1024, 512)`` is the wider model (b) of Table 2, the one the lecture quotes
(the best single model of the paper).

Initialisation as in the paper: weights N(0, 0.01^2), biases 0. (The paper also renormalizes conv
filters whose RMS exceeds 0.1 during training; that is a training-loop detail not done here.)
"""
from .. import functional as F
from .. import nn
from ..nn import init
from .alexnet import PAPER_LRN, fc_head

__all__ = ["ZFNet", "zfnet"]


class ZFNet(nn.Module):
    def __init__(self, num_classes=1000, in_channels=3, conv345=(384, 384, 256), conv12=(96, 256),
                 hidden=4096, dropout=0.5, init_weights=True):
        super().__init__()
        c1, c2 = conv12
        c3, c4, c5 = conv345
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=7, stride=2, padding=1),   # conv1 -> 110x110
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),           # -> 55x55
            nn.LocalResponseNorm(**PAPER_LRN),
            nn.Conv2d(c1, c2, kernel_size=5, stride=2),                      # conv2 -> 26x26
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),           # -> 13x13
            nn.LocalResponseNorm(**PAPER_LRN),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),                     # conv3
            nn.ReLU(),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1),                     # conv4
            nn.ReLU(),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1),                     # conv5
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),           # -> 6x6
        )
        self.classifier = fc_head(c5 * 6 * 6, hidden, num_classes, dropout)
        if init_weights:
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    init.normal_(m.weight, 0.0, 0.01)
                    init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)
        x = F.flatten(x, 1)
        return self.classifier(x)


def zfnet(num_classes=1000, in_channels=3, conv345=(384, 384, 256), **kwargs):
    """ZFNet for 224x224 input: 62,357,608 parameters; ``conv345=(512, 1024, 512)``: the wider model."""
    return ZFNet(num_classes=num_classes, in_channels=in_channels, conv345=conv345, **kwargs)
