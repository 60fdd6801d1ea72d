"""CIFAR-10 in both official formats, from files the tests write, and the restricted unpickler."""
import os
import pickle
import struct

import numpy as np
import pytest

from minicnn.data import CIFAR10, DatasetNotFoundError, write_cifar10_binary, write_cifar10_python
from minicnn.data.cifar import read_cifar10_python, restricted_loads

PER_BATCH = 4  # images per fake batch file (the real files hold 10,000)


def _fake_batches(seed=0):
    """Six fake batches (five training, one test) of random images and labels."""
    gen = np.random.default_rng(seed)
    return [(gen.integers(0, 256, size=(PER_BATCH, 3, 32, 32), dtype=np.uint8),
             gen.integers(0, 10, size=PER_BATCH)) for _ in range(6)]


def write_fake_cifar10(root, fmt, **python_kwargs):
    """Write ``root/cifar-10-batches-{fmt}/`` as the official archive unpacks; returns the batches."""
    batches = _fake_batches()
    folder = root / f"cifar-10-batches-{fmt}"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, (images, labels) in zip(names, batches):
        if fmt == "bin":
            write_cifar10_binary(folder / f"{name}.bin", images, labels)
        else:
            write_cifar10_python(folder / name, images, labels, **python_kwargs)
    return batches


def _check(dataset, batches, train):
    chosen = batches[:5] if train else batches[5:]
    np.testing.assert_array_equal(dataset.data, np.concatenate([b[0] for b in chosen]))
    np.testing.assert_array_equal(dataset.targets, np.concatenate([b[1] for b in chosen]))
    assert dataset.data.dtype == np.uint8 and dataset.targets.dtype == np.int64
    assert dataset.data.shape == (len(chosen) * PER_BATCH, 3, 32, 32)
    x, y = dataset[0]
    assert x.dtype == np.float32 and x.shape == (3, 32, 32)
    np.testing.assert_allclose(x, chosen[0][0][0] / np.float32(255))


@pytest.mark.parametrize("fmt", ["bin", "py"])
@pytest.mark.parametrize("train", [True, False])
def test_both_formats(tmp_path, fmt, train):
    batches = write_fake_cifar10(tmp_path, fmt)
    _check(CIFAR10(tmp_path, train=train), batches, train)
    # The batch folder itself is accepted too.
    _check(CIFAR10(tmp_path / f"cifar-10-batches-{fmt}", train=train), batches, train)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_python_format_any_pickle_protocol(tmp_path, protocol):
    batches = write_fake_cifar10(tmp_path, "py", protocol=protocol)
    _check(CIFAR10(tmp_path, train=False), batches, train=False)


def test_binary_preferred_when_both_are_present(tmp_path):
    write_fake_cifar10(tmp_path, "py")
    write_fake_cifar10(tmp_path, "bin")
    assert CIFAR10(tmp_path).folder.name == "cifar-10-batches-bin"


def test_pixel_layout_is_rgb_planes(tmp_path):
    """Each record holds the red plane, then green, then blue, each row by row."""
    images = np.zeros((1, 3, 32, 32), dtype=np.uint8)
    images[0, 0, 0, 1] = 11  # red, row 0, column 1
    images[0, 2, 31, 0] = 22  # blue, row 31, column 0
    write_cifar10_binary(tmp_path / "b.bin", images, [7])
    raw = (tmp_path / "b.bin").read_bytes()
    assert len(raw) == 3073 and raw[0] == 7
    assert raw[1 + 1] == 11 and raw[1 + 2048 + 31 * 32] == 22


def _python2_pickle(data, labels):
    """A batch pickled the way the official files were (Python 2, protocol 2), opcode by opcode.

    Python 3 cannot produce these itself: Python 2 strings appear as SHORT_BINSTRING/BINSTRING
    and the array comes from ``numpy.core.multiarray._reconstruct``.
    """
    def string(b):
        return (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<i", len(b))) + b

    def integer(v):
        return b"K" + bytes([v]) if v < 256 else b"M" + struct.pack("<H", v)

    n, m = data.shape
    dtype = (b"cnumpy\ndtype\n" + string(b"u1") + integer(0) + integer(1) + b"\x87R"
             + b"(" + integer(3) + string(b"|") + b"NNN" + b"J\xff\xff\xff\xff" * 2 + integer(0) + b"tb")
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + integer(0) + b"\x85"
             + string(b"b") + b"\x87R" + b"(" + integer(1) + integer(n) + integer(m) + b"\x86"
             + dtype + b"\x89" + string(data.tobytes()) + b"tb")
    label_list = b"](" + b"".join(integer(int(v)) for v in labels) + b"e"
    return (b"\x80\x02}(" + string(b"batch_label") + string(b"testing batch 1 of 1")
            + string(b"labels") + label_list + string(b"data") + array + b"u.")


def test_reads_python2_pickles_like_the_official_files(tmp_path):
    images, labels = _fake_batches()[0]
    path = tmp_path / "test_batch"
    path.write_bytes(_python2_pickle(images.reshape(len(images), -1), labels))
    got_images, got_labels = read_cifar10_python(path)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


