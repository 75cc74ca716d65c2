"""Loaders read tiny valid files that the tests write, and reject corrupt ones naming the file."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from inertia import data as D


def idx_bytes(arr, code=0x08):
    header = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def write(path, data, gz=False):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def mnist_dir(tmp_path, gz=False, n_train=6, n_test=4):
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write(tmp_path / f"{prefix}-images-idx3-ubyte{ext}", idx_bytes(rng.integers(0, 256, (n, 28, 28), np.uint8)), gz)
        write(tmp_path / f"{prefix}-labels-idx1-ubyte{ext}", idx_bytes(rng.integers(0, 10, n, np.uint8)), gz)
    return tmp_path


# ---- IDX and MNIST ----


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_reads_a_folder_of_raw_or_gzip_files(tmp_path, gz):
    s = D.load_mnist(mnist_dir(tmp_path, gz))
    assert s.x_train.shape == (6, 784) and s.y_train.shape == (6,) and s.x_test.shape == (4, 784)
    assert s.x_train.dtype == torch.float32 and s.y_train.dtype == torch.int64


def test_mnist_pixels_are_scaled_to_the_unit_interval_in_file_order(tmp_path):
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28).astype(np.uint8)
    path = write(tmp_path / "train-images-idx3-ubyte", idx_bytes(images))
    x = D.load_mnist(path)
    torch.testing.assert_close(x, torch.from_numpy(images.reshape(2, -1) / 255.0).float())


def test_load_mnist_reads_a_single_labels_file(tmp_path):
    path = write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(np.array([7, 2, 1], np.uint8)))
    assert D.load_mnist(path).tolist() == [7, 2, 1]


def test_gzip_data_is_recognised_whatever_the_file_name(tmp_path):
    path = write(tmp_path / "labels.idx", idx_bytes(np.array([3, 4], np.uint8)), gz=True)
    assert D.read_idx(path).tolist() == [3, 4]


@pytest.mark.parametrize(
    "code,dtype", [(0x08, np.uint8), (0x09, np.int8), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8")]
)
def test_read_idx_round_trips_every_element_type(tmp_path, code, dtype):
    arr = (np.arange(12) - 3).reshape(3, 4).astype(dtype)
    got = D.read_idx(write(tmp_path / "a.idx", idx_bytes(arr, code)))
    assert got.shape == (3, 4) and np.array_equal(got, arr)


def test_bad_magic_number_names_the_file(tmp_path):
    mnist_dir(tmp_path)
    data = bytearray(idx_bytes(np.zeros((6, 28, 28), np.uint8)))
    data[:4] = b"\x12\x34\x08\x03"
    write(tmp_path / "train-images-idx3-ubyte", bytes(data))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: bad magic number 0x12340803"):
        D.load_mnist(tmp_path)


def test_truncated_file_names_the_file(tmp_path):
    mnist_dir(tmp_path)
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(np.zeros((4, 28, 28), np.uint8))[:-10])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: truncated: 3126 data bytes"):
        D.load_mnist(tmp_path)


def test_truncated_header_is_reported(tmp_path):
    path = write(tmp_path / "x.idx", struct.pack(">HBB", 0, 8, 3) + b"\x00\x00")
    with pytest.raises(ValueError, match=r"x.idx: truncated header: 6 bytes, 3 dimensions need 16"):
        D.read_idx(path)


def test_file_longer_than_its_header_says_is_reported(tmp_path):
    path = write(tmp_path / "x.idx", idx_bytes(np.zeros(3, np.uint8)) + b"\x00")
    with pytest.raises(ValueError, match="x.idx: longer than its header says"):
        D.read_idx(path)


def test_truncated_gzip_stream_names_the_file(tmp_path):
    data = gzip.compress(idx_bytes(np.zeros((4, 28, 28), np.uint8)))
    path = write(tmp_path / "t10k-images-idx3-ubyte.gz", data[: len(data) // 2])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz: truncated or corrupt gzip data"):
        D.read_idx(path)


def test_image_label_count_mismatch_names_both_files(tmp_path):
    mnist_dir(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte has 6 images but .*train-labels-idx1-ubyte has 5"):
        D.load_mnist(tmp_path)


def test_labels_file_with_images_shape_is_reported(tmp_path):
    mnist_dir(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros((6, 2), np.uint8)))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte: expected uint8 labels \[n\], got uint8 of shape"):
        D.load_mnist(tmp_path)


def test_labels_outside_0_to_9_are_reported(tmp_path):
    path = write(tmp_path / "labels", idx_bytes(np.array([1, 12], np.uint8)))
    with pytest.raises(ValueError, match="labels: labels must be digits 0..9, found 12"):
        D.load_mnist(path)


def test_missing_mnist_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="no train-images-idx3-ubyte or train-images-idx3-ubyte.gz"):
        D.load_mnist(tmp_path)


def test_missing_path_is_reported(tmp_path):
    with pytest.raises(ValueError, match="nowhere: no such file or directory"):
        D.load_mnist(tmp_path / "nowhere")


# ---- CIFAR-10 ----


def cifar_batch(path, n=3, seed=0, data=None, labels=None):
    rng = np.random.default_rng(seed)
    batch = {
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8) if data is None else data,
        b"labels": rng.integers(0, 10, n).tolist() if labels is None else labels,
    }
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)
    return path


def cifar_dir(tmp_path, n=3):
    for i, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        cifar_batch(tmp_path / name, n, seed=i)
    return tmp_path


def test_load_cifar10_reads_the_five_training_batches_and_the_test_batch(tmp_path):
    s = D.load_cifar10(cifar_dir(tmp_path))
    assert s.x_train.shape == (15, 3, 32, 32) and s.x_test.shape == (3, 3, 32, 32)
    assert s.x_train.dtype == torch.float32 and s.y_train.dtype == torch.int64


def test_cifar_rows_are_channel_major_32x32_scaled_to_the_unit_interval(tmp_path):
    data = np.arange(3072, dtype=np.int64)[None] % 256
    x, y = D.load_cifar10(cifar_batch(tmp_path / "b", 1, data=data.astype(np.uint8), labels=[4]))
    assert float(x[0, 0, 0, 1]) == pytest.approx(1 / 255) and float(x[0, 1, 0, 0]) == pytest.approx((1024 % 256) / 255)
    assert y.tolist() == [4]


def test_cifar_shape_mismatch_names_the_file(tmp_path):
    cifar_dir(tmp_path)
    cifar_batch(tmp_path / "data_batch_2", data=np.zeros((3, 100), np.uint8))
    with pytest.raises(ValueError, match=r"data_batch_2: data must be uint8 \[n, 3072\]"):
        D.load_cifar10(tmp_path)


def test_cifar_label_count_mismatch_names_the_file(tmp_path):
    path = cifar_batch(tmp_path / "b", 3, labels=[1, 2])
    with pytest.raises(ValueError, match=r"b: 3 images but labels of shape \(2,\)"):
        D.load_cifar10(path)


def test_cifar_labels_outside_0_to_9_are_reported(tmp_path):
    path = cifar_batch(tmp_path / "b", 2, labels=[1, 10])
    with pytest.raises(ValueError, match="b: labels must be in 0..9"):
        D.load_cifar10(path)


def test_cifar_corrupt_pickle_names_the_file(tmp_path):
    cifar_dir(tmp_path)
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="test_batch: not a CIFAR-10 pickle batch"):
        D.load_cifar10(tmp_path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo exploited",))


def test_cifar_loader_refuses_to_run_code_from_a_pickle(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _Exploit(), b"labels": []}))
    with pytest.raises(ValueError, match=r"data_batch_1: not a CIFAR-10 pickle batch .*refusing to load"):
        D.load_cifar10(path)


def test_cifar_batch_pickled_by_numpy_1_loads(tmp_path):
    # the real files name numpy.core.multiarray._reconstruct, which numpy 2 renamed numpy._core
    path = cifar_batch(tmp_path / "b", 2, labels=[3, 5])
    old = path.read_bytes().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"cnumpy.core.multiarray\n" in old
    path.write_bytes(old)
    x, y = D.load_cifar10(path)
    assert x.shape == (2, 3, 32, 32) and y.tolist() == [3, 5]
