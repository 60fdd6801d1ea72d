"""make_dot: DOT text, and SVG drawn without Graphviz that parses as XML."""
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import models, viz

SVG = "{http://www.w3.org/2000/svg}"


def resnet20_loss():
    mc.manual_seed(0)
    model = models.get("resnet20", num_classes=10)
    x = mc.tensor(np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32))
    return model, F.cross_entropy(model(x), mc.tensor([1, 2]))


@pytest.fixture
def no_graphviz(monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert shutil.which("dot") is None


def test_resnet20_loss_renders_svg_without_graphviz(tmp_path, no_graphviz):
    model, loss = resnet20_loss()
    params = dict(model.named_parameters())
    dot = viz.make_dot(loss, params=params)
    path = dot.render(tmp_path / "resnet20")
    assert path == str(tmp_path / "resnet20.svg")
    root = ET.parse(path).getroot()
    assert root.tag == SVG + "svg"
    texts = [t.text for t in root.iter(SVG + "text")]
    assert set(params) <= set(texts)                               # every parameter, by name
    assert "Conv2d" in texts and "CrossEntropy" in texts and "(2, 16, 8, 8)" in texts
    assert len(list(root.iter(SVG + "rect"))) == len(dot.nodes)
    assert len(list(root.iter(SVG + "line"))) == len(dot.edges)
    assert ET.fromstring(dot._repr_svg_()).tag == SVG + "svg"
    with pytest.raises(RuntimeError, match="format='png'.*needs Graphviz's dot program"):
        dot.render(tmp_path / "resnet20", format="png")
    loss.backward()
    with pytest.raises(ValueError, match="graph was freed by backward"):
        viz.make_dot(loss)


def test_dot_source_is_stable_and_labelled():
    sources = []
    for _ in range(2):
        model, loss = resnet20_loss()
        sources.append(viz.make_dot(loss, params=dict(model.named_parameters())).source)
    assert sources[0] == sources[1]                                # node names do not depend on id()
    assert sources[0].startswith("digraph {")
    assert 'op0 [label="Conv2d\\n(2, 16, 8, 8)" fillcolor=lightgray]' in sources[0]
    assert 'leaf0 [label="conv1.weight\\n(16, 3, 3, 3)" fillcolor=lightblue]' in sources[0]
    assert "\tleaf0 -> op0\n" in sources[0]


def test_unnamed_leaves_and_errors():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    dot = viz.make_dot((x * x).sum())
    assert [label for _, label, _ in dot.nodes] == ["Mul\n(2,)", "input\n(2,)", "Sum\n()", "output\n()"]
    with pytest.raises(ValueError, match="has no graph"):
        viz.make_dot(mc.tensor([1.0]))
    with pytest.raises(TypeError, match="output must be a Tensor"):
        viz.make_dot(np.ones(2))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_render_with_graphviz(tmp_path):
    model, loss = resnet20_loss()
    path = viz.make_dot(loss, dict(model.named_parameters())).render(tmp_path / "g", format="svg")
    assert ET.parse(path).getroot().tag == SVG + "svg"
