"""The gradient-check cases of every op family in ``minicnn/functional`` (its ``GRADCHECK_CASES``,
what ``minicnn gradcheck`` runs) pass on the reference implementations, in float64, on every
test device (``tests/fast/`` runs the same cases through the fast paths)."""
import pytest

import minicnn as mc
from minicnn import backend
from minicnn.gradcheck import check, registered_cases

FAMILIES = {"activation", "batchnorm", "conv", "dropout", "linear", "loss", "lrn", "pooling"}
CASES = [c for c in registered_cases() if c[2].__module__.startswith("minicnn.functional.")]


def test_every_family_registers_cases():
    families = {make.__module__.rsplit(".", 1)[1] for _, _, make in CASES}
    assert families == FAMILIES


@pytest.mark.parametrize("case", CASES, ids=[f"{op}: {name}" for op, name, _ in CASES])
def test_registered_case_passes_on_the_reference(device, case):
    op, name, make = case
    fn, inputs = make()
    inputs = [mc.Tensor(backend.to_device(t.data, device), requires_grad=True) for t in inputs]
    result = check(fn, inputs)
    assert result.passed, (op, name, result.message())
