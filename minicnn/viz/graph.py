"""``make_dot``: draw the autograd graph behind a tensor, as torchviz does for PyTorch.

    loss = F.cross_entropy(model(x), y)
    dot = make_dot(loss, params=dict(model.named_parameters()))
    dot.render("graph")            # graph.svg;  dot.source is the Graphviz DOT text

Boxes are the operations (the graph's ``Function``s, with their output shape), blue boxes the
parameters (named) and other leaves that require grad, the green box the output. Node names are
given in order (``op0, op1, ...`` from the inputs up; ``leaf0, ...``), so the same model gives
the same text every time. With Graphviz's ``dot`` program installed, ``render`` uses it for any
format; without it, SVG is drawn here with a simple layered layout (each node one row below the
nodes it needs), and PNG or PDF are a clear error.
"""
import os
import shutil
import subprocess
from xml.sax.saxutils import escape

from ..fast.registry import reference_of
from ..function import _topological_order
from ..tensor import Tensor

OP, LEAF, OUTPUT = "lightgray", "lightblue", "darkolivegreen1"


def make_dot(output, params=None):
    """The graph that computed ``output`` (before ``backward()`` frees it), as a :class:`Dot`.
    ``params`` maps names to parameters (``dict(model.named_parameters())``) to label them."""
    if not isinstance(output, Tensor):
        raise TypeError(f"make_dot: output must be a Tensor, got {type(output).__name__}")
    if output._creator is None:
        freed = " (its graph was freed by backward(); call make_dot before it)" if output._graph_freed else ""
        raise ValueError(f"make_dot: the output (shape {output.shape}) has no graph{freed}")
    names = {id(p): name for name, p in (params or {}).items()}
    order = _topological_order(output._creator)
    ops = {id(fn): f"op{i}" for i, fn in enumerate(order)}
    nodes, edges, leaves = [], [], {}
    for fn in order:
        shapes = ", ".join(str(tuple(shape)) for shape, _ in fn.output_meta)
        nodes.append((ops[id(fn)], f"{reference_of(type(fn)).__name__}\n{shapes}", OP))  # Conv2d, not its fast path
        for t in fn.inputs:
            if t is None or not t.requires_grad:
                continue
            if t._creator is not None:
                edges.append((ops[id(t._creator)], ops[id(fn)]))
                continue
            if id(t) not in leaves:
                leaves[id(t)] = f"leaf{len(leaves)}"
                nodes.append((leaves[id(t)], f"{names.get(id(t), 'input')}\n{t.shape}", LEAF))
            edges.append((leaves[id(t)], ops[id(fn)]))
    nodes.append(("output", f"output\n{output.shape}", OUTPUT))
    edges.append((ops[id(output._creator)], "output"))
    return Dot(nodes, edges)


