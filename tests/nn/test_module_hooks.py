"""Module forward hooks, as PyTorch's: pre-hooks see (and may replace) the inputs, hooks the output."""
import numpy as np

import minicnn as mc
from minicnn import nn


def test_forward_hooks_run_in_order_replace_values_and_remove():
    model = nn.Sequential(nn.ReLU(), nn.Tanh())
    seen = []
    inner = model[0].register_forward_hook(lambda m, inputs, out: seen.append((type(m).__name__, out.shape)))
    double = model.register_forward_pre_hook(lambda m, inputs: (inputs[0] * 2,))
    negate = model.register_forward_hook(lambda m, inputs, out: -out)
    x = mc.tensor([1.0, -1.0])
    np.testing.assert_allclose(model(x).numpy(), -np.tanh([2.0, 0.0]), rtol=1e-6)
    assert seen == [("ReLU", (2,))]
    for handle in (inner, double, negate):
        handle.remove()
    np.testing.assert_allclose(model(x).numpy(), np.tanh([1.0, 0.0]), rtol=1e-6)
    assert len(seen) == 1
