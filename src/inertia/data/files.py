"""Loaders for data files the user already has (nothing is downloaded): MNIST in IDX format
(LeCun et al. 1998) and CIFAR-10's "python version" pickle batches (Krizhevsky 2009).

Every loader reads and checks a whole file before returning anything, and raises ``ValueError``
naming the file and what is wrong: a bad magic number, a truncated (or padded) file, a shape or
count mismatch, labels out of range. The files are treated as untrusted: an IDX header is checked
before its data is read, and a CIFAR pickle is read by a small pickle machine of our own that
builds plain data and numpy arrays only, so no code runs from a file and memory stays within a
small multiple of the file's size before the checks.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import io
import math
import os
import pickletools
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal, cast

import numpy as np
import torch

from ._validate import check_count
from .packaged import Split

__all__ = ["MAX_IDX_ELEMENTS", "PathLike", "load_cifar10", "load_mnist", "read_idx"]

PathLike = str | os.PathLike[str]

# IDX type codes (the third byte of the magic number) and their big-endian element types
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20  # bytes read from a gzip stream at a time

MAX_IDX_ELEMENTS = 2**30
"""The most elements :func:`read_idx` reads unless told otherwise: a header is checked against it
before any data is read (MNIST's training images are 47,040,000; EMNIST's largest file 546,499,488)."""


@contextlib.contextmanager
def _open_idx(path: Path) -> Iterator[tuple[io.BufferedIOBase, int | None]]:
    """``(stream, size)``: the file's decompressed stream and ``None`` if it is gzip data (recognised
    by its magic bytes, whatever its name), else the file itself and its size in bytes."""
    with open(path, "rb") as f:
        gz = f.read(2) == _GZIP_MAGIC
        f.seek(0)
        if not gz:
            yield f, os.fstat(f.fileno()).st_size
            return
        with gzip.GzipFile(fileobj=f, mode="rb") as stream:
            yield stream, None


def _read_up_to(stream: io.BufferedIOBase, n: int) -> bytearray:
    """At most ``n`` bytes from ``stream``, read in chunks so that memory grows with the bytes that
    are there, not with the ``n`` a header claims."""
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(min(_CHUNK, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


def _size_error(path: Path, got: int, dims: tuple, dtype: np.dtype, need: int) -> ValueError:
    what = "truncated" if got < need else "longer than its header says"
    return ValueError(f"{path}: {what}: {got} data bytes, sizes {dims} of {dtype.name} need {need}")


def _read_idx_stream(path: Path, stream: io.BufferedIOBase, size: int | None, max_elements: int) -> np.ndarray:
    magic = stream.read(4)
    if len(magic) < 4:
        raise ValueError(f"{path}: truncated: {len(magic)} bytes, an IDX header needs at least 4")
    zero, code, ndim = struct.unpack(">HBB", magic)
    if zero != 0 or code not in _IDX_DTYPES or ndim < 1:
        raise ValueError(
            f"{path}: bad magic number 0x{magic.hex()}; an IDX file starts with 0x0000, a type "
            f"code in {{{', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)}}} and the number of "
            f"dimensions (MNIST: 0x00000803 images, 0x00000801 labels)"
        )
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise ValueError(f"{path}: truncated header: {4 + len(sizes)} bytes, {ndim} dimensions need {4 + 4 * ndim}")
    dims = struct.unpack(f">{ndim}I", sizes)
    dtype = _IDX_DTYPES[code]
    count = math.prod(dims)
    if count > max_elements:
        raise ValueError(
            f"{path}: header declares sizes {dims} of {dtype.name} ({count:,} elements), more than "
            f"max_elements={max_elements:,}; pass a larger max_elements to read a file that big"
        )
    need = count * dtype.itemsize
    if size is not None:  # a plain file: its size is known before reading it
        if size - 4 - 4 * ndim != need:
            raise _size_error(path, size - 4 - 4 * ndim, dims, dtype, need)
        data = bytearray(need)
        view, done = memoryview(data), 0
        while done < need and (got := stream.readinto(view[done:])):
            done += got
        if done < need:  # the file shrank while being read
            raise _size_error(path, done, dims, dtype, need)
    else:
        data = _read_up_to(stream, need)
        if len(data) < need:
            raise _size_error(path, len(data), dims, dtype, need)
        if stream.read(1):
            raise ValueError(
                f"{path}: longer than its header says: more than {need} data bytes, sizes {dims} of "
                f"{dtype.name} need {need}"
            )
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: PathLike, *, max_elements: int = MAX_IDX_ELEMENTS) -> np.ndarray:
    """Read one IDX file, raw or gzip-compressed.

    Format (LeCun et al.): magic number ``0x00 0x00 <type code> <ndim>``, then ``ndim``
    big-endian uint32 sizes, then the data, big-endian, row-major. Type codes: 0x08 uint8,
    0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.

    The header is read and checked first (gzip data is decompressed as a stream): a bad magic
    number, or sizes of more than ``max_elements`` elements, are refused before any data is read;
    then exactly the declared number of bytes is read, and a file with fewer or more is refused.
    Memory grows with the bytes actually there, so a small file claiming a large size costs little.

    Args:
        path: the file.
        max_elements: the most elements the header may declare (default :data:`MAX_IDX_ELEMENTS`).

    Returns:
        the array with the file's sizes and element type (native byte order).

    Examples:

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "labels-idx1-ubyte"
    ...     _ = path.write_bytes(struct.pack(">HBBI", 0, 0x08, 1, 3) + bytes([7, 0, 9]))  # uint8, 1-D, 3 items
    ...     print(read_idx(path), load_mnist(path))
    [7 0 9] tensor([7, 0, 9])
    """
    path = Path(path)
    max_elements = check_count("max_elements", max_elements)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    with _open_idx(path) as (stream, size):
        try:
            return _read_idx_stream(path, stream, size, max_elements)
        except (OSError, EOFError, zlib.error) as e:
            if size is not None:
                raise
            raise ValueError(f"{path}: truncated or corrupt gzip data ({e})") from None


_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(directory: Path, stem: str) -> Path:
    """``stem``, ``stem.gz`` or the ``.idx3-ubyte`` spelling some mirrors use, in ``directory``."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, f"{stem}.gz", dotted, f"{dotted}.gz"):
        if (directory / name).is_file():
            return directory / name
    raise ValueError(
        f"{directory}: no {stem} or {stem}.gz (the four MNIST files are "
        f"{', '.join(n for pair in _MNIST_FILES.values() for n in pair)})"
    )


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


