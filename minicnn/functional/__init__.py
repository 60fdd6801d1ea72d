"""The math of every layer: one file per op family, each op a ``Function`` with forward/backward.

    conv.py           conv2d (im2col + one GEMM per group), the output-size formula
    pooling.py        max_pool2d, avg_pool2d, adaptive_avg_pool2d
    normalization.py  batch_norm, local_response_norm
    activation.py     relu, tanh, sigmoid
    dropout.py        dropout
    linear.py         linear, flatten
    loss.py           softmax, log_softmax, cross_entropy
    reference.py      plain-loop versions (the teaching code and the tests' oracle)
"""
# == conv / pooling family (owner: conv helper) ==
from .conv import col2im, conv2d, conv_output_size, im2col
from .pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d
# == normalization / activation / dropout / linear / loss family (owner: norm helper) ==
from .activation import relu, sigmoid, tanh
from .dropout import dropout
from .linear import flatten, linear
from .loss import cross_entropy, log_softmax, nll_loss, softmax
from .normalization import batch_norm, local_response_norm
