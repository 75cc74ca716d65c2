"""The :class:`inertia.diagnostics.Monitor`'s records as TensorBoard scalars and histograms.

Needs ``tensorboard`` (``pip install 'inertia[tensorboard]'``); it is imported when a writer is made, so importing
this module and :func:`record_scalars` / :func:`record_histograms` work without it.

What one record (one recorded step ``t``) becomes, all at ``global_step = t``:

- per layer statistic (``record["layers"]``): scalars ``{kind}/{layer}/{stat}`` for ``stat`` in
  :data:`LAYER_STATISTICS` that the entry has (``saturated`` for sigmoid/tanh/softsign, ``dead`` for ReLU), e.g.
  ``activation/net.1/std``, ``backprop_grad/net.0/std``, ``weight_grad/net.0.weight/std``; and, when the Monitor
  recorded histograms (its default), the histogram ``{kind}/{layer}``, written as it was counted: the
  Monitor's bins over ``[lo, hi]`` of the layer's sample (:func:`~inertia.diagnostics.tensor_stats`), with
  ``num`` the sample size and ``sum`` / ``sum_squares`` from the mean and std of the whole tensor scaled to
  ``num``. A Monitor made with ``histograms=False`` stores no counts and no sample, so no histogram is written;
- every other number in the record: a scalar; ``curvature/{key}`` for the curvature quantities (``hessian_*``,
  with their ``_stderr`` and ``_hvps``), ``{key}`` for the rest (e.g. an extra ``loss`` passed to
  ``monitor.step``);
- every dict of numbers (``weight_norms``, ``jacobian_singular_values``, a custom quantity's): ``{key}/{name}``.

Non-numbers (strings, lists) are left out; NaN and inf are written as they are (a diverging run shows as one).
View with ``tensorboard --logdir LOG_DIR``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._json import from_json

__all__ = [
    "LAYER_STATISTICS",
    "TensorBoardExport",
    "TensorBoardWriter",
    "read_monitor_jsonl",
    "record_histograms",
    "record_scalars",
    "write_monitor_records",
]

LAYER_STATISTICS = ("mean", "std", "p2", "p98", "saturated", "dead", "nonfinite")


def _summary_writer_class() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ImportError("TensorBoard export needs tensorboard: pip install 'inertia[tensorboard]'") from e
    return SummaryWriter


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _layer_tag(entry: dict) -> str:
    return f"{entry['kind']}/{entry['layer'] or '(model)'}"  # "": LayerStats watching a model with no submodules


def record_scalars(record: dict) -> Iterator[tuple[str, float]]:
    """``(tag, value)`` for every scalar of one Monitor record (see the module docstring for the tags).

    Examples:

    >>> rec = {"step": 3, "hessian_trace": 2.5, "weight_norms": {"fc.weight": 1.5},
    ...        "layers": [{"layer": "act", "kind": "activation", "mean": 0.0, "std": 1.0, "numel": 8}]}
    >>> for tag, value in record_scalars(rec):
    ...     print(tag, value)
    activation/act/mean 0.0
    activation/act/std 1.0
    curvature/hessian_trace 2.5
    weight_norms/fc.weight 1.5
    """
    for entry in record.get("layers", ()):
        tag = _layer_tag(entry)
        for stat in LAYER_STATISTICS:
            if _is_number(entry.get(stat)):
                yield f"{tag}/{stat}", float(entry[stat])
    for key, value in record.items():
        if key in ("step", "layers"):
            continue
        if _is_number(value):
            yield (f"curvature/{key}" if key.startswith("hessian_") else key), float(value)
        elif isinstance(value, dict):
            for name, v in value.items():
                if _is_number(v):
                    yield f"{key}/{name}", float(v)


def record_histograms(record: dict) -> Iterator[dict[str, Any]]:
    """The keyword arguments of ``SummaryWriter.add_histogram_raw`` (but ``global_step``) for every layer histogram
    of one Monitor record: the stored counts of equal-width bins over ``hist_range = [lo, hi]``, each bin given
    by its upper edge; one bin at ``hi`` when ``lo == hi`` (the Monitor then counts every element in its first)."""
    for entry in record.get("layers", ()):
        counts, span = entry.get("hist"), entry.get("hist_range")
        if not counts or not span:
            continue
        num = int(sum(counts))
        lo, hi = float(span[0]), float(span[1])
        if num == 0 or not (math.isfinite(lo) and math.isfinite(hi)):
            continue
        if hi > lo:
            bins = len(counts)
            limits = [lo + (hi - lo) * (i + 1) / bins for i in range(bins)]
            limits[-1] = hi
            bucket_counts = [float(c) for c in counts]
        else:
            limits, bucket_counts = [hi], [float(num)]
        mean, std = float(entry.get("mean", math.nan)), float(entry.get("std", math.nan))
        yield {
            "tag": _layer_tag(entry),
            "min": lo,
            "max": hi,
            "num": num,
            "sum": mean * num,
            "sum_squares": (std * std + mean * mean) * num,
            "bucket_limits": limits,
            "bucket_counts": bucket_counts,
        }


class TensorBoardWriter:
    """Writes Monitor records to TensorBoard event files in ``log_dir`` as they come: call it (or :meth:`write`)
    with each record, e.g. as a training callback's ``on_record``, or in a plain loop::

        with TensorBoardWriter("runs/exp1") as tb:
            for step in range(steps):
                ...; loss.backward()
                record = mon.step(step)
                if record is not None:
                    tb(record)
                opt.step(); opt.zero_grad()

    Each record is flushed to disk when written, so TensorBoard shows a run while it trains.

    Args:
        log_dir: the folder of the event files (made if missing).
        histograms: write the layer histograms (``False``: scalars only).
        **writer_kwargs: passed to ``torch.utils.tensorboard.SummaryWriter`` (``flush_secs``, ``filename_suffix``).

    Attributes:
        records, scalars, histograms_written: how many of each this writer has written.
    """

    def __init__(self, log_dir: str | Path, histograms: bool = True, **writer_kwargs: Any) -> None:
        self.log_dir = Path(log_dir)
        self.histograms = histograms
        self._writer = _summary_writer_class()(log_dir=str(self.log_dir), **writer_kwargs)
        self.records = self.scalars = self.histograms_written = 0

    def write(self, record: dict) -> None:
        """Write one record's scalars and histograms at ``record["step"]``, then flush."""
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            raise ValueError(f"a Monitor record is a dict with an integer 'step', got {str(record)[:80]}")
        step = record["step"]
        for tag, value in record_scalars(record):
            self._writer.add_scalar(tag, value, global_step=step)
            self.scalars += 1
        if self.histograms:
            for kwargs in record_histograms(record):
                self._writer.add_histogram_raw(**kwargs, global_step=step)
                self.histograms_written += 1
        self.records += 1
        self._writer.flush()

    __call__ = write

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> TensorBoardWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass(frozen=True)
class TensorBoardExport:
    """What :func:`write_monitor_records` wrote: how many records, scalars and histograms, and where."""

    log_dir: Path
    records: int
    scalars: int
    histograms: int


