"""Assignment 1: the layers of a convolutional network, in plain NumPy.

Every layer is a pair of functions with the same contract:

    out, cache = <layer>_forward(inputs..., settings...)
    dinputs... = <layer>_backward(dout, cache)

The forward pass computes the output and returns, in ``cache``, whatever the backward pass will
need. The backward pass receives ``dout``, the gradient of the loss with respect to ``out`` (same
shape as ``out``), and returns the gradient of the loss with respect to each input (each the same
shape as that input). This is the chain rule, one layer at a time: autograd frameworks such as
minicnn (``minicnn.Function``) and PyTorch (``torch.autograd.Function``) are organised the same way.

Layouts follow minicnn and PyTorch: images are ``(N, C, H, W)``; fully connected weights are
``(out_features, in_features)``; convolution weights are ``(F, C, HH, WW)``.

Fill in every ``TODO``: replace the ``raise NotImplementedError`` line by your code. Do not change
the function signatures or what goes into the caches that are already written. Check your work
with ``python grader.py`` (see the README).
"""
import numpy as np


def conv_output_size(size, kernel, stride=1, pad=0):
    """Output length of a convolution or pooling window sliding along one axis.

    A window of ``kernel`` cells, moved ``stride`` cells at a time over ``size + 2 * pad`` cells,
    fits ``(size + 2 * pad - kernel) // stride + 1`` times (cells left over at the end are
    ignored, as in PyTorch).
    """
    if size + 2 * pad < kernel:
        raise ValueError(f"a window of {kernel} does not fit in {size} (+2*{pad} padding) cells")
    return (size + 2 * pad - kernel) // stride + 1


def pad_images(x, pad):
    """Zero-pad the two spatial axes of ``x`` (N, C, H, W) by ``pad`` cells on every side."""
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


# ------------------------------------------------------------------------------------------------
# Q1. Fully connected (affine) layer
# ------------------------------------------------------------------------------------------------

def affine_forward(x, w, b):
    """Forward pass of a fully connected layer: ``out = x_flat @ w.T + b``.

    Inputs:
        x: (N, d_1, ..., d_k) array; each of the N examples is flattened into a row of
           D = d_1 * ... * d_k numbers.
        w: (M, D) weights.
        b: (M,) biases.

    Returns ``(out, cache)``: ``out`` of shape (N, M) and ``cache = (x, w, b)``.
    """
    out = None
    # BEGIN SOLUTION (hint: flatten every example with x.reshape(N, -1), then one matrix product)
    x_rows = x.reshape(x.shape[0], -1)
    out = x_rows @ w.T + b
    # END SOLUTION
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    """Backward pass of a fully connected layer.

    Inputs:
        dout: (N, M) upstream gradient.
        cache: ``(x, w, b)`` from :func:`affine_forward`.

    Returns ``(dx, dw, db)``, shaped like ``x``, ``w`` and ``b``.
    """
    x, w, b = cache
    dx = dw = db = None
    # BEGIN SOLUTION (hint: one matrix product per gradient; reshape dx back to the shape of x)
    x_rows = x.reshape(x.shape[0], -1)
    dx = (dout @ w).reshape(x.shape)
    dw = dout.T @ x_rows
    db = dout.sum(axis=0)
    # END SOLUTION
    return dx, dw, db


# ------------------------------------------------------------------------------------------------
# Q2. ReLU
# ------------------------------------------------------------------------------------------------

def relu_forward(x):
    """Forward pass of the rectified linear unit, ``max(0, x)`` elementwise.

    Returns ``(out, cache)``: ``out`` shaped like ``x`` and ``cache = x``.
    """
    out = None
    # BEGIN SOLUTION (hint: np.maximum compares elementwise)
    out = np.maximum(0, x)
    # END SOLUTION
    cache = x
    return out, cache


