"""geometry.py: (h, w) pairs, the one padding helper and adaptive pooling's output size
(the output-size formula is tested in test_conv.py)."""
import numpy as np
import pytest

from minicnn import backend
from minicnn.functional.geometry import adaptive_output_size, pad2d, pair


@pytest.mark.parametrize("value, expected", [(3, (3, 3)), ((3, 5), (3, 5)), ([2, 1], (2, 1)),
                                             (np.int64(4), (4, 4)), (2.0, (2, 2))])
def test_pair(value, expected):
    assert pair(value) == expected and all(type(v) is int for v in pair(value))


@pytest.mark.parametrize("value, message", [((1, 2, 3), "kernel_size must be an int or an \\(h, w\\) pair, got"),
                                            (1.5, "pair of ints, got 1.5"), ("3", "pair of ints, got '3'"),
                                            ((2, None), "pair of ints")])
def test_pair_errors_name_the_argument(value, message):
    with pytest.raises(ValueError, match=message):
        pair(value, "kernel_size")


def test_pad2d_borders_interior_and_reused_buffer(xp):
    x = xp.asarray(np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5))
    y = pad2d(x, (1, 2, 3, 0), value=-7.0)
    expected = np.pad(backend.to_numpy(x), ((0, 0), (0, 0), (1, 2), (3, 0)), constant_values=-7.0)
    np.testing.assert_array_equal(backend.to_numpy(y), expected)
    out = xp.zeros(expected.shape)
    assert pad2d(x, (1, 2, 3, 0), value=-7.0, out=out) is out
    np.testing.assert_array_equal(backend.to_numpy(out), expected)


def test_pad2d_without_padding_returns_the_input_or_fills_out(xp):
    x = xp.asarray(np.ones((1, 2, 3, 3)))
    assert pad2d(x, (0, 0, 0, 0)) is x
    out = xp.zeros((1, 2, 3, 3))
    assert pad2d(x, (0, 0, 0, 0), out=out) is out
    np.testing.assert_array_equal(backend.to_numpy(out), np.ones((1, 2, 3, 3)))


@pytest.mark.parametrize("output_size, expected", [(3, (3, 3)), ((2, 5), (2, 5)), ((None, 4), (7, 4)),
                                                   ((2, None), (2, 6))])
def test_adaptive_output_size(output_size, expected):
    assert adaptive_output_size((1, 1, 7, 6), output_size) == expected


def test_adaptive_output_size_refuses_a_triple():
    with pytest.raises(ValueError, match="output_size must be an int or an \\(h, w\\) pair, got \\(1, 2, 3\\)"):
        adaptive_output_size((1, 1, 7, 6), (1, 2, 3))
