"""Optimizers, learning-rate schedules and gradient clipping (``from minicnn import optim``).

    optimizer.py     Optimizer: parameter groups, per-parameter state, state_dict
    sgd.py           SGD (momentum, Nesterov, weight decay)
    adam.py          Adam, AdamW
    lr_scheduler.py  StepLR, MultiStepLR, CosineAnnealingLR, LinearLR, LinearWarmup, SequentialLR
    clip.py          clip_grad_norm_, clip_grad_value_

All follow PyTorch's definitions and update rules, so that numbers can be checked against it.

>>> opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
>>> sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
>>> for epoch in range(epochs):
...     for x, y in loader:
...         opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()
...     sched.step()
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .clip import clip_grad_norm_, clip_grad_value_
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler", "clip_grad_norm_",
           "clip_grad_value_"]
