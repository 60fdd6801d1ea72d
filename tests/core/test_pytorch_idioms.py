"""PyTorch idioms of issue 29 give PyTorch's results (each checked against torch when it is
installed): eq, equal, allclose, clamp/clip, topk, nn.utils.clip_grad_norm_/clip_grad_value_,
cross-entropy label smoothing, the Tensor constructor; and the command line and files around them:
a script beside the clone folder imports the installed package, argparse errors in one line with
"did you mean", a PyTorch .pth named as such."""
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
import minicnn.nn.functional as F
from minicnn import nn

REPO = Path(__file__).resolve().parents[2]


def torch():
    return pytest.importorskip("torch")


def grad_of(t):
    """``t.grad`` as a host NumPy array, whether minicnn keeps it as an array or a Tensor."""
    g = t.grad
    return mc.backend.to_numpy(g.data if isinstance(g, mc.Tensor) else g)


# -- comparisons ------------------------------------------------------------------------------------
def test_eq_equal_allclose_as_torch():
    th = torch()
    a, b = [[1.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [3.0, 5.0]]
    for other in (b, 3.0, [3.0, 2.0]):
        expected = th.eq(th.tensor(a), th.tensor(other) if isinstance(other, list) else other).numpy()
        other_mc = mc.tensor(other) if isinstance(other, list) else other
        assert mc.eq(mc.tensor(a), other_mc).tolist() == expected.tolist()
        assert mc.tensor(a).eq(other_mc).tolist() == expected.tolist()
    pairs = [([1, 2], [1.0, 2.0]), ([1, 2], [[1, 2]]), ([1.0, 2.0], [1.0, 2.5]), ([], [])]
    for x, y in pairs:
        assert mc.equal(mc.tensor(x), mc.tensor(y)) is th.equal(th.tensor(x), th.tensor(y))
    x, close, far = [1.0, 2.0], [1.0, 2.0 + 1e-6], [1.0, 2.001]
    nan = [1.0, float("nan")]
    for u, v, kwargs in [(x, close, {}), (x, far, {}), (x, far, {"rtol": 1e-2}), (x, far, {"atol": 0.01}),
                         (x, [[1.0, 2.0], [1.0, 2.0]], {}), (nan, nan, {}), (nan, nan, {"equal_nan": True})]:
        expected = th.allclose(th.tensor(u), th.tensor(v), **kwargs)
        assert mc.allclose(mc.tensor(u), mc.tensor(v), **kwargs) is expected
        assert mc.tensor(u).allclose(mc.tensor(v), **kwargs) is expected


def test_allclose_refuses_different_dtypes_as_torch():
    with pytest.raises(TypeError, match=r"dtypes differ \(float32 and float64\).*double\(\)"):
        mc.allclose(mc.tensor([1.0]), mc.tensor(np.array([1.0])))
    with pytest.raises(TypeError, match="int64 and float32"):
        mc.tensor([1]).allclose(mc.tensor([1.0]))


# -- clamp / clip -------------------------------------------------------------------------------------
@pytest.mark.parametrize("low, high", [(-1.0, 1.0), (None, 0.5), (-0.5, None), (1.0, -1.0), (0.0, 0.0)])
def test_clamp_values_and_gradient_as_torch_bounds_inside(low, high):
    th = torch()
    data = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])  # the bounds themselves included
    ours = mc.tensor(data, requires_grad=True)
    theirs = th.tensor(data, requires_grad=True)
    (mc.clamp(ours, low, high) * mc.tensor(np.arange(7.0))).sum().backward()
    (th.clamp(theirs, low, high) * th.arange(7.0, dtype=th.float64)).sum().backward()
    np.testing.assert_array_equal(mc.clamp(ours, low, high).numpy(), th.clamp(theirs, low, high).detach().numpy())
    np.testing.assert_array_equal(grad_of(ours), theirs.grad.numpy())


def test_clip_is_clamp_and_methods_match():
    th = torch()
    x = [[3.0, -4.0], [0.25, 9.0]]
    expected = th.tensor(x).clip(-1, 2).numpy()
    for result in (mc.clip(mc.tensor(x), -1, 2), mc.tensor(x).clip(-1, 2), mc.tensor(x).clamp(min=-1, max=2)):
        np.testing.assert_array_equal(result.numpy(), expected)
    bound = th.tensor([0.0, 1.0])  # a tensor bound, broadcast along rows
    np.testing.assert_array_equal(mc.tensor(x).clamp(max=mc.tensor([0.0, 1.0])).numpy(),
                                  th.tensor(x).clamp(max=bound).numpy())


