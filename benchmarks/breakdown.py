"""Where the time goes in one training step: forward and backward time of every op, per step.

    python benchmarks/breakdown.py [--models fashion_cnn,resnet20] [--steps 5] [--threads 2]
                                   [--json OUT] [--device cpu|cuda]

Every ``Function`` subclass's ``forward`` and ``backward`` is wrapped in a timer for the run, so the
table shows each op's own time (summed over its calls in a step, median over the steps after a
warm-up step); "rest of the step" is everything outside the ops: the autograd walk, gradient
accumulation, the optimizer and Python overheads.
"""
import argparse
import collections
import statistics
import time

import _common  # noqa: F401  (pins threads before numpy loads)
from _common import add_common_arguments, machine, print_table, sync, write_json

import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import backend, models, optim
from minicnn.function import Function

BATCH_AND_SHAPE = {"lenet5": (128, (1, 28, 28)), "fashion_cnn": (128, (1, 28, 28)),
                   "resnet20": (128, (3, 32, 32)), "alexnet": (8, (3, 227, 227)),
                   "vgg11": (4, (3, 224, 224))}


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


class OpTimer:
    """Wraps forward/backward of every Function subclass defined so far; ``totals`` collects
    seconds per (op, "forward"/"backward") until ``reset``."""

    def __init__(self, device):
        self.device = device
        self.totals = collections.Counter()
        self.depth = 0  # ops that call ops (a Function inside a Function) count once, outermost
        self.saved = []
        for cls in set(_subclasses(Function)):
            for kind in ("forward", "backward"):
                if kind in cls.__dict__:
                    self.saved.append((cls, kind, cls.__dict__[kind]))
                    setattr(cls, kind, self._wrap(cls.__name__, kind, cls.__dict__[kind]))

    def _wrap(self, name, kind, method):
        def timed(fn_self, *args):
            if self.depth:
                return method(fn_self, *args)
            self.depth += 1
            sync(self.device)
            t0 = time.perf_counter()
            try:
                return method(fn_self, *args)
            finally:
                sync(self.device)
                self.totals[(name, kind)] += time.perf_counter() - t0
                self.depth -= 1
        return timed

    def restore(self):
        for cls, kind, method in self.saved:
            setattr(cls, kind, method)


def breakdown(name, steps, device):
    batch, shape = BATCH_AND_SHAPE[name]
    mc.manual_seed(0)
    model = models.get(name).to(device).train()
    rng = np.random.default_rng(0)
    x = mc.Tensor(backend.to_device(rng.random((batch,) + shape, dtype=np.float32), device))
    y = backend.to_device(rng.integers(0, 10, size=batch), device)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    timer = OpTimer(device)
    per_step, step_times = [], []
    try:
        for i in range(steps + 1):
            timer.totals.clear()
            sync(device)
            t0 = time.perf_counter()
            step()
            sync(device)
            if i:  # the first step is a warm-up
                step_times.append(time.perf_counter() - t0)
                per_step.append(dict(timer.totals))
    finally:
        timer.restore()
    keys = sorted({k for s in per_step for k in s})
    ops = {k: statistics.median(s.get(k, 0.0) for s in per_step) for k in keys}
    return {"model": name, "batch": batch, "step_s": statistics.median(step_times),
            "ops": [{"op": op, "pass": kind, "seconds": t} for (op, kind), t in ops.items()]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--models", default="fashion_cnn,resnet20")
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    steps = 2 if args.quick else args.steps
    results = []
    for name in args.models.split(","):
        r = breakdown(name, steps, args.device)
        results.append(r)
        step = r["step_s"]
        by_op = collections.defaultdict(dict)
        for row in r["ops"]:
            by_op[row["op"]][row["pass"]] = row["seconds"]
        rows = []
        for op, d in sorted(by_op.items(), key=lambda kv: -sum(kv[1].values())):
            total = sum(d.values())
            rows.append([op, f"{d.get('forward', 0) * 1e3:8.2f}", f"{d.get('backward', 0) * 1e3:8.2f}",
                         f"{total * 1e3:8.2f}", f"{100 * total / step:5.1f}%"])
        rest = step - sum(row["seconds"] for row in r["ops"])
        rows.append(["rest of the step", "", "", f"{rest * 1e3:8.2f}", f"{100 * rest / step:5.1f}%"])
        print(f"\n{name}, batch {r['batch']}, {args.threads} thread(s), {args.device}: "
              f"{step * 1e3:.1f} ms per training step (median of {steps})")
        print_table(["op", "forward ms", "backward ms", "total ms", "of step"], rows)
    if args.json:
        write_json(args.json, {"machine": machine(), "device": args.device, "results": results})


if __name__ == "__main__":
    main()
