"""Image transforms and data augmentation, applied to whole batches at once.

Every transform takes a float array of shape ``(N, C, H, W)`` (a batch) or ``(C, H, W)`` (one
image) and returns a new array of the same kind; the input is never modified. The work is done
for the whole batch in a few NumPy operations, with no Python loop over images: a random
horizontal flip flips the chosen images with one masked assignment, a random crop reads all crops
through one strided view, and so on. This is what keeps augmentation cheap next to the network.

The random transforms draw from :func:`minicnn.rng.generator`, so ``mc.manual_seed(seed)`` makes
them repeatable. They work on the batch's own device (NumPy, CuPy or the stand-in): the random
numbers, one or two per image, are drawn on the host and copied over; the images never leave
the device. Each image of a batch gets its own random choice (its own flip, crop position,
jitter factors), exactly as if the transform had been applied to the images one by one.

Names and arguments follow ``torchvision.transforms``. Pixel values are floats in ``[0, 1]``
(what :class:`~minicnn.data.DataLoader` produces), except after :class:`Normalize`.
"""
import numbers

import numpy as np

from .. import backend, rng

# ITU-R 601-2 luma weights, as torchvision's rgb_to_grayscale.
_LUMA = (0.2989, 0.587, 0.114)


def _pair(value, name):
    """``7 -> (7, 7)``; ``(7, 5) -> (7, 5)``."""
    if isinstance(value, numbers.Integral):
        value = (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 1:
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value}")
    return value


class Transform:
    """Base class: subclasses implement :meth:`forward` for a batch ``(N, C, H, W)``.

    ``__call__`` accepts a single ``(C, H, W)`` image too, treating it as a batch of one.
    ``__repr__`` shows the attributes named in ``_repr_fields``.
    """

    _repr_fields = ()

    def __call__(self, x):
        x = x if backend.is_array(x) else np.asarray(x)
        if x.ndim == 3:
            return self.forward(x[None])[0]
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__}: expected a batch (N, C, H, W) or an image "
                             f"(C, H, W), got shape {x.shape}")
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._repr_fields)
        return f"{type(self).__name__}({args})"


