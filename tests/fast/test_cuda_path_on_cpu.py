"""The whole CUDA code path, run on a machine without a GPU, against the reference.

``cuda_on_cpu.cuda_paths_on_standin()`` makes stand-in arrays take the CUDA classes of
``minicnn/fast/gpu.py`` (kernels compiled as C++ for the CPU). Two SGD steps of each model on that
path must give the losses and the parameters, momentum buffers and running statistics of the
same two steps with every op's reference code on the CPU (float64). This is what ``--device
cuda`` runs, wrappers, kernel arguments and launch configuration included; only the compiler
and the hardware differ.
"""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import backend, fast, models, optim, testing
from minicnn.fast import cuda_kernels, gpu
from minicnn.testing import cuda_on_cpu

CASES = {  # name -> (model builder, input shape, batch): small, the kernels run on one CPU thread
    "lenet5": (models.lenet5, (1, 28, 28), 3),
    "fashion_cnn": (models.fashion_cnn, (1, 28, 28), 3),
    "resnet20": (models.resnet20, (3, 32, 32), 2),
    "vgg11_bn": (lambda: models.vgg11_bn(num_classes=10, hidden=32), (3, 32, 32), 2),     # adaptive pool 1 -> 7
    "alexnet": (lambda: models.alexnet(num_classes=10, hidden=32), (3, 227, 227), 2),      # LRN, 11x11/4
    "densenet": (lambda: models.densenet_cifar(depth=10, growth_rate=4), (3, 32, 32), 2),  # concatenation
}


@pytest.fixture(scope="module")
def libraries():
    if cuda_on_cpu.cxx_compiler() is None:
        pytest.skip("no C++ compiler (g++ or gcc) to build the kernel sources on the CPU")
    return cuda_on_cpu.build_kernels()


def _sgd(params):
    return optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True)


def _two_steps(build, shape, batch, device, optimizer=_sgd):
    mc.manual_seed(0)
    model = build().double().to(device).train()
    for m in model.modules():  # the CUDA path draws dropout's masks on the device, not the CPU's
        if isinstance(m, mc.nn.Dropout):  # masks (tests/fast/test_cuda_kernel_sources.py checks them)
            m.p = 0.0
    rng = np.random.default_rng(1)
    opt = optimizer(model.parameters())
    losses = []
    for _ in range(2):
        x = mc.Tensor(backend.to_device(rng.standard_normal((batch,) + shape), device))
        y = backend.to_device(rng.integers(0, 10, size=batch), device)
        opt.zero_grad()
        out = model(x)
        loss = F.cross_entropy(out[0] if isinstance(out, tuple) else out, y)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    state = {k: backend.to_numpy(v) for k, v in model.state_dict().items()}
    buffers = [backend.to_numpy(v) for s in opt.state.values() for v in s.values() if backend.is_array(v)]
    return losses, state, buffers


@pytest.mark.parametrize("name", CASES)
def test_a_training_step_on_the_cuda_path_equals_the_reference(libraries, name):
    build, shape, batch = CASES[name]
    with fast.disabled():
        expected = _two_steps(build, shape, batch, "cpu")
    with cuda_on_cpu.cuda_paths_on_standin(libraries):
        launched = []
        with testing.watch_standin(lambda kind, op: launched.append(op) if op.startswith("kernel ") else None):
            actual = _two_steps(build, shape, batch, "standin")
    assert "kernel minicnn_sgd_step" in launched and "kernel minicnn_im2col" in launched  # not vacuous
    if name == "lenet5":  # no batch norm: the partial sums are the convolutions' bias gradients
        convs = sum(1 for m in build().modules() if isinstance(m, mc.nn.Conv2d) and m.bias is not None)
        assert convs == 3 and launched.count("kernel minicnn_bn_partial_sums") == 2 * convs  # 2 steps
    np.testing.assert_allclose(actual[0], expected[0], rtol=1e-10)
    assert actual[1].keys() == expected[1].keys()
    for key in expected[1]:
        np.testing.assert_allclose(actual[1][key], expected[1][key], rtol=1e-9, atol=1e-11, err_msg=key)
    for a, e in zip(actual[2], expected[2]):
        np.testing.assert_allclose(a, e, rtol=1e-9, atol=1e-11)


@pytest.fixture(scope="module")
def libraries_in_blocks():
    if cuda_on_cpu.cannot_build(blocks=True):
        pytest.skip(cuda_on_cpu.cannot_build(blocks=True))
    return cuda_on_cpu.build_kernels(dtypes=(np.float64,), blocks=True)


