"""Pictures of a network: its autograd graph (``make_dot``).

    graph.py    make_dot(output, params) -> .source (DOT), .render(path, format), _repr_svg_
"""
from .graph import make_dot

__all__ = ["make_dot"]