def relu_backward(dout, cache):
    """Backward pass of ReLU: the gradient flows where the input was positive, nowhere else.

    Returns ``dx``, shaped like ``x``.
    """
    x = cache
    dx = None
    # BEGIN SOLUTION (hint: a boolean mask of the positive inputs)
    dx = dout * (x > 0)
    # END SOLUTION
    return dx


# ------------------------------------------------------------------------------------------------
# Q3. Convolution, the naive way: loops
# ------------------------------------------------------------------------------------------------

def conv_forward_naive(x, w, b, stride=1, pad=0):
    """Forward pass of a convolutional layer, with explicit loops.

    Each of the F filters is slid over the zero-padded input; at every position the output is the
    sum of the elementwise product of the filter with the window under it, plus the filter's bias:

        out[n, f, i, j] = sum(x_pad[n, :, i*stride : i*stride + HH, j*stride : j*stride + WW] * w[f])
                          + b[f]

    Inputs:
        x: (N, C, H, W) images.
        w: (F, C, HH, WW) filters.
        b: (F,) biases.
        stride: step between neighbouring windows (same along both axes).
        pad: zeros added on every side of both spatial axes.

    Returns ``(out, cache)``: ``out`` of shape (N, F, H_out, W_out), with
    ``H_out = conv_output_size(H, HH, stride, pad)`` (and the same for W), and
    ``cache = (x, w, b, stride, pad)``.
    """
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out = conv_output_size(H, HH, stride, pad)
    W_out = conv_output_size(W, WW, stride, pad)
    out = np.zeros((N, F, H_out, W_out), dtype=np.result_type(x, w, b))
    # BEGIN SOLUTION (hint: pad_images, then loop over n, f, i and j)
    x_pad = pad_images(x, pad)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    top, left = i * stride, j * stride
                    window = x_pad[n, :, top:top + HH, left:left + WW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    # END SOLUTION
    cache = (x, w, b, stride, pad)
    return out, cache


def conv_backward_naive(dout, cache):
    """Backward pass of :func:`conv_forward_naive`.

    Inputs:
        dout: (N, F, H_out, W_out) upstream gradient.
        cache: ``(x, w, b, stride, pad)``.

    Returns ``(dx, dw, db)``, shaped like ``x``, ``w`` and ``b``.
    """
    x, w, b, stride, pad = cache
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    dx = dw = db = None
    # BEGIN SOLUTION (hint: every output cell used one window and one filter; send dout back to both, then crop the padding)
    x_pad = pad_images(x, pad)
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    top, left = i * stride, j * stride
                    window = x_pad[n, :, top:top + HH, left:left + WW]
                    dw[f] += dout[n, f, i, j] * window
                    dx_pad[n, :, top:top + HH, left:left + WW] += dout[n, f, i, j] * w[f]
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]
    # END SOLUTION
    return dx, dw, db


# ------------------------------------------------------------------------------------------------
# Q4. Convolution as one matrix product: im2col
# ------------------------------------------------------------------------------------------------

def im2col(x, kernel_h, kernel_w, stride=1, pad=0):
    """Unroll every window of the padded input into one row of a matrix.

    Row ``r = (n * H_out + i) * W_out + j`` holds the window
    ``x_pad[n, :, i*stride : i*stride + kernel_h, j*stride : j*stride + kernel_w]``, flattened in
    ``(c, p, q)`` order (channel, then kernel row, then kernel column). A convolution is then one
    matrix product of this matrix with the flattened filters.

    Returns ``cols`` of shape ``(N * H_out * W_out, C * kernel_h * kernel_w)``.

    The windows overlap, so ``cols`` is larger than ``x``: about ``kernel_h * kernel_w / stride**2``
    times. Build it from a *strided view*: an array that reads the padded input's memory with
    other strides, without copying it, and copy only once at the end.
    """
    N, C, H, W = x.shape
    H_out = conv_output_size(H, kernel_h, stride, pad)
    W_out = conv_output_size(W, kernel_w, stride, pad)
    cols = None
    # BEGIN SOLUTION (hint: np.lib.stride_tricks.as_strided or sliding_window_view give all windows as a view; reshape copies them once)
    x_pad = pad_images(x, pad)
    step_n, step_c, step_h, step_w = x_pad.strides
    windows = np.lib.stride_tricks.as_strided(
        x_pad,
        shape=(N, H_out, W_out, C, kernel_h, kernel_w),
        strides=(step_n, stride * step_h, stride * step_w, step_c, step_h, step_w),
        writeable=False)
    cols = windows.reshape(N * H_out * W_out, C * kernel_h * kernel_w)
    # END SOLUTION
    return cols