def test_a_training_step_with_its_kernels_run_as_blocks_of_threads_equals_the_reference(
        libraries_in_blocks, monkeypatch):
    """As above (fashion_cnn: convolutions, batch norm, max pooling, dropout, cross-entropy, SGD),
    with every launch run as a GPU runs it: blocks of 256 threads taking turns between barriers
    (``cuda_on_cpu.BLOCKS_SHIM``), the grid capped at 8 blocks so that threads and blocks take
    several elements, channels and rows in turn."""
    monkeypatch.setattr(cuda_kernels, "MAX_BLOCKS", 8)
    build, shape, batch = CASES["fashion_cnn"]
    with fast.disabled():
        expected = _two_steps(build, shape, batch, "cpu")
    with cuda_on_cpu.cuda_paths_on_standin(libraries_in_blocks):
        actual = _two_steps(build, shape, batch, "standin")
        kernels = list(cuda_kernels._kernels.values())
    assert len(kernels) >= 8 and all(k.misuse is not None and max(k.grids) <= (8,) for k in kernels)
    assert any(k.name == "minicnn_bn_partial_sums" for k in kernels)
    np.testing.assert_allclose(actual[0], expected[0], rtol=1e-10)
    for key in expected[1]:
        np.testing.assert_allclose(actual[1][key], expected[1][key], rtol=1e-9, atol=1e-11, err_msg=key)
    for a, e in zip(actual[2], expected[2]):
        np.testing.assert_allclose(a, e, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("optimizer", [
    lambda params: optim.Adam(params, lr=1e-3, weight_decay=1e-3),
    lambda params: optim.AdamW(params, lr=1e-3, amsgrad=True)], ids=["Adam", "AdamW-amsgrad"])
def test_adam_on_the_cuda_path_equals_the_reference(libraries, optimizer):
    build, shape, batch = CASES["fashion_cnn"]
    with fast.disabled():
        expected = _two_steps(build, shape, batch, "cpu", optimizer)
    with cuda_on_cpu.cuda_paths_on_standin(libraries):
        launched = []
        with testing.watch_standin(lambda kind, op: launched.append(op) if op.startswith("kernel ") else None):
            actual = _two_steps(build, shape, batch, "standin", optimizer)
    assert launched.count("kernel minicnn_adam_step") == 2  # one per step, for all parameters
    np.testing.assert_allclose(actual[0], expected[0], rtol=1e-10)
    for key in expected[1]:
        np.testing.assert_allclose(actual[1][key], expected[1][key], rtol=1e-9, atol=1e-11, err_msg=key)
    assert len(actual[2]) == len(expected[2]) > 0
    for a, e in zip(actual[2], expected[2]):
        np.testing.assert_allclose(a, e, rtol=1e-9, atol=1e-11)


def test_the_cuda_classes_run_on_the_standin_only_inside_the_block(libraries):
    x = mc.Tensor(testing.standin.ones((1, 1, 4, 4)))
    with cuda_on_cpu.cuda_paths_on_standin(libraries):
        assert fast.implementation(F.MaxPool2d if hasattr(F, "MaxPool2d") else gpu.MaxPool2d,
                                   "standin") is gpu.CudaMaxPool2d
        F.max_pool2d(x, 2)
        assert cuda_kernels._kernels  # built by the block's own kernels
    assert fast.implementation(gpu.MaxPool2d, "standin") is gpu.MaxPool2d
    assert not hasattr(testing.standin, "RawModule")


def test_eval_batch_norm_backward_uses_the_running_mean_of_its_forward(libraries):
    """In eval mode the CUDA batch norm keeps a copy of the running mean when a gradient is
    needed (fine-tuning with frozen statistics), since training later changes it in place."""
    rng = np.random.default_rng(2)
    x, g = rng.standard_normal((3, 4, 5, 5)), rng.standard_normal((3, 4, 5, 5))
    results = []
    for device, context in (("cpu", fast.disabled()), ("standin", cuda_on_cpu.cuda_paths_on_standin(libraries))):
        with context:
            rm, rv = backend.to_device(np.zeros(4), device), backend.to_device(np.ones(4), device)
            xt = mc.Tensor(backend.to_device(x, device), requires_grad=True)
            w = mc.Tensor(backend.to_device(np.full(4, 1.5), device), requires_grad=True)
            y = F.batch_norm(xt, rm, rv, w, training=False)
            rm[...] = 5.0   # as the next training step would
            y.backward(backend.to_device(g, device))
            results.append([backend.to_numpy(a) for a in (y.data, xt.grad, w.grad)])
    for a, e in zip(results[1], results[0]):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12)