class Dot:
    """A drawn graph: ``nodes`` (name, label, colour) and ``edges`` (from, to); ``.source`` is the
    DOT text, ``.render(path, format)`` writes a file, ``_repr_svg_`` shows it in Jupyter."""

    def __init__(self, nodes, edges):
        self.nodes, self.edges = nodes, edges

    @property
    def source(self):
        lines = ["digraph {", '\tnode [shape=box style="filled" fontname="monospace" fontsize=10]']
        for name, label, colour in self.nodes:
            text = label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            lines.append(f'\t{name} [label="{text}" fillcolor={colour}]')
        lines += [f"\t{a} -> {b}" for a, b in self.edges]
        return "\n".join(lines + ["}"]) + "\n"

    def render(self, path, format="svg"):
        """Write the graph to ``path`` (``.format`` appended unless it ends so) and return the path
        written. Uses Graphviz's ``dot`` when installed; without it only ``"svg"`` can be drawn."""
        path = os.fspath(path)
        if not path.endswith("." + format):
            path += "." + format
        dot = shutil.which("dot")
        if dot is not None:
            subprocess.run([dot, f"-T{format}", "-o", path], input=self.source.encode(), check=True)
        elif format == "svg":
            with open(path, "w", encoding="utf-8") as f:
                f.write(self.svg())
        else:
            raise RuntimeError(f"make_dot: render(format={format!r}) needs Graphviz's dot program, "
                               f"which is not on PATH; install Graphviz, or render format='svg'")
        return path

    def _repr_svg_(self):
        dot = shutil.which("dot")
        if dot is not None:
            return subprocess.run([dot, "-Tsvg"], input=self.source.encode(), capture_output=True,
                                  check=True).stdout.decode()
        return self.svg()

    def svg(self):
        """The graph as SVG, laid out here (no Graphviz): see :func:`layered_layout`."""
        boxes, height, width = layered_layout(self.nodes, self.edges)
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
               f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="10">',
               '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
               'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>']
        for a, b in self.edges:
            (xa, ya, wa, ha), (xb, yb, wb, _) = boxes[a], boxes[b]
            out.append(f'<line x1="{xa + wa / 2:.1f}" y1="{ya + ha}" x2="{xb + wb / 2:.1f}" y2="{yb}" '
                       f'stroke="black" marker-end="url(#arrow)"/>')
        for name, label, colour in self.nodes:
            x, y, w, h = boxes[name]
            out.append(f'<g id="{name}"><rect x="{x:.1f}" y="{y}" width="{w}" height="{h}" '
                       f'fill="{_SVG_COLOURS[colour]}" stroke="black"/>')
            for i, line in enumerate(label.split("\n")):
                out.append(f'<text x="{x + w / 2:.1f}" y="{y + 14 + 12 * i}" '
                           f'text-anchor="middle">{escape(line)}</text>')
            out.append("</g>")
        return "\n".join(out + ["</svg>"]) + "\n"


_SVG_COLOURS = {OP: "#d3d3d3", LEAF: "#add8e6", OUTPUT: "#caff70"}  # Graphviz's colours


def layered_layout(nodes, edges, row=50, gap=20, char=6.5):
    """Boxes ``name -> (x, y, width, height)``, and the picture's height and width.

    Rows: an operation sits one row below the lowest node it takes input from; a leaf one row above
    its first consumer. Within a row, nodes are ordered by the mean x of the nodes feeding them
    (so edges cross less) and placed left to right; rows are centred."""
    parents = {name: [] for name, _, _ in nodes}
    children = {name: [] for name, _, _ in nodes}
    for a, b in edges:
        parents[b].append(a)
        children[a].append(b)
    rank = {}
    for name, _, _ in nodes:  # nodes are in topological order, except leaves (placed below)
        if parents[name]:
            rank[name] = 1 + max(rank.get(p, 0) for p in parents[name])
        elif not name.startswith("leaf"):
            rank[name] = 1
    for name in list(rank):
        for p in parents[name]:
            if p.startswith("leaf"):
                rank[p] = min(rank.get(p, rank[name] - 1), rank[name] - 1)
    size = {name: (max(len(s) for s in label.split("\n")) * char + 16, 12 * label.count("\n") + 22)
            for name, label, _ in nodes}
    rows = {}
    for name, _, _ in nodes:
        rows.setdefault(rank[name], []).append(name)
    boxes, width = {}, 0
    for r in sorted(rows):
        def centre(name):
            xs = [boxes[p][0] + boxes[p][2] / 2 for p in parents[name] if p in boxes]
            return sum(xs) / len(xs) if xs else 0
        x = gap
        for name in sorted(rows[r], key=centre):
            boxes[name] = (x, gap + (r - min(rows)) * row, size[name][0], size[name][1])
            x += size[name][0] + gap
        width = max(width, x)
    for r in rows:  # centre each row
        used = max(boxes[n][0] + boxes[n][2] for n in rows[r]) + gap
        for n in rows[r]:
            x, y, w, h = boxes[n]
            boxes[n] = (x + (width - used) / 2, y, w, h)
    height = gap * 2 + (max(rows) - min(rows)) * row + max(s[1] for s in size.values())
    return boxes, height, width
