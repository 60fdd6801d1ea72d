"""The same weights in minicnn and PyTorch give captum's attributions (skipped without captum)."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import interpret, nn

torch = pytest.importorskip("torch")
captum = pytest.importorskip("captum.attr")


@pytest.fixture(scope="module")
def models():
    """conv -> ReLU -> max-pool -> conv -> ReLU -> flatten -> linear, float64, eval mode."""
    mc.manual_seed(0)
    ours = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 3, 3, padding=1),
                         nn.ReLU(), nn.Flatten(), nn.Linear(48, 5)).double().eval()
    t = torch.nn
    theirs = t.Sequential(t.Conv2d(2, 4, 3, padding=1), t.ReLU(), t.MaxPool2d(2), t.Conv2d(4, 3, 3, padding=1),
                          t.ReLU(), t.Flatten(), t.Linear(48, 5)).double().eval()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 2, 8, 8))
    return ours, theirs, x


def compare(ours, theirs, rtol=1e-9):
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=rtol, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU")  # captum's GuidedBackprop notice
def test_gradient_methods_match_captum(models):
    ours, theirs, x = models
    target = [0, 3, 4]
    for name in ("Saliency", "InputXGradient", "GuidedBackprop"):
        mine = getattr(interpret, name)(ours).attribute(mc.tensor(x), target=target)
        captums = getattr(captum, name)(theirs).attribute(torch.tensor(x, requires_grad=True), target=target)
        compare(mine, captums)
    compare(interpret.Saliency(ours).attribute(mc.tensor(x), target=1, abs=False),
            captum.Saliency(theirs).attribute(torch.tensor(x, requires_grad=True), target=1, abs=False))


def test_layer_methods_match_captum(models):
    ours, theirs, x = models
    for relu in (False, True):
        mine = interpret.LayerGradCam(ours, ours[4]).attribute(mc.tensor(x), target=2, relu_attributions=relu)
        captums = captum.LayerGradCam(theirs, theirs[4]).attribute(torch.tensor(x), target=2,
                                                                   relu_attributions=relu)
        compare(mine, captums)
    upsampled = interpret.LayerGradCam(ours, ours[4]).attribute(mc.tensor(x), target=2, upsample_to_input=True)
    compare(upsampled, captum.LayerAttribution.interpolate(captums, (8, 8), "bilinear"))
    compare(interpret.LayerActivation(ours, ours[1]).attribute(mc.tensor(x)),
            captum.LayerActivation(theirs, theirs[1]).attribute(torch.tensor(x)))


@pytest.mark.parametrize("window, strides, baseline", [((1, 3, 3), (1, 2, 2), 0.0), ((2, 4, 4), 2, 0.25)])
def test_occlusion_matches_captum(models, window, strides, baseline):
    ours, theirs, x = models
    mine = interpret.Occlusion(ours).attribute(mc.tensor(x), sliding_window_shapes=window, strides=strides,
                                               baselines=baseline, target=[1, 2, 3], perturbations_per_eval=7)
    captums = captum.Occlusion(theirs).attribute(torch.tensor(x), sliding_window_shapes=window, strides=strides,
                                                 baselines=baseline, target=[1, 2, 3])
    compare(mine, captums, rtol=1e-6)   # captum agrees to float32 precision here (5e-8 relative)
