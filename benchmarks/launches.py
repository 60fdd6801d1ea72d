"""Device operations per training step, counted without a GPU: the launch overhead, as a number.

    python benchmarks/launches.py [--models lenet5,resnet20] [--path cuda|standin] [--json OUT]
                                  [--optimizer sgd|adam] [--by-op] [--top 15] [--loop]

On a GPU each whole-array operation is (at least) one kernel launch of a few microseconds, so a
small model's step is bound by how many there are, not by arithmetic. This script runs one
training step (forward, cross-entropy, backward, SGD with momentum or Adam) of each model on the stand-in
device, watched (``testing.watch_standin``), and counts what each operation would be on the GPU:

* ``launch``: a kernel (any new data, an in-place write, a reduction, a hand-written kernel);
* ``download``: a device-to-host copy, which waits for the GPU (a sync);
* ``upload``, ``alloc``, ``view``: host-to-device copies, allocations, free reshapes.

``--path cuda`` (the default) takes the CUDA code path: the CUDA classes of ``minicnn/fast/gpu.py``
with their kernels compiled for the CPU (``minicnn.testing.cuda_on_cpu``), which is what
``--device cuda`` runs. ``--path standin`` takes the whole-array device code instead (what runs
where a class has no kernel). Counts do not depend on the batch size; small batches keep it quick.
Each launch is attributed to the op (``BatchNorm.forward``), the optimizer or the engine code
that issued it. ``--loop`` counts the steps of ``Trainer.train_epoch`` instead, with the data set
on the device and flip, crop and normalize: what ``minicnn train`` adds around the step.
"""
import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import minicnn as mc  # noqa: E402
import minicnn.functional as F  # noqa: E402
from minicnn import backend, models, optim, testing  # noqa: E402
from minicnn.function import Function  # noqa: E402

CASES = {  # name -> input shape (those of benchmarks/models.py)
    "lenet5": (1, 28, 28),
    "fashion_cnn": (1, 28, 28),
    "resnet20": (3, 32, 32),
    "alexnet": (3, 227, 227),
    "vgg11": (3, 224, 224),
}
KINDS = ("launch", "download", "upload", "alloc", "view")
PACKAGE = str(Path(mc.__file__).parent)
TESTING = str(Path(testing.__file__).parent)  # the stand-in device and the CPU-built kernels


def where(frame):
    """Who issued the operation: ``Class.forward``/``.backward`` of the innermost Function, else
    the optimizer, else the innermost minicnn function outside the backend and fast paths."""
    fallback = None
    while frame is not None:
        owner = frame.f_locals.get("self")
        name = frame.f_code.co_name
        if isinstance(owner, Function) and name in ("forward", "backward"):
            return f"{type(owner).__name__}.{name}"
        if isinstance(owner, optim.Optimizer):
            return f"{type(owner).__name__}.{name}"
        path = frame.f_code.co_filename
        if (fallback is None and path.startswith(PACKAGE) and not path.endswith("backend.py")
                and not path.startswith(TESTING)):
            fallback = f"{Path(path).stem}.{name}"
        frame = frame.f_back
    return fallback or "caller"


OPTIMIZERS = {"sgd": lambda params: optim.SGD(params, lr=0.01, momentum=0.9),
              "adam": lambda params: optim.Adam(params, lr=1e-3)}


def count_step(name, batch, path, optimizer="sgd", seed=0):
    """``{"kinds": {kind: n}, "by_issuer": {issuer: launches}, "by_op": {op: launches}}`` of one
    training step (the second one: the first builds momentum buffers and compiles kernels)."""
    mc.manual_seed(seed)
    model = models.get(name).to("standin").train()
    rng = np.random.default_rng(seed)
    x = mc.Tensor(backend.to_device(rng.random((batch,) + CASES[name], dtype=np.float32), "standin"))
    y = backend.to_device(rng.integers(0, 10, size=batch), "standin")
    opt = OPTIMIZERS[optimizer](model.parameters())

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    kinds, issuers, ops = collections.Counter(), collections.Counter(), collections.Counter()

    def watch(kind, op):
        kinds[kind] += 1
        if kind in ("launch", "download"):
            issuers[where(sys._getframe(2))] += 1
            ops[op] += 1

    context = _cuda_context() if path == "cuda" else _nothing()
    with context:
        step()
        with testing.watch_standin(watch):
            step()
    return {"model": name, "path": path, "batch": batch, "optimizer": optimizer,
            "kinds": {k: kinds[k] for k in KINDS},
            "parameters": sum(1 for _ in model.parameters()),
            "by_issuer": dict(issuers.most_common()), "by_op": dict(ops.most_common())}


