"""Pictures of a network: its autograd graph (``make_dot``), images in a grid (``make_grid``).

    graph.py    make_dot(output, params) -> .source (DOT), .render(path, format), _repr_svg_
    grid.py     make_grid(images, nrow=8, padding=2, ...) as torchvision.utils.make_grid
"""
from .graph import make_dot
from .grid import make_grid

__all__ = ["make_dot", "make_grid"]
