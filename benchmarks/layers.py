"""Forward and forward+backward time of each layer at the lecture's shapes: naive, minicnn, PyTorch.

    python benchmarks/layers.py [--quick] [--json OUT] [--threads 2] [--device cpu|cuda]

For every case it prints the median of repeated runs after a warm-up (and the min-max spread),
GFLOP/s for the convolutions and linear layers, the fraction of numpy's float32 GEMM rate measured
in the same process, and the ratio minicnn / PyTorch (same thread count). The naive reference
(plain loops, ``minicnn/functional/reference.py``) is timed on one image and scaled to the batch.
The case list runs ``--rounds`` times (3; 1 with ``--quick``) and each figure is the median over the
rounds; the ratio is the median of the rounds' ratios (a shared machine's load changes by the minute).
"""
import argparse
import math
import statistics

import _common  # noqa: F401  (pins threads before numpy loads)
from _common import (add_common_arguments, fmt_time, gemm_rate, load_torch, machine, print_table,
                     timeit, write_json)

import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import backend
from minicnn.functional import reference

CONV_CASES = [  # name, N, C_in, C_out, H(=W), kernel, stride, padding
    ("resnet-cifar stage1 3x3", 128, 16, 16, 32, 3, 1, 1),
    ("resnet-cifar stage3 3x3", 128, 64, 64, 8, 3, 1, 1),
    ("alexnet conv1 11x11/4", 32, 3, 96, 227, 11, 4, 0),
    ("alexnet conv2 5x5", 32, 96, 256, 27, 5, 1, 2),
    ("vgg conv 3x3 112", 8, 64, 64, 112, 3, 1, 1),
    ("bottleneck 1x1", 32, 256, 64, 28, 1, 1, 0),
]
QUICK_CONV = {"resnet-cifar stage1 3x3", "resnet-cifar stage3 3x3", "alexnet conv2 5x5", "bottleneck 1x1"}


def _rand(shape, seed, device):
    data = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return mc.Tensor(backend.to_device(data, device), requires_grad=True)


def _fwd_bwd(fn, inputs):
    """forward, then backward with a constant upstream gradient (one fill, as PyTorch's side does)."""
    out = fn(*inputs)
    out.backward(backend.get_array_module(out.data).full_like(out.data, 1e-3))
    for t in inputs:
        t.grad = None


def conv_cases(args):
    cases = []
    for name, n, cin, cout, hw, k, s, p in CONV_CASES:
        if args.quick and name not in QUICK_CONV:
            continue
        ho = (hw - k + 2 * p) // s + 1
        flops = 2 * n * cout * ho * ho * cin * k * k
        cases.append(dict(name=f"conv2d {name}", flops=flops,
                          shapes=[(n, cin, hw, hw), (cout, cin, k, k), (cout,)],
                          mc=lambda x, w, b, s=s, p=p: F.conv2d(x, w, b, stride=s, padding=p),
                          naive=lambda x, w, b, s=s, p=p: reference.conv2d_naive(x, w, b, stride=s, padding=p),
                          torch=lambda tF, x, w, b, s=s, p=p: tF.conv2d(x, w, b, stride=s, padding=p)))
    pool_shape = (32, 96, 55, 55)
    cases += [
        dict(name="max_pool2d 3x3/2 (32,96,55,55)", shapes=[pool_shape],
             mc=lambda x: F.max_pool2d(x, 3, 2), naive=lambda x: reference.max_pool2d_naive(x, 3, 2),
             torch=lambda tF, x: tF.max_pool2d(x, 3, 2)),
        dict(name="avg_pool2d 3x3/2 (32,96,55,55)", shapes=[pool_shape],
             mc=lambda x: F.avg_pool2d(x, 3, 2), naive=lambda x: reference.avg_pool2d_naive(x, 3, 2),
             torch=lambda tF, x: tF.avg_pool2d(x, 3, 2)),
        dict(name="local_response_norm 5 (32,96,55,55)", shapes=[pool_shape],
             mc=lambda x: F.local_response_norm(x, 5, 1e-4, 0.75, 2.0),
             torch=lambda tF, x: tF.local_response_norm(x, 5, 1e-4, 0.75, 2.0)),
        dict(name="relu (32,96,55,55)", shapes=[pool_shape], mc=F.relu, torch=lambda tF, x: tF.relu(x)),
        dict(name="batch_norm train (128,16,32,32)", shapes=[(128, 16, 32, 32), (16,), (16,)], bn=True),
        dict(name="linear (32, 9216->4096)", shapes=[(32, 9216), (4096, 9216), (4096,)],
             flops=2 * 32 * 9216 * 4096, mc=F.linear, torch=lambda tF, x, w, b: tF.linear(x, w, b)),
    ]
    if args.quick:
        cases = [c for c in cases if not c["name"].startswith(("avg_pool2d", "relu"))]
    return cases


def _combine(runs):
    """One row from the rounds of a case: the median over rounds of each timing's median (min and
    max over all runs), and the median over rounds of the minicnn/PyTorch fwd+bwd ratio."""
    row = {"name": runs[0]["name"], "flops": runs[0]["flops"], "rounds": runs}
    for key in ("fwd", "fwd_bwd", "torch_fwd", "torch_fwd_bwd"):
        if key in runs[0]:
            row[key] = {"median": statistics.median(r[key]["median"] for r in runs),
                        "min": min(r[key]["min"] for r in runs), "max": max(r[key]["max"] for r in runs)}
    if "naive_fwd" in runs[0]:
        row["naive_fwd"] = runs[0]["naive_fwd"]
    ratios = [r["fwd_bwd"]["median"] / r["torch_fwd_bwd"]["median"] for r in runs if "torch_fwd_bwd" in r]
    row["ratio_vs_torch"] = statistics.median(ratios) if ratios else None
    return row


