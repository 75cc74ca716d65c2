"""``train(config) -> metrics``: the one training loop every entry point uses.

CLI runs, sweeps (local pool or Ray), and the paper reproductions all call :func:`train`.
It builds data, model, initialization and optimizer from the config's registry names,
trains for ``config.steps`` updates, evaluates every ``config.eval_every`` updates (at the
actual iterate theta_t: for Nesterov the parameters hold the look-ahead point, so
evaluation runs inside ``optimizer.at_theta()``), and, given a run folder, records
everything there atomically (see :mod:`inertia.experiments.store`). With ``optimizer.name:
hessian_free`` one update is one HF iteration (Martens 2010) on the batch: gradient on the whole
batch, curvature on ``optimizer.options.curvature_fraction`` of it; its metrics add the damping
and the running CG-iteration and curvature-product counts. Every evaluation records ``wall_s``,
the seconds spent in the run so far (carried across a resume), for wall-clock comparisons; with
``stop_when`` set the run ends (status ``completed``) at the first evaluation where that metric is
true, e.g. ``"test_solved"`` for the RNN tasks. With ``clip_grad_norm`` the gradient is rescaled to
at most that 2-norm before each update (after the Monitor's hooks saw the raw backward pass, before
``monitor.step``), and evaluations add ``max_grad_norm`` (the largest norm before clipping since
the previous evaluation) and ``clipped_steps``.

Determinism: minibatches are a pure function of (seed, step) (a fresh permutation per
epoch from a generator seeded with ``seed`` and the epoch number), so a resumed run sees
exactly the batches the uninterrupted run would have seen, and on CPU reproduces its
metrics bit for bit. Denormal floats are flushed to zero during a run (:func:`flush_denormals`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..optim import HessianFree, PerExample
from . import components
from .config import HF_LOOP_OPTIONS, Config, ConfigError, from_dict
from .store import (
    JsonlWriter,
    RunDir,
    atomic_torch_save,
    atomic_write_json,
    check_resume_config,
    load_checkpoint,
    lock_folder,
    read_json,
    remove_temporaries,
    rewrite_jsonl,
)

__all__ = ["train", "TrainResult", "batch_indices", "TIMING_METRICS", "deterministic", "flush_denormals"]

TIMING_METRICS = ("wall_s",)  # metrics that measure time: not reproduced by a resume


def deterministic(metrics: dict) -> dict:
    """``metrics`` without the timing entries: what a resumed run reproduces exactly."""
    return {k: v for k, v in metrics.items() if k not in TIMING_METRICS}


class TrainResult(dict):
    """The final metrics (a dict) plus the run's status and folder."""

    def __init__(self, metrics: dict, status: str, step: int, run_dir: Path | None, message: str = ""):
        super().__init__(metrics)
        self.status = status
        self.step = step
        self.run_dir = run_dir
        self.message = message

    def __repr__(self) -> str:
        return f"TrainResult(status={self.status!r}, step={self.step}, metrics={dict(self)!r})"


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Indices of the minibatch used at update ``step``: epoch-wise permutations seeded by
    (seed, epoch), so any step's batch can be recomputed without replaying the run."""
    if batch_size >= n:
        return torch.arange(n)
    per_epoch = n // batch_size
    epoch, k = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g)
    return perm[k * batch_size : (k + 1) * batch_size]


def _is_finite(x: torch.Tensor) -> bool:
    return bool(torch.isfinite(x).all())