def load_mnist(path: PathLike, *, max_elements: int = MAX_IDX_ELEMENTS) -> Split | torch.Tensor:
    """MNIST from the user's IDX files (raw or gzip).

    Args:
        path: a directory holding the four standard files (``train-images-idx3-ubyte``,
            ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
            each optionally ``.gz``), or one of those files.
        max_elements: the most elements any one file may declare (see :func:`read_idx`).

    Returns:
        for a directory, a :class:`Split`: x float32 ``[n, rows*cols]`` (784 for MNIST) in
        [0, 1], y int64 ``[n]``; for a single file, its tensor: images float32
        ``[n, rows*cols]`` in [0, 1], or labels int64 ``[n]``.
    """
    path = Path(path)
    max_elements = check_count("max_elements", max_elements)
    if path.is_file():
        arr = read_idx(path, max_elements=max_elements)
        return _mnist_images(path, arr) if arr.ndim == 3 else _mnist_labels(path, arr)
    if not path.is_dir():
        raise ValueError(f"{path}: no such file or directory (expected the MNIST IDX files or their folder)")
    out: list[torch.Tensor] = []
    for split in ("train", "test"):
        img_path, lab_path = (_find(path, stem) for stem in _MNIST_FILES[split])
        x, y = (
            _mnist_images(img_path, read_idx(img_path, max_elements=max_elements)),
            _mnist_labels(lab_path, read_idx(lab_path, max_elements=max_elements)),
        )
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{img_path} has {x.shape[0]} images but {lab_path} has {y.shape[0]} labels")
        out += [x, y]
    if out[0].shape[1] != out[2].shape[1]:
        raise ValueError(f"{path}: training images have {out[0].shape[1]} pixels but test images {out[2].shape[1]}")
    return Split(*out)


