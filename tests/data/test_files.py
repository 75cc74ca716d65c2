"""Loaders read tiny valid files and reject corrupt ones with a message naming the file."""

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from inertia import data as D


def write_idx(path, arr, code=0x08, magic_override=None, truncate=0):
    header = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    if magic_override is not None:
        header = magic_override + header[4:]
    body = arr.astype(np.uint8).tobytes()
    data = header + body[: len(body) - truncate]
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def mnist_dir(tmp_path, gz=False, n_train=6, n_test=4):
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{ext}", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{ext}", rng.integers(0, 10, (n,)))
    return tmp_path


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_reads_raw_and_gzip(tmp_path, gz):
    s = D.load_mnist(mnist_dir(tmp_path, gz))
    assert s.x_train.shape == (6, 784) and s.y_test.shape == (4,)
    assert s.x_train.dtype == torch.float32 and float(s.x_train.max()) <= 1


def test_bad_magic_number_names_the_file(tmp_path):
    mnist_dir(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((6, 28, 28)), magic_override=b"\x12\x34\x08\x03")
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: bad magic number 0x12340803"):
        D.load_mnist(tmp_path)


def test_truncated_file_names_the_file(tmp_path):
    mnist_dir(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((4, 28, 28)), truncate=10)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: truncated"):
        D.load_mnist(tmp_path)


def test_image_label_count_mismatch_is_reported(tmp_path):
    mnist_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros((5,)))
    with pytest.raises(ValueError, match=r"has 6 images but .*train-labels-idx1-ubyte has 5 labels"):
        D.load_mnist(tmp_path)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ValueError, match="train-images-idx3-ubyte"):
        D.load_mnist(tmp_path)


def cifar_dir(tmp_path, n=3):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(tmp_path / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"labels": rng.integers(0, 10, n).tolist()}, f)
    return tmp_path


def test_load_cifar10_reads_pickle_batches(tmp_path):
    s = D.load_cifar10(cifar_dir(tmp_path))
    assert s.x_train.shape == (15, 3, 32, 32) and s.x_test.shape == (3, 3, 32, 32)
    assert s.y_train.dtype == torch.int64


def test_cifar_shape_mismatch_names_the_file(tmp_path):
    cifar_dir(tmp_path)
    with open(tmp_path / "data_batch_2", "wb") as f:
        pickle.dump({b"data": np.zeros((3, 100), np.uint8), b"labels": [0, 1, 2]}, f)
    with pytest.raises(ValueError, match=r"data_batch_2: data must be \[n, 3072\]"):
        D.load_cifar10(tmp_path)


def test_cifar_corrupt_pickle_names_the_file(tmp_path):
    cifar_dir(tmp_path)
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="test_batch: not a CIFAR-10 pickle batch"):
        D.load_cifar10(tmp_path)
