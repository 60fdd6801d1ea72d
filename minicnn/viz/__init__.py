"""Pictures of a network: its autograd graph (``make_dot``), images in a grid (``make_grid``),
figures of filters, feature maps and attributions (with matplotlib).

    graph.py     make_dot(output, params) -> .source (DOT), .render(path, format), _repr_svg_
    grid.py      make_grid(images, nrow=8, padding=2, ...) as torchvision.utils.make_grid
    pictures.py  filters_figure, activations_figure, attribution_figure, examples_figure
                 (matplotlib Figures)
"""
from .graph import make_dot
from .grid import make_grid
from .pictures import activations_figure, attribution_figure, examples_figure, filters_figure

__all__ = ["make_dot", "make_grid", "filters_figure", "activations_figure", "attribution_figure",
           "examples_figure"]