# ---- CIFAR-10 pickles ----
#
# pickle.Unpickler, even with find_class restricted, builds whatever the opcodes say before anything
# can be checked: a list of memo references to one list (tiny in the file) becomes a huge array
# under np.asarray, a LONG_BINPUT index sizes the memo table, a declared BINBYTES8 length is
# allocated before it is read, a memo-shared tuple used as a dict key costs 2**depth to hash, and
# numpy.dtype or _codecs.encode called on crafted arguments build large objects. So the batch is
# read by the machine below: pickletools decodes the opcodes (reading through _CappedReader, so a
# declared length beyond the file is refused, not allocated), and each opcode builds at most one
# object, of a plain type, from what is already on the stack. The only callables are the few that a
# batch of numpy arrays needs, each checking its arguments; dict keys must be strings; and the
# number of opcodes is bounded by what a batch of this file's size can hold.

_CIFAR_ROW = 3072  # bytes of one 3 x 32 x 32 image
_OPS_PER_IMAGE = 16  # a label, a file name and their memo and append opcodes, with room to spare
_OPS_BASE = 10_000  # the dict, its keys, the array's reconstruction, short files


def _max_pickle_ops(file_size: int) -> int:
    """The most opcodes a CIFAR batch of ``file_size`` bytes may use: its ``n`` images take
    ``3072 n`` bytes, and each image adds a label and a file name (a few opcodes each)."""
    return _OPS_BASE + _OPS_PER_IMAGE * (file_size // _CIFAR_ROW)


class _Global:
    """A name a pickle imported: one of the few callables a batch of arrays needs (``call``), or
    ``numpy.ndarray``, which is only ever an argument (``call`` is None: it cannot be called)."""

    def __init__(self, name: str, call: Callable[..., Any] | None = None) -> None:
        self.name, self.call = name, call


class _DtypeProxy:
    """``numpy.dtype(code)``, whose byte order a later BUILD may set (memo entries share it)."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype

    def build(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) < 5 or any(s is not None for s in state[2:5]):
            raise ValueError("dtype state of a structured or subarray dtype (a CIFAR batch has plain numbers)")
        order = _text(state[1], "dtype byte order")
        if order not in ("<", ">", "|", "="):
            raise ValueError(f"dtype byte order {order!r} (accepted: <, >, |, =)")
        if order in ("<", ">"):
            self.dtype = self.dtype.newbyteorder("<" if order == "<" else ">")


class _ArrayProxy:
    """``numpy.core.multiarray._reconstruct(ndarray, ...)``: an array that the following BUILD fills."""

    array: np.ndarray | None = None

    def build(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise ValueError("array state must be (version, shape, dtype, is_fortran, data)")
        shape, dtype, fortran, raw = state[-4:]
        self.array = _array_from(raw, dtype, shape, "F" if fortran else "C")


def _text(value: object, what: str) -> str:
    """A str, or the bytes Python 2 wrote for one."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__}")
    return value


def _dtype_of(value: object) -> np.dtype:
    if not isinstance(value, _DtypeProxy):
        raise ValueError(f"array dtype must be a pickled numpy.dtype, got {type(value).__name__}")
    return value.dtype


