"""Layers: ``Module``s that hold parameters and call :mod:`minicnn.functional` for the math."""
from . import init
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential

# == conv / pooling family (owner: conv helper) ==
# == normalization / activation / dropout / linear / loss family (owner: norm helper) ==