def col2im(cols, x_shape, kernel_h, kernel_w, stride=1, pad=0):
    """The reverse of :func:`im2col`: add every row back onto the window it was taken from.

    Where windows overlap, their values add up; padding is cropped off at the end. (Strictly,
    ``col2im`` is the *adjoint* of ``im2col``, not its inverse: ``sum(im2col(x) * c)`` equals
    ``sum(x * col2im(c))`` for all ``x`` and ``c``, which is exactly what the backward pass needs.)

    Inputs:
        cols: (N * H_out * W_out, C * kernel_h * kernel_w) array, laid out as by :func:`im2col`.
        x_shape: ``(N, C, H, W)``, the shape of the images.

    Returns an array of shape ``x_shape``.
    """
    N, C, H, W = x_shape
    H_out = conv_output_size(H, kernel_h, stride, pad)
    W_out = conv_output_size(W, kernel_w, stride, pad)
    x = None
    # BEGIN SOLUTION (hint: loop over the kernel offsets (p, q) only: each one is a strided slice of the padded image)
    windows = cols.reshape(N, H_out, W_out, C, kernel_h, kernel_w)
    x_pad = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    for p in range(kernel_h):
        for q in range(kernel_w):
            rows = slice(p, p + stride * H_out, stride)
            columns = slice(q, q + stride * W_out, stride)
            x_pad[:, :, rows, columns] += windows[:, :, :, :, p, q].transpose(0, 3, 1, 2)
    x = x_pad[:, :, pad:pad + H, pad:pad + W]
    # END SOLUTION
    return x


def conv_forward_im2col(x, w, b, stride=1, pad=0):
    """Forward pass of a convolutional layer as one matrix product (same result as the naive one).

    Returns ``(out, cache)`` with ``cache = (x, w, b, stride, pad, cols)``, ``cols`` being
    ``im2col(x, HH, WW, stride, pad)``.
    """
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out = conv_output_size(H, HH, stride, pad)
    W_out = conv_output_size(W, WW, stride, pad)
    out = cols = None
    # BEGIN SOLUTION (hint: im2col, one product with w.reshape(F, -1), then reshape and transpose to NCHW)
    cols = im2col(x, HH, WW, stride, pad)
    out_rows = cols @ w.reshape(F, -1).T + b
    out = out_rows.reshape(N, H_out, W_out, F).transpose(0, 3, 1, 2)
    # END SOLUTION
    cache = (x, w, b, stride, pad, cols)
    return out, cache


def conv_backward_im2col(dout, cache):
    """Backward pass of :func:`conv_forward_im2col`. Returns ``(dx, dw, db)``."""
    x, w, b, stride, pad, cols = cache
    F, C, HH, WW = w.shape
    dx = dw = db = None
    # BEGIN SOLUTION (hint: the forward pass was out_rows = cols @ w_rows.T + b: backward of a product, then col2im)
    dout_rows = dout.transpose(0, 2, 3, 1).reshape(-1, F)
    db = dout_rows.sum(axis=0)
    dw = (dout_rows.T @ cols).reshape(w.shape)
    dcols = dout_rows @ w.reshape(F, -1)
    dx = col2im(dcols, x.shape, HH, WW, stride, pad)
    # END SOLUTION
    return dx, dw, db


# ------------------------------------------------------------------------------------------------
# Q5. Max pooling
# ------------------------------------------------------------------------------------------------