def test_clamp_dtypes_as_torch():
    th = torch()
    assert mc.tensor([1, 5, 3]).clamp(2, 4).tolist() == th.tensor([1, 5, 3]).clamp(2, 4).tolist()
    assert mc.tensor([1, 5, 3]).clamp(2, 4).dtype == np.int64
    assert mc.tensor([1, 5, 3]).clamp(2.5, 4).dtype == np.float32  # torch: float32 too
    assert mc.tensor([1, 5, 3]).clamp(2.5, 4).tolist() == th.tensor([1, 5, 3]).clamp(2.5, 4).tolist()
    assert np.isnan(mc.tensor([float("nan")]).clamp(0, 1).item())
    assert mc.tensor(np.array([0.5, 3.0])).clamp(0, 1).dtype == np.float64


def test_clamp_errors_are_clear():
    with pytest.raises(ValueError, match="give min=, max= or both"):
        mc.clamp(mc.tensor([1.0]))
    with pytest.raises(ValueError, match=r"min= is a tensor that requires grad.*detach"):
        mc.tensor([1.0]).clamp(min=mc.tensor([0.0], requires_grad=True))


# -- topk -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k, dim, largest", [(2, -1, True), (3, 0, True), (1, 1, False), (4, 2, False),
                                             (0, 1, True)])
def test_topk_values_indices_and_gradient_as_torch(k, dim, largest):
    th = torch()
    data = np.random.default_rng(0).permutation(60).reshape(3, 5, 4) / 7.0  # no ties
    ours = mc.tensor(data, requires_grad=True)
    theirs = th.tensor(data, requires_grad=True)
    values, indices = mc.topk(ours, k, dim=dim, largest=largest)
    t_values, t_indices = th.topk(theirs, k, dim=dim, largest=largest)
    np.testing.assert_array_equal(values.numpy(), t_values.detach().numpy())
    np.testing.assert_array_equal(indices.numpy(), t_indices.numpy())
    assert indices.dtype == np.int64 and values.requires_grad
    weights = np.arange(values.numel(), dtype=np.float64).reshape(values.shape)
    (values * mc.tensor(weights)).sum().backward()
    (t_values * th.tensor(weights)).sum().backward()
    np.testing.assert_array_equal(grad_of(ours), theirs.grad.numpy())
    same = ours.topk(k, dim, largest)
    assert same.values.tolist() == values.tolist() and same.indices.tolist() == indices.tolist()


def test_topk_sorted_nan_and_zero_dim_as_torch():
    th = torch()
    x = [3.0, 1.0, 2.0, 7.0]
    ours = mc.tensor(x).topk(3, sorted=False)  # torch leaves this order open; ours stays sorted
    assert sorted(ours.indices.tolist()) == sorted(th.tensor(x).topk(3, sorted=False).indices.tolist())
    nan = [1.0, float("nan"), 3.0]
    for largest in (True, False):
        assert (mc.tensor(nan).topk(2, largest=largest).indices.tolist()
                == th.tensor(nan).topk(2, largest=largest).indices.tolist())
    values, indices = mc.tensor(5.0).topk(1)
    assert values.shape == () and values.item() == 5.0 and indices.item() == 0


def test_topk_errors_are_clear():
    with pytest.raises(ValueError, match=r"k=3 must be an int from 0 to 2.*shape \(2,\)"):
        mc.tensor([1.0, 2.0]).topk(3)
    with pytest.raises(ValueError, match="dim=2 is out of range"):
        mc.topk(mc.tensor([[1.0, 2.0]]), 1, dim=2)


def test_clamp_topk_equal_allclose_on_every_device(to_device):
    data = np.random.default_rng(1).permutation(24).reshape(2, 3, 4) / 5.0
    x = to_device(data, requires_grad=True)
    values, indices = x.topk(2, dim=1)
    clamped = x.clamp(max=to_device(np.full(4, 2.0)))
    (values.sum() + clamped.clip(min=0.5).sum()).backward()
    reference = mc.tensor(data, requires_grad=True)
    r_values, r_indices = reference.topk(2, dim=1)
    (r_values.sum() + reference.clamp(max=2.0).clip(min=0.5).sum()).backward()
    assert values.device == x.device and indices.device == x.device
    np.testing.assert_array_equal(values.numpy(), r_values.numpy())
    np.testing.assert_array_equal(indices.numpy(), r_indices.numpy())
    np.testing.assert_array_equal(grad_of(x), grad_of(reference))
    assert mc.equal(x, to_device(data)) and mc.allclose(x, to_device(data + 1e-12))
    assert x.eq(to_device(data)).all().item()


