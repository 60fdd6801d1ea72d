"""Time of each attribution method on one 28x28 image of ``fashion_cnn`` (eval mode).

    python benchmarks/interpret.py [--threads 2] [--device cpu|cuda|standin] [--json OUT] [--quick]

The issue's target: Occlusion with a 4x4 window and stride 2 (169 occluded copies) under 1 s on
two cores. ``perturbations_per_eval`` copies go through the model per forward pass; the table shows
what that batching buys (1 is captum's default).
"""
import argparse
import json

import _common  # noqa: F401  (pins the thread count before numpy loads)
import numpy as np

import minicnn as mc
from minicnn import backend, interpret, models


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_common_arguments(parser)
    args = parser.parse_args()
    mc.manual_seed(0)
    model = models.get("fashion_cnn").to(args.device).eval()
    x = mc.Tensor(backend.to_device(np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32), args.device))
    repeats = 3 if args.quick else 7
    cases = {f"Occlusion 4x4/2, perturbations_per_eval={k}":
             (lambda k=k: interpret.Occlusion(model).attribute(x, (1, 4, 4), strides=(1, 2, 2), target=0,
                                                               perturbations_per_eval=k))
             for k in (1, 16, 64, 169)}
    cases["Saliency"] = lambda: interpret.Saliency(model).attribute(x, target=0)
    cases["GuidedBackprop"] = lambda: interpret.GuidedBackprop(model).attribute(x, target=0)
    cases["LayerGradCam (features[6], upsampled)"] = lambda: interpret.LayerGradCam(
        model, model.features[6]).attribute(x, target=0, upsample_to_input=True)
    results = {}
    for name, fn in cases.items():
        results[name] = _common.timeit(lambda: backend.to_numpy(fn().data), repeats=repeats, device=args.device)
        print(f"{name:48s} {results[name]['median'] * 1e3:8.1f} ms  (min {results[name]['min'] * 1e3:.1f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": _common.machine(), "device": args.device, "seconds": results}, f, indent=1)


if __name__ == "__main__":
    main()