class Compose:
    """Apply ``transforms`` one after the other: ``Compose([RandomCrop(32, 4), RandomHorizontalFlip()])``."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __len__(self):
        return len(self.transforms)

    def __repr__(self):
        if not self.transforms:
            return "Compose([])"
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability ``p``.

    One uniform number per image decides; ``where`` takes each chosen image from the reversed
    view ``x[..., ::-1]`` and the others from ``x``.
    """

    _repr_fields = ("p",)

    def __init__(self, p=0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must lie in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        xp = backend.get_array_module(x)
        flip = xp.asarray(rng.generator().random(len(x)) < self.p)
        return xp.where(flip[:, None, None, None], x[..., ::-1], x)


class RandomCrop(Transform):
    """Zero-pad each side by ``padding`` pixels, then cut a ``size`` crop at a random place.

    ``size`` is an int (square crop) or ``(height, width)``. With ``RandomCrop(32, padding=4)``
    a 32x32 image is shifted by up to 4 pixels in each direction, the gaps filled with zeros:
    the classic CIFAR augmentation.

    All crops are read at once, by one gather: image ``n`` contributes rows ``top[n] + i`` and
    columns ``left[n] + j`` for ``i < height``, ``j < width`` of the crop. The row offsets of all
    images are drawn first, then the column offsets.
    """

    _repr_fields = ("size", "padding")

    def __init__(self, size, padding=0):
        self.size = _pair(size, "RandomCrop size")
        if not isinstance(padding, numbers.Integral) or padding < 0:
            raise ValueError(f"RandomCrop: padding must be a non-negative int, got {padding!r}")
        self.padding = int(padding)

    def forward(self, x):
        xp = backend.get_array_module(x)
        n = len(x)
        p = self.padding
        if p:
            x = xp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        height, width = x.shape[2:]
        th, tw = self.size
        if th > height or tw > width:
            raise ValueError(f"RandomCrop: crop {self.size} is larger than the padded image "
                             f"({height}, {width})")
        gen = rng.generator()
        top = gen.integers(0, height - th + 1, size=n)
        left = gen.integers(0, width - tw + 1, size=n)
        where = xp.asarray(np.concatenate([top[:, None] + np.arange(th), left[:, None] + np.arange(tw)],
                                          axis=1))                       # one host -> device copy
        rows, cols = where[:, :th, None], where[:, None, th:]            # (N, th, 1), (N, 1, tw)
        # Advanced indices on axes 0, 2, 3 (split by the slice) come first: (N, th, tw, C).
        crops = x[xp.arange(n)[:, None, None], :, rows, cols]
        return xp.ascontiguousarray(crops.transpose(0, 3, 1, 2))         # (N, C, th, tw)


def _grayscale(x):
    """Luma of an (N, 3, H, W) batch as (N, 1, H, W); a 1-channel batch is its own gray."""
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return _LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b


def _blend(image, other, factor):
    """``factor * image + (1 - factor) * other`` per image, clipped to [0, 1] (torchvision's _blend)."""
    factor = factor[:, None, None, None]
    return backend.get_array_module(image).clip(factor * image + (1 - factor) * other, 0, 1)


class ColorJitter(Transform):
    """Randomly change brightness, contrast and saturation, with torchvision's definitions.

    Each argument ``v`` (a number ``>= 0``) means a factor drawn uniformly from
    ``[max(0, 1 - v), 1 + v]`` for each image; a pair ``(lo, hi)`` gives the range itself;
    0 leaves that property alone. With factor ``f``:

    * brightness: ``f * x`` (0 gives black, 1 the original);
    * contrast: blend with the mean of the image's grayscale, ``f * x + (1 - f) * mean(gray(x))``
      (0 gives a uniform gray);
    * saturation: blend with the grayscale image, ``f * x + (1 - f) * gray(x)`` (0 gives a gray
      image; no effect on 1-channel images, which are gray already).

    The result is clipped to ``[0, 1]`` after each step. The steps run in the order above;
    torchvision shuffles their order on every call, which changes results only where clipping
    happens in between.
    """

    _repr_fields = ("brightness", "contrast", "saturation")

    def __init__(self, brightness=0, contrast=0, saturation=0):
        self.brightness = self._range(brightness, "brightness")
        self.contrast = self._range(contrast, "contrast")
        self.saturation = self._range(saturation, "saturation")

    @staticmethod
    def _range(value, name):
        """The factor range ``(lo, hi)`` for an argument, or None for 'leave alone'."""
        if isinstance(value, numbers.Number):
            if value < 0:
                raise ValueError(f"ColorJitter: {name} must be >= 0, got {value}")
            lo, hi = max(0.0, 1.0 - value), 1.0 + value
        else:
            lo, hi = (float(v) for v in value)
            if not 0 <= lo <= hi:
                raise ValueError(f"ColorJitter: {name} range must satisfy 0 <= lo <= hi, got {value}")
        return None if lo == hi == 1 else (float(lo), float(hi))

    def forward(self, x):
        gen = rng.generator()

        def factors(bounds):
            return backend.get_array_module(x).asarray(
                gen.uniform(bounds[0], bounds[1], size=len(x)).astype(x.dtype))

        out = x
        if self.brightness is not None:
            out = _blend(out, 0, factors(self.brightness))
        if self.contrast is not None:
            mean = _grayscale(out).mean(axis=(1, 2, 3), keepdims=True)
            out = _blend(out, mean, factors(self.contrast))
        if self.saturation is not None and out.shape[1] != 1:
            out = _blend(out, _grayscale(out), factors(self.saturation))
        return out.copy() if out is x else out


class Normalize(Transform):
    """Subtract a per-channel ``mean`` and divide by a per-channel ``std``: ``(x - mean) / std``.

    For example ``Normalize([0.2860], [0.3530])`` for Fashion-MNIST, whose pixels (in [0, 1])
    have about that mean and standard deviation.
    """

    _repr_fields = ("mean", "std")

    def __init__(self, mean, std):
        self.mean = [float(m) for m in np.atleast_1d(mean)]
        self.std = [float(s) for s in np.atleast_1d(std)]
        if len(self.mean) != len(self.std):
            raise ValueError(f"Normalize: mean and std need one value per channel, got "
                             f"{len(self.mean)} and {len(self.std)}")
        if min(self.std) <= 0:
            raise ValueError(f"Normalize: std must be positive, got {self.std}")

    def forward(self, x):
        if x.shape[1] != len(self.mean):
            raise ValueError(f"Normalize: expected {len(self.mean)} channels, got {x.shape[1]}")
        mean, std = self._constants(x)
        return (x - mean) / std

    def _constants(self, x):
        """``(mean, std)`` as (C, 1, 1) arrays on x's device, copied there once per device and
        dtype, not once per batch (a copy to a GPU is a transfer, and a call, of its own)."""
        key = (backend.device_of(x), str(getattr(x, "device", "")), x.dtype.str)
        cache = self.__dict__.setdefault("_on_device", {})
        if key not in cache:
            xp = backend.get_array_module(x)
            cache[key] = tuple(xp.asarray(np.asarray(v, dtype=x.dtype)[:, None, None]) for v in (self.mean, self.std))
        return cache[key]


def _linear_source(in_size, out_size, dtype):
    """Where each output pixel reads from, for bilinear resizing with ``align_corners=False``.

    Pixels are treated as unit squares and their centres are matched: output pixel ``i`` sits at
    input coordinate ``src = (i + 0.5) * in_size / out_size - 0.5`` (clamped at 0, as PyTorch
    does). It is interpolated between input pixels ``i0 = floor(src)`` and ``i1 = i0 + 1`` (the
    last pixel repeated at the border) with weight ``w1 = src - i0`` on ``i1``. The arithmetic is
    done in the images' ``dtype``, as PyTorch does, so that the weights agree with its to the bit.
    """
    scale = dtype.type(in_size) / dtype.type(out_size)
    src = scale * (np.arange(out_size, dtype=dtype) + dtype.type(0.5)) - dtype.type(0.5)
    src = np.maximum(src, dtype.type(0))
    i0 = np.minimum(src.astype(np.int64), in_size - 1)  # src >= 0, so truncation is floor
    i1 = np.minimum(i0 + 1, in_size - 1)
    return i0, i1, src - i0.astype(dtype)


class Resize(Transform):
    """Bilinear resizing, e.g. ``Resize(224)`` to feed 28x28 images to a network built for 224x224.

    ``size`` is ``(height, width)``, or an int: then, as in torchvision, the shorter side becomes
    ``size`` and the other keeps the aspect ratio (square images become ``size x size``).

    Interpolation matches ``torch.nn.functional.interpolate(x, size, mode='bilinear',
    align_corners=False)``: pixel *centres* are aligned, so a 28x28 image is scaled as a
    28-unit-wide square, not as a grid of 28 points (``align_corners=True`` would stretch the
    outermost pixel centres to the corners). This is also what image libraries do and what
    torchvision's ``Resize`` uses. There is no antialiasing, so strong downscaling skips pixels
    instead of averaging them (as ``interpolate`` with its default ``antialias=False``).

    The interpolation is separable: each output row/column is a weighted sum of two input
    columns/rows, gathered for the whole batch with fancy indexing, first along the width,
    then along the height.
    """

    _repr_fields = ("size",)

    def __init__(self, size):
        if isinstance(size, numbers.Integral):
            if size < 1:
                raise ValueError(f"Resize: size must be positive, got {size}")
            self.size = int(size)
        else:
            self.size = _pair(size, "Resize size")

    def output_size(self, height, width):
        """The ``(height, width)`` an image of ``(height, width)`` is resized to."""
        if not isinstance(self.size, int):
            return self.size
        if height <= width:
            return self.size, int(self.size * width / height)
        return int(self.size * height / width), self.size

    def forward(self, x):
        height, width = x.shape[2:]
        out_h, out_w = self.output_size(height, width)
        xp = backend.get_array_module(x)
        c0, c1, wc = (xp.asarray(a) for a in _linear_source(width, out_w, x.dtype))
        r0, r1, wr = (xp.asarray(a) for a in _linear_source(height, out_h, x.dtype))
        wr = wr[:, None]
        cols = x[..., c0] * (1 - wc) + x[..., c1] * wc  # (N, C, H, out_w)
        return cols[:, :, r0] * (1 - wr) + cols[:, :, r1] * wr  # (N, C, out_h, out_w)


class Grayscale(Transform):
    """Convert RGB images to gray with torchvision's luma weights (0.2989 R + 0.587 G + 0.114 B).

    ``num_output_channels=3`` repeats the gray channel three times, for networks that expect
    colour input. One-channel input is gray already and is only repeated if asked.
    """

    _repr_fields = ("num_output_channels",)

    def __init__(self, num_output_channels=1):
        if num_output_channels not in (1, 3):
            raise ValueError(f"Grayscale: num_output_channels must be 1 or 3, got {num_output_channels}")
        self.num_output_channels = num_output_channels

    def forward(self, x):
        gray = _grayscale(x)
        return backend.get_array_module(x).repeat(gray, self.num_output_channels, axis=1)


# ---------------------------------------------------------------------------------------------
# The augmentations of the lecture, by name (for `minicnn train --augment flip,crop,jitter`).
# ---------------------------------------------------------------------------------------------

#: Names :func:`parse_augment` knows, in the order the transforms are applied.
AUGMENTATIONS = ("crop", "flip", "jitter")
#: ColorJitter strength used by the ``jitter`` augmentation (brightness, contrast, saturation).
JITTER = 0.2


def parse_augment(spec, image_size):
    """Build the augmentation pipeline named by ``spec``, e.g. ``"flip,crop,jitter"``.

    * ``crop``: :class:`RandomCrop` back to ``image_size`` after zero-padding by 4 pixels for
      images of 32 pixels or more (CIFAR), by 2 for smaller ones (28x28 MNIST);
    * ``flip``: :class:`RandomHorizontalFlip` with p = 0.5;
    * ``jitter``: :class:`ColorJitter` with brightness, contrast and saturation ``JITTER``.

    ``spec`` is a comma-separated string (or a list of names); case and spaces do not matter,
    and ``""`` or ``"none"`` means no augmentation. The transforms are applied in the order of
    ``AUGMENTATIONS`` (crop, flip, jitter) whatever the order in ``spec``. ``image_size`` is an
    int or ``(height, width)``. Unknown names raise ``ValueError``. Returns a :class:`Compose`.
    """
    if spec is None:
        spec = ""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = {name.strip().lower() for name in names} - {"", "none"}
    unknown = sorted(names - set(AUGMENTATIONS))
    if unknown:
        raise ValueError(f"unknown augmentation(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(AUGMENTATIONS)} (comma-separated), or none")
    height, width = _pair(image_size, "image_size")
    build = {
        "crop": lambda: RandomCrop((height, width), padding=4 if min(height, width) >= 32 else 2),
        "flip": lambda: RandomHorizontalFlip(0.5),
        "jitter": lambda: ColorJitter(brightness=JITTER, contrast=JITTER, saturation=JITTER),
    }
    return Compose([build[name]() for name in AUGMENTATIONS if name in names])
