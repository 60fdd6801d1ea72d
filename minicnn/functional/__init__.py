"""The math of every layer: one readable reference ``Function`` per op family, forward beside backward.

    geometry.py       the output-size formula, (h, w) pairs, padding: shared by conv and pooling
    validation.py     input checks with clear messages, shared by these ops and the nn layers
    conv.py           conv2d: im2col, one GEMM per group, col2im
    pooling.py        max_pool2d, avg_pool2d, adaptive_avg_pool2d (im2col of the windows)
    lrn.py            local_response_norm
    batchnorm.py      batch_norm
    activation.py     relu, tanh, sigmoid
    dropout.py        dropout
    linear.py         linear, flatten
    loss.py           softmax, log_softmax, cross_entropy, nll_loss
    reference.py      plain-loop versions (the teaching code and the tests' oracle); pooling loops
                      in reference_pooling.py

Nothing here knows about cores, devices or kernels: ``minicnn/fast/`` holds the faster
implementations and its registry swaps them in (``with minicnn.fast.disabled():`` runs these).
"""
from .activation import relu, sigmoid, tanh
from .batchnorm import batch_norm
from .conv import col2im, conv2d, im2col
from .dropout import dropout
from .geometry import conv_output_size
from .linear import flatten, linear
from .loss import cross_entropy, log_softmax, nll_loss, softmax
from .lrn import local_response_norm
from .pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d
