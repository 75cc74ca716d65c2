"""Momentum under torch.distributed (gloo, 2 processes on this machine, a file rendezvous: no
port): DDP on halves of the batch equals one process on the whole batch, CM and NAG with a
momentum schedule; at_theta on the wrapped model; a checkpoint written by rank 0 and resumed on
every rank continues identically; ZeroRedundancyOptimizer(optimizer_class=Momentum) matches; the
doctor on one rank diagnoses the wrapped module without a collective."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import torch

dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).resolve().parent))  # spawned children import the workers by name
import _ddp_workers as W  # noqa: E402

WORLD = 2
TIMEOUT = 120


def spawn(fn, args, world: int = WORLD, timeout: float = TIMEOUT) -> None:
    """Start ``world`` processes of ``fn(rank, world, *args)``; fail (and stop them all) on an
    error or after ``timeout`` seconds."""
    import torch.multiprocessing as mp

    ctx = mp.start_processes(fn, args=(world, *args), nprocs=world, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    try:
        while not ctx.join(timeout=1):
            if time.monotonic() > deadline:
                raise TimeoutError(f"distributed workers still running after {timeout} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    spawn(W.worker, (str(out / "rendezvous"), str(out)))
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


@pytest.mark.parametrize("nesterov", [False, True], ids=["cm", "nag"])
def test_ddp_on_halves_equals_one_process_on_the_whole_batch(runs, nesterov):
    ref = W.reference(nesterov)
    for rank in runs:
        for got, want in zip(rank[f"ddp-{nesterov}"], ref["params"], strict=True):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-13)
    # at_theta on the DDP-wrapped model evaluates theta_t, as on the plain model
    assert runs[0][f"theta-{nesterov}"] == pytest.approx(ref["theta_loss"], rel=1e-12)


@pytest.mark.parametrize("nesterov", [False, True], ids=["cm", "nag"])
def test_a_rank0_checkpoint_resumed_on_every_rank_continues_identically(runs, nesterov):
    for rank in runs:
        for got, want in zip(rank[f"resumed-{nesterov}"], rank[f"ddp-{nesterov}"], strict=True):
            assert torch.equal(got, want)


@pytest.mark.parametrize("nesterov", [False, True], ids=["cm", "nag"])
def test_zero_redundancy_optimizer_with_momentum_matches_plain_ddp(runs, nesterov):
    for rank in runs:
        for got, want in zip(rank[f"zero-{nesterov}"], rank[f"ddp-{nesterov}"], strict=True):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-13)


def test_the_doctor_on_one_rank_diagnoses_the_wrapped_module_and_runs_no_collective(runs):
    import inertia

    plain = inertia.doctor(W.model(), *W.data(), lr=W.LR, momentum=0.9, trial_steps=5)
    assert runs[0]["doctor"] == {"loss": plain.loss, "codes": [f.code for f in plain.findings]}
    for a, b in zip(runs[0]["after-doctor"], runs[1]["after-doctor"], strict=True):  # DDP kept in step
        assert torch.equal(a, b)