def _array_from(raw: object, dtype: object, shape: object, order: Literal["C", "F"]) -> np.ndarray:
    """The array whose bytes are ``raw``, refused unless they are exactly what ``shape`` needs."""
    dtype = _dtype_of(dtype)
    if (
        not isinstance(shape, tuple)
        or len(shape) > 32
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise ValueError("array shape must be a tuple of at most 32 non-negative integers")
    if not isinstance(raw, (bytes, bytearray)):
        raise ValueError(f"array data must be bytes, got {type(raw).__name__}")
    need = math.prod(shape) * dtype.itemsize
    if len(raw) != need:
        raise ValueError(f"array data has {len(raw)} bytes, shape {shape} of {dtype} needs {need}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order=order)


def _reconstruct(cls: object, shape: object, typecode: object) -> _ArrayProxy:
    if not (isinstance(cls, _Global) and cls.name == "numpy.ndarray"):
        raise ValueError("_reconstruct may only make a numpy.ndarray")
    return _ArrayProxy()


def _dtype(code: object, align: object = False, copy: object = True) -> _DtypeProxy:
    code = _text(code, "dtype code")
    if not re.fullmatch(r"[biuf][1248]", code):
        raise ValueError(f"dtype {code!r}: a CIFAR batch holds plain numbers (accepted: b1, i1..i8, u1..u8, f2..f8)")
    return _DtypeProxy(np.dtype(code))


def _scalar(dtype_arg: object, raw: object) -> np.generic:
    dtype = _dtype_of(dtype_arg)
    if not isinstance(raw, bytes) or len(raw) != dtype.itemsize:
        raise ValueError(f"a numpy {dtype} scalar needs {dtype.itemsize} bytes")
    return np.frombuffer(raw, dtype=dtype)[0]


def _frombuffer(buf: object, dtype: object, shape: object, order: object) -> np.ndarray:
    if order not in ("C", "F"):
        raise ValueError(f"array order must be 'C' or 'F', got {order!r}")
    return _array_from(buf, dtype, shape, "F" if order == "F" else "C")


def _encode(text: object, encoding: object) -> bytes:
    # Python 3 pickles bytes for protocol 2 as _codecs.encode(text, "latin1"); other codecs
    # (hex, base64, zlib, unicode_escape...) would let a few bytes of pickle grow without bound
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ValueError("_codecs.encode is only accepted as encode(str, 'latin1') (how bytes are pickled)")
    return text.encode("latin-1")


def _empty_bytes(*args: object) -> bytes:
    if args:
        raise ValueError("bytes() is only accepted without arguments (how b'' is pickled)")
    return b""


_GLOBALS: dict[tuple[str, str], Callable[..., Any] | None] = {
    **{(m, "_reconstruct"): _reconstruct for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "scalar"): _scalar for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "_frombuffer"): _frombuffer for m in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "dtype"): _dtype,
    ("numpy", "ndarray"): None,
    ("_codecs", "encode"): _encode,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
}


def _find_global(module_arg: object, name_arg: object) -> _Global:
    module, name = _text(module_arg, "global module"), _text(name_arg, "global name")
    if (module, name) not in _GLOBALS:
        raise ValueError(f"refusing to load {module}.{name} (only numpy arrays and plain data)")
    return _Global(f"{module}.{name}", _GLOBALS[module, name])


