"""GoogLeNet / Inception v1 (Szegedy et al. 2015, "Going Deeper with Convolutions"), as published.

    layer            size/stride  output (224x224x3)  #1x1 #3x3red #3x3 #5x5red #5x5 pool proj
    conv1 7x7        7x7/2        64x112x112
    max pool         3x3/2        64x56x56        (then LRN)
    conv2 1x1, 3x3   1x1, 3x3/1   192x56x56       (LRN, then)
    max pool         3x3/2        192x28x28
    inception (3a)                256x28x28       64    96    128   16     32     32
    inception (3b)                480x28x28       128   128   192   32     96     64
    max pool         3x3/2        480x14x14
    inception (4a)                512x14x14       192   96    208   16     48     64   -> aux1
    inception (4b)                512x14x14       160   112   224   24     64     64
    inception (4c)                512x14x14       128   128   256   24     64     64
    inception (4d)                528x14x14       112   144   288   32     64     64   -> aux2
    inception (4e)                832x14x14       256   160   320   32     128    128
    max pool         3x3/2        832x7x7
    inception (5a)                832x7x7         256   160   320   32     128    128
    inception (5b)                1024x7x7        384   192   384   48     128    128
    avg pool         7x7/1        1024x1x1
    dropout (40%), linear         1000                  6,998,552 parameters (13,378,280 with aux)

"As published" means: the 5x5 branches (torchvision's GoogLeNet uses 3x3 there by mistake), LRN
after the first pooling and after conv2 (Caffe's constants: size 5, alpha 1e-4 divided by size as in
``nn.LocalResponseNorm``, beta 0.75, k 1), max-pooling rounding up (``ceil_mode=True``, Caffe's
rule: 112 -> 56 -> 28 -> 14 -> 7), every conv with a bias and a ReLU, no batch norm. The final
7x7 average pooling is written ``AdaptiveAvgPool2d(1)`` (the same at 224x224 input).

Auxiliary classifiers (training only, their losses weighted by 0.3): 5x5 average pooling with
stride 3 (14x14 -> 4x4), a 1x1 conv with 128 filters + ReLU, FC 1024 + ReLU, dropout 70%, FC to the
classes. With ``aux_logits=True`` the model returns ``(logits, aux1, aux2)`` in training mode and the
logits alone in eval mode; :func:`googlenet_loss` combines them.

Initialisation as the published Caffe model (bvlc_googlenet): weights Xavier-uniform with fan_in
(U(-sqrt(3/fan_in), sqrt(3/fan_in))), conv biases 0.2, linear biases 0.

The Inception module, naive vs bottleneck
----------------------------------------
``Inception(..., naive=True)`` drops the 1x1 reductions: 1x1, 3x3 and 5x5 convs straight on the
input, and a bare 3x3 max-pool. For the lecture's example -- a 28x28x256 input, 128 1x1, 192 3x3 and
96 5x5 filters -- :func:`inception_comparison` builds both and returns their summaries' totals:

    naive       1x1x256x128 + 3x3x256x192 + 5x5x256x96 (+ biases)         = 1,089,952 params
                                                                  854 M MACs, output 672x28x28
    bottleneck  64-filter 1x1 reductions before the 3x3 and the 5x5,
                1x1x256x128 + 1x1x256x64 + 3x3x64x192 + 1x1x256x64 + 5x5x64x96 (+ biases)
                                                                    = 330,272 params
                                                                  259 M MACs, output 672x28x28

(the same output, a 3.3x smaller and cheaper module). GoogLeNet's modules also project the pooling
branch with a 1x1 conv (``pool_proj``), which keeps the depth from piling up: with a 64-filter
projection the example module has 346,720 parameters and a 480-channel output.
"""
from .. import concat
from .. import functional as F
from .. import nn
from ..nn import init

__all__ = ["GoogLeNet", "Inception", "InceptionAux", "BasicConv2d", "googlenet", "googlenet_loss",
           "inception_comparison", "INCEPTION_CFG"]

# The paper's Table 1: name -> (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj);
# each module's input depth is the previous module's output depth.
INCEPTION_CFG = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}

CAFFE_LRN = dict(size=5, alpha=1e-4, beta=0.75, k=1.0)


class BasicConv2d(nn.Module):
    """Conv (with bias) followed by ReLU: the unit GoogLeNet is built of."""

    def __init__(self, in_channels, out_channels, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, **kwargs)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv(x))


