"""``train(config) -> metrics``: the one training loop every entry point uses.

CLI runs, sweeps (local pool or Ray), and the paper reproductions all call :func:`train`.
It builds data, model, initialization and optimizer from the config's registry names,
trains for ``config.steps`` updates, evaluates every ``config.eval_every`` updates (at the
actual iterate theta_t: for Nesterov the parameters hold the look-ahead point, so
evaluation runs inside ``optimizer.at_theta()``), and, given a run folder, records
everything there atomically (see :mod:`inertia.experiments.store`). What one update does is the
optimizer kind's training-step strategy (:mod:`inertia.experiments.steps`); the loop below reads
top to bottom: batch, loss, divergence check, backward, monitor, update, evaluation, checkpoint.
With ``optimizer.name: hessian_free`` one update is one HF iteration (Martens 2010) on the batch: gradient on the whole
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

from . import components
from .config import Config, ConfigError, from_dict
from .steps import STEPS, GradClip, batch_indices
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


def _is_finite(x: torch.Tensor) -> bool:
    return bool(torch.isfinite(x).all())


def train(
    config: Config | dict,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    progress: Callable[[int, int, dict], None] | None = None,
    stop_after: int | None = None,
    data_parallel: bool = False,
) -> TrainResult:
    """Train one config; return its final metrics.

    Args:
        config: a :class:`Config` or a dict accepted by :func:`config.from_dict`.
        run_dir: folder for this run's files (created); ``None`` keeps everything in memory.
        resume: continue from ``run_dir/checkpoint.pt`` if it exists (else start fresh).
        progress: called as ``progress(step, total, last_metrics)`` after each evaluation.
        stop_after: stop (status ``running``, checkpoint written) after this many updates;
            used to test that resuming reproduces an uninterrupted run.
        data_parallel: this process is one rank of an initialized ``torch.distributed`` group
            (:func:`train_data_parallel` starts them): each rank trains on its 1/N of every batch,
            the gradients averaged across ranks (``DistributedDataParallel``), so that N ranks
            give one process's parameters; rank 0 alone writes ``run_dir`` (the others read its
            checkpoint on resume).
    """
    cfg = config if isinstance(config, Config) else from_dict(config)
    world = _world() if data_parallel else (0, 1)
    if data_parallel:
        check_data_parallel(cfg, world[1])
    with flush_denormals():
        return _train(cfg, run_dir, resume=resume, progress=progress, stop_after=stop_after, world=world)


def _world() -> tuple[int, int]:
    """(rank, world size) of the initialized process group; a ConfigError without one."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise ConfigError("data_parallel=True needs an initialized torch.distributed process group")
    return dist.get_rank(), dist.get_world_size()


def check_data_parallel(cfg: Config, nproc: int) -> None:
    """A ConfigError, before any work, for a config that cannot train on ``nproc`` ranks: a batch
    that does not split evenly, a second-order optimizer, a Monitor, a device other than the CPU."""
    if nproc == 1:
        return
    if cfg.batch_size % nproc:
        raise ConfigError(f"batch_size {cfg.batch_size} does not split over {nproc} processes; make it a multiple")
    if cfg.optimizer.name == "hessian_free":
        raise ConfigError("optimizer 'hessian_free' trains in one process only; use a first-order optimizer")
    if cfg.monitor.quantities:
        raise ConfigError("a Monitor (monitor.quantities) trains in one process only; drop it or train with 1 process")
    if cfg.device != "cpu":
        raise ConfigError(f"data-parallel runs use the gloo backend on the CPU; got device {cfg.device!r}")


def _dp_worker(
    rank: int, world: int, init: str, cfg_dict: dict, run_dir: str, resume: bool, stop_after, result: str, quiet: bool
) -> None:
    """One rank of :func:`train_data_parallel` (a spawned process, one torch thread)."""
    import json

    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        from .. import progress as _progress

        label = f"run {cfg_dict.get('experiment')}/{Path(run_dir).name} ({world} processes)"
        with _progress.reporting(label, quiet=quiet or rank != 0) as reporter:
            res = train(
                cfg_dict,
                run_dir,
                resume=resume,
                stop_after=stop_after,
                data_parallel=True,
                progress=lambda step, total, m: reporter.update(step, total, what="updates"),
            )
        if rank == 0:
            out = {"metrics": dict(res), "status": res.status, "step": res.step, "message": res.message}
            Path(result).write_text(json.dumps(out))
    finally:
        dist.destroy_process_group()