def train(
    config: Config | dict,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    progress: Callable[[int, int, dict], None] | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """Train one config; return its final metrics.

    Args:
        config: a :class:`Config` or a dict accepted by :func:`config.from_dict`.
        run_dir: folder for this run's files (created); ``None`` keeps everything in memory.
        resume: continue from ``run_dir/checkpoint.pt`` if it exists (else start fresh).
        progress: called as ``progress(step, total, last_metrics)`` after each evaluation.
        stop_after: stop (status ``running``, checkpoint written) after this many updates;
            used to test that resuming reproduces an uninterrupted run.
    """
    cfg = config if isinstance(config, Config) else from_dict(config)
    with flush_denormals():
        return _train(cfg, run_dir, resume=resume, progress=progress, stop_after=stop_after)


@contextlib.contextmanager
def flush_denormals():
    """Flush denormal floats to zero on the CPU while the block runs (``torch.set_flush_denormal``),
    then turn it off again (PyTorch's default). Deep logistic nets produce denormal activations and
    gradients (values below 1.2e-38 in float32): on x86 each one makes a matrix product take the slow
    path, and the sparse-initialized CURVES autoencoder trained 10x slower (55 ms an update instead
    of 5.5 on one core). Flushing changes only values below the denormal threshold."""
    supported = torch.set_flush_denormal(True)
    try:
        yield supported
    finally:
        if supported:
            torch.set_flush_denormal(False)


def _train(cfg: Config, run_dir, *, resume: bool, progress, stop_after) -> TrainResult:
    device = torch.device(cfg.device)
    dtype = getattr(torch, cfg.dtype)
    torch.manual_seed(cfg.seed)
    data = components.build_data(cfg, device=device, dtype=dtype)
    model = components.build_model(cfg, data).to(device=device, dtype=dtype)
    loss_fn = components.build_loss(cfg.loss, data)
    init_gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    components.apply_init(model, cfg, generator=init_gen, data=data, loss_fn=loss_fn)
    optimizer = components.build_optimizer(cfg, model)
    components.check_structural_damping(cfg, model)
    parts = (data, model, loss_fn, optimizer)
    if run_dir is None:
        return _run(cfg, None, parts, resume=False, progress=progress, stop_after=stop_after)
    rd = RunDir(run_dir)
    with lock_folder(rd.root):  # one writer per folder; refused before anything is written
        remove_temporaries(rd.root)  # left by a write that a kill cut short
        if resume and rd.config.exists():
            check_resume_config(_stored_config(rd), cfg.to_dict(), str(rd.root))
        return _run(cfg, rd, parts, resume=resume, progress=progress, stop_after=stop_after)


def _stored_config(rd: RunDir) -> dict:
    """The run folder's config, normalized through :func:`from_dict` when it still parses (so
    fields added with defaults since it was written do not count as changes)."""
    stored = read_json(rd.config)
    try:
        return from_dict(stored).to_dict()
    except (ConfigError, TypeError):
        return stored


def _open_run(rd: RunDir, cfg: Config, resume: bool, model, optimizer, device) -> tuple:
    """Load the checkpoint (on resume) into model and optimizer, cut ``metrics.jsonl`` and
    ``diagnostics.jsonl`` back to it, write the config and a ``running`` summary. Nothing is
    rewritten until the checkpoint has loaded. Returns (start step, metrics so far, the
    checkpoint or None, the metrics writer)."""
    start, history, ckpt = 0, [], None
    if resume and rd.checkpoint.exists():
        ckpt = load_checkpoint(rd.checkpoint, map_location=device)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start = int(ckpt["step"])
        history = [m for m in rd.read_metrics() if m["step"] <= start]
    # monitor records are made during update `step`, before it is applied: the checkpoint at
    # `start` holds updates 0..start-1, so later records are redone by this run
    rewrite_jsonl(rd.diagnostics, lambda r: r.get("step", -1) < start)
    atomic_write_json(rd.config, cfg.to_dict())
    writer = JsonlWriter(rd.metrics)
    writer.truncate_after(history)
    rd.write_summary(status="running", step=start, experiment=cfg.experiment)
    return start, history, ckpt, writer


def _run(cfg: Config, rd: RunDir | None, parts: tuple, *, resume: bool, progress, stop_after) -> TrainResult:
    data, model, loss_fn, optimizer = parts
    device = torch.device(cfg.device)
    start, history, wall_offset = 0, [], 0.0
    grads = {
        "max": 0.0,
        "clipped": 0,
    }  # gradient clipping: the largest norm and clipped updates since the last evaluation
    writer = monitor = ckpt = None
    previous = _previous_summary(rd) if resume else None  # what a failure before any evaluation keeps
    t0 = time.perf_counter()
    step = int(previous.get("step", 0)) if previous else start  # until the checkpoint says otherwise

    def checkpoint(step: int) -> None:
        if rd is None:
            return
        atomic_torch_save(
            rd.checkpoint,
            {
                "step": step,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "grads": dict(grads),
            },
        )

    hessian_free = isinstance(optimizer, HessianFree)

    def evaluate(step: int, train_loss: float) -> dict:
        paused = monitor.paused() if monitor is not None else contextlib.nullcontext()
        with _at_theta(optimizer), torch.no_grad(), paused:  # evaluation passes are not recorded as training
            m = {"step": step, "train_batch_loss": train_loss}
            m.update(data.evaluate(model, loss_fn))
        if hessian_free:
            m.update(_hessian_free_metrics(optimizer))
        if cfg.clip_grad_norm is not None:  # since the previous evaluation
            m["max_grad_norm"], m["clipped_steps"] = grads["max"], grads["clipped"]
            grads.update(max=0.0, clipped=0)
        m["wall_s"] = wall_offset + time.perf_counter() - t0
        if cfg.stop_when is not None and cfg.stop_when not in m:
            raise ConfigError(
                f"stop_when {cfg.stop_when!r} is not an evaluation metric of this run; its metrics are {sorted(m)}"
            )
        return m

    def should_stop(m: dict) -> bool:
        return cfg.stop_when is not None and bool(m[cfg.stop_when])

    def finish(status: str, step: int, message: str = "") -> TrainResult:
        if history:
            final = dict(history[-1])
        else:
            final = previous.get("final", {"step": step}) if previous else {"step": step}
        if writer is not None:
            writer.close()
        if rd is not None:
            rd.write_summary(
                status=status,
                step=step,
                experiment=cfg.experiment,
                final=final,
                message=message,
                wall_time_s=time.perf_counter() - t0,
            )
        if monitor is not None:
            monitor.close()
        return TrainResult(final, status, step, rd.root if rd else None, message)

    ckpt_every = cfg.checkpoint_every or cfg.eval_every
    n = data.n_train
    try:  # every failure from here on is recorded in the summary, then re-raised
        if rd is not None:
            start, history, ckpt, writer = _open_run(rd, cfg, resume, model, optimizer, device)
            step = start
            if ckpt is not None:
                grads.update(ckpt.get("grads", {}))
                wall_offset = float(history[-1].get("wall_s", 0.0)) if history else 0.0
        monitor = components.build_monitor(cfg, model, data, loss_fn, rd)
        if ckpt is not None:
            torch.set_rng_state(ckpt["torch_rng"])  # after everything else is built, as in the run it continues
        if start == 0:
            history.append(evaluate(0, float("nan")))
            if writer:
                writer.write(history[-1])
        if history and should_stop(history[-1]):
            return finish("completed", step, f"stopped at update {step}: {cfg.stop_when} is true")
        while step < cfg.steps:
            idx = batch_indices(n, cfg.batch_size, step, cfg.seed).to(device)
            xb, yb = data.batch(idx)
            optimizer.zero_grad(set_to_none=True)
            if hessian_free:  # the whole HF iteration (parameters unchanged when the loss is not finite)
                loss = _hessian_free_step(optimizer, model, loss_fn, xb, yb, cfg, step)
            else:
                loss = loss_fn(model(xb), yb)
            if not _is_finite(loss.detach()):
                msg = f"loss is {loss.item()} at update {step}: diverged (lower the learning rate or momentum)"
                return finish("diverged", step, msg)
            if not hessian_free:
                loss.backward()
                if cfg.clip_grad_norm is not None:
                    norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm))
                    grads["max"] = max(grads["max"], norm) if math.isfinite(norm) else norm
                    grads["clipped"] += int(norm > cfg.clip_grad_norm)
            if monitor is not None:
                monitor.step(step)
            if not hessian_free:
                optimizer.step()
            step += 1
            if step % cfg.eval_every == 0 or step == cfg.steps:
                m = evaluate(step, float(loss.detach()))
                history.append(m)
                if writer:
                    writer.write(m)
                if progress is not None:
                    progress(step, cfg.steps, m)
                if not all(math.isfinite(v) for k, v in m.items() if isinstance(v, float)):
                    return finish("diverged", step, f"non-finite evaluation metrics at update {step}: {m}")
                if should_stop(m) and step < cfg.steps:
                    checkpoint(step)
                    return finish("completed", step, f"stopped at update {step}: {cfg.stop_when} is true")
            if step % ckpt_every == 0 or step == cfg.steps:
                checkpoint(step)
            if stop_after is not None and step >= stop_after and step < cfg.steps:
                checkpoint(step)
                if writer:
                    writer.close()
                if monitor is not None:
                    monitor.close()
                return TrainResult(dict(history[-1]), "running", step, rd.root if rd else None, "stopped early")
    except Exception as e:  # recorded, then re-raised so callers see the traceback
        if rd is not None:
            finish("failed", step, f"{type(e).__name__}: {e}")
        elif monitor is not None:
            monitor.close()
        raise
    return finish("completed", step)