# -- nn.utils ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_norm, norm_type", [(0.5, 2.0), (100.0, 2.0), (0.1, float("inf")), (0.3, 1.0)])
def test_clip_grad_norm_as_torch(max_norm, norm_type):
    th = torch()
    grads = [np.random.default_rng(i).standard_normal(s) for i, s in enumerate([(3, 4), (4,), (2, 2)])]
    ours = [nn.Parameter(mc.tensor(np.zeros_like(g))) for g in grads]
    theirs = [th.nn.Parameter(th.zeros(g.shape, dtype=th.float64)) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        (p * mc.tensor(g)).sum().backward()
        q.grad = th.tensor(g)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = th.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, mc.Tensor) and total.shape == ()
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(grad_of(p), q.grad.numpy(), rtol=1e-12)


def test_clip_grad_value_as_torch():
    th = torch()
    g = np.array([[-2.0, 0.05], [0.3, -0.01]])
    p, q = nn.Parameter(mc.tensor(np.zeros((2, 2)))), th.nn.Parameter(th.zeros(2, 2, dtype=th.float64))
    (p * mc.tensor(g)).sum().backward()
    q.grad = th.tensor(g)
    assert nn.utils.clip_grad_value_([p], 0.1) is None
    th.nn.utils.clip_grad_value_([q], 0.1)
    np.testing.assert_array_equal(grad_of(p), q.grad.numpy())


# -- label smoothing ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5, 1.0])
def test_cross_entropy_label_smoothing_as_torch(smoothing):
    th = torch()
    rng = np.random.default_rng(3)
    logits, target = rng.standard_normal((6, 5)) * 3, rng.integers(0, 5, 6)
    ours = mc.tensor(logits, requires_grad=True)
    theirs = th.tensor(logits, requires_grad=True)
    loss = nn.CrossEntropyLoss(label_smoothing=smoothing)(ours, mc.tensor(target))
    expected = th.nn.CrossEntropyLoss(label_smoothing=smoothing)(theirs, th.tensor(target))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    loss.backward()
    expected.backward()
    np.testing.assert_allclose(grad_of(ours), theirs.grad.numpy(), rtol=1e-10, atol=1e-15)
    for reduction in ("sum", "none"):
        np.testing.assert_allclose(
            F.cross_entropy(mc.tensor(logits), target, reduction=reduction, label_smoothing=smoothing).numpy(),
            th.nn.functional.cross_entropy(th.tensor(logits), th.tensor(target), reduction=reduction,
                                           label_smoothing=smoothing).numpy(), rtol=1e-12)


def test_label_smoothing_is_gradient_checked_and_checked():
    logits = mc.tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    assert mc.gradcheck(lambda z: mc.functional.cross_entropy(z, [0, 2, 1, 2], label_smoothing=0.3), [logits])
    for bad in (-0.1, 1.5, "0.1", True):
        with pytest.raises(ValueError, match="label_smoothing must be a number from 0.0 to 1.0"):
            nn.CrossEntropyLoss(label_smoothing=bad)
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(logits, [0, 1, 2, 0], reduction="none", label_smoothing=2.0)


# -- the Tensor constructor -----------------------------------------------------------------------------------
def test_tensor_constructor_as_torch_Tensor():
    th = torch()
    for data in ([1, 2], [[1, 2], [3, 4]], [1.5, 2], [True, False], []):
        ours, theirs = mc.Tensor(data), th.Tensor(data)
        assert ours.dtype == np.float32 and str(theirs.dtype) == "torch.float32"
        assert ours.tolist() == theirs.tolist()
    assert mc.tensor([1, 2]).dtype == np.int64 == np.dtype(str(th.tensor([1, 2]).dtype)[6:])
    for sizes in [(3, 4), (2,), (0, 5), ()]:
        ours = mc.Tensor(*sizes)
        assert ours.shape == tuple(th.Tensor(*sizes).shape) and ours.dtype == np.float32
        assert not ours.data.any()  # zeros here; uninitialised in PyTorch
    assert mc.Tensor(np.array([1, 2])).dtype == np.int64        # arrays keep their dtype
    assert mc.Tensor(np.array([1.0], np.float64)).dtype == np.float64
    assert mc.Tensor(np.float64(2.5)).shape == () and mc.Tensor([1.0], requires_grad=True).requires_grad
    with pytest.raises(TypeError):
        th.Tensor(3.0)
    with pytest.raises(TypeError, match=r"Tensor\(3.0\): one number is read as a size.*mc.tensor\(3.0\)"):
        mc.Tensor(3.0)
    with pytest.raises(TypeError, match="got 2 arguments"):
        mc.Tensor([1.0], 2)
    with pytest.raises(ValueError, match="non-negative"):
        mc.Tensor(2, -1)