def train_data_parallel(
    config: Config | dict,
    run_dir: str | Path,
    nproc: int,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    quiet: bool = True,
    timeout_s: float | None = None,
) -> TrainResult:
    """Train ``config`` on ``nproc`` CPU processes, data-parallel (gloo, a file rendezvous in a
    temporary folder, spawned processes that exit with this one): the same parameters as
    ``train(config, run_dir)`` to float tolerance, the run folder written by rank 0, resumable
    (``resume=True``) with any number of processes. ``quiet=False``: rank 0 reports progress."""
    import json
    import tempfile

    import torch.multiprocessing as mp

    cfg = config if isinstance(config, Config) else from_dict(config)
    check_integer_nproc(nproc)
    check_data_parallel(cfg, nproc)
    if nproc == 1:
        return train(cfg, run_dir, resume=resume, stop_after=stop_after)
    with tempfile.TemporaryDirectory(prefix="inertia-ddp-") as tmp:
        result = Path(tmp) / "result.json"
        args = (nproc, f"file://{tmp}/rendezvous", cfg.to_dict(), str(run_dir), resume, stop_after, str(result), quiet)
        ctx = mp.start_processes(_dp_worker, args=args, nprocs=nproc, join=False, start_method="spawn")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not ctx.join(timeout=1.0):
            if deadline is not None and time.monotonic() > deadline:
                for p in ctx.processes:
                    p.kill()
                raise TimeoutError(f"data-parallel training did not finish in {timeout_s} s")
        out = json.loads(result.read_text())
    return TrainResult(out["metrics"], out["status"], out["step"], Path(run_dir), out["message"])


def check_integer_nproc(nproc: int) -> None:
    from ..validation import check_integer

    try:
        check_integer("nproc", nproc, lo=1)
    except ValueError as e:
        raise ConfigError(str(e)) from None


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


def build_parts(cfg: Config) -> tuple:
    """(data, model, loss function, optimizer) of a run, built in the order every run builds them
    (the global seed, then data, model, initialization, optimizer), so that equal configs start
    from bit-equal parameters."""
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
    return data, model, loss_fn, optimizer


def _train(cfg: Config, run_dir, *, resume: bool, progress, stop_after, world=(0, 1)) -> TrainResult:
    parts = build_parts(cfg)
    if run_dir is None:
        return _run(cfg, None, parts, resume=False, progress=progress, stop_after=stop_after, world=world)
    if world[0] != 0:  # a rank other than 0 writes nothing; on resume it reads rank 0's checkpoint
        return _run(
            cfg, None, parts, resume=resume, progress=None, stop_after=stop_after, world=world, read=RunDir(run_dir)
        )
    rd = RunDir(run_dir)
    with lock_folder(rd.root):  # one writer per folder; refused before anything is written
        remove_temporaries(rd.root)  # left by a write that a kill cut short
        if resume and rd.config.exists():
            check_resume_config(_stored_config(rd), cfg.to_dict(), str(rd.root))
        return _run(cfg, rd, parts, resume=resume, progress=progress, stop_after=stop_after, world=world)


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


