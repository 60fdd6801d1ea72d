"""Peak resident memory (and time) of one training step of a large model, with and without chunked
convolution columns and with and without the allocator tuning.

    python benchmarks/memory.py [--model vgg16] [--batch 8] [--threads 2] [--json OUT]

Each configuration runs in its own subprocess (peak RSS is per process): five training steps
(forward, backward, SGD with momentum), of which the table shows the first and the median of the
last three (the first two still allocate momentum buffers and thread scratch space), and the
process's peak resident set size.

    chunked        the defaults: columns built a few MB at a time (``conv.CPU_CHUNK_BYTES``)
    whole batch    every convolution builds its whole column matrix at once
    no allocator   the defaults, but ``MINICNN_KEEP_FREED_MEMORY=0`` (see ``minicnn/fast/host_memory.py``)
"""
import argparse
import os
import statistics

import _common  # noqa: F401  (pins threads before numpy loads)
from _common import machine, print_result, print_table, run_child, write_json

CONFIGS = {
    "chunked": {},
    "whole batch": {"whole_batch": True},
    "no allocator": {"env": {"MINICNN_KEEP_FREED_MEMORY": "0"}},
}


def child(model_name, batch, whole_batch):
    import time

    import numpy as np

    from _common import peak_rss_mb

    import minicnn as mc
    import minicnn.functional as F
    from minicnn import models, optim
    from minicnn.fast import conv_cpu

    if whole_batch:  # one chunk: the whole batch's columns at once
        conv_cpu.CPU_CHUNK_BYTES = conv_cpu.CPU_SPLIT_BYTES = 1 << 62
    mc.manual_seed(0)
    model = models.get(model_name).train()
    size = 227 if model_name in ("alexnet", "zfnet") else 224
    x = mc.Tensor(np.random.default_rng(0).random((batch, 3, size, size), dtype=np.float32))
    y = np.arange(batch) % 10
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return {"step_s": statistics.median(times[2:]), "first_step_s": times[0], "steps_s": times,
            "peak_rss_mb": peak_rss_mb()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vgg16")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", metavar="OUT")
    parser.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        name, batch, whole = args._child
        print_result(child(name, int(batch), whole == "1"))
        return
    rows, results = [], {}
    for label, cfg in CONFIGS.items():
        env = dict(os.environ, **cfg.get("env", {}))
        r = run_child([os.path.abspath(__file__), "--threads", str(args.threads), "--_child", args.model,
                       str(args.batch), "1" if cfg.get("whole_batch") else "0"], label, env)
        if r is None:
            continue
        results[label] = r
        rows.append([label, f"{r['peak_rss_mb']:.0f} MB", f"{r['step_s']:.2f} s", f"{r['first_step_s']:.2f} s"])
        print(f"  {label}: done", flush=True)
    if not rows:
        return
    print(f"\n{args.model}, batch {args.batch}, {args.threads} thread(s): one training step")
    print_table(["configuration", "peak RSS", "step (median of 3-5)", "first step"], rows)
    write_json(args.json, {"machine": machine(), "model": args.model, "batch": args.batch,
                           "results": results})


if __name__ == "__main__":
    main()