class _Exploit:
    """Unpickling this would run a shell command creating ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Eval:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


@pytest.mark.parametrize("make", [
    lambda marker: {b"data": _Exploit(marker), b"labels": []},
    lambda marker: [_Exploit(marker)],
    lambda marker: {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": _Eval()},
])
def test_restricted_unpickler_refuses_code(tmp_path, make):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(make(marker), protocol=2))
    with pytest.raises(ValueError, match="refusing to unpickle") as info:
        read_cifar10_python(path)
    assert "data_batch_1" in str(info.value)
    assert not marker.exists()


def test_codecs_only_for_latin1():
    payload = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(ValueError, match="latin1"):
        restricted_loads(payload)


@pytest.mark.parametrize("obj, fragment", [
    ([1, 2, 3], "expected a pickled dict, found list"),
    ({b"data": np.zeros((2, 3072), np.uint8)}, "expected the keys 'data' and 'labels'"),
    ({b"data": np.zeros((2, 3071), np.uint8), b"labels": [0, 1]}, r"shape \(N, 3072\)"),
    ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "integer array"),
    ({b"data": np.zeros((2, 3072), np.int32) + 256, b"labels": [0, 1]}, "0..255"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "expected 2 integer labels"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"\[0, 10\)"),
    ({b"data": "not an array", b"labels": []}, "an array or a list"),
    ({b"data": np.zeros((1, 3072), np.uint8), b"labels": "0"}, "in a list, found a str"),
])
def test_python_batch_validation(tmp_path, obj, fragment):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps(obj, protocol=4))
    with pytest.raises(ValueError, match=fragment):
        read_cifar10_python(path)


def test_str_keys_and_list_data_are_accepted(tmp_path):
    images, labels = _fake_batches()[0]
    obj = {"data": images.reshape(len(images), -1).tolist(), "labels": labels.tolist()}
    (tmp_path / "batch").write_bytes(pickle.dumps(obj))
    got_images, got_labels = read_cifar10_python(tmp_path / "batch")
    np.testing.assert_array_equal(got_images, images)


def test_garbage_pickle_is_a_value_error(tmp_path):
    (tmp_path / "batch").write_bytes(b"\x80\x04this is not a pickle")
    with pytest.raises(ValueError, match="not a valid pickle"):
        read_cifar10_python(tmp_path / "batch")


def test_binary_size_must_be_whole_records(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    write_fake_cifar10(tmp_path, "bin")
    with open(folder / "test_batch.bin", "ab") as f:
        f.write(b"\x00" * 10)
    with pytest.raises(ValueError, match="whole number of 3073-byte records"):
        CIFAR10(tmp_path, train=False)


def test_missing_batches_message(tmp_path):
    write_fake_cifar10(tmp_path, "bin")
    (tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin").unlink()
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-bin") as info:
        CIFAR10(tmp_path, train=True)
    assert "cs.toronto.edu" in str(info.value)
    assert len(CIFAR10(tmp_path, train=False)) == PER_BATCH  # the test batch is still there


def test_pickle_that_repeats_one_row_is_refused_without_allocating(tmp_path):
    """A 200 KB pickle whose 'data' list names the same row 100,000 times would become a
    2.5 GB int64 array; it claims more pixels than it has bytes and is refused first."""
    import tracemalloc
    row = list(range(256)) * 12  # 3072 values, pickled once, then referenced by memo
    path = tmp_path / "bomb"
    path.write_bytes(pickle.dumps({b"data": [row] * 100_000, b"labels": [0] * 100_000}, protocol=2))
    assert os.path.getsize(path) < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="damaged or hostile"):
            read_cifar10_python(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000, peak


def _traced_refusal(path, fragment):
    """Read ``path`` expecting a ValueError matching ``fragment``; return the peak traced bytes."""
    import tracemalloc
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=fragment):
            read_cifar10_python(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_nested_list_pickle_is_refused_before_numpy_expands_it(tmp_path):
    """A 7 KB pickle of two rows, each 3072 references to one list of 1000 references to one
    list of 300 zeros: np.asarray would build 1.8 billion numbers (15 GB)."""
    inner = [[0] * 300] * 1000
    row = [inner] * 3072
    path = tmp_path / "nested"
    path.write_bytes(pickle.dumps({b"data": [row, row], b"labels": [0, 0]}, protocol=2))
    assert os.path.getsize(path) < 10_000
    peak = _traced_refusal(path, r"expected 3072 integer pixels in row 0 of 'data', found \['list'\]")
    assert peak < 1_000_000, peak


def test_nested_labels_are_refused_before_numpy_expands_them(tmp_path):
    labels = [[[0] * 1000] * 1000] * 2
    path = tmp_path / "labels"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": labels}))
    peak = _traced_refusal(path, r"expected 2 integer labels \(one per image\), found \['list'\]")
    assert peak < 1_000_000, peak


def test_file_larger_than_any_batch_is_refused_unread(tmp_path):
    from minicnn.data.cifar import MAX_PYTHON_BATCH_BYTES
    path = tmp_path / "huge"
    with open(path, "wb") as f:
        f.truncate(MAX_PYTHON_BATCH_BYTES + 1)  # sparse: no disk used
    peak = _traced_refusal(path, "more than a pickled batch of 10000 images takes")
    assert peak < 1_000_000, peak


def test_list_rows_with_floats_or_out_of_range_values(tmp_path):
    for data, fragment in (([[1.5] * 3072], r"found \['float'\] values"),
                           ([[256] * 3072], r"0\.\.255, found 256\.\.256 in row 0"),
                           ([[0] * 3071], "expected 3072 integer pixels in row 0 of 'data' in a list, found 3071")):
        path = tmp_path / "batch"
        path.write_bytes(pickle.dumps({b"data": data, b"labels": [0]}))
        with pytest.raises(ValueError, match=fragment):
            read_cifar10_python(path)
