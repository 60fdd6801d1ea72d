"""The architectures of the lecture, one file per family, each reading like its paper's table.

    lenet.py      lenet5                                    LeCun et al. 1998
    alexnet.py    alexnet (groups=2: the two-GPU split)     Krizhevsky et al. 2012
    zfnet.py      zfnet                                     Zeiler & Fergus 2014
    vgg.py        vgg11/13/16/19 (+ _bn)                    Simonyan & Zisserman 2015
    googlenet.py  googlenet, Inception, googlenet_loss      Szegedy et al. 2015
    resnet.py     resnet18...152 (ImageNet), resnet20...110 and plain20...110 (CIFAR)   He et al. 2016
    densenet.py   densenet121/161/169/201, densenet_bc100   Huang et al. 2017
    fashion.py    fashion_cnn, the default model of ``minicnn train``

Every constructor takes ``num_classes`` (1000 for the ImageNet models, 10 for the CIFAR/MNIST-size
ones) and ``in_channels`` (3; 1 for ``lenet5`` and ``fashion_cnn``). ``get(name, **kwargs)`` builds
one by name, ``names()`` lists them. ``convert.convert_torch`` turns torchvision weights into ``.npz``.
"""
import difflib

from .alexnet import AlexNet, alexnet
from .densenet import (DenseNet, densenet121, densenet161, densenet169, densenet201, densenet_bc100,
                       densenet_cifar)
from .fashion import FashionCNN, fashion_cnn
from .googlenet import GoogLeNet, Inception, googlenet, googlenet_loss, inception_comparison
from .lenet import LeNet5, lenet5
from .resnet import (BasicBlock, Bottleneck, CifarResNet, ResNet, plain20, plain32, plain44, plain56,
                     plain110, resnet18, resnet20, resnet32, resnet34, resnet44, resnet50, resnet56,
                     resnet101, resnet110, resnet152, resnet_cifar)
from .vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn
from .zfnet import ZFNet, zfnet

default_model_name = "fashion_cnn"

_REGISTRY = {f.__name__: f for f in [
    fashion_cnn, lenet5, alexnet, zfnet,
    vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn, vgg19_bn,
    googlenet,
    resnet18, resnet34, resnet50, resnet101, resnet152,
    resnet20, resnet32, resnet44, resnet56, resnet110,
    plain20, plain32, plain44, plain56, plain110,
    densenet121, densenet161, densenet169, densenet201, densenet_bc100,
]}

# The input each model was designed for (channels, height, width): what ``minicnn summary`` uses.
_INPUT_SIZE = {"fashion_cnn": (1, 28, 28), "lenet5": (1, 28, 28), "alexnet": (3, 227, 227)}
_CIFAR = {"resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "plain20", "plain32",
          "plain44", "plain56", "plain110", "densenet_bc100"}


def names():
    """The names ``get`` accepts, in the order of the lecture."""
    return list(_REGISTRY)


def _key(name):
    """``"ResNet-20"`` -> ``"resnet20"``, ``"densenet-bc100"`` -> ``"densenet_bc100"``."""
    key = str(name).lower()
    for candidate in (key, key.replace("-", "_"), key.replace("-", "")):
        if candidate in _REGISTRY:
            return candidate
    close = difflib.get_close_matches(key, names(), n=1)  # "did you mean resnet18?"
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown model {name!r}{hint} (known models: {', '.join(names())})")


def get(name, **kwargs):
    """Build the model called ``name`` (see :func:`names`) with the constructor's ``kwargs``."""
    return _REGISTRY[_key(name)](**kwargs)


def input_size(name, in_channels=None):
    """The canonical input shape ``(C, H, W)`` of a model: 227 AlexNet, 224 ImageNet, 32 CIFAR, 28 MNIST."""
    key = _key(name)
    shape = _INPUT_SIZE.get(key, (3, 32, 32) if key in _CIFAR else (3, 224, 224))
    return shape if in_channels is None else (in_channels,) + shape[1:]


__all__ = ["names", "get", "input_size", "default_model_name"] + names() + [
    "AlexNet", "ZFNet", "VGG", "GoogLeNet", "Inception", "ResNet", "BasicBlock", "Bottleneck",
    "CifarResNet", "DenseNet", "LeNet5", "FashionCNN", "googlenet_loss", "inception_comparison",
    "resnet_cifar", "densenet_cifar"]
