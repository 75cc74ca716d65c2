"""Progress of long work, with an estimate of the time left: a bar on a terminal, plain lines
otherwise (a log, CI), nothing when quiet.

Library code reports through the reporter that the caller made current (``reporting``), so that a
deep call (a pool of training runs inside a paper's reproduction) needs no callback threaded
through every signature:

    >>> import io
    >>> out = io.StringIO()
    >>> with reporting("reproduce hu2020", stream=out, tty=False, every=0) as r:
    ...     current().update(1, 4, stage="grid")
    ...     current().note("figures")
    >>> print(out.getvalue().splitlines()[0].split("]", 1)[1])
     reproduce hu2020 / grid: 1/4 runs, 0s elapsed
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TextIO

__all__ = ["Reporter", "current", "eta_seconds", "format_duration", "reporting"]


def format_duration(seconds: float) -> str:
    """``3h05m``, ``4m10s``, ``12s``.

    >>> format_duration(3725), format_duration(250), format_duration(9.6)
    ('1h02m', '4m10s', '10s')
    """
    s = int(round(max(seconds, 0.0)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def eta_seconds(done: int, total: int, elapsed: float) -> float | None:
    """The time left if the rest goes at the pace so far; None before the first is done, or
    before half a second has passed (too early to say: the first line would read "about 0s left").

    >>> eta_seconds(1, 4, 30.0), eta_seconds(0, 4, 30.0), eta_seconds(4, 4, 30.0), eta_seconds(1, 4, 0.1)
    (90.0, None, 0.0, None)
    """
    if done <= 0 or total <= 0 or (elapsed < 0.5 and done < total):
        return None
    return elapsed * max(total - done, 0) / done


class Reporter:
    """Reports ``update(done, total)`` and ``note(text)`` for one piece of work.

    Args:
        label: what is running, e.g. ``"reproduce sutskever2013"``.
        stream: where lines go (default: standard error).
        quiet: report nothing.
        tty: draw a rich progress bar (default: when ``stream`` is a terminal).
        every: on plain output, the least seconds between two progress lines of one stage (the
            last update of a stage is always printed).
        heartbeat: on plain output, repeat the last progress line (``still running``, with the
            stage's elapsed time and the time left re-estimated as of then) when nothing was
            printed for this many seconds, so that a log shows life during one long run (None:
            never).
        clock: seconds, for tests.
    """

    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        quiet: bool = False,
        tty: bool | None = None,
        every: float = 10.0,
        heartbeat: float | None = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.quiet, self.every, self.clock = label, quiet, every, clock
        self.heartbeat = heartbeat
        self._last_text: str | None = None
        self._last_state: tuple[str, int, int] = ("", 0, 0)  # (stage, done, total) of the last progress line
        self._last_write = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.stream = stream if stream is not None else sys.stderr
        self.tty = tty if tty is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = clock()
        self._stage_start: dict[str, float] = {}
        self._last_line: dict[str, float] = {}
        self._bar: Any = None  # a rich Progress, made on the first update on a terminal
        self._tasks: dict[str, Any] = {}

    def _elapsed(self, stage: str) -> float:
        return self.clock() - self._stage_start.setdefault(stage, self.clock())

    def update(self, done: int, total: int, stage: str = "", what: str = "runs") -> None:
        """``done`` of ``total`` ``what`` finished in ``stage``."""
        if self.quiet:
            return
        elapsed = self._elapsed(stage)
        name = f"{self.label} / {stage}" if stage else self.label
        if self.tty:
            self._draw(name, done, total)
            return
        now = self.clock()
        last = self._last_line.get(stage)
        if last is not None and now - last < self.every and done < total:
            return
        self._last_line[stage] = now
        self._line(f"{name}: {done}/{total} {what}, {self._times(done, total, elapsed)}")
        self._last_text = f"{name}: {done}/{total} {what}" if done < total else None
        self._last_state = (stage, done, total)
        self._start_heartbeat()

    @staticmethod
    def _times(done: int, total: int, elapsed: float) -> str:
        eta = eta_seconds(done, total, elapsed)
        left = f", about {format_duration(eta)} left" if eta is not None and done < total else ""
        return f"{format_duration(elapsed)} elapsed{left}"

    def note(self, text: str) -> None:
        """A one-off line (a stage starts or ends)."""
        if self.quiet:
            return
        if self.tty and self._bar is not None:
            self._bar.console.print(f"{self.label}: {text}", highlight=False, markup=False)
            return
        self._line(f"{self.label}: {text} ({format_duration(self.clock() - self.start)} elapsed)")

    def _line(self, text: str) -> None:
        with self._lock:
            self.stream.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
            self.stream.flush()
            self._last_write = time.monotonic()

    def _start_heartbeat(self) -> None:
        if self.heartbeat is None or self._beat is not None:
            return

        def beat() -> None:
            assert self.heartbeat is not None
            while not self._stop.wait(min(self.heartbeat, 5.0)):
                text, (stage, done, total) = self._last_text, self._last_state
                if text is not None and time.monotonic() - self._last_write >= self.heartbeat:
                    # the stage's time so far and the time left at its pace so far, as of now
                    elapsed = self.clock() - self._stage_start.get(stage, self.start)
                    self._line(f"{text}, {self._times(done, total, elapsed)} (still running)")

        self._beat = threading.Thread(target=beat, name="inertia-progress", daemon=True)
        self._beat.start()

    def _draw(self, name: str, done: int, total: int) -> None:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=True,
            )
            self._bar.start()
        if name not in self._tasks:
            self._tasks[name] = self._bar.add_task(name, total=total)
        self._bar.update(self._tasks[name], completed=done, total=total)

    def close(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=10)
            self._beat = None
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


_CURRENT: ContextVar[Reporter | None] = ContextVar("inertia_progress", default=None)


def current() -> Reporter | None:
    """The reporter the caller made current with :func:`reporting`, or None."""
    return _CURRENT.get()


@contextlib.contextmanager
def reporting(label: str, **kwargs) -> Iterator[Reporter]:
    """Make a :class:`Reporter` current inside the block (``kwargs`` go to it)."""
    reporter = Reporter(label, **kwargs)
    token = _CURRENT.set(reporter)
    try:
        yield reporter
    finally:
        _CURRENT.reset(token)
        reporter.close()
