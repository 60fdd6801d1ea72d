"""Assignment 4, Q1-Q3: data augmentation on batches of images.

Each augmentation is split in two: a function that applies it with *given* settings (which you
write, and which the grader can test with known settings), and ``random_augment`` (written) that
draws the settings at random for every image of a batch and calls your functions. Images are
float arrays (N, C, H, W) with values in [0, 1].
"""
import numpy as np


# ------------------------------------------------------------------------------------------------
# Q1. Horizontal flip
# ------------------------------------------------------------------------------------------------

def hflip(x, flip):
    """Mirror left-right the images ``x[i]`` for which ``flip[i]`` is True; keep the others.

    ``x``: (N, C, H, W). ``flip``: (N,) booleans. Returns a new array; ``x`` is not changed.
    """
    out = None
    # BEGIN SOLUTION (hint: x[..., ::-1] reverses the last axis; np.where picks per image)
    out = np.where(np.asarray(flip, dtype=bool)[:, None, None, None], x[..., ::-1], x)
    # END SOLUTION
    return out


# ------------------------------------------------------------------------------------------------
# Q2. Random crop with padding
# ------------------------------------------------------------------------------------------------

def crop(x, pad, offsets):
    """Pad every image with ``pad`` zeros on each side, then cut an H x W window back out of it.

    ``offsets``: (N, 2) integers in ``[0, 2 * pad]``: the window of image i starts at row
    ``offsets[i, 0]`` and column ``offsets[i, 1]`` of the padded image. ``offsets[i] = (pad, pad)``
    gives the image back unchanged; ``(0, 0)`` shifts its content ``pad`` pixels down and right.
    Returns an array of the same shape as ``x``.
    """
    out = None
    # BEGIN SOLUTION (hint: np.pad the two spatial axes, then one slice per image)
    n, _, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.empty_like(x)
    for i, (top, left) in enumerate(np.asarray(offsets, dtype=int)):
        out[i] = padded[i, :, top:top + h, left:left + w]
    # END SOLUTION
    return out


# ------------------------------------------------------------------------------------------------
# Q3. Colour jitter: brightness and contrast
# ------------------------------------------------------------------------------------------------

def color_jitter(x, brightness, contrast):
    """Change the brightness and contrast of every image, as torchvision's ``ColorJitter``:

        y = x * brightness[i]                                  (brightness)
        y = (y - mean(y[i])) * contrast[i] + mean(y[i])        (contrast, around the image's mean)
        y = clip(y, 0, 1)

    where ``mean(y[i])`` is the mean of all values of image i after the brightness step.
    ``brightness`` and ``contrast``: (N,) positive factors (1 changes nothing).
    """
    out = None
    # BEGIN SOLUTION (hint: reshape the factors to (N, 1, 1, 1) so that they broadcast)
    b = np.asarray(brightness, dtype=x.dtype).reshape(-1, 1, 1, 1)
    c = np.asarray(contrast, dtype=x.dtype).reshape(-1, 1, 1, 1)
    y = x * b
    mean = y.mean(axis=(1, 2, 3), keepdims=True)
    out = np.clip((y - mean) * c + mean, 0.0, 1.0)
    # END SOLUTION
    return out


# ------------------------------------------------------------------------------------------------
# Drawing the settings at random (written)
# ------------------------------------------------------------------------------------------------

def random_augment(x, rng, flip=True, crop_pad=0, jitter=0.0):
    """Augment a batch: flip half of the images, crop with ``crop_pad`` pixels of padding at random
    offsets, and scale brightness and contrast by random factors in ``[1 - jitter, 1 + jitter]``.
    Every setting is drawn independently for every image from the generator ``rng``."""
    n = len(x)
    if flip:
        x = hflip(x, rng.random(n) < 0.5)
    if crop_pad:
        x = crop(x, crop_pad, rng.integers(0, 2 * crop_pad + 1, (n, 2)))
    if jitter:
        x = color_jitter(x, rng.uniform(1 - jitter, 1 + jitter, n), rng.uniform(1 - jitter, 1 + jitter, n))
    return x
