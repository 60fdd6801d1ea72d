"""Assignment 3, Q4-Q7: residual blocks, batch normalisation (backward pass; training and test
mode with running averages) and the dense block of DenseNet.

The blocks are ``minicnn.nn.Module``s: their layers are created in ``__init__`` (written, so that
every submission has the same parameters under the same names), and you write ``forward``, which
runs on Tensors with minicnn's operators and functional ops: autograd does the backward pass.
Batch norm (Q5, Q6), on the other hand, you write by hand, in NumPy.
"""
import numpy as np

import minicnn as mc
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
# Q5-Q6. Batch normalisation: the backward pass; training and test mode
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


def batchnorm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Batch norm as a layer uses it, on ``x`` of shape (N, D): returns ``(out, running_mean,
    running_var)``, the last two the running averages *after* this call (new arrays; the ones
    passed in are not changed).

    ``training=True``: ``out`` is :func:`batchnorm_forward`'s (the batch's mean and biased
    variance), and the running averages move towards this batch's statistics by ``momentum``
    (PyTorch's rule)::

        running_mean = (1 - momentum) * running_mean + momentum * batch mean
        running_var  = (1 - momentum) * running_var  + momentum * batch variance * N / (N - 1)

    the running variance taking the *unbiased* batch variance (divided by N - 1, not N).

    ``training=False`` (test mode): ``out`` normalises with ``running_mean`` and ``running_var``
    instead of the batch's statistics, so each example's output depends on that example alone;
    the running averages are returned unchanged.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"batchnorm: expected x of shape (N, D), got shape {x.shape}")
    if training and len(x) < 2:
        raise ValueError(f"batchnorm: training mode needs at least 2 examples (a variance), got "
                         f"x of shape {x.shape}")
    out = None
    # BEGIN SOLUTION (hint: training reuses batchnorm_forward; np.var has a ddof argument)
    if training:
        out, _ = batchnorm_forward(x, gamma, beta, eps)
        running_mean = (1 - momentum) * running_mean + momentum * x.mean(axis=0)
        running_var = (1 - momentum) * running_var + momentum * x.var(axis=0, ddof=1)
    else:
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
    # END SOLUTION
    return out, running_mean, running_var


# ------------------------------------------------------------------------------------------------
# Q7. The dense block of DenseNet (Huang, Liu, van der Maaten & Weinberger 2017)
# ------------------------------------------------------------------------------------------------

class DenseLayer(nn.Module):
    """One layer of a dense block, DenseNet-B's "bottleneck" layer, pre-activation (batch norm and
    ReLU *before* each convolution)::

        out = conv1(relu(norm1(x)))          # 1x1: in_channels -> bn_size * growth_rate
        out = conv2(relu(norm2(out)))        # 3x3, padding 1: -> growth_rate

    It returns only its ``growth_rate`` *new* feature maps; the block concatenates them with its
    input. (The layer names are those of ``minicnn.models.densenet`` and torchvision.)
    """

    def __init__(self, in_channels, growth_rate, bn_size=4):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, x):
        out = None
        # BEGIN SOLUTION (hint: two lines, the docstring's formulas)
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        # END SOLUTION
        return out


class DenseBlock(nn.Module):
    """``num_layers`` dense layers; layer i (from 0) sees the block's input *and* the outputs of
    all the layers before it, concatenated along the channels, so it has
    ``in_channels + i * growth_rate`` input channels::

        features = [x]
        for each layer:  features.append(layer(concatenation of features))
        out = concatenation of features      # in_channels + num_layers * growth_rate channels

    The block's input comes out unchanged in the first ``in_channels`` channels of its output.
    ``mc.concat(list_of_tensors, axis=1)`` concatenates along the channels (autograd included).
    """

    def __init__(self, num_layers, in_channels, growth_rate, bn_size=4):
        super().__init__()
        self.layers = nn.ModuleList([DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size)
                                     for i in range(num_layers)])
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x):
        out = None
        # BEGIN SOLUTION (hint: a list of the feature maps so far; concatenate it before each layer and at the end)
        features = [x]
        for layer in self.layers:
            features.append(layer(mc.concat(features, axis=1)))
        out = mc.concat(features, axis=1)
        # END SOLUTION
        return out
