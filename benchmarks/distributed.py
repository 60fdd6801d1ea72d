"""Data parallelism on two CPU cores: ``mpiexec -n 2`` with one thread per rank against one
process with two threads, one epoch of ``minicnn train``'s default model.

    python benchmarks/distributed.py [--quick] [--json OUT]

1. **Epoch time**: ``minicnn train --epochs 1`` on Fashion-MNIST (the default recipe, global batch
   128): one process ``--threads 2``, then ``mpiexec -n 2 ... --batch-size 64 --threads 1`` (64
   per rank: the same global batch). Each run's ``metrics.json`` gives the epoch's training time
   (``train_seconds``) and its total with the test pass (``seconds``; the data-parallel run
   evaluates on rank 0 alone). ``--quick``: ``--subset 10000 --test-subset 2000``.
2. **All-reduce share of a step**: ``mpiexec -n 2`` runs this file with ``--steps``: training steps
   of the same model (SyncBatchNorm + DistributedDataParallel, 64 images per rank), timing the
   whole step and the time inside ``all_reduce`` (gradient buckets and SyncBatchNorm's sums,
   waiting for the other rank included).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def epoch(extra, launcher, threads, quick):
    with tempfile.TemporaryDirectory() as out:
        command = launcher + [sys.executable, "-m", "minicnn", "train", "--epochs", "1", "--quiet",
                              "--threads", str(threads), "--out", os.path.join(out, "run")] + extra
        if quick:
            command += ["--subset", "10000", "--test-subset", "2000"]
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "run", "metrics.json")) as f:
            record = json.load(f)[-1]
    return {"train_seconds": record["train_seconds"], "seconds": record["seconds"],
            "test_acc": record["test_acc"]}


def step_share(steps):
    """Under mpiexec: seconds per step and the fraction of it inside all_reduce (rank 0's)."""
    import numpy as np

    import minicnn as mc
    import minicnn.distributed as dist
    from minicnn import models, nn, optim
    from minicnn.nn.parallel import DistributedDataParallel

    dist.init_process_group("mpi")
    inside = [0.0]
    reduce = dist.all_reduce

    def timed_all_reduce(tensor, op=dist.ReduceOp.SUM):
        start = time.perf_counter()
        reduce(tensor, op)
        inside[0] += time.perf_counter() - start
    dist.all_reduce = timed_all_reduce  # (the modules call it through the package)
    mc.set_num_threads(1)
    model = DistributedDataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(models.get("fashion_cnn")))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    gen = np.random.default_rng(dist.get_rank())
    x = mc.tensor(gen.random((64, 1, 28, 28), dtype=np.float32))
    y = mc.tensor(gen.integers(0, 10, 64))
    for i in range(steps + 3):
        if i == 3:  # after a warm-up
            dist.barrier()
            inside[0], start = 0.0, time.perf_counter()
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    total = time.perf_counter() - start
    if dist.get_rank() == 0:
        print(json.dumps({"step_ms": 1e3 * total / steps, "all_reduce_ms": 1e3 * inside[0] / steps,
                          "all_reduce_share": inside[0] / total,
                          "gradient_mb": sum(p.data.nbytes for p in model.parameters()) / 2**20}))
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 training images, 2,000 test")
    parser.add_argument("--json", default=None, help="also write the results there")
    parser.add_argument("--steps", type=int, default=None, help=argparse.SUPPRESS)  # (under mpiexec)
    args = parser.parse_args()
    if args.steps:
        return step_share(args.steps)
    mpiexec = ["mpiexec", "-n", "2"]
    one = epoch([], [], 2, args.quick)
    two = epoch(["--batch-size", "64"], mpiexec, 1, args.quick)
    share = subprocess.run(mpiexec + [sys.executable, __file__, "--steps", "30"], check=True,
                           capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    share = json.loads(share.stdout.strip().splitlines()[-1])
    result = {"one_process_2_threads": one, "mpiexec_2_ranks_1_thread": two, "step": share,
              "slowdown_train": two["train_seconds"] / one["train_seconds"],
              "slowdown_epoch": two["seconds"] / one["seconds"], "quick": args.quick}
    print(f"one process, 2 threads:  train {one['train_seconds']:.1f} s, epoch with test "
          f"{one['seconds']:.1f} s, test acc {one['test_acc']:.4f}")
    print(f"mpiexec -n 2, 1 thread:  train {two['train_seconds']:.1f} s, epoch with test "
          f"{two['seconds']:.1f} s, test acc {two['test_acc']:.4f}")
    print(f"2 ranks / 1 process: {result['slowdown_train']:.2f}x (training), "
          f"{result['slowdown_epoch']:.2f}x (with the test pass)")
    print(f"a data-parallel step: {share['step_ms']:.1f} ms, of which all_reduce {share['all_reduce_ms']:.2f} ms "
          f"({100 * share['all_reduce_share']:.1f}%; {share['gradient_mb']:.2f} MB of gradients)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
