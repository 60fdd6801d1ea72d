"""minicnn.nn.functional: minicnn.functional under PyTorch's path, plus reduction= and a few
PyTorch functions built from Tensor operators."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.nn.functional as F


def _logits():
    return mc.tensor(np.random.default_rng(0).standard_normal((5, 3)), requires_grad=True)


def test_reductions_of_cross_entropy_and_nll_loss_agree():
    z, t = _logits(), mc.tensor([0, 2, 1, 1, 0])
    mean = F.cross_entropy(z, t)
    per_example = F.cross_entropy(z, t, reduction="none")
    assert per_example.shape == (5,)
    np.testing.assert_allclose(per_example.mean().item(), mean.item(), rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(z, t, reduction="sum").item(), 5 * mean.item(), rtol=1e-12)
    logp = F.log_softmax(z, dim=1)
    np.testing.assert_allclose(F.nll_loss(logp, t, reduction="none").data, per_example.data, rtol=1e-12)
    assert mc.gradcheck(lambda x: F.cross_entropy(x, t, reduction="sum"), [z])
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(z, t, reduction="avg")
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        F.cross_entropy(z, mc.tensor([0, 3, 1, 1, 0]), reduction="none")


def test_mse_loss_one_hot_and_ignored_inplace():
    a, b = mc.tensor([1.0, 2.0, 4.0], requires_grad=True), mc.tensor([1.0, 0.0, 1.0])
    assert F.mse_loss(a, b).item() == pytest.approx(13 / 3)
    assert F.mse_loss(a, b, reduction="none").tolist() == [0.0, 4.0, 9.0]
    with pytest.raises(ValueError, match="shape"):
        F.mse_loss(a, mc.zeros(2))
    assert F.one_hot(mc.tensor([2, 0])).tolist() == [[0, 0, 1], [1, 0, 0]]
    assert F.one_hot(mc.tensor([1]), num_classes=3).tolist() == [[0, 1, 0]]
    with pytest.raises(ValueError, match="labels"):
        F.one_hot(mc.tensor([3]), num_classes=3)
    assert F.relu(mc.tensor([-1.0, 2.0]), inplace=True).tolist() == [0.0, 2.0]
    assert F.dropout(mc.ones(4), p=0.5, training=False, inplace=True).tolist() == [1.0] * 4