def read_monitor_jsonl(path: str | Path) -> list[dict]:
    """The records of a Monitor's JSON-lines file (``Monitor(path=...)``), as the Monitor reads them back:
    non-finite floats are floats again, and a partial last line (a write cut off by a kill) is left out."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            if line.strip():
                out.append(from_json(line))
    return out


def write_monitor_records(
    records: Iterable[dict] | str | Path, log_dir: str | Path, histograms: bool = True, **writer_kwargs: Any
) -> TensorBoardExport:
    """Write Monitor records (a list, e.g. ``monitor.records`` or a callback's ``.records``, or the path of a
    Monitor's JSON-lines file) to TensorBoard event files in ``log_dir``; see the module docstring for the tags.
    View them with ``tensorboard --logdir log_dir``.

    Examples:

    >>> import tempfile, torch
    >>> from inertia.diagnostics import Monitor
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    >>> mon = Monitor(model, ["layer_stats", "weight_norms"], every=1)
    >>> model(torch.randn(8, 3)).square().mean().backward()
    >>> _ = mon.step(0); mon.close()
    >>> out = write_monitor_records(mon.records, tempfile.mkdtemp())
    >>> out.records, out.histograms
    (1, 5)
    """
    if isinstance(records, (str, Path)):
        records = read_monitor_jsonl(records)
    with TensorBoardWriter(log_dir, histograms=histograms, **writer_kwargs) as tb:
        for record in records:
            tb.write(record)
    return TensorBoardExport(Path(log_dir), tb.records, tb.scalars, tb.histograms_written)
