"""Batch-wise transforms: shapes, seeding, and each transform's arithmetic."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn.data.transforms import (ColorJitter, Compose, Grayscale, Normalize, RandomCrop,
                                     RandomHorizontalFlip, Resize, parse_augment)

RANDOM = [RandomHorizontalFlip(), RandomCrop(8, padding=2),
          ColorJitter(brightness=0.5, contrast=0.5, saturation=0.5)]
ALL = RANDOM + [Normalize([0.5, 0.4, 0.3], [0.2, 0.2, 0.2]), Resize((5, 7)), Grayscale(3),
                Compose(RANDOM)]


def _batch(n=6, c=3, h=8, w=8, seed=0):
    return np.random.default_rng(seed).random((n, c, h, w), dtype=np.float32)


@pytest.mark.parametrize("transform", ALL, ids=repr)
def test_batch_and_single_image_shapes_dtype_and_no_mutation(transform, seed):
    x = _batch()
    original = x.copy()
    out = transform(x)
    expected_hw = (5, 7) if isinstance(transform, Resize) else (8, 8)
    assert out.shape == (6, 3) + expected_hw and out.dtype == np.float32
    np.testing.assert_array_equal(x, original)
    assert transform(x[0]).shape == (3,) + expected_hw
    with pytest.raises(ValueError, match="expected a batch"):
        transform(x[0, 0]) if not isinstance(transform, Compose) else transform.transforms[0](x[0, 0])


@pytest.mark.parametrize("transform", RANDOM + [Compose(RANDOM)], ids=repr)
def test_random_transforms_repeat_under_a_seed(transform, seed):
    x = _batch()
    seed(7)
    first = transform(x)
    seed(7)
    np.testing.assert_array_equal(transform(x), first)
    assert not np.array_equal(transform(x), first)


def test_repr_shows_the_arguments():
    assert repr(RandomCrop(32, padding=4)) == "RandomCrop(size=(32, 32), padding=4)"
    assert repr(RandomHorizontalFlip(0.3)) == "RandomHorizontalFlip(p=0.3)"
    assert repr(Normalize(0.5, 0.25)) == "Normalize(mean=[0.5], std=[0.25])"
    assert repr(ColorJitter(brightness=0.2)) == \
        "ColorJitter(brightness=(0.8, 1.2), contrast=None, saturation=None)"
    assert repr(Resize(224)) == "Resize(size=224)"
    assert repr(Compose([Resize(4)])) == "Compose([\n    Resize(size=4),\n])"


# -- flip -----------------------------------------------------------------------------------

def test_flip_probability_one_and_zero():
    x = _batch()
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(x), x[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(x), x)


def test_flip_each_image_is_either_kept_or_mirrored(seed):
    seed(1)
    x = _batch(n=200)
    out = RandomHorizontalFlip(0.5)(x)
    flipped = np.array([np.array_equal(o, i[..., ::-1]) for o, i in zip(out, x)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, x)])
    assert np.all(flipped ^ kept)
    assert 60 < flipped.sum() < 140


# -- crop -----------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 4), h=st.integers(1, 9), w=st.integers(1, 9), padding=st.integers(0, 3),
       data=st.data())
def test_crop_equals_a_manual_crop_of_the_padded_image(n, h, w, padding, data):
    th = data.draw(st.integers(1, h + 2 * padding))
    tw = data.draw(st.integers(1, w + 2 * padding))
    x = _batch(n, 2, h, w, seed=h * 10 + w) + 1  # no zeros, so padding is recognisable
    out = RandomCrop((th, tw), padding=padding)(x)
    assert out.shape == (n, 2, th, tw)
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    for image, crop in zip(padded, out):
        candidates = [(top, left) for top in range(h + 2 * padding - th + 1)
                      for left in range(w + 2 * padding - tw + 1)
                      if np.array_equal(image[:, top:top + th, left:left + tw], crop)]
        assert candidates, "the output is not a crop of the padded image"


def test_crop_offsets_come_from_the_generator(seed):
    """With the same seed, drawing rows then columns by hand gives the same crops."""
    import minicnn.rng as rng

    x = _batch(n=5, c=1, h=6, w=6)
    seed(3)
    out = RandomCrop(6, padding=2)(x)
    seed(3)
    top = rng.generator().integers(0, 5, size=5)
    left = rng.generator().integers(0, 5, size=5)
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for k in range(5):
        np.testing.assert_array_equal(out[k], padded[k, :, top[k]:top[k] + 6, left[k]:left[k] + 6])


def test_crop_without_padding_to_full_size_is_identity():
    x = _batch()
    np.testing.assert_array_equal(RandomCrop(8)(x), x)


def test_crop_too_large():
    with pytest.raises(ValueError, match="larger than the padded image"):
        RandomCrop(12, padding=1)(_batch())


# -- colour jitter --------------------------------------------------------------------------

def test_brightness_multiplies_each_image_by_a_factor_in_range(seed):
    seed(0)
    x = _batch(n=100) * 0.4 + 0.1  # in [0.1, 0.5]: factors up to 2 never clip
    out = ColorJitter(brightness=0.7)(x)
    ratio = out / x
    per_image = ratio.reshape(100, -1)
    np.testing.assert_allclose(per_image, np.broadcast_to(per_image[:, :1], per_image.shape), rtol=1e-5)
    assert per_image.min() >= 0.3 - 1e-6 and per_image.max() <= 1.7 + 1e-6
    assert per_image[:, 0].std() > 0.2  # really drawn per image


def test_factor_range_is_clamped_at_zero():
    assert ColorJitter(brightness=1.5).brightness == (0.0, 2.5)
    assert ColorJitter(contrast=(0.5, 0.9)).contrast == (0.5, 0.9)
    assert ColorJitter(saturation=0).saturation is None
    with pytest.raises(ValueError):
        ColorJitter(brightness=-0.1)
    with pytest.raises(ValueError):
        ColorJitter(contrast=(0.9, 0.5))


def _gray(x):
    return 0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]


def _fit_factor(change, source):
    """The per-image f that best explains ``change = f * source`` (least squares), and the residual."""
    n = len(change)
    change, source = change.reshape(n, -1), source.reshape(n, -1)
    f = (change * source).sum(axis=1) / (source * source).sum(axis=1)
    return f, np.abs(change - f[:, None] * source).max()


def test_contrast_scales_around_the_grayscale_mean(seed):
    seed(1)
    x = _batch(n=50) * 0.2 + 0.4  # in [0.4, 0.6]: no clipping for factors in [0.5, 1.5]
    out = ColorJitter(contrast=0.5)(x)
    mean = _gray(x).mean(axis=(1, 2))[:, None, None, None]
    factor, residual = _fit_factor(out - mean, x - mean)
    assert residual < 1e-5
    assert factor.min() >= 0.5 - 1e-4 and factor.max() <= 1.5 + 1e-4 and factor.std() > 0.1
    np.testing.assert_allclose(_gray(out).mean(axis=(1, 2)), mean.ravel(), rtol=1e-4)


def test_saturation_blends_with_the_grayscale_image(seed):
    seed(2)
    x = _batch(n=50) * 0.2 + 0.4
    out = ColorJitter(saturation=0.5)(x)
    gray = _gray(x)[:, None]
    factor, residual = _fit_factor(out - gray, x - gray)
    assert residual < 1e-5
    assert factor.min() >= 0.5 - 1e-4 and factor.max() <= 1.5 + 1e-4 and factor.std() > 0.1
    np.testing.assert_allclose(_gray(out), _gray(x), atol=1e-4)  # luma kept (weights sum to 0.9999)


def test_saturation_is_a_no_op_on_one_channel_and_results_are_clipped(seed):
    x = _batch(c=1)
    np.testing.assert_array_equal(ColorJitter(saturation=0.9)(x), x)
    out = ColorJitter(brightness=(3.0, 3.0))(x)
    assert out.max() == 1.0 and out.min() >= 0.0


def test_contrast_zero_gives_a_uniform_image():
    out = ColorJitter(contrast=(0.0, 0.0))(_batch(c=1))
    np.testing.assert_allclose(out, np.broadcast_to(out[:, :, :1, :1], out.shape), rtol=1e-6)


# -- normalize, grayscale -------------------------------------------------------------------

def test_normalize_per_channel():
    x = _batch(c=2)
    out = Normalize([0.5, 0.25], [0.5, 2.0])(x)
    np.testing.assert_allclose(out[:, 0], (x[:, 0] - 0.5) / 0.5, rtol=1e-6)
    np.testing.assert_allclose(out[:, 1], (x[:, 1] - 0.25) / 2.0, rtol=1e-6)
    assert out.dtype == np.float32
    with pytest.raises(ValueError, match="expected 2 channels, got 3"):
        Normalize([0.5, 0.25], [0.5, 2.0])(_batch(c=3))
    with pytest.raises(ValueError, match="positive"):
        Normalize([0.5], [0.0])


def test_grayscale():
    x = _batch()
    np.testing.assert_allclose(Grayscale()(x)[:, 0], _gray(x), rtol=1e-6)
    three = Grayscale(3)(x)
    np.testing.assert_array_equal(three[:, 0], three[:, 2])
    np.testing.assert_array_equal(Grayscale()(x[:, :1]), x[:, :1])


# -- resize ---------------------------------------------------------------------------------

def test_resize_2x2_to_4x4_by_hand():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=np.float32)
    expected = [[1.00, 1.25, 1.75, 2.00],
                [1.50, 1.75, 2.25, 2.50],
                [2.50, 2.75, 3.25, 3.50],
                [3.00, 3.25, 3.75, 4.00]]
    np.testing.assert_allclose(Resize(4)(x)[0, 0], expected, rtol=1e-6)


def test_resize_non_integer_scale_by_hand():
    # 3 -> 5 pixels: sources (i + 0.5) * 0.6 - 0.5 = -0.2 (clamped to 0), 0.4, 1.0, 1.6, 2.2 (last pixel)
    x = np.array([[[[0.0, 10.0, 40.0]]]], dtype=np.float32)
    np.testing.assert_allclose(Resize((1, 5))(x)[0, 0, 0], [0, 4, 10, 28, 40], rtol=1e-6)


def test_resize_down_averages_the_middle_pair():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    # 4 -> 2: sources 0.5 and 2.5, halfway between pixels 0|1 and 2|3.
    np.testing.assert_allclose(Resize(2)(x)[0, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_resize_same_size_is_identity_and_int_keeps_aspect_ratio():
    x = _batch(n=2, c=1, h=6, w=9)
    np.testing.assert_array_equal(Resize((6, 9))(x), x)
    assert Resize(4)(x).shape == (2, 1, 4, 6)
    assert Resize(4)(_batch(n=1, c=1, h=9, w=6)).shape == (1, 1, 6, 4)
    assert Resize(224)(_batch(n=2, c=1, h=28, w=28)).shape == (2, 1, 224, 224)


def test_resize_matches_torch():
    torch = pytest.importorskip("torch")
    x = _batch(n=2, c=3, h=28, w=28)
    for size in [(224, 224), (13, 40), (7, 7)]:
        expected = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode="bilinear",
                                                   align_corners=False).numpy()
        np.testing.assert_allclose(Resize(size)(x), expected, rtol=0, atol=1e-6)


# -- parse_augment --------------------------------------------------------------------------

def test_parse_augment_builds_the_lecture_pipeline():
    pipeline = parse_augment("flip, CROP,jitter", 32)
    crop, flip, jitter = pipeline.transforms
    assert isinstance(crop, RandomCrop) and crop.size == (32, 32) and crop.padding == 4
    assert isinstance(flip, RandomHorizontalFlip) and flip.p == 0.5
    assert isinstance(jitter, ColorJitter)
    assert parse_augment("crop", 28).transforms[0].padding == 2
    assert parse_augment(["flip"], (28, 28)).transforms[0].p == 0.5
    assert len(parse_augment("", 28)) == 0 and len(parse_augment("none", 28)) == 0
    assert len(parse_augment(None, 28)) == 0


def test_parse_augment_unknown_name():
    with pytest.raises(ValueError, match="unknown augmentation.*rotate.*choose from crop, flip, jitter"):
        parse_augment("flip,rotate", 32)


@pytest.mark.parametrize("name", ["flip", "crop", "jitter", "normalize", "resize", "gray"])
def test_transforms_run_on_the_batch_device_and_draw_the_same_numbers(device, name):
    """Every transform works on device arrays (the stand-in fails on any host array mixed in) and,
    with the same seed, gives the CPU's result."""
    import minicnn as mc
    from minicnn import backend
    from minicnn.data import transforms as T
    make = {"flip": lambda: T.RandomHorizontalFlip(), "crop": lambda: T.RandomCrop(6, padding=2),
            "jitter": lambda: T.ColorJitter(0.4, 0.4, 0.4), "normalize": lambda: T.Normalize([0.5] * 3, [0.2] * 3),
            "resize": lambda: T.Resize((9, 5)), "gray": lambda: T.Grayscale(3)}[name]
    x = np.random.default_rng(0).random((5, 3, 6, 7)).astype(np.float32)
    mc.manual_seed(3)
    expected = make()(x)
    mc.manual_seed(3)
    got = make()(backend.to_device(x, device))
    assert backend.device_of(got) == device
    np.testing.assert_allclose(backend.to_numpy(got), expected, rtol=1e-6, atol=1e-7)


def test_device_batches_cost_few_host_to_device_copies():
    """Host -> device copies are transfers of their own: Normalize copies its constants once per
    device and dtype, a random crop its positions in one copy per batch."""
    from minicnn import backend, testing
    x, x2 = backend.to_device(_batch(), "standin"), backend.to_device(_batch(seed=1), "standin")
    normalize, crop = Normalize([0.5, 0.4, 0.3], [0.2, 0.2, 0.2]), RandomCrop(8, padding=2)
    uploads = []
    with testing.watch_standin(lambda kind, name: uploads.append(name) if kind == "upload" else None):
        normalize(x)
        assert len(uploads) == 2   # mean and std, the first time
        normalize(x)
        normalize(x2)
        assert len(uploads) == 2   # kept on the device since
        crop(x)
        assert len(uploads) == 3   # rows and columns of every crop, together
    np.testing.assert_allclose(backend.to_numpy(normalize(x)), normalize(backend.to_numpy(x)), rtol=1e-6)
