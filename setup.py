"""minicnn: a from-scratch deep-learning framework for teaching convolutional networks."""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "minicnn", "__init__.py"), encoding="utf-8") as f:
    VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)
with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
    LONG_DESCRIPTION = f.read()

setup(
    name="minicnn",
    version=VERSION,
    description="A from-scratch NumPy/CuPy deep-learning framework for teaching convolutional networks",
    long_description=LONG_DESCRIPTION,
    long_description_content_type="text/markdown",
    packages=find_packages(include=["minicnn", "minicnn.*"]),
    # The packages live in the project's root folder (""), said outright so that an editable
    # install ("pip install -e .") puts this folder on sys.path (a .pth file) instead of using an
    # import hook that Python consults only after sys.path: a script run from the folder that
    # holds the clone would otherwise import the clone's folder, which has no __init__.py, as an
    # empty namespace package ("module 'minicnn' has no attribute 'manual_seed'"). On sys.path, the
    # real package wins over such a folder.
    package_dir={"": "."},
    python_requires=">=3.9",
    install_requires=["numpy>=1.22"],
    extras_require={
        "gpu": ["cupy-cuda12x"],        # NVIDIA driver for CUDA 12.x
        "gpu13": ["cupy-cuda13x"],      # NVIDIA driver for CUDA 13.x
        "test": ["pytest>=7", "hypothesis>=6", "nbclient>=0.7", "nbformat>=5.7", "ipykernel>=6", "jupytext>=1.14",
                 "coverage>=7", "pytest-cov>=4"],
        "plot": ["matplotlib>=3.5"],
        "progress": ["tqdm>=4.60"],
        "threads": ["threadpoolctl>=3"],  # BLAS thread control beyond Linux's OpenBLAS
        "onnx": ["onnx>=1.14", "onnxruntime>=1.16"],  # minicnn.onnx.export, minicnn export
        "dist": ["mpi4py>=3.1", "mpich"],  # data-parallel training: mpiexec -n N minicnn train
        # ipywidgets draws tqdm's progress bars in Jupyter (without it tqdm warns and prints text)
        "notebooks": ["jupyterlab>=4", "ipywidgets>=8", "matplotlib>=3.5", "tqdm>=4.60"],
        "all": ["matplotlib>=3.5", "tqdm>=4.60", "threadpoolctl>=3", "pytest>=7", "hypothesis>=6",
                "nbclient>=0.7", "nbformat>=5.7", "ipykernel>=6", "jupytext>=1.14"],
    },
    entry_points={"console_scripts": ["minicnn=minicnn.cli:main"]},
    include_package_data=True,
    package_data={"minicnn.fast": ["kernels/*.cu", "kernels/*.cuh"]},  # the CUDA kernels' sources
    license="MIT",
    classifiers=[
        "Programming Language :: Python :: 3",
        "Intended Audience :: Education",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
