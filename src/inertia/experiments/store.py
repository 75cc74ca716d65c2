"""The run store: one folder per run, written so that nothing is ever half-written.

Layout of ``runs/<experiment>/<run_id>/``::

    config.json        the full config (written first)
    metrics.jsonl      one JSON object per evaluation, appended
    diagnostics.jsonl  monitor records, appended
    checkpoint.pt      model, optimizer, RNG states and step (replaced atomically)
    summary.json       status: running | completed | diverged | failed, final metrics

Every whole-file write goes to a temporary file in the same folder, is flushed and fsynced,
then renamed over the target (``os.replace`` is atomic on POSIX), so a run killed at any
instant leaves either the old file or the new one. Appended JSON-lines files are repaired on
open: a trailing partial line left by a kill is dropped.

One process at a time writes a folder: :func:`lock_folder` holds an OS lock (``flock`` on
``.lock`` in the folder), which the kernel releases when the process ends, however it ends.
Names that become folders (experiment, run id, sweep name) are single path components
(:func:`check_name`), so no name can reach outside the output folder. A stored file that does
not parse raises :class:`UnreadableFileError`, naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import pickle
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from .._atomic import atomic_torch_save, atomic_write_bytes
from .._json import to_json

__all__ = [
    "CHECKPOINT_KEYS",
    "LOCK_FILE",
    "STATUSES",
    "FolderInUseError",
    "JsonlWriter",
    "RunDir",
    "UnreadableFileError",
    "atomic_torch_save",
    "atomic_write_json",
    "atomic_write_text",
    "check_name",
    "check_resume_config",
    "config_differences",
    "load_checkpoint",
    "lock_folder",
    "read_json",
    "read_jsonl",
    "remove_temporaries",
    "rewrite_jsonl",
    "run_path",
    "to_json",
    "write_jsonl",
]

STATUSES = ("running", "completed", "diverged", "failed", "stopped")  # stopped: early, by a sweep's scheduler
LOCK_FILE = ".lock"


class UnreadableFileError(ValueError):
    """A stored file is not what inertia wrote (truncated, garbage): the message names it."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class FolderInUseError(ValueError):
    """Another process holds the folder's lock."""


def check_name(name: Any, what: str) -> str:
    """``name`` if it is a single path component (no ``/``, not ``.`` or ``..``, not empty), so
    ``out / name`` stays inside ``out``; ValueError naming ``what`` otherwise."""
    ok = (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
    )
    if not ok:
        raise ValueError(f"{what} must be a single folder name (no '/', not '.' or '..', not empty), got {name!r}")
    return name


def run_path(out: str | os.PathLike, *names: str, what: Iterable[str] = ()) -> Path:
    """``out / names[0] / names[1] ...`` after :func:`check_name` on each name (``what`` labels
    them in the error, e.g. ``("experiment", "run id")``)."""
    what = tuple(what)
    labels = what + tuple(f"folder name {i + 1}" for i in range(len(what), len(names)))
    path = Path(out)
    for name, label in zip(names, labels, strict=False):
        path = path / check_name(name, label)
    return path


@contextlib.contextmanager
def lock_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Hold ``path``'s lock (created with the folder if need be) while the block runs.

    An exclusive ``fcntl.flock`` on ``path/.lock``: a second holder, in this or another process,
    gets :class:`FolderInUseError` at once instead of writing the folder too. The kernel drops the
    lock when the file is closed, so a killed process never leaves the folder locked. The lock
    file stays (removing it would let two processes lock two different files).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise FolderInUseError(
                f"{path} is in use by another process (it holds {path / LOCK_FILE}); "
                f"wait for it to finish or use another folder"
            ) from None
        yield path
    finally:
        os.close(fd)  # releases the lock


