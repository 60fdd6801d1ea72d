"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), the original two-GPU network.

    layer  filters / units        size, stride, pad   output (227x227x3 input)   params (groups=1)
    conv1  96                     11x11, 4, 0         96x55x55  -> LRN, pool       34,944
    conv2  256                     5x5,  1, 2         256x27x27 -> LRN, pool      614,656  (307,456 split)
    conv3  384                     3x3,  1, 1         384x13x13                   885,120
    conv4  384                     3x3,  1, 1         384x13x13                 1,327,488  (663,936 split)
    conv5  256                     3x3,  1, 1         256x13x13 -> pool         884,992  (442,624 split)
    pool   max 3x3, stride 2 (overlapping)           256x6x6 = 9216
    fc6    4096 (dropout 0.5 before)                  4096                     37,752,832
    fc7    4096 (dropout 0.5 before)                  4096                     16,781,312
    fc8    1000                                       1000                      4,097,000
                                                      total 62,378,344 (groups=2: 60,965,224)

Every conv and hidden FC layer is followed by ReLU. The paper's input is 224x224 in the text but
227x227 makes the arithmetic work ((227 - 11) / 4 + 1 = 55), as the lecture notes.

Local response normalization. The paper (Sec. 3.3) computes

    b_c = a_c / (k + alpha * sum_{c' in window of n around c} a_c'^2) ** beta,
    k = 2, n = 5, alpha = 1e-4, beta = 0.75,

while ``nn.LocalResponseNorm`` (PyTorch's definition) divides ``alpha`` by ``size``. To reproduce
the paper we therefore pass ``alpha = 1e-4 * 5 = 5e-4``: LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2).
It follows the ReLU of conv1 and conv2, before their max-pooling, as in the paper.

Two GPUs. The paper split the network over two GPUs: conv2, conv4 and conv5 only see the feature
maps on their own GPU, i.e. they are grouped convolutions with 2 groups (conv3 and the FC layers
talk across GPUs). ``groups=2`` builds exactly that. ``groups`` may also be a 5-tuple, one per conv
layer: the lecture's per-layer table (conv2 307,456 but conv4 1,327,488 and conv5 884,992) mixes the
two conventions and is reproduced by ``groups=(1, 2, 1, 1, 1)`` (62,071,144 in total).

Initialisation as in the paper (Sec. 5): weights N(0, 0.01^2); biases 1 in conv2, conv4, conv5 and
the hidden FC layers (to give ReLUs positive inputs early), 0 elsewhere.
"""
from .. import functional as F
from .. import nn
from ..nn import init

__all__ = ["AlexNet", "alexnet", "PAPER_LRN"]

# nn.LocalResponseNorm(**PAPER_LRN) is the paper's normalization (alpha scaled by size, see above).
PAPER_LRN = dict(size=5, alpha=1e-4 * 5, beta=0.75, k=2.0)


def _groups_per_conv(groups):
    if isinstance(groups, int):
        return (1, groups, 1, groups, groups)
    groups = tuple(int(g) for g in groups)
    if len(groups) != 5:
        raise ValueError(f"alexnet: groups must be an int or one value per conv layer (5), got {groups}")
    return groups


def fc_head(in_features, hidden, num_classes, dropout):
    """AlexNet's classifier, fc6-fc8 (ZFNet's too): dropout, two hidden ReLU layers, the logits."""
    return nn.Sequential(
        nn.Dropout(p=dropout),
        nn.Linear(in_features, hidden),                                      # fc6
        nn.ReLU(),
        nn.Dropout(p=dropout),
        nn.Linear(hidden, hidden),                                           # fc7
        nn.ReLU(),
        nn.Linear(hidden, num_classes),                                      # fc8
    )


class AlexNet(nn.Module):
    """``widths`` (the five conv layers' filters) and ``hidden`` (FC units) default to the paper's;
    smaller values give the same architecture at a cost a test can afford."""

    def __init__(self, num_classes=1000, in_channels=3, groups=1, widths=(96, 256, 384, 384, 256),
                 hidden=4096, dropout=0.5, init_weights=True):
        super().__init__()
        g1, g2, g3, g4, g5 = _groups_per_conv(groups)
        c1, c2, c3, c4, c5 = widths
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=11, stride=4, groups=g1),   # conv1 -> 55x55
            nn.ReLU(),
            nn.LocalResponseNorm(**PAPER_LRN),
            nn.MaxPool2d(kernel_size=3, stride=2),                           # -> 27x27
            nn.Conv2d(c1, c2, kernel_size=5, padding=2, groups=g2),          # conv2
            nn.ReLU(),
            nn.LocalResponseNorm(**PAPER_LRN),
            nn.MaxPool2d(kernel_size=3, stride=2),                           # -> 13x13
            nn.Conv2d(c2, c3, kernel_size=3, padding=1, groups=g3),          # conv3
            nn.ReLU(),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1, groups=g4),          # conv4
            nn.ReLU(),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1, groups=g5),          # conv5
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),                           # -> 6x6
        )
        self.classifier = fc_head(c5 * 6 * 6, hidden, num_classes, dropout)
        if init_weights:
            self._init_weights()

    def _init_weights(self):
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        fcs = [m for m in self.classifier if isinstance(m, nn.Linear)]
        ones = {id(convs[1]), id(convs[3]), id(convs[4]), id(fcs[0]), id(fcs[1])}
        for m in convs + fcs:
            init.normal_(m.weight, 0.0, 0.01)
            init.constant_(m.bias, 1.0 if id(m) in ones else 0.0)

    def forward(self, x):
        x = self.features(x)
        x = F.flatten(x, 1)
        return self.classifier(x)


def alexnet(num_classes=1000, in_channels=3, groups=1, **kwargs):
    """The 2012 AlexNet for 227x227 input: 62,378,344 parameters (``groups=2``: 60,965,224)."""
    return AlexNet(num_classes=num_classes, in_channels=in_channels, groups=groups, **kwargs)
