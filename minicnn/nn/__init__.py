"""Layers: ``Module``s that hold parameters and call :mod:`minicnn.functional` for the math."""
from . import functional, init
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential

# convolution and pooling
from .conv import Conv2d
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
# normalization, activations, dropout, linear, losses
from .activation import LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .dropout import Dropout
from .linear import Flatten, Identity, Linear
from .loss import CrossEntropyLoss, NLLLoss
from .normalization import BatchNorm1d, BatchNorm2d, LocalResponseNorm
from .sync_batchnorm import SyncBatchNorm
# several processes (minicnn.distributed): nn.parallel.DistributedDataParallel
from . import parallel
# nn.utils.clip_grad_norm_, clip_grad_value_ (as torch.nn.utils)
from . import utils
