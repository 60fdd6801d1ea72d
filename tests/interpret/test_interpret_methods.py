"""minicnn.interpret against definitions: finite differences, Grad-CAM's closed form, occlusion
by loops; hooks removed on return and on error; every method on every test device."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, interpret, nn


def tiny_net(device="cpu"):
    """conv -> ReLU -> max-pool -> linear, float64, in eval mode, parameters frozen."""
    mc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(27, 4))
    model.double().to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def cam_net(device="cpu"):
    """conv -> ReLU -> global average pool -> linear: Grad-CAM has a closed form (CAM)."""
    mc.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(3, 4))
    return model.double().to(device).eval()


def batch(device="cpu", shape=(2, 2, 6, 6), seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    return mc.Tensor(backend.to_device(x, device))


def scores(model, x, target):
    with mc.no_grad():
        out = model(mc.Tensor(backend.to_device(x, "cpu"))).numpy()
    return out[np.arange(len(out)), target]


def count_hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_saliency_equals_finite_differences():
    model, x, target = tiny_net(), batch(), [1, 3]
    got = interpret.Saliency(model).attribute(x, target=target, abs=False).numpy()
    want, eps = np.zeros(x.shape), 1e-6
    for index in np.ndindex(*x.shape):
        up, down = x.numpy().copy(), x.numpy().copy()
        up[index] += eps
        down[index] -= eps
        want[index] = (scores(model, up, target) - scores(model, down, target))[index[0]] / (2 * eps)
    np.testing.assert_allclose(got, want, atol=1e-7)
    np.testing.assert_allclose(interpret.Saliency(model).attribute(x, target=target).numpy(), np.abs(want), atol=1e-7)
    np.testing.assert_allclose(interpret.InputXGradient(model).attribute(x, target=target).numpy(),
                               x.numpy() * want, atol=1e-7)


def test_guided_backprop_clamps_relu_gradients():
    """conv -> ReLU -> linear: guided backprop is  W_conv^T ([z > 0] * max(W_lin[c], 0))."""
    mc.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3)).double().eval()
    x = batch(shape=(1, 1, 4, 4))
    z = model[0](x)
    upstream = np.maximum(model[3].weight.numpy()[2], 0).reshape(z.shape) * (z.numpy() > 0)
    z_leaf = mc.Tensor(z.data, requires_grad=True)
    x_leaf = mc.Tensor(x.data, requires_grad=True)
    (want,) = mc.autograd.grad(model[0](x_leaf), [x_leaf], grad_outputs=mc.Tensor(upstream))
    got = interpret.GuidedBackprop(model).attribute(x, target=2)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-12)
    plain = interpret.Saliency(model).attribute(x, target=2, abs=False)
    assert not np.allclose(got.numpy(), plain.numpy())            # the clamp made a difference
    assert z_leaf.grad is None and count_hooks(model) == 0


def test_grad_cam_equals_its_closed_form():
    """With global average pooling, dS_c/dA^k_ij = W_ck / (h w), so Grad-CAM is
    ReLU(sum_k W_ck A^k) / (h w): the class activation map of Zhou et al. 2016."""
    model, x = cam_net(), batch()
    acts = model[1](model[0](x)).numpy()                           # (N, 3, 6, 6)
    weight = model[4].weight.numpy()                               # (4, 3)
    target = [0, 2]
    cam = np.einsum("nk,nkij->nij", weight[target], acts)[:, None] / 36
    method = interpret.LayerGradCam(model, model[1])
    np.testing.assert_allclose(method.attribute(x, target=target).numpy(), np.maximum(cam, 0), atol=1e-12)
    np.testing.assert_allclose(method.attribute(x, target=target, relu_attributions=False).numpy(), cam,
                               atol=1e-12)
    big = method.attribute(x, target=target, upsample_to_input=True)
    assert big.shape == (2, 1, 6, 6)
    np.testing.assert_allclose(interpret.LayerActivation(model, model[1]).attribute(x).numpy(), acts)


def occlusion_by_loops(model, x, window, strides, baseline, target):
    """Occlusion's definition, one window and one example at a time."""
    n, dims = x.shape[0], x.shape[1:]
    total, count = np.zeros(x.shape), np.zeros(dims)
    starts = [list(range(0, d - w + s, s)) for d, w, s in zip(dims, window, strides)]
    for c in starts[0]:
        for i in starts[1]:
            for j in starts[2]:
                for e in range(n):
                    occluded = x[e:e + 1].copy()
                    occluded[0, c:c + window[0], i:i + window[1], j:j + window[2]] = baseline
                    drop = scores(model, x[e:e + 1], target[e:e + 1]) - scores(model, occluded, target[e:e + 1])
                    total[e, c:c + window[0], i:i + window[1], j:j + window[2]] += drop[0]
                count[c:c + window[0], i:i + window[1], j:j + window[2]] += 1
    return total / count