def max_pool_forward(x, size=2, stride=2):
    """Forward pass of max pooling: the largest value of every ``size`` x ``size`` window.

    Inputs:
        x: (N, C, H, W) array.
        size: height and width of the pooling window.
        stride: step between neighbouring windows (windows overlap when ``stride < size``).

    Returns ``(out, cache)``: ``out`` of shape (N, C, H_out, W_out) with
    ``H_out = conv_output_size(H, size, stride)``, and ``cache = (x, size, stride)``.
    """
    N, C, H, W = x.shape
    H_out = conv_output_size(H, size, stride)
    W_out = conv_output_size(W, size, stride)
    out = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    # BEGIN SOLUTION (hint: loop over the output positions (i, j); take the max over both window axes at once)
    for i in range(H_out):
        for j in range(W_out):
            top, left = i * stride, j * stride
            window = x[:, :, top:top + size, left:left + size]
            out[:, :, i, j] = window.max(axis=(2, 3))
    # END SOLUTION
    cache = (x, size, stride)
    return out, cache


def max_pool_backward(dout, cache):
    """Backward pass of max pooling.

    Only the maximum of each window influenced the output, so each window's gradient goes to
    its maximum, and to nothing else. When several cells tie for the maximum, the first one (in
    row-major order) gets it, as in PyTorch. Where windows overlap, gradients add up.

    Returns ``dx``, shaped like ``x``.
    """
    x, size, stride = cache
    N, C, H, W = x.shape
    _, _, H_out, W_out = dout.shape
    dx = None
    # BEGIN SOLUTION (hint: np.argmax of each flattened window, np.unravel_index to find its cell)
    dx = np.zeros_like(x)
    n_index, c_index = np.indices((N, C))
    for i in range(H_out):
        for j in range(W_out):
            top, left = i * stride, j * stride
            window = x[:, :, top:top + size, left:left + size].reshape(N, C, -1)
            p, q = np.unravel_index(window.argmax(axis=2), (size, size))
            dx[n_index, c_index, top + p, left + q] += dout[:, :, i, j]
    # END SOLUTION
    return dx


# ------------------------------------------------------------------------------------------------
# Q6. Softmax cross-entropy loss
# ------------------------------------------------------------------------------------------------

def softmax_loss(scores, y):
    """Softmax cross-entropy loss, averaged over the batch, and its gradient.

    Inputs:
        scores: (N, K) class scores (logits).
        y: (N,) integer labels, ``0 <= y[n] < K``.

    Returns ``(loss, dscores)``: ``loss`` a float,
    ``mean over n of -log(softmax(scores[n])[y[n]])``, and ``dscores`` its gradient, shaped like
    ``scores``. Make it numerically stable: scores in the thousands must not overflow.
    """
    N = scores.shape[0]
    loss = dscores = None
    # BEGIN SOLUTION (hint: shifting a row by its max changes no probability; derive d(-log p_y)/d(score_j) for j = y, j != y)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(N), y].mean()
    dscores = np.exp(log_probs)
    dscores[np.arange(N), y] -= 1
    dscores /= N
    # END SOLUTION
    return loss, dscores


# ------------------------------------------------------------------------------------------------
# Q7. Dropout (inverted)
# ------------------------------------------------------------------------------------------------

def dropout_forward(x, p, train=True, seed=None):
    """Inverted dropout: in training, zero each value with probability ``p`` and scale the ones kept
    by ``1 / (1 - p)``, so that the expected output equals ``x``; at test time (``train=False``)
    return ``x`` unchanged.

    The values kept are those where ``mask`` (drawn below, True with probability ``1 - p``) is
    True. ``seed`` makes the draw repeatable (the grader uses it).

    Returns ``(out, cache)`` with ``cache = (mask, p, train)``.
    """
    mask = np.random.default_rng(seed).random(x.shape) >= p
    out = None
    # BEGIN SOLUTION (hint: multiply by the mask and rescale in training; nothing to do at test time)
    if train:
        out = x * mask / (1.0 - p)
    else:
        out = x
    # END SOLUTION
    cache = (mask, p, train)
    return out, cache


