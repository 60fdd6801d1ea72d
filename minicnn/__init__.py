"""minicnn: a from-scratch deep-learning framework for teaching convolutional networks.

Read it in this order: ``backend.py`` (NumPy or CuPy), ``function.py`` (the ``Function`` pattern and
the backward walk), ``tensor.py`` and ``ops.py`` (the Tensor and its operators), then
``functional/`` (one file per layer family), ``nn/``, ``models/``, ``optim/``, ``data/``, ``train.py``.
"""
__version__ = "0.1.0"

from . import cuda, threads
from .backend import get_array_module
from .function import Function, enable_grad, is_grad_enabled, no_grad
from .gradcheck import GradcheckError, gradcheck
from .ops import cat, concat, stack
from .rng import manual_seed
from .serialization import load, save
from .tensor import Tensor, tensor
from .threads import get_num_threads, set_num_threads

from . import fast, functional  # noqa: E402  (fast: the registry that picks each op's implementation)
from .summary import summary  # noqa: E402

__all__ = ["Tensor", "tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "concat",
           "cat", "stack", "gradcheck", "GradcheckError", "manual_seed", "save", "load",
           "get_array_module", "cuda", "functional", "summary", "threads", "get_num_threads",
           "set_num_threads", "fast"]
