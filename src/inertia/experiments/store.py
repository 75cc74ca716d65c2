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
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import torch

from .._atomic import atomic_torch_save, atomic_write_bytes
from .._json import to_json

STATUSES = ("running", "completed", "diverged", "failed")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, to_json(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines file, ignoring a trailing partial line (a write cut off by a kill)."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # partial last line
            line = line.strip()
            if line:
                records.append(json.loads(line))
    return records


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
        atomic_write_text(self.path, "".join(to_json(r) + "\n" for r in keep))
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._f.write(to_json(record) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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
