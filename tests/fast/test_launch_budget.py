"""How many kernel launches and syncs a training step costs on the CUDA path, counted on the CPU
(``benchmarks/launches.py``): a guard against changes that quietly add launches per layer or a
host round trip per step. The budgets are today's counts; lower them when a change saves more."""
import sys
from pathlib import Path

import pytest

from minicnn.testing import cuda_on_cpu

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
launches = pytest.importorskip("launches")

# launches per step, SGD with momentum. Batch norm's sums take two launches each way since
# 2026-12-05 (partial sums over many blocks, then a block per channel): +2 per batch norm.
BUDGET = {"fashion_cnn": 63, "resnet20": 346}


@pytest.fixture(scope="module", autouse=True)
def compiler():
    if cuda_on_cpu.cxx_compiler() is None:
        pytest.skip("no C++ compiler (g++ or gcc) to build the kernel sources on the CPU")


@pytest.mark.parametrize("model", sorted(BUDGET))
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_training_step_stays_within_its_launch_budget(model, optimizer):
    counts = launches.count_step(model, 2, "cuda", optimizer)
    assert counts["kinds"]["launch"] <= BUDGET[model], counts["by_issuer"]
    assert counts["kinds"]["download"] <= 1  # the label check, when the step is called on its own
    assert counts["by_issuer"].get(f"{'SGD' if optimizer == 'sgd' else 'Adam'}.step") == 1  # all parameters


def test_the_training_loop_syncs_only_at_its_read_backs():
    counts = launches.count_training_loop("fashion_cnn", 2, "cuda", steps=8)
    assert counts["kinds"]["download"] * 8 <= 3  # one read-back (8 steps < 20): labels, losses, hits
