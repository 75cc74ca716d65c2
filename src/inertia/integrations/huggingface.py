"""A Hugging Face ``transformers.TrainerCallback`` that runs an :class:`inertia.diagnostics.Monitor` during
``Trainer.train``.

Needs ``transformers`` (and ``accelerate``, which its ``Trainer`` needs): ``pip install 'inertia[hf]'``. Importing
this module does not import transformers; ``from inertia.integrations.huggingface import MonitorCallback`` does (and
raises ``ImportError`` naming the extra when it is missing or older than 4.45).

When it acts, on the world's main process (with several processes, the others train unobserved):

- ``on_train_begin``: builds ``Monitor(model, quantities, every=every, **monitor_kwargs)`` on the Trainer's model;
- ``on_step_begin`` to ``on_step_end``: the layer hooks are armed (at the steps to record) only between these two,
  so the evaluation, ``eval_on_start`` and prediction passes in between steps are not recorded;
- ``on_pre_optimizer_step``: ``monitor.step(state.global_step)``, after every micro-batch's ``backward()`` and
  after gradient clipping, before ``optimizer.step()``; step ``t`` is the ``t``-th optimizer step counted from 0.
  With ``gradient_accumulation_steps=k`` the layer statistics of step ``t`` cover its ``k`` micro-batches (a
  layer's ``i``-th pass is labelled ``name#i``);
- ``on_train_end``: closes the Monitor (hooks removed, file closed); its records stay in
  :attr:`MonitorCallback.records`. A run that raises skips ``on_train_end``: call :meth:`MonitorCallback.close`.

``on_pre_optimizer_step`` exists since transformers 4.45 (huggingface/transformers#33444; the ``hf`` extra's lower
bound). The Monitor never
touches parameters, gradients or the global random state, so training with the callback is bit-identical to training
without it (tested with dropout).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._session import CallbackBase, subclass_of

__all__ = ["MonitorCallback"]


def _callback_base() -> type:
    try:
        import transformers
        from transformers import TrainerCallback
    except ImportError as e:
        raise ImportError("MonitorCallback for Hugging Face needs transformers: pip install 'inertia[hf]'") from e
    if not hasattr(TrainerCallback, "on_pre_optimizer_step"):  # without it the callback would never record
        raise ImportError(
            "MonitorCallback for Hugging Face needs transformers>=4.45 (TrainerCallback.on_pre_optimizer_step), "
            f"found {transformers.__version__}: pip install 'inertia[hf]'"
        )
    return TrainerCallback


class _MonitorCallback(CallbackBase):
    """Records ``quantities`` every ``every`` optimizer steps of ``Trainer.train``; see the module docstring for when.

    Args:
        quantities: names from :data:`inertia.diagnostics.QUANTITIES` or callables ``q(monitor, step) -> dict``.
        every: record at optimizer steps (``state.global_step``) divisible by ``every``.
        on_record: called with each record when it is made, e.g. a
            :class:`~inertia.integrations.tensorboard.TensorBoardWriter`.
        **monitor_kwargs: any other :class:`~inertia.diagnostics.Monitor` argument: ``path``, ``loss_fn``,
            ``inputs``, ``probe``, ``histograms``, ``keep``, ... (checked now: an unknown name raises ``TypeError``).

    Examples:

    >>> from inertia.integrations.huggingface import MonitorCallback
    >>> cb = MonitorCallback(["layer_stats", "weight_norms"], every=5)
    >>> cb.monitor is None, cb.records
    (True, [])
    """

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        if model is None:
            raise ValueError("MonitorCallback needs the Trainer's model; on_train_begin was called without one")
        self._session.start(model)
        self._session.pause()  # until the first step begins (eval_on_start runs in between)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._session.resume()

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._session.step(state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._session.pause()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._session.close()


if TYPE_CHECKING:
    from transformers import TrainerCallback

    class MonitorCallback(_MonitorCallback, TrainerCallback): ...


def __getattr__(name: str) -> Any:
    if name == "MonitorCallback":  # made on first use, then an ordinary module attribute
        cls = globals()[name] = subclass_of(_callback_base(), _MonitorCallback, __name__)
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