def _run(
    cfg: Config, rd: RunDir | None, parts: tuple, *, resume: bool, progress, stop_after, world=(0, 1), read=None
) -> TrainResult:
    """The training loop: evaluate at update 0, then update, evaluate, checkpoint until
    ``cfg.steps``; the run ends early when it diverges or ``stop_when`` is true."""
    run = _Run(cfg, rd, parts, previous=_previous_summary(rd) if resume else None, world=world, read=read)
    try:  # every failure from here on is recorded in the summary, then re-raised
        run.open(resume)
        if run.start == 0:
            run.record(run.evaluate(float("nan")))
        if run.history and run.should_stop(run.history[-1]):
            return run.finish("completed", run.stopped_message())
        while run.step < cfg.steps:
            xb, yb = run.batch()
            run.optimizer.zero_grad(set_to_none=True)
            loss = run.strategy.loss(xb, yb, run.step)  # Hessian-Free: its whole iteration
            value = run.batch_loss(loss)  # the whole batch's, on every rank alike
            if not _is_finite(value):
                return run.finish("diverged", _diverged_message(value, run.step))
            run.strategy.backward(loss)  # first order: the backward pass, then clipping
            if run.monitor is not None:  # after the Monitor's hooks saw the raw backward pass
                run.monitor.step(run.step)
            run.strategy.update()
            run.step += 1
            if run.step % cfg.eval_every == 0 or run.step == cfg.steps:
                ended = run.evaluate_and_record(float(value), progress)
                if ended is not None:
                    return ended
            if run.step % run.checkpoint_every == 0 or run.step == cfg.steps:
                run.checkpoint()
            if stop_after is not None and stop_after <= run.step < cfg.steps:
                return run.pause()
    except Exception as e:  # recorded, then re-raised so callers see the traceback
        run.fail(e)
        raise
    return run.finish("completed")


def _diverged_message(loss: torch.Tensor, step: int) -> str:
    return f"loss is {loss.item()} at update {step}: diverged (lower the learning rate or momentum)"


