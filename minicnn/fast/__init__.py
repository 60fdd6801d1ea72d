"""Speed, kept apart from the math: faster implementations of the reference ops, and one switch.

``minicnn/functional`` holds one readable reference ``Function`` per op. This package holds faster
subclasses of some of them, each for one kind of device, and the registry that swaps them in when
an op runs on that device::

    registry.py       the one switch: register(), disabled(), enabled(), MINICNN_FAST=0
    conv_cpu.py       conv2d in cache-sized chunks on threads, the padded grid, dx as a convolution
    pooling_cpu.py    separable max/avg pooling passes on threads, adaptive pooling as products
    batchnorm_cpu.py  batch norm on groups of channels, on threads
    cpu_ops.py        ReLU in pieces of the batch, linear through threads.matmul
    gpu.py            CuPy paths (and the stand-in's): conv, pooling, LRN, batch norm, ReLU,
                      cross-entropy and the SGD step of all parameters, on CUDA kernels
    cuda_kernels.py   every hand-written CUDA kernel, one cache, sources testable as C++ on the CPU
    cuda_on_cpu.py    those kernels compiled for the CPU: the CUDA path tested and counted
                      without a GPU (tests, benchmarks/launches.py; imported only by them)
    threads.py        minicnn's thread pool and BLAS thread control (CPU only)
    scratch.py        reusable scratch buffers (CPU)
    host_memory.py    glibc's allocator setting that ``minicnn train`` opts into

Seams, not copies: where a fast class differs from its reference in one step, the reference
exposes that step as a method and the fast class overrides only it (``Conv2d.unfold``/``fold``/
``matmul``/``bias_grad``, ``Linear.matmul``, pooling's ``window_geometry``); a fast class replaces
``forward``/``backward`` only where the whole computation is arranged differently (chunks on
threads, fused kernels).

``with minicnn.fast.disabled():`` runs every op's reference code; each fast path is tested equal
to its reference, forward and backward (tests/fast/). docs/performance.md says what each buys.

Importing this package changes nothing outside minicnn: it registers the fast classes and hands
the registry to the engine (``function.set_implementation_chooser``).
"""
from .. import function
from . import batchnorm_cpu, conv_cpu, cpu_ops, gpu, pooling_cpu  # noqa: F401  (they register)
from . import registry
from .registry import disabled, enabled, implementation, is_enabled, register, registered

function.set_implementation_chooser(registry.choose)

__all__ = ["disabled", "enabled", "implementation", "is_enabled", "register", "registered"]