def remove_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files an atomic write killed mid-way left in ``path`` (call
    it with the folder's lock held, so no write is in progress); return what was removed."""
    removed = []
    for p in Path(path).glob(".*.tmp"):
        if p.is_file():
            p.unlink()
            removed.append(p)
    return removed


def _flatten(obj: Any, prefix: str = "") -> dict:
    if isinstance(obj, dict) and obj:
        out = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def config_differences(stored: dict, new: dict) -> dict:
    """``{dotted key: (stored value, new value)}`` for every leaf where the two configs differ
    (compared as JSON, so tuples equal lists; a missing key reads as ``<absent>``)."""
    a, b = _flatten(json.loads(to_json(stored))), _flatten(json.loads(to_json(new)))
    absent = "<absent>"
    return {
        k: (a.get(k, absent), b.get(k, absent)) for k in sorted(set(a) | set(b)) if a.get(k, absent) != b.get(k, absent)
    }


def check_resume_config(stored: dict, new: dict, where: str) -> None:
    """Raise ValueError naming the dotted keys where ``new`` differs from the ``stored`` config
    of the run (or sweep) at ``where``: resuming would continue the old run under a new name."""
    diff = config_differences(stored, new)
    if diff:
        shown = "; ".join(f"{k}: stored {a!r}, new {b!r}" for k, (a, b) in list(diff.items())[:10])
        more = f" (and {len(diff) - 10} more)" if len(diff) > 10 else ""
        raise ValueError(
            f"cannot resume {where}: its config differs at {', '.join(diff)}: {shown}{more}. "
            f"Resume with the stored config, or start a new folder (another run id or name)"
        )


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Replace ``path`` with ``obj`` as indented JSON (keys sorted, non-finite floats as strings)."""
    atomic_write_text(path, to_json(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value in ``path``; :class:`UnreadableFileError` (a ValueError naming the file)
    if it does not parse, e.g. truncated by something other than inertia's atomic writes."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except UnicodeDecodeError as e:
        raise UnreadableFileError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise UnreadableFileError(path, f"not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines file, ignoring a trailing partial line (a write cut off by a kill).
    A complete line that does not parse raises :class:`UnreadableFileError` naming the file and
    the line."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                break  # partial last line
            try:
                line = raw.decode("utf-8").strip()
                record = json.loads(line) if line else None
            except (UnicodeDecodeError, json.JSONDecodeError):
                record = False
            if record is None:
                continue
            if not isinstance(record, dict):
                raise UnreadableFileError(path, f"line {lineno} is not a JSON object: {raw[:80]!r}")
            records.append(record)
    return records


def rewrite_jsonl(path: str | os.PathLike, keep: Callable[[dict], bool]) -> list[dict]:
    """Atomically rewrite a JSON-lines file to hold only the records ``keep`` accepts (dropping a
    partial last line too); used on resume to cut a file back to the checkpoint. Returns them."""
    path = Path(path)
    if not path.exists():
        return []
    kept = [r for r in read_jsonl(path) if keep(r)]
    write_jsonl(path, kept)
    return kept


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> None:
    """Atomically replace ``path`` with one JSON line per record."""
    atomic_write_text(path, "".join(to_json(r) + "\n" for r in records))


class JsonlWriter:
    """Appends one JSON object per line; each line is written with a single ``write`` and
    flushed, so a kill leaves at most one partial trailing line, which readers drop."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._truncate_partial_tail()
        self._f = open(self.path, "a", encoding="utf-8")

    def _truncate_partial_tail(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as f:
                f.truncate(cut)

    def truncate_after(self, keep: Iterable[dict]) -> None:
        """Rewrite the file to hold exactly ``keep`` (used on resume to drop records written
        after the last checkpoint)."""
        self._f.close()
        write_jsonl(self.path, keep)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._f.write(to_json(record) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


CHECKPOINT_KEYS = ("step", "model", "optimizer", "torch_rng")


def load_checkpoint(path: str | os.PathLike, map_location: Any = None) -> dict:
    """A run checkpoint written by :func:`train`, loaded with ``torch.load(weights_only=True)``:
    only tensors and plain data (numbers, strings, lists, dicts) are rebuilt, so a crafted file
    cannot run code. A refused, empty, truncated or incomplete file raises
    :class:`UnreadableFileError` naming it; the file itself is left as it is."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UnreadableFileError(
            path,
            f"refused: it holds objects other than tensors and plain data, and loading those could run code ({first})",
        ) from None
    except (EOFError, OSError, RuntimeError, ValueError, KeyError, IndexError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "the file ends early"
        raise UnreadableFileError(
            path,
            f"not a readable checkpoint, empty or truncated ({type(e).__name__}: "
            f"{first}); move it away to restart the run from update 0",
        ) from None
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise UnreadableFileError(path, f"not an inertia run checkpoint: missing {missing}")
    return ckpt


class RunDir:
    """Paths and helpers for one run folder."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    config = property(lambda self: self.root / "config.json")
    metrics = property(lambda self: self.root / "metrics.jsonl")
    diagnostics = property(lambda self: self.root / "diagnostics.jsonl")
    checkpoint = property(lambda self: self.root / "checkpoint.pt")
    summary = property(lambda self: self.root / "summary.json")

    def read_summary(self) -> dict | None:
        return read_json(self.summary) if self.summary.exists() else None

    def write_summary(self, **fields: Any) -> dict:
        status = fields.get("status")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        atomic_write_json(self.summary, fields)
        return fields

    def read_metrics(self) -> list[dict]:
        return read_jsonl(self.metrics)