class _Run:
    """One run's state between updates (data, model, optimizer, its training-step strategy, the
    metrics so far, the files it writes) and the loop's small steps: evaluate, record,
    checkpoint, finish."""

    def __init__(
        self, cfg: Config, rd: RunDir | None, parts: tuple, previous: dict | None, world=(0, 1), read=None
    ) -> None:
        self.cfg, self.rd, self.previous = cfg, rd, previous  # previous: what a failure before any evaluation keeps
        self.data, self.model, self.loss_fn, self.optimizer = parts
        self.device = torch.device(cfg.device)
        self.clip = GradClip(cfg.clip_grad_norm)
        self.rank, self.world = world
        self.read = read  # a rank other than 0: the run folder it only reads (its checkpoint)
        trained = self.model
        if self.world > 1:  # gradients averaged across ranks during the backward pass
            from torch.nn.parallel import DistributedDataParallel

            trained = DistributedDataParallel(self.model)
        self.strategy = STEPS.get(cfg.optimizer.name)(cfg, trained, self.loss_fn, self.optimizer, self.clip)
        self.checkpoint_every = cfg.checkpoint_every or cfg.eval_every
        self.start, self.wall_offset = 0, 0.0
        self.history: list[dict] = []
        self.writer: JsonlWriter | None = None
        self.monitor: Any = None
        self.t0 = time.perf_counter()
        self.step = int(previous.get("step", 0)) if previous else 0  # until the checkpoint says otherwise

    def open(self, resume: bool) -> None:
        """Load the checkpoint (on resume), open the run folder's files, build the monitor."""
        ckpt = None
        if self.rd is not None:
            self.start, self.history, ckpt, self.writer = _open_run(
                self.rd, self.cfg, resume, self.model, self.optimizer, self.device
            )
            self.step = self.start
            if ckpt is not None:
                self.clip.load_state_dict(ckpt.get("grads", {}))
                self.wall_offset = float(self.history[-1].get("wall_s", 0.0)) if self.history else 0.0
        elif self.read is not None and resume and self.read.checkpoint.exists():
            ckpt = load_checkpoint(self.read.checkpoint, map_location=self.device)
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.start = self.step = int(ckpt["step"])
            self.clip.load_state_dict(ckpt.get("grads", {}))
        self.monitor = components.build_monitor(self.cfg, self.model, self.data, self.loss_fn, self.rd)
        if ckpt is not None:
            torch.set_rng_state(ckpt["torch_rng"])  # after everything else is built, as in the run it continues

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = batch_indices(self.data.n_train, self.cfg.batch_size, self.step, self.cfg.seed).to(self.device)
        if self.world > 1:  # this rank's contiguous 1/N of the batch
            if len(idx) % self.world:
                raise ConfigError(f"a batch of {len(idx)} examples does not split over {self.world} processes")
            size = len(idx) // self.world
            idx = idx[self.rank * size : (self.rank + 1) * size]
        return self.data.batch(idx)

    def batch_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss of the whole batch: this rank's, averaged over the ranks (equal shards)."""
        value = loss.detach()
        if self.world > 1:
            import torch.distributed as dist

            value = value.clone()
            dist.all_reduce(value)
            value /= self.world
        return value

    def evaluate(self, train_loss: float) -> dict:
        """The metrics at the current iterate: the data's (at theta_t, not Nesterov's look-ahead
        point; not recorded by the Monitor), the strategy's, the clipping statistics, the time."""
        paused = self.monitor.paused() if self.monitor is not None else contextlib.nullcontext()
        with _at_theta(self.optimizer), torch.no_grad(), paused:
            m = {"step": self.step, "train_batch_loss": train_loss}
            m.update(self.data.evaluate(self.model, self.loss_fn))
        m.update(self.strategy.metrics())
        m.update(self.clip.metrics())  # since the previous evaluation
        m["wall_s"] = self.wall_offset + time.perf_counter() - self.t0
        components.check_stop_when(self.cfg, m)
        return m

    def record(self, m: dict) -> None:
        self.history.append(m)
        if self.writer:
            self.writer.write(m)

    def evaluate_and_record(self, train_loss: float, progress) -> TrainResult | None:
        """Evaluate after an update; the run's result when this evaluation ends it."""
        m = self.evaluate(train_loss)
        self.record(m)
        if progress is not None:
            progress(self.step, self.cfg.steps, m)
        if not all(math.isfinite(v) for v in m.values() if isinstance(v, float)):
            return self.finish("diverged", f"non-finite evaluation metrics at update {self.step}: {m}")
        if self.should_stop(m) and self.step < self.cfg.steps:
            self.checkpoint()
            return self.finish("completed", self.stopped_message())
        return None

    def should_stop(self, m: dict) -> bool:
        return self.cfg.stop_when is not None and bool(m[self.cfg.stop_when])

    def stopped_message(self) -> str:
        return f"stopped at update {self.step}: {self.cfg.stop_when} is true"

    def checkpoint(self) -> None:
        if self.rd is None:
            return
        state = {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "grads": self.clip.state_dict(),
        }
        atomic_torch_save(self.rd.checkpoint, state)

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.monitor is not None:
            self.monitor.close()

    def finish(self, status: str, message: str = "") -> TrainResult:
        """Close the files and write the summary; the final metrics are the last evaluation's."""
        if self.history:
            final = dict(self.history[-1])
        else:
            final = self.previous.get("final", {"step": self.step}) if self.previous else {"step": self.step}
        if self.writer is not None:
            self.writer.close()
        if self.rd is not None:
            self.rd.write_summary(
                status=status,
                step=self.step,
                experiment=self.cfg.experiment,
                final=final,
                message=message,
                wall_time_s=time.perf_counter() - self.t0,
            )
        if self.monitor is not None:
            self.monitor.close()
        return TrainResult(final, status, self.step, self.rd.root if self.rd else None, message)

    def pause(self) -> TrainResult:
        """Stop before ``cfg.steps`` (``stop_after``): checkpoint, close, status ``running``."""
        self.checkpoint()
        self._close()
        return TrainResult(
            dict(self.history[-1]), "running", self.step, self.rd.root if self.rd else None, "stopped early"
        )

    def fail(self, error: Exception) -> None:
        """Record a failure in the summary (with a run folder), or just close the monitor."""
        if self.rd is not None:
            self.finish("failed", f"{type(error).__name__}: {error}")
        elif self.monitor is not None:
            self.monitor.close()


def _previous_summary(rd: RunDir | None) -> dict | None:
    """The folder's summary before this run touched it, or None (absent or unreadable)."""
    if rd is None:
        return None
    try:
        summary = rd.read_summary()
    except ValueError:
        return None
    return summary if isinstance(summary, dict) else None


def _at_theta(optimizer: Any):
    at = getattr(optimizer, "at_theta", None)
    return at() if callable(at) else contextlib.nullcontext()
