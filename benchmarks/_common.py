"""Shared helpers of the benchmark scripts: thread pinning, timing, tables, JSON, machine facts.

Import this module *before* numpy in a benchmark script: it pins the BLAS thread count from
``--threads`` (default 2) through the environment, which only works before numpy loads, and with
``--reference`` sets ``MINICNN_FAST=0`` so that minicnn runs its reference layers (no fast paths:
what each fast path buys is the difference); ``--tf32`` lets convolutions use TF32 on a GPU. Like
``minicnn train``, the benchmarks opt in to keeping freed memory for reuse (``minicnn/fast/host_memory.py``).
"""
import json
import os
import platform
import statistics
import sys
import time


def pin_threads(argv=None):
    """Read ``--threads N`` from argv (default 2) and pin BLAS/OpenMP threads and minicnn's own
    thread count (``minicnn.fast.threads``) to it."""
    argv = sys.argv if argv is None else argv
    threads = "2"
    if "--threads" in argv:
        threads = argv[argv.index("--threads") + 1]
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MINICNN_NUM_THREADS"):
        os.environ[var] = threads
    if "--reference" in argv:
        os.environ["MINICNN_FAST"] = "0"  # read when minicnn is imported (here and in child processes)
    return int(threads)


THREADS = pin_threads()

import numpy as np  # noqa: E402  (after pinning)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minicnn.fast import host_memory, registry  # noqa: E402
import minicnn.testing  # noqa: E402,F401  (registers the stand-in device: --device standin)

host_memory.keep_freed_memory()
FAST = registry.is_enabled()
TF32 = "--tf32" in sys.argv
if TF32:  # PyTorch's default for convolutions (cuDNN with TF32): the like-for-like GPU comparison
    import minicnn  # noqa: E402
    minicnn.backends.cudnn.allow_tf32 = True


def add_common_arguments(parser):
    parser.add_argument("--quick", action="store_true", help="fewer repeats and shapes (< 2 minutes)")
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    parser.add_argument("--threads", type=int, default=2, help="BLAS/torch threads (default 2)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "standin"],
                        help="standin: the CPU-backed stand-in device, to check a script's device "
                             "path without a GPU (its timings mean nothing)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--reference", action="store_true",
                        help="minicnn's reference layers only (MINICNN_FAST=0): what the fast paths buy")
    parser.add_argument("--tf32", action="store_true",
                        help="GPU: convolutions' float32 GEMMs on TF32 tensor cores, as PyTorch's cuDNN "
                             "convolutions by default (mc.backends.cudnn.allow_tf32)")


def same_precision(torch):
    """PyTorch's float32 products with the precision minicnn's have: TF32 for convolutions with
    ``--tf32`` (PyTorch's own default), full float32 everywhere without it (PyTorch's default
    would otherwise give its convolutions TF32 against minicnn's float32). Returns ``torch``."""
    torch.backends.cudnn.allow_tf32 = TF32
    torch.backends.cuda.matmul.allow_tf32 = False  # PyTorch's default, and minicnn's
    return torch


def load_torch(args):
    """PyTorch with the same thread count and precision (:func:`same_precision`), or None when
    absent or not wanted."""
    if args.no_torch:
        return None
    try:
        import torch
    except ImportError:
        return None
    same_precision(torch)
    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        return None
    return torch


def sync(device):
    if device == "cuda":
        import cupy
        cupy.cuda.Device().synchronize()


def timeit(fn, repeats=5, warmup=1, device="cpu", torch_sync=None):
    """Median, min and max wall time (seconds) of ``fn()`` over ``repeats`` runs after warm-up."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        if torch_sync:
            torch_sync()
        t0 = time.perf_counter()
        fn()
        sync(device)
        if torch_sync:
            torch_sync()
        times.append(time.perf_counter() - t0)
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "runs": len(times)}


def gemm_rate(n=2048, repeats=5):
    """numpy's float32 GEMM rate on this machine, GFLOP/s (median of ``repeats``)."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    t = timeit(lambda: a @ b, repeats=repeats, warmup=1)
    return 2 * n ** 3 / t["median"] / 1e9


def machine():
    info = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
            "cpus": os.cpu_count(), "threads": THREADS, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "minicnn_fast_paths": FAST, "minicnn_conv_tf32": TF32, "torch_conv_tf32": TF32}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torch
        info["torch"] = torch.__version__
    except ImportError:
        pass
    return info


def fmt_time(t):
    if t is None:
        return "-"
    return f"{t * 1e3:8.2f} ms" if t < 10 else f"{t:8.1f} s "


def print_table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


def write_json(path, payload):
    if path:
        with open(path, "w") as f:
            json.dump(payload, f, indent=2)
        print(f"wrote {path}")


def print_result(result):
    """A child process's answer to ``run_child``: one ``RESULT {json}`` line on stdout."""
    print("RESULT " + json.dumps(result))


def run_child(args, label, env=None):
    """Run ``python <args>`` in a fresh process (its own peak memory) and return the dict it
    printed with ``print_result``, or None after printing why it failed."""
    import subprocess
    proc = subprocess.run([sys.executable] + list(args), capture_output=True, text=True, env=env)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not line:
        print(f"{label} failed:\n{proc.stderr[-2000:]}")
        return None
    return json.loads(line[0][len("RESULT "):])


def peak_rss_mb():
    """Peak resident memory of this process so far (MB)."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
