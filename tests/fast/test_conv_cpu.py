"""The CPU fast path of conv2d (minicnn/fast/conv_cpu.py): chunks, bands, the padded grid, the
choice of dx algorithm, thread-count independence, and equality with the reference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
import minicnn.functional as F
from minicnn import backend
from minicnn.fast import conv_cpu as conv_module
from minicnn.functional.reference import conv2d_naive, conv2d_naive_backward


def host(t):
    return backend.to_numpy(t.data if isinstance(t, mc.Tensor) else t)


# -- the column budget: chunking the batch gives the same numbers -----------------------------------
@pytest.mark.parametrize("budget_samples", [1, 2])
def test_chunked_conv_equals_unchunked(monkeypatch, budget_samples):
    rng = np.random.default_rng(3)
    x_np, w_np, b_np = rng.standard_normal((5, 4, 7, 6)), rng.standard_normal((6, 2, 3, 3)), rng.standard_normal(6)
    gy = rng.standard_normal((5, 6, 4, 3))
    kw = dict(stride=2, padding=1, groups=2)

    def run():
        x, w, b = (mc.Tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
        y = F.conv2d(x, w, b, **kw)
        y.backward(gy)
        return [host(t) for t in (y, x.grad, w.grad, b.grad)]

    whole = run()
    per_sample = 4 * 3 * 3 * 4 * 3 * 8  # C*kh*kw*Ho*Wo float64 bytes of one sample's columns
    monkeypatch.setattr(conv_module, "CPU_CHUNK_BYTES", budget_samples * per_sample + 7)
    monkeypatch.setattr(conv_module, "CPU_SPLIT_BYTES", 1 << 40)  # chunks of exactly the budget
    calls = []
    original = conv_module._unfold
    monkeypatch.setattr(conv_module, "_unfold", lambda xpad, *a, **k: calls.append(xpad.shape[0]) or
                        original(xpad, *a, **k))
    chunked = run()
    assert max(calls) == budget_samples and sum(calls) == 2 * 5  # forward + the rebuild for dW
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# -- the padded-grid columns of stride 1, chunk balance, and thread-count independence -------------
@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 7), w=st.integers(1, 7),
       kh=st.integers(1, 4), kw=st.integers(1, 4), ph=st.integers(0, 2), pw=st.integers(0, 2))
def test_grid_columns_hold_im2col_plus_junk_columns(m, c, h, w, kh, kw, ph, pw):
    """cols on the padded grid, (C*kh*kw, m, Ho, Wp) with the junk columns j >= Wo dropped, are
    exactly im2col's (C*kh*kw, m, Ho, Wo)."""
    if h + 2 * ph < kh or w + 2 * pw < kw:
        return
    x = np.random.default_rng(0).standard_normal((m, c, h, w))
    ho, wo = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1
    cols, width = conv_module._columns(x, kh, kw, (1, 1), (ph, ph, pw, pw), ho, wo, x.dtype, 1)
    assert width == w + 2 * pw
    grid = cols.reshape(c * kh * kw, m, ho, width)[..., :wo]
    np.testing.assert_array_equal(grid, F.im2col(x, kh, kw, 1, (ph, pw)).reshape(c * kh * kw, m, ho, wo))


