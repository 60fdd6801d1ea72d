"""Learning-rate schedules against their formulas (by hand) and against PyTorch when present."""
import math

import numpy as np
import pytest

import minicnn as mc
from minicnn import optim
from minicnn.optim import lr_scheduler as S

try:
    import torch
except Exception:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")


def make_opt(lr=1.0, groups=1):
    ps = [mc.Tensor(np.zeros(1), requires_grad=True) for _ in range(groups)]
    return optim.SGD([{"params": [p], "lr": lr * (i + 1)} for i, p in enumerate(ps)], lr=lr,
                     momentum=0.9)


def run(sched, n):
    """The lr of group 0 at steps 0..n-1 (step 0 = right after construction)."""
    lrs = []
    for _ in range(n):
        lrs.append(sched.optimizer.param_groups[0]["lr"])
        assert sched.get_last_lr()[0] == lrs[-1]
        sched.optimizer.step()
        sched.step()
    return lrs


def test_step_lr():
    sched = S.StepLR(make_opt(1.0), step_size=2, gamma=0.5)
    assert run(sched, 7) == [1, 1, 0.5, 0.5, 0.25, 0.25, 0.125]


def test_multistep_lr():
    sched = S.MultiStepLR(make_opt(0.1), milestones=[3, 1], gamma=0.1)
    np.testing.assert_allclose(run(sched, 5), [0.1, 0.01, 0.01, 0.001, 0.001])


def test_cosine_annealing():
    sched = S.CosineAnnealingLR(make_opt(1.0), T_max=4, eta_min=0.2)
    lrs = run(sched, 5)
    expected = [0.2 + 0.8 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    np.testing.assert_allclose(lrs, expected)
    assert lrs[0] == 1.0 and abs(lrs[2] - 0.6) < 1e-12 and abs(lrs[4] - 0.2) < 1e-12


def test_linear_lr_and_warmup():
    sched = S.LinearLR(make_opt(1.0), start_factor=0.25, end_factor=1.0, total_iters=3)
    np.testing.assert_allclose(run(sched, 5), [0.25, 0.5, 0.75, 1.0, 1.0])
    sched = S.LinearWarmup(make_opt(0.5), total_iters=2)
    np.testing.assert_allclose(run(sched, 4), [0.05, 0.275, 0.5, 0.5])


def test_sequential_warmup_then_cosine():
    opt = make_opt(1.0)
    warm = S.LinearWarmup(opt, 0.5, 1.0, 2)
    cos = S.CosineAnnealingLR(opt, T_max=2)
    sched = S.SequentialLR(opt, [warm, cos], milestones=[2])
    np.testing.assert_allclose(run(sched, 5), [0.5, 0.75, 1.0, 0.5, 0.0], atol=1e-12)


def test_every_group_is_scheduled():
    opt = make_opt(1.0, groups=2)
    sched = S.StepLR(opt, step_size=1, gamma=0.5)
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == [0.5, 1.0]
    assert sched.get_last_lr() == [0.5, 1.0]


@pytest.mark.parametrize("make", [
    lambda o: S.StepLR(o, 2, 0.5),
    lambda o: S.MultiStepLR(o, [2, 5], 0.3),
    lambda o: S.CosineAnnealingLR(o, 7, 0.01),
    lambda o: S.LinearLR(o, 0.1, 0.9, 4),
    lambda o: S.SequentialLR(o, [S.LinearWarmup(o, total_iters=3), S.CosineAnnealingLR(o, 5)], [3]),
])
def test_state_dict_round_trip(tmp_path, make):
    ref_opt = make_opt(0.3)
    ref = make(ref_opt)
    expected = run(ref, 9)

    opt = make_opt(0.3)
    sched = make(opt)
    first = run(sched, 4)
    mc.save({"s": sched.state_dict(), "o": opt.state_dict()}, tmp_path / "s.npz")
    flat = mc.load(tmp_path / "s.npz")

    opt2 = make_opt(0.3)
    sched2 = make(opt2)
    opt2.load_state_dict(mc.serialization.subdict(flat, "o"))
    sched2.load_state_dict(mc.serialization.subdict(flat, "s"))
    assert sched2.last_epoch == 4
    assert first + run(sched2, 5) == expected


@needs_torch
@pytest.mark.parametrize("name,args,kwargs", [
    ("StepLR", (3,), dict(gamma=0.5)),
    ("MultiStepLR", ([2, 4, 7],), dict(gamma=0.2)),
    ("CosineAnnealingLR", (6,), dict(eta_min=0.01)),
    ("LinearLR", (), dict(start_factor=0.2, end_factor=0.9, total_iters=4)),
    ("ConstantLR", (), dict(factor=0.5, total_iters=3)),
])
def test_matches_torch(name, args, kwargs):
    import warnings
    opt = make_opt(0.4, groups=2)
    sched = getattr(S, name)(opt, *args, **kwargs)
    tps = [torch.zeros(1, requires_grad=True) for _ in range(2)]
    topt = torch.optim.SGD([{"params": [tps[0]], "lr": 0.4}, {"params": [tps[1]], "lr": 0.8}],
                           lr=0.4)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, *args, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(12):
            np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12)
            opt.step()
            topt.step()
            sched.step()
            tsched.step()


@needs_torch
def test_sequential_matches_torch():
    import warnings
    opt = make_opt(0.4)
    sched = S.SequentialLR(opt, [S.LinearLR(opt, 0.1, 1.0, 3), S.CosineAnnealingLR(opt, 6)], [3])
    tp = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([tp], lr=0.4)
    tl = torch.optim.lr_scheduler
    tsched = tl.SequentialLR(topt, [tl.LinearLR(topt, 0.1, 1.0, 3), tl.CosineAnnealingLR(topt, 6)],
                             [3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(10):
            np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-9,
                                       atol=1e-15)
            opt.step()
            topt.step()
            sched.step()
            tsched.step()
