"""``benchmarks/train_fashion.py`` on the stand-in device: the device path of the time-to-accuracy
benchmark (data sets copied once, batches gathered on the device, nothing read back during an
epoch), on a small Fashion-MNIST-shaped data set written here."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from minicnn.data.idx import write_idx

ROOT = Path(__file__).resolve().parents[2]

WATCHED_RUN = """
import collections, json, sys, traceback
sys.path.insert(0, "benchmarks")
import train_fashion
from minicnn import backend, testing
from minicnn.data import FashionMNIST
sets = [FashionMNIST(train=t) for t in (True, False)]
data = [(s.data.astype("float32") / 255, s.targets) for s in sets]
kinds, script_uploads = collections.Counter(), 0

def watch(kind, op):  # every device operation; the uploads the script itself makes
    global script_uploads
    kinds[kind] += 1
    if kind == "upload":
        caller = next(f for f in reversed(traceback.extract_stack()[:-1])
                      if not f.filename.endswith(("backend.py", "standin_device.py")))
        script_uploads += caller.filename.endswith("train_fashion.py")

with testing.watch_standin(watch):
    result = train_fashion.run("minicnn", *data, 1, 0.99, "standin")
print(json.dumps({"result": result, "kinds": kinds, "script_uploads": script_uploads}))
"""


def _fashion_like(folder, rng):
    folder.mkdir()
    for prefix, n in (("train", 512), ("t10k", 256)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n).astype(np.uint8))


def _run(args, data_root, timeout=300):
    env = {"MINICNN_DATA": str(data_root), "PATH": "/usr/bin:/bin", "HOME": str(data_root)}
    out = subprocess.run([sys.executable] + args, cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_an_epoch_on_the_device_reads_back_only_at_its_end(tmp_path):
    _fashion_like(tmp_path / "fashion-mnist", np.random.default_rng(0))
    report = json.loads(_run(["-c", WATCHED_RUN], tmp_path).splitlines()[-1])
    (epoch,) = report["result"]["history"]
    assert report["result"]["device"] == "standin" and 0 <= epoch["test_acc"] <= 1
    assert epoch["train_seconds"] > 0
    # 4 training steps and the evaluation: two read-backs in all (the label checks at the
    # epoch's end, the evaluation's count of hits); the script copies x and y of each set and
    # the epoch's order to the device, nothing per step (the model's own copies aside: its
    # parameters once, dropout's draws)
    assert report["kinds"]["download"] == 2, report["kinds"]
    assert report["script_uploads"] == 5


def test_the_script_writes_its_table_and_json(tmp_path):
    _fashion_like(tmp_path / "fashion-mnist", np.random.default_rng(1))
    out = _run(["benchmarks/train_fashion.py", "--quick", "--device", "standin", "--no-torch",
                "--epochs", "2", "--json", str(tmp_path / "run.json")], tmp_path)
    assert "training s/epoch" in out
    written = json.loads((tmp_path / "run.json").read_text())
    assert written["device"] == "standin" and written["epochs"] == 2
    (minicnn,) = written["results"]
    assert [h["epoch"] for h in minicnn["history"]] == [1, 2]
