"""Assignment 3, Q4-Q5: residual blocks, and the backward pass of batch normalisation.

The blocks are ``minicnn.nn.Module``s: their layers are created in ``__init__`` (written, so that
every submission has the same parameters under the same names), and you write ``forward``, which
runs on Tensors with minicnn's operators and functional ops: autograd does the backward pass.
Batch norm's backward pass (Q5), on the other hand, you write by hand, in NumPy.
"""
import numpy as np

import minicnn.functional as F
from minicnn import nn


# ------------------------------------------------------------------------------------------------
# Q4. Residual blocks (He et al. 2016)
# ------------------------------------------------------------------------------------------------

class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm, and a shortcut (ResNet-18/34, and the CIFAR ResNets):

        out = relu(bn1(conv1(x)))
        out = bn2(conv2(out))
        out = relu(out + shortcut(x))        # residual=True
        out = relu(out)                      # residual=False: the "plain" network's block

    ``conv1`` has the block's stride. ``shortcut`` is the identity when the input and output shapes
    agree (stride 1 and ``in_channels == out_channels``), otherwise a 1x1 convolution with that
    stride followed by batch norm (the "projection shortcut", option B of the paper).
    """

    def __init__(self, in_channels, out_channels, stride=1, residual=True):
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = None
        # BEGIN SOLUTION (hint: F.relu; tensors add with +; only add the shortcut when self.residual)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + self.shortcut(x)
        out = F.relu(out)
        # END SOLUTION
        return out


class Bottleneck(nn.Module):
    """The bottleneck block of ResNet-50/101/152: 1x1 (reduce to ``width``), 3x3 (with the
    stride), 1x1 (expand to ``4 * width``), each followed by batch norm, ReLU after the first two;
    then the shortcut is added and a last ReLU applied:

        out = relu(bn1(conv1(x)))
        out = relu(bn2(conv2(out)))
        out = bn3(conv3(out))
        out = relu(out + shortcut(x))

    The shortcut is as in :class:`BasicBlock` (identity, or 1x1 convolution + batch norm).
    """
    expansion = 4

    def __init__(self, in_channels, width, stride=1):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = None
        # BEGIN SOLUTION (hint: three conv-bn pairs, then the same ending as the basic block)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = F.relu(out + self.shortcut(x))
        # END SOLUTION
        return out


# ------------------------------------------------------------------------------------------------
# Q5. Batch normalisation's backward pass
# ------------------------------------------------------------------------------------------------

def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Batch norm in training mode on ``x`` of shape (N, D): each of the D features is normalised
    with the mean and variance of the batch, then scaled by ``gamma`` and shifted by ``beta``
    (both (D,)). (For images (N, C, H, W), the same with the N * H * W values of a channel as the
    batch: move the channel axis last and reshape to (N * H * W, C).)

    Returns ``(out, cache)``.
    """
    mean = x.mean(axis=0)
    var = x.var(axis=0)                       # the biased variance, as in the paper and PyTorch
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean) * inv_std
    out = gamma * x_hat + beta
    cache = (x_hat, gamma, inv_std)
    return out, cache


def batchnorm_backward(dout, cache):
    """Backward pass of :func:`batchnorm_forward`: returns ``(dx, dgamma, dbeta)``.

    Careful: every output of a feature depends on every input of that feature, through the batch
    mean and variance. Derive it on paper first (a computation graph helps), then simplify: the
    whole ``dx`` fits in one line of NumPy.
    """
    x_hat, gamma, inv_std = cache
    dx = dgamma = dbeta = None
    # BEGIN SOLUTION (hint: dbeta and dgamma are sums over the batch; dx has three paths: through x_hat directly, through the mean, through the variance)
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    dx = inv_std * (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0))
    # END SOLUTION
    return dx, dgamma, dbeta
