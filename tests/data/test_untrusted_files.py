"""Data files are untrusted: a small crafted file cannot take much memory or run code before it is
checked, and is refused with an error naming the file."""

import gzip
import os
import pickle
import struct
import tracemalloc

import numpy as np
import pytest

from inertia import data as D

MB = 1 << 20


def peak_bytes(fn, *args, **kwargs):
    """(exception raised or None, peak bytes traced while calling ``fn``)."""
    tracemalloc.start()
    try:
        fn(*args, **kwargs)
        raised = None
    except Exception as e:  # the test inspects it
        raised = e
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return raised, peak


def idx_header(dims, code=0x08):
    return struct.pack(">HBB", 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)


# ---- IDX ----


def test_gzip_idx_with_data_beyond_its_header_is_refused_without_inflating_the_rest(tmp_path):
    # 64 MB of zeros compress to about 0.28 MB; only the declared 3136 bytes and one more are read
    body = idx_header((4, 28, 28)) + bytes(3136) + bytes(64 * MB)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(body, compresslevel=1))
    err, peak = peak_bytes(D.read_idx, path)
    assert isinstance(err, ValueError) and "t10k-images-idx3-ubyte.gz: longer than its header says" in str(err)
    assert peak < 8 * MB


def test_idx_declaring_more_than_max_elements_is_refused_naming_file_and_shape(tmp_path):
    path = tmp_path / "huge.idx.gz"
    path.write_bytes(gzip.compress(idx_header((100_000, 100_000)) + bytes(1000)))
    with pytest.raises(
        ValueError,
        match=r"huge.idx.gz: header declares sizes \(100000, 100000\) of uint8 "
        r"\(10,000,000,000 elements\), more than max_elements=1,073,741,824",
    ):
        D.read_idx(path)


def test_max_elements_is_a_keyword_of_read_idx_and_load_mnist(tmp_path):
    path = tmp_path / "labels.idx"
    path.write_bytes(idx_header((5,)) + bytes([1, 2, 3, 4, 5]))
    assert D.read_idx(path, max_elements=5).tolist() == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match=r"labels.idx: header declares sizes \(5,\) .* more than max_elements=4"):
        D.read_idx(path, max_elements=4)
    with pytest.raises(ValueError, match=r"labels.idx: header declares sizes \(5,\)"):
        D.load_mnist(path, max_elements=4)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, None])
def test_max_elements_must_be_a_positive_integer(tmp_path, bad):
    path = tmp_path / "labels.idx"
    path.write_bytes(idx_header((1,)) + b"\x01")
    with pytest.raises(ValueError, match=r"max_elements must be an integer >= 1, got"):
        D.read_idx(path, max_elements=bad)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_idx_claiming_a_large_size_costs_only_what_is_there(tmp_path, gz):
    body = idx_header((1000, 1000, 100)) + bytes(10)  # claims 100 MB, holds 10 bytes
    path = tmp_path / "x.idx"
    path.write_bytes(gzip.compress(body) if gz else body)
    err, peak = peak_bytes(D.read_idx, path)
    assert isinstance(err, ValueError)
    assert str(err) == f"{path}: truncated: 10 data bytes, sizes (1000, 1000, 100) of uint8 need 100000000"
    assert peak < 8 * MB


def test_gzip_idx_with_a_wrong_magic_number_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x01\x08\x01" + struct.pack(">I", 2) + b"\x01\x02"))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz: bad magic number 0x00010801"):
        D.read_idx(path)


def test_gzip_idx_with_too_few_data_bytes_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_header((6,)) + bytes(4)))
    with pytest.raises(ValueError, match=r"labels.gz: truncated: 4 data bytes, sizes \(6,\) of uint8 need 6"):
        D.read_idx(path)


def test_gzip_stream_with_a_bad_checksum_is_refused(tmp_path):
    data = bytearray(gzip.compress(idx_header((3,)) + b"\x01\x02\x03"))
    data[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    path = tmp_path / "labels.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="labels.gz: truncated or corrupt gzip data"):
        D.read_idx(path)


def test_idx_arrays_are_writable(tmp_path):
    path = tmp_path / "labels.idx"
    path.write_bytes(idx_header((2,)) + b"\x01\x02")
    arr = D.read_idx(path)
    arr[0] = 9  # the loader hands over its own buffer, as np.array would
    assert arr.tolist() == [9, 2]


# ---- CIFAR pickles: structure and memory ----


def cifar_dict(n=2, seed=0):
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"testing batch 1 of 1",
        b"labels": rng.integers(0, 10, n).tolist(),
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }


def test_cifar_pickle_with_a_memo_shared_list_is_refused_in_bounded_memory(tmp_path):
    x = [0] * 1000
    path = tmp_path / "data_batch_1"  # 0.38 MB that np.asarray would turn into 800 MB
    path.write_bytes(
        pickle.dumps({"data": [x] * 100_000, "labels": [0] * 100_000, "filenames": [], "batch_label": "b"})
    )
    err, peak = peak_bytes(D.load_cifar10, path)
    assert peak < 50 * MB
    assert isinstance(err, ValueError) and str(err).startswith(f"{path}: not a CIFAR-10 pickle batch (more than")


def test_cifar_data_that_is_a_list_is_refused_before_becoming_an_array(tmp_path):
    x = [0] * 1000
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps({b"data": [x] * 3000, b"labels": [0] * 3000}, protocol=2))
    err, peak = peak_bytes(D.load_cifar10, path)
    assert isinstance(err, ValueError)
    assert str(err) == f"{path}: data must be uint8 [n, 3072] (3 x 32 x 32), got a list"
    assert peak < 10 * MB


def test_cifar_labels_that_are_lists_are_refused(tmp_path):
    batch = cifar_dict(3)
    batch[b"labels"] = [[1] * 1000] * 3
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ValueError, match=r"b: labels must be integers, found a list"):
        D.load_cifar10(path)


def test_cifar_pickle_with_more_opcodes_than_its_size_allows_is_refused(tmp_path):
    path = tmp_path / "b"
    path.write_bytes(b"\x80\x02" + b"]" * 200_000 + b".")  # 200,000 empty lists: 14 MB from 0.2 MB
    err, peak = peak_bytes(D.load_cifar10, path)
    assert isinstance(err, ValueError) and "more than 11,040 pickle opcodes" in str(err)
    assert peak < 5 * MB


def test_cifar_pickle_with_a_non_string_dict_key_is_refused_before_hashing_it(tmp_path):
    # a tuple of two memo references to the previous one, 60 deep: hashing it visits 2**60 nodes
    ops = b"\x80\x02}" + b")" + b"q\x00h\x00\x86" * 60 + b"K\x01s."
    path = tmp_path / "b"
    path.write_bytes(ops)
    with pytest.raises(ValueError, match=r"b: not a CIFAR-10 pickle batch \(a dict key of type tuple"):
        D.load_cifar10(path)


def test_cifar_pickle_with_a_huge_memo_index_is_read_in_bounded_memory(tmp_path):
    path = tmp_path / "b"
    path.write_bytes(b"\x80\x02]r\xff\xff\xff\x7f.")  # LONG_BINPUT 2**31 - 1
    err, peak = peak_bytes(D.load_cifar10, path)
    assert isinstance(err, ValueError) and "expected a dict with b'data' and b'labels', got list" in str(err)
    assert peak < 5 * MB


def test_cifar_pickle_declaring_more_bytes_than_it_holds_is_refused(tmp_path):
    path = tmp_path / "b"
    path.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"abc.")  # BINBYTES8 of 1 TiB
    err, peak = peak_bytes(D.load_cifar10, path)
    assert isinstance(err, ValueError) and "b: not a CIFAR-10 pickle batch (expected 1099511627776 bytes" in str(err)
    assert peak < 5 * MB


def test_cifar_array_data_must_match_its_declared_shape(tmp_path):
    batch = cifar_dict(2)
    raw = pickle.dumps(batch, protocol=2)
    path = tmp_path / "b"  # the same pickle claiming 2000 rows for 2 rows of bytes
    path.write_bytes(raw.replace(b"K\x02M\x00\x0c\x86", b"M\xd0\x07M\x00\x0c\x86"))
    assert raw != path.read_bytes()
    with pytest.raises(
        ValueError,
        match=r"b: not a CIFAR-10 pickle batch \(array data has 6144 bytes, shape "
        r"\(2000, 3072\) of uint8 needs 6144000\)",
    ):
        D.load_cifar10(path)


# ---- CIFAR pickles: no code runs ----