def test_cpu_chunks_are_even(monkeypatch):
    # 128 samples at 28 per chunk: 8 chunks of 16, not 4 of 28 and one of 16
    assert conv_module._samples_per_chunk(conv_module.CPU_CHUNK_BYTES // 28, 128) == 16
    assert conv_module._samples_per_chunk(10, 5) == 5          # all fit: one chunk
    assert conv_module._samples_per_chunk(conv_module.CPU_CHUNK_BYTES * 2, 3) == 1
    # a first layer: 128 images of 30 KB of columns fit in one chunk, but are shared out in 4
    assert conv_module._samples_per_chunk(30_000, 128) == 32


@pytest.mark.parametrize("stride, padding, groups", [(1, 1, 1), (2, 1, 2), (1, 0, 1)])
def test_conv_gives_the_same_bits_on_one_and_two_threads(monkeypatch, stride, padding, groups):
    """The pieces of the batch are fixed by the shapes and dW's parts are summed in order, so the
    thread count changes nothing (a resumed training run matches on any machine)."""
    from minicnn.fast import threads
    monkeypatch.setattr(conv_module, "CPU_CHUNK_BYTES", 4096)  # many chunks
    rng = np.random.default_rng(5)
    x_np = rng.standard_normal((9, 4, 9, 8)).astype(np.float32)
    w_np = rng.standard_normal((6, 4 // groups, 3, 3)).astype(np.float32)
    b_np = rng.standard_normal(6).astype(np.float32)

    def run():
        x, w, b = (mc.Tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
        y = F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)
        y.backward(np.cos(np.arange(y.data.size, dtype=np.float32)).reshape(y.shape))
        return [t.copy() for t in (y.data, x.grad.data, w.grad.data, b.grad.data)]

    before = threads.get_num_threads()
    try:
        threads.set_num_threads(1)
        one = run()
        threads.set_num_threads(2)
        two = run()
    finally:
        threads.set_num_threads(before)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("c_in, c_out, hw, k, pad, groups", [
    (4, 3, 6, 3, 1, 1), (3, 5, 6, 3, 1, 1), (4, 4, 5, 5, 0, 2), (2, 6, 9, 5, 2, 1), (6, 6, 7, 1, 0, 3),
    (6, 4, 6, 3, 1, 2), (5, 5, 7, 3, (1, 0), 1), (60, 6, 4, 3, 1, 1)])  # the last: exact columns
def test_both_dx_methods_agree(monkeypatch, c_in, c_out, hw, k, pad, groups):
    """dx as a convolution of G (with dW from the same columns of G) and dx as col2im(W^T G)
    (with dW from the columns of x) give the reference's numbers; the choice between them
    (``_dx_as_convolution``) is only about speed."""
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal((3, c_in, hw, hw))
    w_np = rng.standard_normal((c_out, c_in // groups, k, k))
    gy = None

    def grads(use_convolution):
        nonlocal gy
        monkeypatch.setattr(conv_module, "_dx_as_convolution", lambda *a: use_convolution)
        x, w = mc.Tensor(x_np, requires_grad=True), mc.Tensor(w_np, requires_grad=True)
        y = F.conv2d(x, w, padding=pad, groups=groups)
        gy = np.sin(np.arange(y.data.size)).reshape(y.shape)
        y.backward(gy)
        return x.grad, w.grad

    as_conv, by_col2im = grads(True), grads(False)
    gx, gw, _ = conv2d_naive_backward(x_np, w_np, None, 1, pad, groups, gy)
    for got in (as_conv, by_col2im):
        np.testing.assert_allclose(got[0], gx, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(got[1], gw, rtol=1e-11, atol=1e-11)


def test_dx_method_choice_follows_the_measurements():
    choose = conv_module._dx_as_convolution
    assert choose((128, 16, 32, 32), (16, 16, 3, 3), (1, 1), (1, 1), (32, 32))        # ResNet 16 -> 16
    assert not choose((32, 96, 27, 27), (256, 96, 5, 5), (1, 1), (2, 2), (27, 27))    # AlexNet conv2
    assert not choose((128, 16, 5, 5), (120, 16, 5, 5), (1, 1), (0, 0), (1, 1))       # LeNet C5
    assert not choose((128, 16, 32, 32), (16, 16, 3, 3), (2, 2), (1, 1), (16, 16))    # stride 2


def test_stride_one_columns_exact_or_grid_by_filter_count():
    """Many filters and a wide kernel on a small map: the exact layout (the junk columns of the
    grid would cost more multiply-adds than the faster copy saves); few filters: the grid."""
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6))
    _, width = conv_module._columns(x, 5, 5, (1, 1), (2, 2, 2, 2), 6, 6, x.dtype, 256)
    assert width == 6
    _, width = conv_module._columns(x, 5, 5, (1, 1), (2, 2, 2, 2), 6, 6, x.dtype, 4)
    assert width == 10


@pytest.mark.parametrize("c_out", [4, 64])
def test_stride_one_conv_matches_reference_on_both_layouts(c_out):
    rng = np.random.default_rng(2)
    x_np, w_np = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((c_out, 3, 5, 3))
    b_np = rng.standard_normal(c_out)
    gy = rng.standard_normal((2, c_out, 7, 6))
    x, w, b = (mc.Tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
    y = F.conv2d(x, w, b, padding=(2, 1))
    y.backward(gy)
    np.testing.assert_allclose(y.data, conv2d_naive(x_np, w_np, b_np, 1, (2, 1), 1), rtol=1e-10, atol=1e-10)
    gx, gw, gb = conv2d_naive_backward(x_np, w_np, b_np, 1, (2, 1), 1, gy)
    for got, want in ((x.grad, gx), (w.grad, gw), (b.grad, gb)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("stride, padding, groups, k", [
    (1, 1, 1, 3), (1, 0, 1, 3), (2, 1, 1, 3), (1, 2, 2, 5), (3, (2, 0), 1, (4, 3)), (1, 1, 1, 1), (1, 4, 1, 3)])
def test_conv_in_bands_of_output_rows_matches_reference(device, to_device, monkeypatch, stride, padding,
                                                        groups, k):
    """With a tiny CPU chunk every sample's columns are 'too large', so forward and the
    convolution-form backward run in bands of output rows (each band with its own padding rows,
    ``_input_rows``); the results are the reference's. Padding 4 > kernel 3: bands of pure padding."""
    monkeypatch.setattr(conv_module, "CPU_CHUNK_BYTES", 512)
    rng = np.random.default_rng(4)
    kh, kw = (k, k) if isinstance(k, int) else k
    x_np = rng.standard_normal((2, 4, 11, 9))
    w_np = rng.standard_normal((4, 4 // groups, kh, kw))
    b_np = rng.standard_normal(4)
    x, w, b = (to_device(a, requires_grad=True) for a in (x_np, w_np, b_np))
    y = F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)
    gy = rng.standard_normal(y.shape)
    y.backward(to_device(gy).data)
    np.testing.assert_allclose(host(y), conv2d_naive(x_np, w_np, b_np, stride, padding, groups),
                               rtol=1e-10, atol=1e-10)
    gx, gw, gb = conv2d_naive_backward(x_np, w_np, b_np, stride, padding, groups, gy)
    for got, want in ((x.grad, gx), (w.grad, gw), (b.grad, gb)):
        np.testing.assert_allclose(host(got), want, rtol=1e-10, atol=1e-10)
    pieces = conv_module._pieces(2, y.shape[2], 10 ** 6)  # one band per output row here
    assert len(pieces) == 2 * y.shape[2] and all(rows.stop - rows.start == 1 for _, rows in pieces)
