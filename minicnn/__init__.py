"""minicnn: a from-scratch deep-learning framework for teaching convolutional networks.

Read it in this order: ``backend.py`` (NumPy or CuPy), ``function.py`` (the ``Function`` pattern and
the backward walk), ``tensor.py`` and ``ops.py`` (the Tensor and its operators), then
``functional/`` (one file per layer family), ``nn/``, ``models/``, ``optim/``, ``data/``, ``train/``
(the loop: ``train/trainer.py``).
"""
__version__ = "0.1.0"

from . import backends, cuda
from .backend import get_array_module
from .dtypes import (bool, double, float, float16, float32, float64, half, int, int8, int16,  # noqa: A004
                     int32, int64, long, short, uint8)
from .factories import (allclose, arange, argmax, argmin, clamp, clip, device, eq, equal, exp,  # noqa: A004
                        flatten, from_numpy, full, inference_mode, is_tensor, log, log_softmax, max,
                        mean, min, numel, ones, ones_like, rand, randint, randn, reshape, softmax,
                        sum, topk, zeros, zeros_like)
from .function import Function, enable_grad, is_grad_enabled, no_grad
from .gradcheck import GradcheckError, gradcheck
from .ops import cat, concat, stack
from .rng import manual_seed
from .serialization import load, save
from .tensor import Tensor, tensor
from . import autograd  # noqa: E402  mc.autograd.grad
from .fast.threads import get_num_threads, set_num_threads

# fast: the registry that picks each op's implementation; nn, optim, utils: as torch.nn ...
from . import fast, functional, nn, optim, utils  # noqa: E402
from .summary import summary  # noqa: E402

__all__ = ["Tensor", "tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "concat",
           "cat", "stack", "gradcheck", "GradcheckError", "manual_seed", "save", "load",
           "get_array_module", "backends", "cuda", "functional", "summary", "get_num_threads",
           "set_num_threads", "fast", "nn", "optim", "utils", "autograd",
           # PyTorch's top-level spellings (minicnn/factories.py, minicnn/dtypes.py)
           "zeros", "ones", "full", "zeros_like", "ones_like", "rand", "randn", "randint", "arange",
           "from_numpy", "flatten", "reshape", "max", "min", "argmax", "argmin", "sum", "mean",
           "exp", "log", "softmax", "log_softmax", "is_tensor", "numel", "device", "eq", "equal",
           "allclose", "clamp", "clip", "topk",
           "inference_mode", "float16", "half", "float32", "float64", "double", "int8", "uint8",
           "int16", "short", "int32", "int64", "long"]