class _Reduce:
    """Pickles as ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_cifar_pickle_calling_os_system_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _Reduce(os.system, f"touch {marker}"), b"labels": []}))
    with pytest.raises(
        ValueError,
        match=r"data_batch_1: not a CIFAR-10 pickle batch \(refusing to load "
        r"(posix|nt)\.system",
    ):
        D.load_cifar10(path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_cifar_pickle_calling_eval_is_refused(tmp_path, protocol):
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps({b"data": _Reduce(eval, "1 + 1")}, protocol=protocol))
    with pytest.raises(ValueError, match=r"refusing to load (__builtin__|builtins)\.eval"):
        D.load_cifar10(path)


def test_numpy_ndarray_cannot_be_called_to_allocate_an_array(tmp_path):
    path = tmp_path / "b"
    path.write_bytes(b"\x80\x02cnumpy\nndarray\nJ\x00\xca\x9a\x3b\x85R.")  # ndarray((10**9,)): 1 GB
    err, peak = peak_bytes(D.load_cifar10, path)
    assert peak < 5 * MB
    assert isinstance(err, ValueError) and "refusing to call numpy.ndarray" in str(err)


def test_codecs_encode_is_accepted_only_as_latin1_text_to_bytes(tmp_path):
    import codecs

    path = tmp_path / "b"  # hex doubles its input: nested calls would grow it without bound
    path.write_bytes(pickle.dumps({b"data": _Reduce(codecs.encode, b"ab", "hex")}, protocol=2))
    with pytest.raises(ValueError, match=r"_codecs.encode is only accepted as encode\(str, 'latin1'\)"):
        D.load_cifar10(path)


def test_structured_numpy_dtypes_are_refused(tmp_path):
    batch = cifar_dict(2)
    batch[b"data"] = np.zeros(2, dtype=[("a", "u1"), ("b", "u1")])
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ValueError, match=r"b: not a CIFAR-10 pickle batch \(dtype 'V2'"):
        D.load_cifar10(path)


# ---- CIFAR pickles: every honest encoding still loads ----


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_cifar_batch_loads_from_every_pickle_protocol(tmp_path, protocol):
    batch = cifar_dict(3)
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps(batch, protocol=protocol))
    x, y = D.load_cifar10(path)
    assert y.tolist() == batch[b"labels"]
    assert np.array_equal((x.numpy() * 255).round().astype(np.uint8).reshape(3, 3072), batch[b"data"])


def py2_batch(raw: bytes, labels) -> bytes:
    """A batch as Python 2's cPickle (protocol 2) writes it: str as BINSTRING, numpy 1 names."""
    lab = b"".join(b"K" + bytes([v]) for v in labels)
    return (
        b"\x80\x02}q\x01(U\x04dataq\x02cnumpy.core.multiarray\n_reconstruct\nq\x03cnumpy\nndarray\nq\x04"
        b"K\x00\x85U\x01b\x87Rq\x05(K\x01M" + struct.pack("<H", len(labels)) + b"M\x00\x0c\x86"
        b"cnumpy\ndtype\nq\x06U\x02u1K\x00K\x01\x87Rq\x07(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        b"\x89T" + struct.pack("<i", len(raw)) + raw + b"tbU\x06labels](" + lab + b"eU\x0bbatch_label"
        b"S'caf\\xe9 batch'\nu."
    )


def test_cifar_batch_written_by_python_2_loads(tmp_path):
    raw = bytes(range(256)) * 24  # two images, every byte value
    path = tmp_path / "data_batch_1"
    path.write_bytes(py2_batch(raw, [3, 8]))
    x, y = D.load_cifar10(path)
    assert y.tolist() == [3, 8]
    assert np.array_equal((x.numpy() * 255).round().astype(np.uint8).reshape(-1), np.frombuffer(raw, np.uint8))


def test_cifar_labels_may_be_a_big_endian_integer_array(tmp_path):
    batch = cifar_dict(3)
    batch[b"labels"] = np.array([9, 0, 4], dtype=">i8")
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    assert D.load_cifar10(path)[1].tolist() == [9, 0, 4]


def test_cifar_labels_may_be_numpy_scalars(tmp_path):
    batch = cifar_dict(2)
    batch[b"labels"] = [np.int64(2), np.int64(7)]
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    assert D.load_cifar10(path)[1].tolist() == [2, 7]


def test_cifar_fortran_ordered_data_keeps_its_values(tmp_path):
    batch = cifar_dict(2)
    expected = batch[b"data"].copy()
    batch[b"data"] = np.asfortranarray(expected)
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    x, _ = D.load_cifar10(path)
    assert np.array_equal((x.numpy() * 255).round().astype(np.uint8).reshape(2, 3072), expected)


def test_missing_cifar_keys_are_listed_shortened(tmp_path):
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps({b"x" * 100: 1, "y": 2}, protocol=2))
    with pytest.raises(ValueError, match=r"b: missing b'data' or b'labels' \(keys: b'x{35}\.\.\., 'y'\)"):
        D.load_cifar10(path)