def test_full_and_as_tensor_keep_python_ints_int64():
    assert mc.full((2,), 3).dtype == np.int64 and mc.full((2,), 3.0).dtype == np.float32
    assert mc.tensor([1, 2]).eq([1, 3]).tolist() == [True, False]
    assert mc.clamp([1, 5], 2, 4).dtype == np.int64


# -- a script beside the clone folder ---------------------------------------------------------------------
def _installed():
    """minicnn's installed distribution (pip's, with direct_url.json), not an ``.egg-info`` folder
    that a build may have left in the clone (found first when the clone is the current folder)."""
    found = [d for d in metadata.distributions(name="minicnn") if d.read_text("direct_url.json")]
    return found[0] if found else None


def _editable_install_of_this_clone():
    dist = _installed()
    info = json.loads(dist.read_text("direct_url.json")) if dist else {}
    url = info.get("url", "")
    return info.get("dir_info", {}).get("editable", False) and \
        url.startswith("file://") and Path(url[7:]).resolve() == REPO


@pytest.mark.slow
def test_a_script_beside_the_clone_folder_imports_the_installed_package(tmp_path):
    if not _editable_install_of_this_clone():
        pytest.skip("minicnn is not installed editable from this clone (pip install -e .)")
    os.symlink(REPO, tmp_path / "minicnn")  # tmp_path now holds the clone, as ~/src holds ~/src/minicnn
    (tmp_path / "script.py").write_text("import minicnn\nminicnn.manual_seed(0)\nprint(minicnn.__file__)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for command, cwd in [([sys.executable, str(tmp_path / "script.py")], "/"),
                         ([sys.executable, "script.py"], tmp_path),
                         ([sys.executable, "-m", "minicnn", "--version"], tmp_path)]:
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (command, done.stderr)
    assert "minicnn/__init__.py" in subprocess.run(
        [sys.executable, "script.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120).stdout


def test_the_installed_notebooks_extra_has_ipywidgets():
    if _installed() is None:
        pytest.skip("minicnn is not installed by pip")
    requires = _installed().requires or []
    if not any("notebooks" in r for r in requires):
        pytest.skip("the installed metadata predates the notebooks extra")
    assert any(r.startswith("ipywidgets") and "notebooks" in r for r in requires), requires


# -- the command line ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, expected", [
    (["train", "--optimizer", "adm"], "argument --optimizer: invalid choice: 'adm' (choose from sgd, adam, "
                                      "adamw); did you mean 'adam'?"),
    (["train", "--dataset", "fashoin-mnist"], "did you mean 'fashion-mnist'?"),
    (["train", "--schedule", "cosin"], "did you mean 'cosine'?"),
    (["trian"], "invalid choice: 'trian'"),
    (["train", "--epochs", "-1"], "argument --epochs: expected a positive integer, got '-1'"),
])
def test_argparse_errors_are_one_line_and_a_help_hint(argv, expected, capsys):
    from minicnn.cli import main
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "usage:" not in lines[0], lines
    assert expected in lines[0] and lines[0].startswith("minicnn")
    assert "--help" in lines[1]


def test_a_mistyped_model_name_gets_did_you_mean(capsys):
    from minicnn.cli import main
    assert main(["summary", "resnt18"]) == 1
    assert "unknown model 'resnt18'; did you mean 'resnet18'?" in capsys.readouterr().err
    from minicnn.train.config import UsageError, check_model_name
    with pytest.raises(UsageError, match="did you mean 'resnet18'"):
        check_model_name("resnt18")
    with pytest.raises(UsageError, match=r"unknown model 'xyzzy' \(known models: "):
        check_model_name("xyzzy")


# -- a PyTorch .pth where minicnn expects its own file ----------------------------------------------------------
def test_a_torch_pth_is_named_and_convert_torch_suggested(tmp_path, capsys):
    th = torch()
    for name, kwargs in [("zip.pth", {}), ("legacy.pth", {"_use_new_zipfile_serialization": False})]:
        path = tmp_path / name
        th.save({"fc.weight": th.zeros(2, 3)}, path, **kwargs)
        with pytest.raises(ValueError, match=r"never unpickles; convert a PyTorch state dict with "
                                             r"'minicnn convert-torch .*weights.npz'"):
            mc.load(path)
    from minicnn.cli import main
    assert main(["evaluate", "--checkpoint", str(tmp_path / "zip.pth"), "--model", "lenet5"]) == 1
    err = capsys.readouterr().err
    assert "is a PyTorch file (torch.save)" in err and "minicnn convert-torch" in err
