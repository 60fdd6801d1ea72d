"""Training-step throughput (forward, backward, SGD update) of whole models: minicnn vs PyTorch.

    python benchmarks/models.py [--quick] [--json OUT] [--threads 2] [--device cpu|cuda]
                                [--models lenet5,fashion_cnn,...]

Each (model, framework) pair runs in its own subprocess so that its peak resident memory is its
own. Both frameworks get the same thread count, the same weights (PyTorch twins built by
``_torch_mirror.py``; outputs are compared before timing) and the same random batch. The two
frameworks alternate for ``--rounds`` rounds (3; 1 with ``--quick``), and the ratio reported is the
median of the rounds' ratios, so that load from other jobs on a shared machine hits both alike.
"""
import argparse
import importlib.util
import os
import statistics

import _common  # noqa: F401  (pins threads before numpy loads)
from _common import (add_common_arguments, machine, print_result, print_table, run_child, same_precision,
                     write_json)

CASES = [  # name, batch, input shape
    ("lenet5", 128, (1, 28, 28)),
    ("fashion_cnn", 128, (1, 28, 28)),
    ("resnet20", 128, (3, 32, 32)),
    ("alexnet", 8, (3, 227, 227)),
    ("vgg11", 4, (3, 224, 224)),
]


def run_one(name, framework, batch, shape, repeats, device):
    """Time ``repeats`` training steps in this process; return a dict (called in the subprocess)."""
    import numpy as np

    from _common import peak_rss_mb, timeit

    import minicnn as mc
    import minicnn.functional as F
    from minicnn import backend, checks, models, optim

    mc.manual_seed(0)
    model = models.get(name)
    rng = np.random.default_rng(0)
    x_host = rng.random((batch,) + shape, dtype=np.float32)
    y_host = rng.integers(0, 10, size=batch)
    result = {"model": name, "framework": framework, "batch": batch}

    if framework == "minicnn":
        model.to(device).train()
        x = mc.Tensor(backend.to_device(x_host, device))
        y = backend.to_device(y_host, device)
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step():  # the label check waits for the step's end, as in Trainer (and PyTorch's
            with checks.deferred_checks():  # asynchronous device assert): no sync mid-step
                opt.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
        t = timeit(step, repeats=repeats, warmup=1, device=device)
    else:
        import torch
        from _torch_mirror import mirror
        same_precision(torch)  # TF32 for convolutions exactly when minicnn's have it (--tf32)
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        tdev = "cuda" if device == "cuda" else "cpu"
        twin = mirror(model, torch).to(tdev)
        model.eval()
        twin.eval()
        with torch.no_grad():  # same computation? (eval mode: no dropout, running BN stats)
            ours = model(mc.Tensor(x_host[:2])).numpy()
            theirs = twin(torch.from_numpy(x_host[:2]).to(tdev)).cpu().numpy()
        result["max_output_diff"] = float(np.abs(ours - theirs).max())
        twin.train()
        xt, yt = torch.from_numpy(x_host).to(tdev), torch.from_numpy(y_host).to(tdev)
        opt = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9)
        tsync = torch.cuda.synchronize if tdev == "cuda" else None

        def step():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(twin(xt), yt)
            loss.backward()
            opt.step()
        t = timeit(step, repeats=repeats, warmup=1, torch_sync=tsync)
    result.update(step_s=t, images_per_s=batch / t["median"], peak_rss_mb=peak_rss_mb())
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--models", default=None, help="comma-separated subset of " +
                        ",".join(c[0] for c in CASES))
    parser.add_argument("--rounds", type=int, default=None,
                        help="alternate minicnn and PyTorch this many times; the ratio is the median "
                             "of the rounds' ratios (default 3, or 1 with --quick)")
    parser.add_argument("--_child", nargs=4, metavar=("MODEL", "FRAMEWORK", "BATCH", "REPEATS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        name, framework, batch, repeats = args._child
        shape = dict((c[0], c[2]) for c in CASES)[name]
        print_result(run_one(name, framework, int(batch), shape, int(repeats), args.device))
        return

    wanted = args.models.split(",") if args.models else [c[0] for c in CASES]
    frameworks = ["minicnn"]
    if not args.no_torch:
        # find it without importing it: a child's peak RSS (ru_maxrss) includes the parent's
        # memory at the fork, and importing torch here would add ~150 MB to every minicnn row
        if importlib.util.find_spec("torch") is not None:
            frameworks.append("torch")
        else:
            print("PyTorch not installed: minicnn only")
    repeats = 3 if args.quick else 10
    rounds = args.rounds or (1 if args.quick else 3)
    results = []
    for name, batch, _ in CASES:
        if name not in wanted:
            continue
        for round_ in range(rounds):  # alternate the frameworks: load on a shared machine hits both
            for fw in frameworks:
                r = run_child([os.path.abspath(__file__), "--threads", str(args.threads), "--device",
                               args.device, "--_child", name, fw, str(batch), str(repeats)]
                              + (["--tf32"] if args.tf32 else []), f"{name} / {fw}")
                if r is None:
                    continue
                r["round"] = round_
                results.append(r)
                print(f"  {name:<12} {fw:<8} round {round_ + 1}/{rounds} {r['images_per_s']:9.1f} images/s  "
                      f"peak RSS {r['peak_rss_mb']:7.0f} MB", flush=True)

    rows = []
    for name in wanted:
        ours = [r for r in results if r["model"] == name and r["framework"] == "minicnn"]
        theirs = [r for r in results if r["model"] == name and r["framework"] == "torch"]
        if not ours:
            continue
        step = statistics.median(r["step_s"]["median"] for r in ours)
        their_step = statistics.median(r["step_s"]["median"] for r in theirs) if theirs else None
        ratios = [o["step_s"]["median"] / t["step_s"]["median"] for o in ours for t in theirs
                  if o["round"] == t["round"]]
        ratio = statistics.median(ratios) if ratios else None  # each round's ratio, then the median
        rows.append([name, ours[0]["batch"], f"{step * 1e3:.1f} ms", f"{ours[0]['batch'] / step:.0f}",
                     f"{max(r['peak_rss_mb'] for r in ours):.0f}",
                     f"{theirs[0]['batch'] / their_step:.0f}" if theirs else "-",
                     f"{max(r['peak_rss_mb'] for r in theirs):.0f}" if theirs else "-",
                     f"{ratio:.2f}x" if ratio else "-",
                     f"{theirs[0]['max_output_diff']:.1e}" if theirs else "-"])
    print()
    print_table(["model", "batch", "minicnn step", "img/s", "peak MB", "torch img/s", "torch MB",
                 "time vs torch", "output diff"], rows)
    write_json(args.json, {"machine": machine(), "device": args.device, "results": results})


if __name__ == "__main__":
    main()
