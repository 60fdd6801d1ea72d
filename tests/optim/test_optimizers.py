"""SGD, Adam, AdamW: each update against values worked out by hand (and against PyTorch when
it is importable), on every device."""
import math

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, optim

try:
    import torch
except Exception:  # pragma: no cover - torch is optional
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")


def make_param(device, values, dtype=np.float64):
    return mc.Tensor(backend.to_device(np.array(values, dtype=dtype), device), requires_grad=True)


def set_grad(p, values):
    p.grad = mc.Tensor(backend.to_device(np.array(values, dtype=p.dtype), p.device))


def host(p):
    return backend.to_numpy(p.data)


# -- SGD ----------------------------------------------------------------------------------------

def test_sgd_plain(device):
    p = make_param(device, [1.0, -2.0])
    opt = optim.SGD([p], lr=0.1)
    set_grad(p, [0.5, 1.0])
    opt.step()
    np.testing.assert_allclose(host(p), [1.0 - 0.05, -2.0 - 0.1])
    set_grad(p, [-1.0, 2.0])
    opt.step()
    np.testing.assert_allclose(host(p), [0.95 + 0.1, -2.1 - 0.2])
    assert backend.device_of(p.data) == device


def test_sgd_momentum_buffer_starts_at_first_gradient(device):
    p = make_param(device, [1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    expected, buf = 1.0, None
    for g in (1.0, 2.0, -0.5):
        set_grad(p, [g])
        opt.step()
        buf = g if buf is None else 0.9 * buf + g
        expected -= 0.1 * buf
        np.testing.assert_allclose(host(p), [expected], rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(opt.state[p]["momentum_buffer"]), [buf])
    # by hand: buf 1, 2.9, 2.11 -> p = 1 - .1 - .29 - .211
    np.testing.assert_allclose(host(p), [0.399], rtol=1e-12)


def test_sgd_dampening_and_weight_decay(device):
    p = make_param(device, [2.0])
    opt = optim.SGD([p], lr=0.5, momentum=0.5, dampening=0.25, weight_decay=0.1)
    set_grad(p, [1.0])
    opt.step()  # g = 1 + .1*2 = 1.2; buf = 1.2 (no dampening on the first step); p = 2 - .6 = 1.4
    np.testing.assert_allclose(host(p), [1.4])
    set_grad(p, [1.0])
    opt.step()  # g = 1 + .14 = 1.14; buf = .5*1.2 + .75*1.14 = 1.455; p = 1.4 - .7275
    np.testing.assert_allclose(host(p), [1.4 - 0.7275])


def test_sgd_nesterov(device):
    p = make_param(device, [0.0])
    opt = optim.SGD([p], lr=1.0, momentum=0.5, nesterov=True)
    set_grad(p, [1.0])
    opt.step()  # buf = 1; step = g + .5*buf = 1.5
    np.testing.assert_allclose(host(p), [-1.5])
    set_grad(p, [1.0])
    opt.step()  # buf = .5 + 1 = 1.5; step = 1 + .75 = 1.75
    np.testing.assert_allclose(host(p), [-3.25])


def test_sgd_rejects_bad_options():
    p = mc.Tensor(np.zeros(2), requires_grad=True)
    with pytest.raises(ValueError):
        optim.SGD([p], lr=-1.0)
    with pytest.raises(ValueError):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError):
        optim.SGD([{"params": [p], "bogus": 1}], lr=0.1)


def test_float32_stays_float32_in_place(device):
    p = make_param(device, [1.0, 2.0], dtype=np.float32)
    before = p.data
    for opt in (optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=1e-4), optim.Adam([p]),
                optim.AdamW([p])):
        set_grad(p, [0.1, 0.2])
        opt.step()
        opt.step()
        assert p.dtype == np.float32
        assert backend.device_of(p.data) == device
    if device == "cpu":
        assert p.data is before  # updated in place


# -- Adam / AdamW -----------------------------------------------------------------------------

def adam_by_hand(p0, grads, lr, b1, b2, eps, wd=0.0, decoupled=False):
    p, m, v = p0, 0.0, 0.0
    out = []
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * wd)
        elif wd:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * m_hat / (math.sqrt(v_hat) + eps)
        out.append(p)
    return out


def test_adam_first_step_is_lr_times_sign(device):
    p = make_param(device, [1.0, 1.0])
    opt = optim.Adam([p], lr=0.01)
    set_grad(p, [3.0, -0.2])
    opt.step()
    # m_hat = g, v_hat = g^2 -> step = lr * g / (|g| + eps)
    np.testing.assert_allclose(host(p), [1 - 0.01 * 3 / (3 + 1e-8), 1 + 0.01 * 0.2 / (0.2 + 1e-8)],
                               rtol=1e-12)


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam_three_steps(device, wd):
    grads = [0.5, -1.0, 2.0]
    p = make_param(device, [1.5])
    opt = optim.Adam([p], lr=0.1, betas=(0.8, 0.9), eps=1e-6, weight_decay=wd)
    expected = adam_by_hand(1.5, grads, 0.1, 0.8, 0.9, 1e-6, wd=wd)
    for g, e in zip(grads, expected):
        set_grad(p, [g])
        opt.step()
        np.testing.assert_allclose(host(p), [e], rtol=1e-12)
    assert opt.state[p]["step"] == 3


