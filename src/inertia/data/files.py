"""Loaders for data files the user already has (nothing is downloaded): MNIST in IDX format
(LeCun et al. 1998) and CIFAR-10's "python version" pickle batches (Krizhevsky 2009).

Every loader reads and checks a whole file before returning anything, and raises ``ValueError``
naming the file and what is wrong: a bad magic number, a truncated (or padded) file, a shape or
count mismatch, labels out of range.
"""

from __future__ import annotations

import gzip
import math
import pickle
import struct
import zlib
from pathlib import Path
from typing import Union

import numpy as np
import torch

from .packaged import Split

PathLike = Union[str, Path]

# IDX type codes (the third byte of the magic number) and their big-endian element types
_IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped if it is gzip data (recognised by its magic bytes, whatever
    its name)."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    data = path.read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: truncated or corrupt gzip data ({e})") from None
    return data


def read_idx(path: PathLike) -> np.ndarray:
    """Read one IDX file, raw or gzip-compressed.

    Format (LeCun et al.): magic number ``0x00 0x00 <type code> <ndim>``, then ``ndim``
    big-endian uint32 sizes, then the data, big-endian, row-major. Type codes: 0x08 uint8,
    0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.

    Returns:
        the array with the file's sizes and element type (native byte order).
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: truncated: {len(data)} bytes, an IDX header needs at least 4")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in _IDX_DTYPES or ndim < 1:
        raise ValueError(f"{path}: bad magic number 0x{data[:4].hex()}; an IDX file starts with 0x0000, a type "
                         f"code in {{{', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)}}} and the number of "
                         f"dimensions (MNIST: 0x00000803 images, 0x00000801 labels)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated header: {len(data)} bytes, {ndim} dimensions need {header}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    if len(data) - header != expected:
        what = "truncated" if len(data) - header < expected else "longer than its header says"
        raise ValueError(f"{path}: {what}: {len(data) - header} data bytes, sizes {dims} of "
                         f"{dtype.name} need {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find(directory: Path, stem: str) -> Path:
    """``stem``, ``stem.gz`` or the ``.idx3-ubyte`` spelling some mirrors use, in ``directory``."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, f"{stem}.gz", dotted, f"{dotted}.gz"):
        if (directory / name).is_file():
            return directory / name
    raise ValueError(f"{directory}: no {stem} or {stem}.gz (the four MNIST files are "
                     f"{', '.join(n for pair in _MNIST_FILES.values() for n in pair)})")


def _mnist_images(path: Path, images: np.ndarray) -> torch.Tensor:
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{path}: expected uint8 images [n, rows, cols], got {images.dtype} of shape {images.shape}")
    return torch.from_numpy(images.astype(np.float32) / 255.0).reshape(images.shape[0], -1)


def _mnist_labels(path: Path, labels: np.ndarray) -> torch.Tensor:
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{path}: expected uint8 labels [n], got {labels.dtype} of shape {labels.shape}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{path}: labels must be digits 0..9, found {int(labels.max())}")
    return torch.from_numpy(labels.astype(np.int64))


def load_mnist(path: PathLike):
    """MNIST from the user's IDX files (raw or gzip).

    Args:
        path: a directory holding the four standard files (``train-images-idx3-ubyte``,
            ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
            each optionally ``.gz``), or one of those files.

    Returns:
        for a directory, a :class:`Split`: x float32 ``[n, rows*cols]`` (784 for MNIST) in
        [0, 1], y int64 ``[n]``; for a single file, its tensor: images float32
        ``[n, rows*cols]`` in [0, 1], or labels int64 ``[n]``.
    """
    path = Path(path)
    if path.is_file():
        arr = read_idx(path)
        return _mnist_images(path, arr) if arr.ndim == 3 else _mnist_labels(path, arr)
    if not path.is_dir():
        raise ValueError(f"{path}: no such file or directory (expected the MNIST IDX files or their folder)")
    out = []
    for split in ("train", "test"):
        img_path, lab_path = (_find(path, stem) for stem in _MNIST_FILES[split])
        x, y = _mnist_images(img_path, read_idx(img_path)), _mnist_labels(lab_path, read_idx(lab_path))
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{img_path} has {x.shape[0]} images but {lab_path} has {y.shape[0]} labels")
        out += [x, y]
    if out[0].shape[1] != out[2].shape[1]:
        raise ValueError(f"{path}: training images have {out[0].shape[1]} pixels but test images {out[2].shape[1]}")
    return Split(*out)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain data and numpy arrays only: a CIFAR batch needs nothing else, and refusing
    every other global keeps a crafted file from running code."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            if module.startswith("numpy.core.") and hasattr(np, "_core"):
                module = "numpy._core." + module[len("numpy.core."):]  # numpy 2 renamed it
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays and plain data)")


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise ValueError(f"{path}: no such CIFAR-10 batch file")
    try:
        with open(path, "rb") as f:
            d = _ArrayUnpickler(f, encoding="bytes").load()
    except Exception as e:  # any unpickling failure means "not a CIFAR batch"
        raise ValueError(f"{path}: not a CIFAR-10 pickle batch ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a dict with b'data' and b'labels', got {type(d).__name__}")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path}: missing b'data' or b'labels' (keys: {sorted(map(str, d))})")
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
        raise ValueError(f"{path}: data must be uint8 [n, 3072] (3 x 32 x 32), got {data.dtype} of shape {data.shape}")
    labels = np.asarray(labels)
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {data.shape[0]} images but labels of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels must be in 0..9, found {int(labels.min())}..{int(labels.max())}")
    return data, labels


def _cifar_tensors(data: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(data.astype(np.float32) / 255.0).reshape(-1, 3, 32, 32)  # channel-major rows
    return x, torch.from_numpy(labels.astype(np.int64))


def load_cifar10(path: PathLike):
    """CIFAR-10 from the user's "python version" files (``cifar-10-batches-py``).

    Args:
        path: the folder with ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``, or one
            batch file.

    Returns:
        for the folder, a :class:`Split`: x float32 ``[n, 3, 32, 32]`` in [0, 1] (50,000 train,
        10,000 test), y int64 ``[n]``; for one batch file, its ``(x, y)``.

    Only numpy arrays and plain data are unpickled (no other code can run from the file).
    """
    path = Path(path)
    if path.is_file():
        return _cifar_tensors(*_cifar_batch(path))
    if not path.is_dir():
        raise ValueError(f"{path}: no such file or directory (expected cifar-10-batches-py or a batch file)")
    train = [_cifar_batch(path / f"data_batch_{i}") for i in range(1, 6)]
    x_train, y_train = _cifar_tensors(np.concatenate([d for d, _ in train]), np.concatenate([lab for _, lab in train]))
    x_test, y_test = _cifar_tensors(*_cifar_batch(path / "test_batch"))
    return Split(x_train, y_train, x_test, y_test)