def bench_case(case, args, torch, repeats, naive=True):
    dev = args.device
    inputs = [_rand(s, i, dev) for i, s in enumerate(case["shapes"])]
    row = {"name": case["name"], "flops": case.get("flops")}
    if case.get("bn"):
        c = case["shapes"][0][1]
        xp = backend.module_for_device(dev)
        rm, rv = xp.zeros(c, dtype=np.float32), xp.ones(c, dtype=np.float32)
        case = dict(case, mc=lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=True),
                    torch=None)
    row["fwd"] = timeit(lambda: case["mc"](*inputs), repeats, device=dev)
    row["fwd_bwd"] = timeit(lambda: _fwd_bwd(case["mc"], inputs), repeats, device=dev)

    if naive and case.get("naive") and dev == "cpu" and not (args.quick and case["name"].startswith("conv2d alexnet")):
        one = [backend.to_numpy(t.data)[:1] if i == 0 else backend.to_numpy(t.data)
               for i, t in enumerate(inputs)]
        t = timeit(lambda: case["naive"](*one), repeats=1, warmup=0)
        row["naive_fwd"] = t["median"] * case["shapes"][0][0]  # scaled to the batch

    if torch is not None:
        tF = torch.nn.functional
        tdev = "cuda" if dev == "cuda" else "cpu"
        tin = [torch.tensor(backend.to_numpy(t.data), device=tdev, requires_grad=True) for t in inputs]
        tsync = torch.cuda.synchronize if dev == "cuda" else None
        if case.get("bn"):
            c = case["shapes"][0][1]
            trm, trv = torch.zeros(c, device=tdev), torch.ones(c, device=tdev)
            tfn = lambda x, w, b: tF.batch_norm(x, trm, trv, w, b, training=True)  # noqa: E731
        else:
            tfn = lambda *xs: case["torch"](tF, *xs)  # noqa: E731

        def t_fwd_bwd():
            out = tfn(*tin)
            out.backward(torch.full_like(out, 1e-3))
            for t in tin:
                t.grad = None

        row["torch_fwd"] = timeit(lambda: tfn(*tin), repeats, torch_sync=tsync)
        row["torch_fwd_bwd"] = timeit(t_fwd_bwd, repeats, torch_sync=tsync)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--rounds", type=int, default=None,
                        help="measure every case this many times, alternating with PyTorch; each "
                             "figure is the median over the rounds (default 3, or 1 with --quick)")
    args = parser.parse_args()
    torch = load_torch(args)
    repeats = 3 if args.quick else 7
    gemm = gemm_rate(1024 if args.quick else 2048)
    print(f"numpy float32 GEMM: {gemm:.1f} GFLOP/s on {args.threads} thread(s)")
    rounds = args.rounds or (1 if args.quick else 3)
    cases = conv_cases(args)
    per_round = []
    for round_ in range(rounds):  # the whole list again: load on a shared machine hits both alike
        per_round.append([bench_case(case, args, torch, repeats, naive=round_ == 0) for case in cases])
        print(f"  round {round_ + 1}/{rounds} done", flush=True)
    rows, table = [], []
    for i, case in enumerate(cases):
        runs = [rnd[i] for rnd in per_round]
        r = _combine(runs)
        rows.append(r)
        fb = r["fwd_bwd"]["median"]
        gflops = r["flops"] * 3 / fb / 1e9 if r["flops"] else None
        r["fwd_bwd_gflops"], r["gemm_fraction"] = gflops, gflops / gemm if gflops else None
        ratio = r["ratio_vs_torch"]
        table.append([r["name"], fmt_time(r.get("naive_fwd")), fmt_time(r["fwd"]["median"]),
                      fmt_time(fb) + f" [{r['fwd_bwd']['min'] * 1e3:.1f}-{r['fwd_bwd']['max'] * 1e3:.1f}]",
                      fmt_time(r.get("torch_fwd", {}).get("median")),
                      fmt_time(r.get("torch_fwd_bwd", {}).get("median")),
                      f"{gflops:6.1f}" if gflops else "-", f"{gflops / gemm:5.0%}" if gflops else "-",
                      f"{ratio:5.2f}x" if ratio else "-"])
    print()
    print_table(["case", "naive fwd", "fwd", "fwd+bwd [min-max ms]", "torch fwd", "torch fwd+bwd",
                 "GFLOP/s", "of GEMM", "vs torch"], table)
    convs = [r["ratio_vs_torch"] for r in rows if r["name"].startswith("conv2d") and r["ratio_vs_torch"]]
    summary = {}
    if convs:
        summary["conv_geomean_ratio"] = math.exp(sum(math.log(c) for c in convs) / len(convs))
        summary["conv_worst_ratio"] = max(convs)
        print(f"\nconv2d fwd+bwd minicnn/PyTorch: geometric mean {summary['conv_geomean_ratio']:.2f}x, "
              f"worst {summary['conv_worst_ratio']:.2f}x over {len(convs)} shapes")
    write_json(args.json, {"machine": machine(), "gemm_gflops": gemm, "device": args.device,
                           "results": rows, "summary": summary})


if __name__ == "__main__":
    main()
