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


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    out = tmp_path_factory.mktemp("monitor")
    spawn(W.monitor_worker, (str(out / "rendezvous"), str(out)))
    ranks = [torch.load(out / f"monitor-rank{r}.pt", weights_only=False) for r in range(WORLD)]
    return ranks, out


def test_the_monitor_under_ddp_records_the_global_batch_on_rank_0_only(monitored, tmp_path):
    ranks, out = monitored
    records, params = W.monitored(W.model(), *W.data(), tmp_path / "one.jsonl")  # one process, whole batch
    for a, b in zip(ranks[0]["params"], params, strict=True):  # training unchanged by the Monitor
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)
    assert ranks[1]["records"] == [] and len(ranks[0]["records"]) == len(records) == W.STEPS // 2
    assert len((out / "monitor.jsonl").read_text().splitlines()) == W.STEPS // 2  # written by rank 0 alone
    for got, want in zip(ranks[0]["records"], records, strict=True):
        assert got["step"] == want["step"]
        mine = {(r["layer"], r["kind"]): r for r in got["layers"]}
        assert set(mine) == {(r["layer"], r["kind"]) for r in want["layers"]}
        for r in want["layers"]:  # tensors this small are sampled whole: every statistic is the global one
            g = mine[(r["layer"], r["kind"])]
            assert g["numel"] == r["numel"], (r["layer"], r["kind"])
            for key in ("mean", "std", "p2", "p98"):
                assert g[key] == pytest.approx(r[key], rel=1e-9, abs=1e-15), (r["layer"], r["kind"], key)
            assert g["hist"] == r["hist"]
        for key in ("hessian_top_eigenvalue", "hessian_trace"):  # of the global loss
            assert got[key] == pytest.approx(want[key], rel=1e-8)
        assert got["weight_norms"] == pytest.approx(want["weight_norms"], rel=1e-12)


def test_distributed_true_without_a_process_group_is_a_clear_error():
    from inertia.diagnostics import Monitor

    with pytest.raises(ValueError, match="distributed=True needs an initialized torch.distributed process group"):
        Monitor(W.model(), ["weight_norms"], distributed=True)
