"""IDX files: round trips and every kind of damaged file."""
import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minicnn.data.idx import read_idx, write_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@settings(max_examples=40, deadline=None)
@given(array=hnp.arrays(st.sampled_from(DTYPES), hnp.array_shapes(min_dims=1, max_dims=4, max_side=5)),
       gz=st.booleans())
def test_round_trip(tmp_path_factory, array, gz):
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_header_layout_is_big_endian(tmp_path):
    write_idx(tmp_path / "x", np.arange(6, dtype=np.int16).reshape(2, 3))
    raw = (tmp_path / "x").read_bytes()
    assert raw[:4] == b"\x00\x00\x0b\x02"
    assert raw[4:12] == b"\x00\x00\x00\x02\x00\x00\x00\x03"
    assert raw[12:16] == b"\x00\x00\x00\x01"  # elements 0 and 1 as big-endian int16


def test_gzip_detected_by_content_not_name(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    (tmp_path / "a.gz").rename(tmp_path / "no-suffix")
    np.testing.assert_array_equal(read_idx(tmp_path / "no-suffix"), array)


def test_gzip_output_is_reproducible(tmp_path):
    array = np.arange(100, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    first = (tmp_path / "a.gz").read_bytes()
    write_idx(tmp_path / "a.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == first


def _valid_bytes():
    return b"\x00\x00\x08\x02" + b"\x00\x00\x00\x02" * 2 + bytes(range(4))


@pytest.mark.parametrize("raw, fragment", [
    (b"\x01\x00" + _valid_bytes()[2:], "magic bytes 00 00, found 01 00"),
    (b"\x00\x00\x07\x02" + _valid_bytes()[4:], "unknown IDX type code"),
    (b"\x00\x00\x08\x00", "at least 1 dimension"),
    (b"\x00\x00", "4-byte header"),
    (b"\x00\x00\x08\x03" + b"\x00\x00\x00\x02", "truncated IDX header"),
    (_valid_bytes()[:-1], "payload truncated"),
    (_valid_bytes() + b"\x00", "trailing bytes"),
])
@pytest.mark.parametrize("gz", [False, True])
def test_damaged_files_raise_value_error_naming_the_file(tmp_path, raw, fragment, gz):
    path = tmp_path / "bad-file"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(ValueError, match=fragment) as info:
        read_idx(path)
    assert "bad-file" in str(info.value)


def test_truncated_payload_message_states_expected_and_found(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(_valid_bytes()[:-3])
    with pytest.raises(ValueError, match=r"2x2 elements of 1 byte\(s\) = 4 bytes, found 1"):
        read_idx(path)


def test_wrong_dtype_code_names_expected_codes(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"\x00\x00\x0a\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match=r"expected one of 0x08.*found 0x0a"):
        read_idx(path)


def test_damaged_gzip_stream(tmp_path):
    path = tmp_path / "f.gz"
    path.write_bytes(gzip.compress(_valid_bytes())[:-10])
    with pytest.raises(ValueError, match="damaged gzip"):
        read_idx(path)


def test_write_refuses_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="no IDX type code"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))


# -- hostile headers: refused before anything of the promised size is allocated -----------------
def _peak_bytes(fn):
    """Run ``fn`` (expected to raise ValueError) and return the peak traced allocation."""
    import tracemalloc
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            fn()
        return tracemalloc.get_traced_memory()[1], str(info.value)
    finally:
        tracemalloc.stop()


def test_small_gzip_claiming_gigabytes_is_refused_without_allocating(tmp_path):
    header = bytes([0, 0, 0x08, 3]) + np.asarray([100_000, 1000, 1000], ">u4").tobytes()
    path = tmp_path / "bomb-idx3-ubyte.gz"
    zeros = bytes(1 << 20)
    with gzip.open(path, "wb") as f:  # 64 MB of zeros after the header: about 64 KB on disk
        f.write(header)
        for _ in range(64):
            f.write(zeros)
    peak, message = _peak_bytes(lambda: read_idx(path))
    assert "100000x1000x1000" in message and "damaged or hostile" in message
    assert str(path) in message
    assert peak < 20_000_000, peak  # far below the 100 GB promised (and the 64 MB inside)


def test_gzip_that_expands_past_its_header_stops_at_the_declared_size(tmp_path):
    header = bytes([0, 0, 0x08, 1]) + np.asarray([10], ">u4").tobytes()
    path = tmp_path / "long.gz"
    path.write_bytes(gzip.compress(header + bytes(5_000_000)))
    peak, message = _peak_bytes(lambda: read_idx(path))
    assert "trailing bytes" in message and "10 bytes" in message
    assert peak < 20_000_000, peak


def test_declared_size_uses_python_integers(tmp_path):
    # four dimensions of 2**32 - 1 doubles: about 2.7e39 bytes, which overflows int64
    header = bytes([0, 0, 0x0E, 4]) + np.asarray([2**32 - 1] * 4, ">u4").tobytes()
    path = tmp_path / "huge.idx"
    path.write_bytes(header + bytes(16))
    peak, message = _peak_bytes(lambda: read_idx(path))
    assert str((2**32 - 1) ** 4 * 8) in message and "truncated" in message
    assert peak < 20_000_000, peak


def _gzip_idx(path, header, payload_mb):
    """A gzip file: ``header`` then ``payload_mb`` MB of zeros, compressed as it is streamed."""
    zeros = bytes(1 << 20)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header)
        for _ in range(payload_mb):
            f.write(zeros)
    return path


def test_mnist_file_promising_more_than_mnist_holds_is_refused_before_allocating(tmp_path, isolated):
    from minicnn.data import FashionMNIST
    write_fake_files = tmp_path / "fm"
    write_fake_files.mkdir()
    labels = np.zeros(1_000_000, np.uint8)  # a million examples: 784 MB of images promised
    write_idx(write_fake_files / "train-labels-idx1-ubyte", labels)
    header = bytes([0, 0, 0x08, 3]) + np.asarray([1_000_000, 28, 28], ">u4").tobytes()
    _gzip_idx(write_fake_files / "train-images-idx3-ubyte.gz", header, 32)
    assert (write_fake_files / "train-images-idx3-ubyte.gz").stat().st_size < 1_000_000
    peak, message = _peak_bytes(lambda: FashionMNIST(root=write_fake_files, download=False))
    assert "1000000x28x28" in message and "at most 47040000 bytes" in message
    assert peak < 5_000_000, peak


def test_gzip_is_read_incrementally_into_one_buffer(tmp_path):
    """A well-formed 20 MB gzip payload costs the array and a few megabytes more, not the two
    or three copies a decompress-then-convert reader makes."""
    import tracemalloc
    header = bytes([0, 0, 0x08, 2]) + np.asarray([20, 1 << 20], ">u4").tobytes()
    path = _gzip_idx(tmp_path / "big.gz", header, 20)
    tracemalloc.start()
    try:
        array = read_idx(path, max_bytes=20 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert array.shape == (20, 1 << 20) and not array.any()
    assert peak < (20 << 20) + (4 << 20), peak
    with pytest.raises(ValueError, match="at most 1000 bytes"):
        read_idx(path, max_bytes=1000)


def test_second_gzip_member_is_trailing_data(tmp_path):
    path = tmp_path / "two.gz"
    path.write_bytes(gzip.compress(_valid_bytes()) + gzip.compress(b"\x01" * 1000))
    with pytest.raises(ValueError, match="trailing bytes"):
        read_idx(path)
    np.testing.assert_array_equal(read_idx(_write(tmp_path / "one.gz", gzip.compress(_valid_bytes()))),
                                  np.arange(4, dtype=np.uint8).reshape(2, 2))


def _write(path, data):
    path.write_bytes(data)
    return path


def test_big_endian_values_are_swapped_in_place(tmp_path):
    values = np.arange(-3, 3, dtype=np.int16).reshape(2, 3)
    write_idx(tmp_path / "a.gz", values)
    got = read_idx(tmp_path / "a.gz")
    assert got.dtype == np.int16 and got.dtype.isnative and got.flags.writeable
    np.testing.assert_array_equal(got, values)