@pytest.mark.parametrize("per_eval", [1, 4, 100])
def test_occlusion_equals_its_loop_definition(per_eval):
    model, x, target = tiny_net(), batch(), [1, 3]
    want = occlusion_by_loops(model, x.numpy(), (1, 3, 3), (1, 2, 2), 0.5, target)   # last window cut
    got = interpret.Occlusion(model).attribute(x, sliding_window_shapes=(1, 3, 3), strides=(1, 2, 2),
                                                baselines=0.5, target=target, perturbations_per_eval=per_eval)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)
    same_class = interpret.Occlusion(model).attribute(x, (1, 3, 3), strides=(1, 2, 2), baselines=0.5,
                                                      target=np.int64(3), perturbations_per_eval=per_eval)
    np.testing.assert_allclose(same_class.numpy()[1], want[1], atol=1e-12)


def test_every_method_on_every_device_in_no_grad_with_no_hook_left(device):
    model, x = tiny_net(device), batch(device)
    cam, methods = cam_net(device), []
    with mc.no_grad():
        methods.append(interpret.Saliency(model).attribute(x, target=1))
        methods.append(interpret.InputXGradient(model).attribute(x, target=1))
        methods.append(interpret.GuidedBackprop(model).attribute(x, target=mc.tensor([0, 1])))
        methods.append(interpret.LayerActivation(model, model[1]).attribute(x))
        methods.append(interpret.LayerGradCam(cam, cam[1]).attribute(x, target=3, upsample_to_input=True))
        methods.append(interpret.Occlusion(model).attribute(x, (2, 2, 2), strides=2, target=1,
                                                            perturbations_per_eval=5))
    for a in methods:
        assert a.device == device and a.dtype == np.float64 and not a.requires_grad
        assert np.isfinite(a.numpy()).all() and np.abs(a.numpy()).sum() > 0
    assert count_hooks(model) == count_hooks(cam) == 0
    assert all(p.grad is None for p in list(model.parameters()) + list(cam.parameters()))
    assert not model.training and not x.requires_grad


def test_hooks_are_removed_when_a_method_raises():
    model = tiny_net()
    x = batch()
    model[1].register_forward_hook(lambda m, i, o: None)          # the user's own hook stays
    for method in (interpret.GuidedBackprop(model), interpret.LayerGradCam(model, model[1])):
        with pytest.raises(ValueError, match=r"target 7 is outside \[0, 4\)"):
            method.attribute(x, target=7)
        assert count_hooks(model) == 1
    with pytest.raises(ValueError, match="target is needed"):
        interpret.Saliency(model).attribute(x)
    with pytest.raises(ValueError, match=r"target must be an int or 2 ints"):
        interpret.Saliency(model).attribute(x, target=[1, 2, 3])
    with pytest.raises(ValueError, match=r"target must be an int or 2 ints"):
        interpret.Occlusion(model).attribute(x, (1, 2, 2), target=1.5)
    assert count_hooks(model) == 1


def test_clear_errors_for_layers_inputs_and_windows():
    model, other = tiny_net(), nn.ReLU()
    with pytest.raises(ValueError, match="layer ReLU is not part of the model"):
        interpret.LayerGradCam(model, other)
    with pytest.raises(TypeError, match="layer must be a Module"):
        interpret.LayerActivation(model, "1")
    with pytest.raises(ValueError, match="inputs must be a floating-point batch"):
        interpret.Saliency(model).attribute(mc.tensor([1.0, 2.0]), target=0)
    with pytest.raises(ValueError, match="larger than the input"):
        interpret.Occlusion(model).attribute(batch(), (1, 7, 7), target=0)
    with pytest.raises(ValueError, match="must not exceed sliding_window_shapes"):
        interpret.Occlusion(model).attribute(batch(), (1, 2, 2), strides=3, target=0)
    with pytest.raises(ValueError, match="sliding_window_shapes must be 3 positive ints"):
        interpret.Occlusion(model).attribute(batch(), (2, 2), target=0)
    shared = nn.ReLU()
    twice = nn.Sequential(nn.Conv2d(2, 2, 1), shared, nn.Conv2d(2, 2, 1), shared, nn.Flatten(), nn.Linear(72, 2))
    with pytest.raises(RuntimeError, match="ran 2 times in one forward pass"):
        interpret.LayerGradCam(twice, shared).attribute(batch().float(), target=0)
    assert count_hooks(twice) == 0


def test_interpolate_matches_torch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(3).standard_normal((2, 1, 3, 5))
    for mode in ("nearest", "bilinear"):
        got = interpret.LayerAttribution.interpolate(mc.tensor(a), (7, 8), mode).numpy()
        kwargs = {"align_corners": False} if mode == "bilinear" else {}
        want = torch.nn.functional.interpolate(torch.tensor(a), (7, 8), mode=mode, **kwargs).numpy()
        np.testing.assert_allclose(got, want, atol=1e-12)
