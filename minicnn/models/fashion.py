"""``fashion_cnn``: the small default CNN that ``minicnn train`` fits to Fashion-MNIST.

    layer                               output (28x28x1)   params        MACs
    conv 3x3, 16 + BN + ReLU            16x28x28               176     112,896
    max-pool 2x2                        16x14x14
    conv 3x3, 32 + BN + ReLU            32x14x14             4,672     903,168
    max-pool 2x2                        32x7x7 = 1568
    dropout 0.25, FC 128 + BN + ReLU    128                200,960     200,704
    dropout 0.5, FC 10                  10                   1,290       1,280
                                                  total    207,098   1.2 M per image

A VGG-style configuration list (``cfg``: 3x3 conv widths, "M" for 2x2 max-pooling), kept short on
purpose so that an epoch of 60,000 images costs about a minute on a 2-core CPU, while batch norm
(a large learning rate works) and dropout (the wide FC layer does not memorise) take it past 91%.

Measured with ``minicnn train``'s default recipe (SGD + Nesterov 0.9, lr 0.05, weight decay 5e-4,
batch 128, cosine schedule, 8 epochs, seed 0), test accuracy after each epoch, and the forward +
backward time of one epoch on two cores (``taskset -c 0,1``, two BLAS threads):

    cfg                          params   epoch 1  3      5      8       fwd+bwd per epoch
    [16, "M", 32, "M"] default   207,098  87.8   90.5   91.1   91.9%   ~50 s
    [24, "M", 48, "M"]           313,330  88.1   90.8   91.7   92.3%   ~76 s
    [32, "M", 64, "M"]           421,866  88.9   90.8   91.6   92.7%   ~110 s

The epoch times are from before minicnn's thread pool (``minicnn.fast.threads``), on a busy machine;
the default now trains an epoch in about 15 s on the same two cores (91.90% after 8 epochs).

Wider or deeper configurations (``cfg=[32, 32, "M", 64, 64, "M"]``: 19 M MACs per image) gain a
little accuracy for several times the cost. Convs and the hidden FC layer have no bias: the batch
norm right after each has one.
"""
from .. import functional as F
from .. import nn

__all__ = ["FashionCNN", "fashion_cnn", "DEFAULT_CFG"]

DEFAULT_CFG = [16, "M", 32, "M"]


class FashionCNN(nn.Module):
    def __init__(self, num_classes=10, in_channels=1, cfg=None, hidden=128, input_size=28,
                 dropout=(0.25, 0.5)):
        super().__init__()
        layers, channels, side = [], in_channels, input_size
        for v in (DEFAULT_CFG if cfg is None else cfg):
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                side //= 2
            else:
                layers += [nn.Conv2d(channels, v, kernel_size=3, padding=1, bias=False),
                           nn.BatchNorm2d(v), nn.ReLU()]
                channels = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout[0]),
            nn.Linear(channels * side * side, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Dropout(dropout[1]),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        return self.classifier(F.flatten(x, 1))


def fashion_cnn(num_classes=10, in_channels=1, **kwargs):
    """The default model of ``minicnn train`` (Fashion-MNIST, 28x28x1): 207,098 parameters."""
    return FashionCNN(num_classes=num_classes, in_channels=in_channels, **kwargs)