class Inception(nn.Module):
    """Four parallel branches concatenated along channels (output depth: ch1x1 + ch3x3 + ch5x5 +
    pool_proj, or + in_channels when the pool branch has no projection).

    ``naive=True``: no 1x1 reductions (``ch3x3red``, ``ch5x5red`` and ``pool_proj`` are ignored and
    may be None). ``pool_proj`` 0 or None: the pool branch is the bare max-pool.
    """

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, naive=False):
        super().__init__()
        self.naive = naive
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        if naive:
            self.branch2 = BasicConv2d(in_channels, ch3x3, kernel_size=3, padding=1)
            self.branch3 = BasicConv2d(in_channels, ch5x5, kernel_size=5, padding=2)
            self.branch4 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True)
            self.out_channels = ch1x1 + ch3x3 + ch5x5 + in_channels
            return
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=5, padding=2))
        pool = nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True)
        if pool_proj:
            self.branch4 = nn.Sequential(pool, BasicConv2d(in_channels, pool_proj, kernel_size=1))
        else:
            self.branch4 = pool
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + (pool_proj or in_channels)

    def forward(self, x):
        return concat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], axis=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier on 4a / 4d: avg-pool 5x5/3, 1x1 conv 128, FC 1024, dropout 0.7, FC."""

    def __init__(self, in_channels, num_classes, conv_channels=128, hidden=1024, dropout=0.7):
        super().__init__()
        self.avgpool = nn.AvgPool2d(kernel_size=5, stride=3)
        self.conv = BasicConv2d(in_channels, conv_channels, kernel_size=1)
        self.fc1 = nn.Linear(conv_channels * 4 * 4, hidden)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(p=dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = self.conv(self.avgpool(x))              # 4x4 at 224x224 input
        x = self.relu(self.fc1(F.flatten(x, 1)))
        return self.fc2(self.dropout(x))


class GoogLeNet(nn.Module):
    """``width`` scales every channel count (1.0: the paper's; tests use small values)."""

    def __init__(self, num_classes=1000, in_channels=3, aux_logits=False, dropout=0.4,
                 dropout_aux=0.7, init_weights=True, width=1.0):
        super().__init__()
        self.aux_logits = aux_logits

        def w(n):
            return max(1, int(round(n * width)))

        self.conv1 = BasicConv2d(in_channels, w(64), kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.lrn1 = nn.LocalResponseNorm(**CAFFE_LRN)
        self.conv2 = BasicConv2d(w(64), w(64), kernel_size=1)
        self.conv3 = BasicConv2d(w(64), w(192), kernel_size=3, padding=1)
        self.lrn2 = nn.LocalResponseNorm(**CAFFE_LRN)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        channels = w(192)
        depth_at = {}
        for name, cfg in INCEPTION_CFG.items():
            module = Inception(channels, *[w(c) for c in cfg])
            setattr(self, "inception" + name, module)
            channels = module.out_channels
            depth_at[name] = channels
            if name == "3b":
                self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            elif name == "4e":
                self.maxpool4 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        if aux_logits:
            self.aux1 = InceptionAux(depth_at["4a"], num_classes, w(128), w(1024), dropout_aux)
            self.aux2 = InceptionAux(depth_at["4d"], num_classes, w(128), w(1024), dropout_aux)
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(channels, num_classes)
        if init_weights:
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="linear")
                    init.constant_(m.bias, 0.2 if isinstance(m, nn.Conv2d) else 0.0)

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))            # 64x56x56
        x = self.lrn1(x)
        x = self.conv3(self.conv2(x))               # 192x56x56
        x = self.maxpool2(self.lrn2(x))             # 192x28x28
        x = self.inception3b(self.inception3a(x))   # 480x28x28
        x = self.maxpool3(x)                        # 480x14x14
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux_logits and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux_logits and self.training else None
        x = self.maxpool4(self.inception4e(x))      # 832x7x7
        x = self.inception5b(self.inception5a(x))   # 1024x7x7
        x = F.flatten(self.avgpool(x), 1)
        x = self.fc(self.dropout(x))
        if self.aux_logits and self.training:
            return x, aux1, aux2
        return x


def googlenet(num_classes=1000, in_channels=3, aux_logits=False, **kwargs):
    """GoogLeNet for 224x224 input: 6,998,552 parameters (13,378,280 with ``aux_logits=True``)."""
    return GoogLeNet(num_classes=num_classes, in_channels=in_channels, aux_logits=aux_logits, **kwargs)


def googlenet_loss(outputs, target, aux_weight=0.3):
    """The paper's training loss: cross-entropy of the logits + 0.3 x each auxiliary head's.

    ``outputs`` is what the model returned: ``(logits, aux1, aux2)`` in training mode with auxiliary
    heads, or the logits alone (then this is plain cross-entropy).
    """
    if isinstance(outputs, (tuple, list)):
        logits, *aux = outputs
        loss = F.cross_entropy(logits, target)
        for a in aux:
            if a is not None:
                loss = loss + aux_weight * F.cross_entropy(a, target)
        return loss
    return F.cross_entropy(outputs, target)


def inception_comparison(input_shape=(256, 28, 28), ch1x1=128, ch3x3=192, ch5x5=96, reduce=64,
                         pool_proj=0, print_fn=None):
    """The lecture's naive vs bottleneck Inception module on a 28x28x256 input (see module doc).

    Returns ``{"naive": totals, "bottleneck": totals}`` with totals ``{"params", "macs",
    "output_shape"}`` taken from :func:`minicnn.summary.summary` (``print_fn=print`` shows the tables).
    """
    from ..summary import summary
    in_ch = input_shape[0]
    modules = {
        "naive": Inception(in_ch, ch1x1, None, ch3x3, None, ch5x5, None, naive=True),
        "bottleneck": Inception(in_ch, ch1x1, reduce, ch3x3, reduce, ch5x5, pool_proj),
    }
    result = {}
    for name, module in modules.items():
        if print_fn is not None:
            print_fn(f"\n{name} Inception module")
        rows = summary(module, input_shape, print_fn=print_fn)
        result[name] = {"params": sum(p.numel() for p in module.parameters()),
                        "macs": sum(r["macs"] for r in rows),
                        "output_shape": (module.out_channels,) + tuple(input_shape[1:])}
    return result