def count_training_loop(name, batch, path, optimizer="sgd", steps=8, seed=0):
    """Like :func:`count_step`, per step of ``Trainer.train_epoch`` over a device-resident
    ``DataLoader`` with flip, crop and normalize (random uint8 images of the model's input shape):
    what ``minicnn train --device cuda`` adds to the step (batching, augmentation, metrics)."""
    from minicnn.data import transforms as T
    from minicnn.data.datasets import ArrayDataset
    from minicnn.data.loader import DataLoader
    from minicnn.train.trainer import Trainer
    mc.manual_seed(seed)
    shape = CASES[name]
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(batch * steps,) + shape, dtype=np.uint8)
    augment = T.Compose([T.RandomHorizontalFlip(), T.RandomCrop(shape[1:], padding=2),
                         T.Normalize([0.5] * shape[0], [0.25] * shape[0])])
    loader = DataLoader(ArrayDataset(images, rng.integers(0, 10, size=len(images))), batch_size=batch,
                        shuffle=True, drop_last=True, transform=augment, device="standin")
    model = models.get(name).to("standin")
    trainer = Trainer(model, OPTIMIZERS[optimizer](model.parameters()), loader, None, device="standin",
                      progress=False, epochs=1)
    kinds = collections.Counter()
    with _cuda_context() if path == "cuda" else _nothing():
        trainer.train_epoch(1)  # momentum buffers, kernels, the data set's one copy to the device
        with testing.watch_standin(lambda kind, op: kinds.update([kind])):
            trainer.train_epoch(1)
    return {"model": name, "path": path, "batch": batch, "optimizer": optimizer, "loop": True,
            "kinds": {k: kinds[k] / steps for k in KINDS}}


def _cuda_context():
    from minicnn.testing import cuda_on_cpu
    return cuda_on_cpu.cuda_paths_on_standin()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(CASES))
    parser.add_argument("--path", choices=("cuda", "standin"), default="cuda")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="sgd")
    parser.add_argument("--top", type=int, default=12, help="issuers (or ops) listed per model")
    parser.add_argument("--by-op", action="store_true", help="list launches by NumPy op, not by issuer")
    parser.add_argument("--loop", action="store_true",
                        help="count Trainer.train_epoch's steps (device data, augmentation, metrics) instead")
    parser.add_argument("--json", help="write the counts to this file")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {sorted(CASES)}")
    results = []
    print(f"device operations per training step ({args.path} path, {args.optimizer}"
          f"{', in Trainer.train_epoch with device data and augmentation' if args.loop else ''})")
    print(f"{'model':<12} {'params':>6} " + " ".join(f"{k:>8}" for k in KINDS))
    for name in names:
        if args.loop:
            r = count_training_loop(name, args.batch, args.path, args.optimizer)
            r.update(parameters=sum(1 for _ in models.get(name).parameters()), by_issuer={}, by_op={})
        else:
            r = count_step(name, args.batch, args.path, args.optimizer)
        results.append(r)
        print(f"{name:<12} {r['parameters']:>6} " + " ".join(f"{r['kinds'][k]:>8g}" for k in KINDS))
    for r in results if args.top > 0 and not args.loop else ():
        table = r["by_op"] if args.by_op else r["by_issuer"]
        print(f"\n{r['model']}: launches and downloads by {'op' if args.by_op else 'issuer'}")
        for key, n in list(table.items())[:args.top]:
            print(f"  {n:>5}  {key}")
    if args.json:
        Path(args.json).write_text(json.dumps({"benchmark": "launches", "results": results}, indent=1) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