def dropout_backward(dout, cache):
    """Backward pass of :func:`dropout_forward`: returns ``dx``, shaped like ``dout``."""
    mask, p, train = cache
    dx = None
    # BEGIN SOLUTION (hint: the forward pass was multiplication by a constant array)
    dx = dout * mask / (1.0 - p) if train else dout
    # END SOLUTION
    return dx


# ------------------------------------------------------------------------------------------------
# Q8. Local response normalisation (AlexNet)
# ------------------------------------------------------------------------------------------------

def lrn_forward(x, size, alpha=1e-4, beta=0.75, k=2.0):
    """Local response normalisation across channels (AlexNet, section 3.3), with the definition of
    PyTorch's ``nn.LocalResponseNorm(size, alpha, beta, k)`` and minicnn's: every activation is
    divided by a power of the energy of its neighbouring channels at the same pixel,

        scale[n, c, i, j] = k + (alpha / size) * sum over c' in window(c) of x[n, c', i, j] ** 2
        out[n, c, i, j]   = x[n, c, i, j] / scale[n, c, i, j] ** beta

    where ``window(c)`` is the ``size`` channels ``c - size // 2, ..., c + (size - 1) // 2``,
    without the ones that fall outside ``0 .. C - 1`` (they count as zero). For an odd ``size``
    the window is centred on ``c``; for an even one it holds one more channel before ``c`` than
    after. (The paper writes alpha without the division by ``size``: its layer is
    ``lrn_forward(x, 5, alpha=5e-4, beta=0.75, k=2.0)`` here.)

    Inputs:
        x: (N, C, H, W) array.
        size: the number of channels in a window (a positive integer).
        alpha, beta, k: the constants of the formula.

    Returns ``(out, cache)``: ``out`` shaped like ``x``, and
    ``cache = (x, out, scale, size, alpha, beta)``, with ``scale`` the array of the first line of
    the formula (shaped like ``x``, before the power ``beta``).
    """
    C = x.shape[1]
    before, after = size // 2, (size - 1) // 2         # window(c) = c - before .. c + after
    out = scale = None
    # BEGIN SOLUTION (hint: for each channel c, sum the squares over window(c), clipped at 0 and C)
    squares = x * x
    energy = np.zeros_like(x)
    for c in range(C):
        energy[:, c] = squares[:, max(0, c - before):c + after + 1].sum(axis=1)
    scale = k + (alpha / size) * energy
    out = x * scale ** -beta
    # END SOLUTION
    cache = (x, out, scale, size, alpha, beta)
    return out, cache


def lrn_backward(dout, cache):
    """Backward pass of :func:`lrn_forward`: returns ``dx``, shaped like ``x``.

    Channel ``x[:, c]`` reaches the loss by more than one path: directly through ``out[:, c]``,
    and through the ``scale`` of every channel whose window holds ``c``. Derive the gradient on
    paper first (see the README), then check it numerically: for an even ``size``, the channels
    whose window holds ``c`` are not ``window(c)`` itself.
    """
    x, out, scale, size, alpha, beta = cache
    C = x.shape[1]
    before, after = size // 2, (size - 1) // 2
    dx = None
    # BEGIN SOLUTION (hint: x[:, c] acts on out[:, c] directly and on each scale[:, d] whose window holds c: sum both)
    through_scale = dout * out / scale                  # dL/dscale[:, d] = -beta * through_scale[:, d]
    incoming = np.zeros_like(x)
    for c in range(C):                                  # the channels d with c in window(d):
        incoming[:, c] = through_scale[:, max(0, c - after):c + before + 1].sum(axis=1)
    dx = dout * scale ** -beta - (2.0 * alpha * beta / size) * x * incoming
    # END SOLUTION
    return dx
