"""Test devices and the helpers tests use (as ``numpy.testing``, ``torch.testing``).

Nothing in minicnn imports this package: it sits beside the lesson, never inside it. Importing it
adds test devices to the device table of ``minicnn/backend.py``::

    standin_device.py   "standin": the CPU stand-in, as strict as CuPy about host arrays and
                        implicit copies, and watchable (each operation reported as what it would
                        cost on a GPU)
    cuda_on_cpu.py      the CUDA kernels of ``minicnn/fast/kernels/`` compiled as C++ for the CPU,
                        run as the stand-in's kernels: the GPU's code path without a GPU
    devices.py          the devices a test runs on (``cpu``, ``standin``, ``cuda-on-cpu``, ``cuda``)
                        and the context that puts a test on one

``python -m minicnn.testing <command> ...`` runs a ``minicnn`` command with the test devices
registered (``python -m minicnn.testing gradcheck --device standin``).
"""
from . import cuda_on_cpu, standin_device
from .devices import CUDA_ON_CPU, available_devices, on_device
from .standin_device import StandinArray, notify_standin, standin, watch_standin

__all__ = ["CUDA_ON_CPU", "StandinArray", "available_devices", "cuda_on_cpu", "notify_standin", "on_device",
           "standin", "standin_device", "watch_standin"]
