"""A PyTorch Lightning callback that runs an :class:`inertia.diagnostics.Monitor` during ``Trainer.fit``.

Needs ``lightning`` (``pip install 'inertia[lightning]'``); the older ``pytorch_lightning`` package works too when it
is the one installed. The callback derives from ``lightning.pytorch.Callback`` when ``lightning`` is importable, else
from ``pytorch_lightning.Callback``: use it with the Trainer of the same package. Importing this module imports
neither; ``from inertia.integrations.lightning import MonitorCallback`` does (and raises ``ImportError`` naming the
extra when neither is installed).

When it acts, on each process of global rank 0 (with several processes, the others train unobserved):

- ``on_fit_start``: builds ``Monitor(pl_module, quantities, every=every, **monitor_kwargs)`` on the LightningModule
  (after Lightning has moved it to its device);
- ``on_before_optimizer_step``: ``monitor.step(trainer.global_step)``, after ``backward()`` and before the optimizer
  step (and before gradient clipping), so step ``t`` is the ``t``-th optimizer step counted from 0. With
  ``accumulate_grad_batches=k`` the layer statistics of step ``t`` cover its ``k`` micro-batches (a layer's
  ``i``-th pass is labelled ``name#i``);
- ``on_validation_start`` / ``on_validation_end`` (the sanity check included): the layer hooks are paused, since
  evaluation passes are not training steps;
- ``on_fit_end`` and ``on_exception``: closes the Monitor (hooks removed, file closed); its records stay in
  :attr:`MonitorCallback.records`.

The Monitor never touches parameters, gradients or the global random state, so a fit with the callback is bit-identical
to one without it (tested with dropout and ``deterministic=True``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._session import CallbackBase, subclass_of

__all__ = ["MonitorCallback"]


def _callback_base() -> type:
    try:
        from lightning.pytorch import Callback
    except ImportError:
        try:
            from pytorch_lightning import Callback  # type: ignore[assignment]
        except ImportError as e:
            raise ImportError("MonitorCallback for Lightning needs lightning: pip install 'inertia[lightning]'") from e
    return Callback


class _MonitorCallback(CallbackBase):
    """Records ``quantities`` every ``every`` optimizer steps of ``Trainer.fit``; see the module docstring for when.

    Args:
        quantities: names from :data:`inertia.diagnostics.QUANTITIES` or callables ``q(monitor, step) -> dict``.
        every: record at optimizer steps (``trainer.global_step``) divisible by ``every``.
        on_record: called with each record when it is made, e.g. a
            :class:`~inertia.integrations.tensorboard.TensorBoardWriter`.
        **monitor_kwargs: any other :class:`~inertia.diagnostics.Monitor` argument: ``path``, ``loss_fn``,
            ``inputs``, ``probe``, ``histograms``, ``keep``, ... (checked now: an unknown name raises ``TypeError``).

    Examples:

    >>> from inertia.integrations.lightning import MonitorCallback
    >>> cb = MonitorCallback(["layer_stats", "weight_norms"], every=5)
    >>> cb.monitor is None, cb.records
    (True, [])
    """

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.is_global_zero:
            self._session.start(pl_module)

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        self._session.step(trainer.global_step)

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        self._session.pause()

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        self._session.resume()

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._session.close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._session.close()


if TYPE_CHECKING:
    from lightning.pytorch import Callback

    class MonitorCallback(_MonitorCallback, Callback): ...


def __getattr__(name: str) -> Any:
    if name == "MonitorCallback":  # made on first use, then an ordinary module attribute
        cls = globals()[name] = subclass_of(_callback_base(), _MonitorCallback, __name__)
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
