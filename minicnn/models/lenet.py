"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998), sized for 28x28 single-channel images.

    layer   paper              here (28x28 input)                     output     params
    C1      conv 6 @ 5x5       Conv2d(1, 6, 5, padding=2) + tanh      6x28x28       156
    S2      subsample 2x2      AvgPool2d(2)                           6x14x14         0
    C3      conv 16 @ 5x5      Conv2d(6, 16, 5) + tanh               16x10x10     2,416
    S4      subsample 2x2      AvgPool2d(2)                          16x5x5           0
    C5      conv 120 @ 5x5     Conv2d(16, 120, 5) + tanh            120x1x1     48,120
    F6      full 84            Linear(120, 84) + tanh                      84    10,164
    output  10 RBF units       Linear(84, 10)                              10       850
                                                                     total      61,706

The paper fed 32x32 images (MNIST digits padded by 2 pixels); padding C1 by 2 does the same for a
28x28 input. Three simplifications, all standard in re-implementations: C3 connects every S2 map
instead of the paper's sparse table (2,416 instead of 1,516 parameters), S2/S4 are plain averages
(no trainable coefficient and bias), and the output is a linear layer (softmax/cross-entropy)
instead of Euclidean RBF units.
"""
from .. import functional as F
from .. import nn

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Module):
    def __init__(self, num_classes=10, in_channels=1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2), nn.Tanh(),   # C1
            nn.AvgPool2d(kernel_size=2, stride=2),                            # S2
            nn.Conv2d(6, 16, kernel_size=5), nn.Tanh(),                       # C3
            nn.AvgPool2d(kernel_size=2, stride=2),                            # S4
            nn.Conv2d(16, 120, kernel_size=5), nn.Tanh(),                     # C5
        )
        self.classifier = nn.Sequential(
            nn.Linear(120, 84), nn.Tanh(),                                    # F6
            nn.Linear(84, num_classes),                                       # output
        )

    def forward(self, x):
        x = self.features(x)
        x = F.flatten(x, 1)
        return self.classifier(x)


def lenet5(num_classes=10, in_channels=1):
    """LeNet-5 for 28x28 single-channel images: 61,706 parameters."""
    return LeNet5(num_classes=num_classes, in_channels=in_channels)