class _CappedReader:
    """A file's ``read`` and ``readline`` with every read capped at the bytes left in it, so that a
    length a pickle declares is never allocated beyond what the file holds."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self.f, self.left = f, size

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(self.left if n < 0 else min(n, self.left))
        self.left -= len(data)
        return data

    def readline(self) -> bytes:
        line = self.f.readline(self.left)
        self.left -= len(line)
        return line

    def tell(self) -> int:
        return self.f.tell()


def _read_py2_string(stream: _CappedReader) -> bytes:
    """A protocol-0 STRING argument, a quoted and escaped line, as bytes (pickletools decodes it
    as ASCII, which fails on the bytes >= 0x80 that Python 2 wrote)."""
    line = stream.readline()
    body = line[:-1]
    if not line.endswith(b"\n") or len(body) < 2 or body[:1] not in (b"'", b'"') or body[-1:] != body[:1]:
        raise ValueError("malformed STRING opcode")
    return codecs.escape_decode(body[1:-1])[0]


def _counted_bytes(width: int, fmt: str) -> Callable[[_CappedReader], bytes]:
    """A reader of a BINSTRING / SHORT_BINSTRING argument as bytes, which is what Python 2 meant
    (pickletools decodes it as latin-1 text, a copy of what may be the whole image data)."""

    def read(stream: _CappedReader) -> bytes:
        head = stream.read(width)
        if len(head) < width:
            raise ValueError("the pickle ends inside a string length")
        (n,) = struct.unpack(fmt, head)
        data = stream.read(n) if n >= 0 else b""
        if n < 0 or len(data) != n:
            raise ValueError(f"a string of {n} bytes, but only {len(data)} remain in the file")
        return data

    return read


# pickletools' reader of each argument kind, except where Python 2's str must come back as bytes
_ARG_READERS: dict[pickletools.ArgumentDescriptor, Callable[[_CappedReader], Any]] = {
    pickletools.stringnl: _read_py2_string,
    pickletools.string1: _counted_bytes(1, "<B"),
    pickletools.string4: _counted_bytes(4, "<i"),
}


_CODE_TO_OPCODE = {op.code: op for op in pickletools.opcodes}


def _pickle_ops(stream: _CappedReader) -> Iterator[tuple[str, Any]]:
    """``(opcode name, argument)`` for each opcode up to STOP."""
    while True:
        code = stream.read(1)
        op = _CODE_TO_OPCODE.get(code.decode("latin-1"))
        if op is None:
            raise ValueError(
                f"unknown pickle opcode {code!r} at byte {stream.tell() - 1}"
                if code
                else "the pickle ends before its STOP opcode"
            )
        if op.arg is None:
            arg = None
        elif op.arg in _ARG_READERS:
            arg = _ARG_READERS[op.arg](stream)
        else:  # pickletools' readers only call read and readline, which _CappedReader caps
            arg = op.arg.reader(cast(IO[bytes], stream))
        yield op.name, arg
        if op.name == "STOP":
            return


def _push_arg(m: _BatchUnpickler, arg: Any) -> None:
    m.push(arg)


def _set_items(target: object, items: list[Any]) -> dict:
    if not isinstance(target, dict):
        raise ValueError(f"SETITEM on a {type(target).__name__}")
    for key, value in zip(items[::2], items[1::2], strict=False):
        if not isinstance(key, (str, bytes)):
            raise ValueError(f"a dict key of type {type(key).__name__} (a CIFAR batch's keys are strings)")
        target[key] = value
    return target


def _append(target: object, items: list[Any]) -> None:
    if not isinstance(target, list):
        raise ValueError(f"APPEND on a {type(target).__name__}")
    target.extend(items)


def _reduce(m: _BatchUnpickler, _: Any) -> None:
    args, func = m.pop(), m.pop()
    if not isinstance(func, _Global) or func.call is None:
        raise ValueError(f"refusing to call {func.name if isinstance(func, _Global) else type(func).__name__}")
    if not isinstance(args, tuple):
        raise ValueError(f"call arguments must be a tuple, got {type(args).__name__}")
    m.push(func.call(*args))


def _build(m: _BatchUnpickler, _: Any) -> None:
    state, target = m.pop(), m.top()
    if not isinstance(target, (_ArrayProxy, _DtypeProxy)):
        raise ValueError(f"BUILD on a {type(target).__name__} (only numpy arrays and dtypes are built)")
    target.build(state)


def _put(m: _BatchUnpickler, index: int) -> None:
    m.memo[index] = m.top()


def _get(m: _BatchUnpickler, index: int) -> None:
    if index not in m.memo:
        raise ValueError(f"memo entry {index} read before it was written")
    m.push(m.memo[index])


def _stack_global(m: _BatchUnpickler, _: Any) -> None:
    name = m.pop()
    m.push(_find_global(m.pop(), name))


def _noop(m: _BatchUnpickler, _: Any) -> None:
    pass


_OPCODES: dict[str, Callable[[_BatchUnpickler, Any], object]] = {
    **dict.fromkeys(
        [
            "INT",
            "BININT",
            "BININT1",
            "BININT2",
            "LONG",
            "LONG1",
            "LONG4",
            "FLOAT",
            "BINFLOAT",
            "UNICODE",
            "SHORT_BINUNICODE",
            "BINUNICODE",
            "BINUNICODE8",
            "STRING",
            "BINSTRING",
            "SHORT_BINSTRING",
            "BINBYTES",
            "SHORT_BINBYTES",
            "BINBYTES8",
            "BYTEARRAY8",
        ],
        _push_arg,
    ),
    "NONE": lambda m, _: m.push(None),
    "NEWTRUE": lambda m, _: m.push(True),
    "NEWFALSE": lambda m, _: m.push(False),
    "EMPTY_LIST": lambda m, _: m.push([]),
    "EMPTY_DICT": lambda m, _: m.push({}),
    "EMPTY_TUPLE": lambda m, _: m.push(()),
    "MARK": lambda m, _: m.marks.append(len(m.stack)),
    "TUPLE": lambda m, _: m.push(tuple(m.pop_mark())),
    "TUPLE1": lambda m, _: m.push(tuple(m.pop(1))),
    "TUPLE2": lambda m, _: m.push(tuple(m.pop(2))),
    "TUPLE3": lambda m, _: m.push(tuple(m.pop(3))),
    "LIST": lambda m, _: m.push(m.pop_mark()),
    "DICT": lambda m, _: m.push(_set_items({}, m.pop_mark())),
    "APPEND": lambda m, _: _append(m.top(1), m.pop(1)),
    "APPENDS": lambda m, _: _append(*m.pop_mark_with_target()),
    "SETITEM": lambda m, _: _set_items(m.top(2), m.pop(2)),
    "SETITEMS": lambda m, _: _set_items(*m.pop_mark_with_target()),
    **dict.fromkeys(["GET", "BINGET", "LONG_BINGET"], _get),
    **dict.fromkeys(["PUT", "BINPUT", "LONG_BINPUT"], _put),
    "MEMOIZE": lambda m, _: _put(m, len(m.memo)),
    "GLOBAL": lambda m, arg: m.push(_find_global(*arg.split(" ", 1))),
    "STACK_GLOBAL": _stack_global,
    "REDUCE": _reduce,
    "BUILD": _build,
    "PROTO": _noop,
    "FRAME": _noop,
}


class _BatchUnpickler:
    """A pickle machine for plain data and numpy arrays (the stack, MARK and memo of ``pickle``);
    opcodes outside :data:`_OPCODES` (objects, sets, extensions, out-of-band buffers) are refused."""

    def __init__(self, max_ops: int) -> None:
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, Any] = {}
        self.max_ops = max_ops

    def _floor(self) -> int:
        return self.marks[-1] if self.marks else 0

    def push(self, value: Any) -> None:
        self.stack.append(value)

    def top(self, below: int = 0) -> Any:
        """The item ``below`` places under the top, which must lie above the last MARK."""
        if len(self.stack) - below <= self._floor():
            raise ValueError("pickle stack underflow")
        return self.stack[-1 - below]

    def pop(self, n: int | None = None) -> Any:
        """The top item, or (``n`` given) the top ``n`` as a list, bottom first."""
        if len(self.stack) - (n or 1) < self._floor():
            raise ValueError("pickle stack underflow")
        if n is None:
            return self.stack.pop()
        items = self.stack[len(self.stack) - n :]
        del self.stack[len(self.stack) - n :]
        return items

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise ValueError("pickle opcode needs a MARK")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def pop_mark_with_target(self) -> tuple[Any, list[Any]]:
        items = self.pop_mark()
        return self.top(), items

    def load(self, stream: _CappedReader) -> Any:
        for count, (name, arg) in enumerate(_pickle_ops(stream), 1):
            if count > self.max_ops:
                raise ValueError(
                    f"more than {self.max_ops:,} pickle opcodes, more than a batch of this file's "
                    f"size holds ({_OPS_PER_IMAGE} per {_CIFAR_ROW}-byte image)"
                )
            if name == "STOP":
                return self.pop()
            handler = _OPCODES.get(name)
            if handler is None:
                raise ValueError(f"pickle opcode {name} (a CIFAR batch is plain data and numpy arrays)")
            handler(self, arg)


def _unproxy(value: object) -> object:
    if isinstance(value, _ArrayProxy):
        if value.array is None:
            raise ValueError("an array without its data")
        return value.array
    return value.dtype if isinstance(value, _DtypeProxy) else value


def _short(key: object) -> str:
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."


def _cifar_labels(path: Path, labels: object, n: int) -> np.ndarray:
    """A batch's labels as int64, refused unless they are ``n`` integers in 0..9 (checked item by
    item before numpy sees them, so a list of lists never becomes an array)."""
    if isinstance(labels, np.ndarray):
        if labels.dtype.kind not in "iu":
            raise ValueError(f"{path}: labels must be integers, got an array of {labels.dtype}")
    elif isinstance(labels, (list, tuple)):
        bad = next((v for v in labels if not isinstance(v, (int, np.integer)) or isinstance(v, bool)), None)
        if bad is not None:
            raise ValueError(f"{path}: labels must be integers, found a {type(bad).__name__}")
        if labels and not all(0 <= v <= 9 for v in labels):
            raise ValueError(f"{path}: labels must be in 0..9, found {min(labels)}..{max(labels)}")
        labels = np.asarray(labels, dtype=np.int64)
    else:
        raise ValueError(f"{path}: labels must be a list of integers, got {type(labels).__name__}")
    if labels.shape != (n,):
        raise ValueError(f"{path}: {n} images but labels of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels must be in 0..9, found {int(labels.min())}..{int(labels.max())}")
    return labels


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise ValueError(f"{path}: no such CIFAR-10 batch file")
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            d = _BatchUnpickler(_max_pickle_ops(size)).load(_CappedReader(f, size))
        if not isinstance(d, dict):
            raise ValueError(f"expected a dict with b'data' and b'labels', got {type(d).__name__}")
        data, labels = (_unproxy(d.get(k.encode(), d.get(k))) for k in ("data", "labels"))
    except ValueError as e:  # any failure means "not a CIFAR batch"
        raise ValueError(f"{path}: not a CIFAR-10 pickle batch ({e})") from None
    except (TypeError, LookupError, OverflowError) as e:
        raise ValueError(f"{path}: not a CIFAR-10 pickle batch ({type(e).__name__}: {e})") from None
    if data is None or labels is None:
        keys = ", ".join(_short(k) for k in list(d)[:10]) + (", ..." if len(d) > 10 else "")
        raise ValueError(f"{path}: missing b'data' or b'labels' (keys: {keys})")
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != _CIFAR_ROW or data.dtype != np.uint8:
        got = f"{data.dtype} of shape {data.shape}" if isinstance(data, np.ndarray) else f"a {type(data).__name__}"
        raise ValueError(f"{path}: data must be uint8 [n, 3072] (3 x 32 x 32), got {got}")
    return data, _cifar_labels(path, labels, data.shape[0])


def _cifar_tensors(data: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(data.astype(np.float32) / 255.0).reshape(-1, 3, 32, 32)  # channel-major rows
    return x, torch.from_numpy(labels.astype(np.int64))


def load_cifar10(path: PathLike) -> Split | tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 from the user's "python version" files (``cifar-10-batches-py``).

    Args:
        path: the folder with ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``, or one
            batch file.

    Returns:
        for the folder, a :class:`Split`: x float32 ``[n, 3, 32, 32]`` in [0, 1] (50,000 train,
        10,000 test), y int64 ``[n]``; for one batch file, its ``(x, y)``.

    Only numpy arrays and plain data are unpickled (no code can run from the file), by a reader
    whose memory stays within a small multiple of the file's size: see the notes above
    ``_max_pickle_ops``.
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