def test_adamw_decoupled_decay(device):
    grads = [0.5, -1.0, 2.0]
    p = make_param(device, [1.5])
    opt = optim.AdamW([p], lr=0.1, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.5)
    expected = adam_by_hand(1.5, grads, 0.1, 0.8, 0.9, 1e-6, wd=0.5, decoupled=True)
    for g, e in zip(grads, expected):
        set_grad(p, [g])
        opt.step()
        np.testing.assert_allclose(host(p), [e], rtol=1e-12)
    # the first step by hand: p = 1.5 * (1 - .05) - .1 * .5 / (.5 + 1e-6)
    assert abs(expected[0] - (1.425 - 0.1 * 0.5 / (0.5 + 1e-6))) < 1e-12
    assert optim.AdamW([make_param(device, [0.0])]).param_groups[0]["weight_decay"] == 1e-2


def test_amsgrad_uses_max_second_moment(device):
    p = make_param(device, [0.0])
    opt = optim.Adam([p], lr=1.0, betas=(0.0, 0.5), eps=0.0, amsgrad=True)
    set_grad(p, [2.0])
    opt.step()  # v = 2, v_hat = 4; step = 2 / 2 = 1
    set_grad(p, [0.0])
    opt.step()  # m = 0 -> no move, v = 1, max v = 2
    set_grad(p, [1.0])
    opt.step()  # m = 1; v = .5 + .5 = 1, max 2 -> v_hat = 2 / (1 - .125); step = 1 / sqrt(2/.875)
    np.testing.assert_allclose(host(p), [-1.0 - 1.0 / math.sqrt(2 / 0.875)], rtol=1e-12)


# -- what step() skips ----------------------------------------------------------------------------

def test_frozen_and_gradless_params_are_skipped(device):
    a, b, c = make_param(device, [1.0]), make_param(device, [2.0]), make_param(device, [3.0])
    b.requires_grad = False
    for opt in (optim.SGD([a, b, c], lr=0.1, momentum=0.9, weight_decay=0.1),
                optim.Adam([a, b, c], weight_decay=0.1), optim.AdamW([a, b, c])):
        set_grad(a, [1.0])
        set_grad(b, [1.0])  # frozen: ignored even with a gradient
        c.grad = None        # never reached by the loss
        opt.step()
        assert host(b)[0] == 2.0 and host(c)[0] == 3.0
        assert b not in opt.state and c not in opt.state
        assert host(a)[0] < 1.0
        opt.zero_grad()
        assert a.grad is None


def test_param_groups_have_their_own_options(device):
    a, b = make_param(device, [1.0]), make_param(device, [1.0])
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.5
    set_grad(a, [1.0])
    set_grad(b, [1.0])
    opt.step()
    np.testing.assert_allclose([host(a)[0], host(b)[0]], [0.9, 0.5])
    opt.zero_grad(set_to_none=False)
    assert float(backend.to_numpy(a.grad)[0]) == 0.0


# -- saving ------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
                                  lambda ps: optim.AdamW([{"params": ps[:1]},
                                                          {"params": ps[1:], "lr": 0.5}])])
def test_state_dict_round_trip_through_save(device, tmp_path, make):
    rng = np.random.default_rng(0)
    init = [rng.normal(size=(3, 2)), rng.normal(size=4)]
    grads = [[rng.normal(size=(3, 2)), rng.normal(size=4)] for _ in range(4)]

    def run(params, opt, steps):
        for gs in steps:
            for p, g in zip(params, gs):
                set_grad(p, g)
            opt.step()

    ref = [make_param(device, x) for x in init]
    ref_opt = make(ref)
    run(ref, ref_opt, grads)

    first = [make_param(device, x) for x in init]
    opt = make(first)
    run(first, opt, grads[:2])
    mc.save({"optimizer": opt.state_dict(), "w0": first[0], "w1": first[1]}, tmp_path / "o.npz")

    flat = mc.load(tmp_path / "o.npz")
    second = [make_param(device, flat["w0"]), make_param(device, flat["w1"])]
    opt2 = make(second)
    opt2.load_state_dict({k[len("optimizer."):]: v for k, v in flat.items()
                          if k.startswith("optimizer.")})
    assert opt2.param_groups[-1]["lr"] == ref_opt.param_groups[-1]["lr"]
    run(second, opt2, grads[2:])
    for r, s in zip(ref, second):
        np.testing.assert_array_equal(host(r), host(s))
        assert backend.device_of(s.data) == device


def test_load_state_dict_checks_shapes():
    p = mc.Tensor(np.zeros(3), requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = mc.Tensor(np.ones(3))
    opt.step()
    state = opt.state_dict()
    q = mc.Tensor(np.zeros(4), requires_grad=True)
    with pytest.raises(ValueError, match="shape"):
        optim.SGD([q], lr=0.1, momentum=0.9).load_state_dict(state)
    with pytest.raises(ValueError, match="group"):
        optim.SGD([{"params": [q]}, {"params": [mc.Tensor(np.zeros(1), requires_grad=True)]}],
                  lr=0.1).load_state_dict(state)


# -- against PyTorch ------------------------------------------------------------------------------

@needs_torch
@pytest.mark.parametrize("name,kwargs", [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.5, 0.9), weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, weight_decay=0.3, eps=1e-6)),
])
def test_matches_torch(device, name, kwargs):
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(4, 3))
    grads = [rng.normal(size=(4, 3)) for _ in range(5)]
    p = make_param(device, w0)
    tp = torch.tensor(w0, requires_grad=True)
    opt = getattr(optim, name)([p], **kwargs)
    topt = getattr(torch.optim, name)([tp], **kwargs)
    for g in grads:
        set_grad(p, g)
        tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
        np.testing.assert_allclose(host(p), tp.detach().numpy(), rtol=1e-10, atol=1e-12)
