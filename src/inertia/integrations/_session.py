"""What the Lightning and Hugging Face callbacks share: a Monitor built when training starts, stepped once per
optimizer step, paused outside training steps (evaluation passes are not training), closed when training ends."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from ..diagnostics.monitor import QUANTITIES, Monitor

_MONITOR_ARGS = inspect.signature(Monitor).parameters


class MonitorSession:
    """The Monitor's arguments, checked now (a typo should fail before a run starts, not at its first step), and
    the Monitor itself once :meth:`start` has been given the model.

    Args:
        quantities: as for :class:`~inertia.diagnostics.Monitor`: registry names or callables.
        every: record at optimizer steps divisible by ``every``.
        on_record: called with each record as it is made, e.g. a
            :class:`~inertia.integrations.tensorboard.TensorBoardWriter`.
        monitor_kwargs: any other :class:`~inertia.diagnostics.Monitor` argument (``path``, ``loss_fn``, ...).
    """

    def __init__(
        self,
        quantities: Sequence[str | Callable],
        every: int,
        on_record: Callable[[dict], Any] | None,
        monitor_kwargs: dict[str, Any],
    ) -> None:
        if isinstance(quantities, str):
            raise ValueError(f"quantities must be a sequence of names or callables, got the string {quantities!r}")
        for q in quantities:
            if not callable(q):
                QUANTITIES.get(q)  # an unknown name raises ValueError listing the known ones
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        taken = {"model", "quantities", "every"}
        unknown = sorted(k for k in monitor_kwargs if k not in _MONITOR_ARGS or k in taken)
        if unknown:
            accepted = [k for k in _MONITOR_ARGS if k not in taken]
            raise TypeError(f"unknown Monitor arguments {unknown}; accepted: {accepted}")
        if on_record is not None and not callable(on_record):
            raise ValueError(f"on_record must be a callable taking a record, got {type(on_record).__name__}")
        self.quantities = list(quantities)
        self.every = every
        self.on_record = on_record
        self.monitor_kwargs = dict(monitor_kwargs)
        self.monitor: Monitor | None = None
        self._last_step: int | None = None
        self._pause: contextlib.AbstractContextManager | None = None

    def start(self, model: nn.Module) -> Monitor:
        """A fresh Monitor on ``model`` (the previous one, from an earlier run, is closed)."""
        self.close()
        # built on global rank 0 alone: its records are that process's, and it must run no collective
        kwargs = {"distributed": False, **self.monitor_kwargs}
        self.monitor = Monitor(model, self.quantities, every=self.every, **kwargs)
        self._last_step = None
        return self.monitor

    def step(self, step: int) -> dict | None:
        """``monitor.step(step)`` once per step: a second call at the same step (a second optimizer stepped in the
        same training step) does nothing."""
        if self.monitor is None or step == self._last_step:
            return None
        self.resume()
        self._last_step = step
        record = self.monitor.step(step)
        if record is not None and self.on_record is not None:
            self.on_record(record)
        return record

    def pause(self) -> None:
        """Disarm the layer hooks until :meth:`resume` (what runs in between is not a training step)."""
        if self.monitor is not None and self._pause is None:
            self._pause = self.monitor.paused()
            self._pause.__enter__()

    def resume(self) -> None:
        if self._pause is not None:
            pause, self._pause = self._pause, None
            pause.__exit__(None, None, None)

    def close(self) -> None:
        """Remove the Monitor's hooks and close its file; its records stay readable."""
        self.resume()
        if self.monitor is not None:
            self.monitor.close()

    @property
    def records(self) -> list[dict]:
        """The records of the latest run: ``monitor.records``, or everything it wrote to ``path``."""
        if self.monitor is None:
            return []
        if self.monitor.path is not None:
            return self.monitor.read_records()
        return self.monitor.records


class CallbackBase:
    """What both callbacks share: the session, ``monitor``, ``records`` and ``close``."""

    def __init__(
        self,
        quantities: Sequence[str | Callable] = ("layer_stats",),
        every: int = 10,
        on_record: Callable[[dict], Any] | None = None,
        **monitor_kwargs: Any,
    ) -> None:
        super().__init__()  # the framework's callback base
        self._session = MonitorSession(quantities, every, on_record, monitor_kwargs)

    @property
    def monitor(self) -> Monitor | None:
        """The Monitor of the latest run (``None`` before the first)."""
        return self._session.monitor

    @property
    def records(self) -> list[dict]:
        """The latest run's records: ``monitor.records``, or with ``path``, everything the Monitor wrote there."""
        return self._session.records

    def close(self) -> None:
        """Close the Monitor now (the end-of-training hook does it; this is for a run stopped from outside)."""
        self._session.close()


def subclass_of(base: type, body: type, module: str) -> type:
    """``class <body's name>(body, base)`` made now, in ``module``: how the callbacks derive from a framework's base
    class only when first used, so that importing their module does not import the framework (seconds)."""
    name = body.__name__.lstrip("_")
    return type(name, (body, base), {"__module__": module, "__qualname__": name, "__doc__": body.__doc__})
