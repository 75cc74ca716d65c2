"""Small real data sets available offline, and loaders for files the user already has.

- :func:`mnist1d`: Greydanus (2020)'s MNIST-1D, generated offline by the ``mnist1d`` package.
- :func:`digits`: scikit-learn's bundled 8x8 digits (1797 images).
- :func:`load_mnist`: MNIST IDX files (raw or ``.gz``).
- :func:`load_cifar10`: the CIFAR-10 "python version" pickle batches.

Every loader validates what it reads and raises ``ValueError`` naming the file and what is wrong
(bad magic number, truncated file, shape mismatch), before returning anything.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch

PathLike = Union[str, Path]


@dataclass
class Split:
    """Train and test tensors of a classification set: x float32, y int64."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def cache_dir() -> Path:
    """Where generated data sets that are slow to make are cached: ``$INERTIA_CACHE`` or
    ``~/.cache/inertia``."""
    import os

    return Path(os.environ.get("INERTIA_CACHE", Path.home() / ".cache" / "inertia"))


def mnist1d(n_train: int = 4000, n_test: int = 1000, seed: int = 0, cache: bool = True) -> Split:
    """MNIST-1D (Greydanus 2020): 40-feature 1-D digit sequences, 10 classes, generated offline
    with the ``mnist1d`` package's default transformations. x: float32 [n, 40].

    Generation takes about 1.2 ms per example (the package interpolates each one), so the result
    is cached under :func:`cache_dir` (written atomically; ``cache=False`` skips it)."""
    if not isinstance(n_train, int) or n_train < 1 or not isinstance(n_test, int) or n_test < 1:
        raise ValueError(f"n_train and n_test must be positive integers, got {n_train!r}, {n_test!r}")
    path = cache_dir() / f"mnist1d-{n_train}-{n_test}-{seed}.pt"
    if cache and path.exists():
        try:
            d = torch.load(path, weights_only=True)
            return Split(d["x_train"], d["y_train"], d["x_test"], d["y_test"])
        except Exception:  # a corrupt cache file is regenerated
            pass
    split = _make_mnist1d(n_train, n_test, seed)
    if cache:
        from .._atomic import atomic_torch_save

        try:
            atomic_torch_save(path, vars(split))
        except OSError:  # a read-only home is not an error: the data is still returned
            pass
    return split


def _make_mnist1d(n_train: int, n_test: int, seed: int) -> Split:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = n_train + n_test
    args.train_split = n_train / (n_train + n_test)
    args.seed = seed
    d = make_dataset(args)
    f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    lab = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.int64)  # noqa: E731
    return Split(f(d["x"]), lab(d["y"]), f(d["x_test"]), lab(d["y_test"]))


def digits(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """scikit-learn's 8x8 digits (bundled, no download), scaled to [0, 1]: x float32 [n, 64]."""
    from sklearn.datasets import load_digits

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(test_fraction * len(y)))
    te, tr = perm[:n_test], perm[n_test:]
    return Split(x[tr], y[tr], x[te], y[te])


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: PathLike) -> np.ndarray:
    """Read one IDX file (raw or gzip): magic 0x0000 <dtype> <ndim>, big-endian dims, data."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot read ({e})") from None
    if len(data) < 4:
        raise ValueError(f"{path}: truncated: {len(data)} bytes, an IDX header needs at least 4")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in _IDX_DTYPES or ndim < 1:
        raise ValueError(f"{path}: bad magic number 0x{data[:4].hex()}; an IDX file starts with 0x0000, a type "
                         f"code in {sorted(hex(c) for c in _IDX_DTYPES)} and the number of dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated header: {len(data)} bytes, need {header} for {ndim} dimensions")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path}: truncated or padded: {len(data) - header} data bytes, dimensions {dims} need "
                         f"{expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find(directory: Path, stem: str) -> Path:
    for cand in (directory / stem, directory / f"{stem}.gz", directory / stem.replace("-idx", ".idx")):
        if cand.exists():
            return cand
    raise ValueError(f"{directory}: no {stem} or {stem}.gz (the standard MNIST file names)")


def _images_labels(img_path: Path, lab_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3:
        raise ValueError(f"{img_path}: expected images [n, rows, cols], got shape {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"{lab_path}: expected labels [n], got shape {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{img_path} has {images.shape[0]} images but {lab_path} has {labels.shape[0]} labels")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).reshape(images.shape[0], -1)
    return x, torch.from_numpy(labels.astype(np.int64))


def load_mnist(path: PathLike) -> Split:
    """MNIST from the user's IDX files: a directory holding the four standard files (raw or
    ``.gz``). x: float32 [n, 784] in [0, 1]; y: int64 [n]."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: expected a directory with the four MNIST IDX files")
    tr = _images_labels(_find(path, _MNIST_FILES["train"][0]), _find(path, _MNIST_FILES["train"][1]))
    te = _images_labels(_find(path, _MNIST_FILES["test"][0]), _find(path, _MNIST_FILES["test"][1]))
    return Split(tr[0], tr[1], te[0], te[1])


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.exists():
        raise ValueError(f"{path}: no such CIFAR-10 batch file")
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise ValueError(f"{path}: not a CIFAR-10 pickle batch ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a dict with b'data' and b'labels', got {type(d).__name__}")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path}: missing b'data' or b'labels' (keys: {sorted(map(str, d))})")
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: data must be [n, 3072] (3x32x32 uint8), got shape {data.shape}")
    labels = np.asarray(labels)
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {data.shape[0]} images but {labels.shape[0] if labels.ndim else 0} labels")
    return data, labels


def load_cifar10(path: PathLike) -> Split:
    """CIFAR-10 from the user's "python version" folder (``data_batch_1`` .. ``_5``,
    ``test_batch``). x: float32 [n, 3, 32, 32] in [0, 1]; y: int64 [n]."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: expected the cifar-10-batches-py directory")
    train = [_cifar_batch(path / f"data_batch_{i}") for i in range(1, 6)]
    test = _cifar_batch(path / "test_batch")
    f = lambda a: torch.from_numpy(a.astype(np.float32) / 255.0).reshape(-1, 3, 32, 32)  # noqa: E731
    xtr = np.concatenate([d for d, _ in train])
    ytr = np.concatenate([lab for _, lab in train])
    return Split(f(xtr), torch.from_numpy(ytr.astype(np.int64)), f(test[0]), torch.from_numpy(test[1].astype(np.int64)))