def _previous_summary(rd: RunDir | None) -> dict | None:
    """The folder's summary before this run touched it, or None (absent or unreadable)."""
    if rd is None:
        return None
    try:
        summary = rd.read_summary()
    except ValueError:
        return None
    return summary if isinstance(summary, dict) else None


def _hessian_free_step(
    optimizer: HessianFree, model, loss_fn: Callable, xb: torch.Tensor, yb: torch.Tensor, cfg: Config, step: int
) -> torch.Tensor:
    """One HF iteration on the batch: the gradient on all of it, curvature products on a
    ``curvature_fraction`` share (a different subset at each step, a pure function of (seed, step)),
    exact per-case gradients for the Martens preconditioner. Returns the loss before the step."""
    structural = cfg.optimizer.options.get("structural_damping", 0) > 0

    def run(x, y):  # (outputs, loss[, hidden]): structural damping penalizes changes of the hidden states
        if structural:
            out, hidden = model.forward_with_hidden(x)
            return out, loss_fn(out, y), hidden
        out = model(x)
        return out, loss_fn(out, y)

    def closure():
        return run(xb, yb)

    fraction = cfg.optimizer.options.get("curvature_fraction", HF_LOOP_OPTIONS["curvature_fraction"])
    m = max(1, round(fraction * xb.shape[0]))
    curvature_closure = None
    if m < xb.shape[0]:
        idx = batch_indices(xb.shape[0], m, step, cfg.seed + 1).to(xb.device)
        xc, yc = xb[idx], yb[idx]

        def curvature_closure():
            return run(xc, yc)

    per_example = None
    if optimizer.param_groups[0]["preconditioner"] == "martens":
        per_example = PerExample(model, xb, yb, loss_fn)
    return optimizer.step(closure, curvature_closure, per_example=per_example)


def _hessian_free_metrics(optimizer: HessianFree) -> dict:
    c = optimizer.counters
    return {
        "hf_damping": optimizer.damping,
        "hf_cg_iters": c["cg_iters_total"],
        "hf_curvature_products": c["curvature_products"],
    }


def _at_theta(optimizer: Any):
    at = getattr(optimizer, "at_theta", None)
    return at() if callable(at) else contextlib.nullcontext()
