"""Worker processes of tests/distributed (imported by name in spawned children: keep it importable
from this folder, which the tests put on sys.path)."""

from __future__ import annotations

import os

import torch
from torch import nn

from inertia.optim import Momentum, schedules

STEPS = 8
LR = 0.05


def data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(16, 5, generator=g, dtype=torch.float64), torch.randn(16, 2, generator=g, dtype=torch.float64)


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2)).double()


def optimizer(params, nesterov: bool, cls=Momentum):
    return cls(params, lr=LR, momentum=schedules.sutskever_momentum(mu_max=0.99), nesterov=nesterov)


def loss_of(net, x, y):
    return nn.functional.mse_loss(net(x), y)


def reference(nesterov: bool) -> dict:
    """One process on the whole batch."""
    net, (x, y) = model(), data()
    opt = optimizer(net.parameters(), nesterov)
    for _ in range(STEPS):
        opt.zero_grad()
        loss_of(net, x, y).backward()
        opt.step()
    with torch.no_grad(), opt.at_theta():
        theta_loss = float(loss_of(net, x, y))
    return {"params": [p.detach().clone() for p in net.parameters()], "theta_loss": theta_loss}


def _steps(ddp, opt, x, y, n):
    for _ in range(n):
        opt.zero_grad()
        loss_of(ddp, x, y).backward()
        opt.step()


def worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        x, y = data()
        x, y = x.chunk(world)[rank], y.chunk(world)[rank]  # 1/N of the batch
        results = {}
        for nesterov in (False, True):
            ddp = DDP(model())
            opt = optimizer(ddp.parameters(), nesterov)
            _steps(ddp, opt, x, y, STEPS)
            with torch.no_grad(), opt.at_theta():  # on the DDP-wrapped model: the local half's loss, averaged
                local = loss_of(ddp, *data()).detach()
            results[f"ddp-{nesterov}"] = [p.detach().clone() for p in ddp.module.parameters()]
            results[f"theta-{nesterov}"] = float(local)

            ddp = DDP(model())
            zero = ZeroRedundancyOptimizer(
                ddp.parameters(),
                optimizer_class=Momentum,
                lr=LR,
                momentum=schedules.sutskever_momentum(mu_max=0.99),
                nesterov=nesterov,
            )
            _steps(ddp, zero, x, y, STEPS)
            results[f"zero-{nesterov}"] = [p.detach().clone() for p in ddp.module.parameters()]

            # checkpoint on rank 0 halfway, every rank resumes from it
            ddp = DDP(model())
            opt = optimizer(ddp.parameters(), nesterov)
            _steps(ddp, opt, x, y, STEPS // 2)
            path = os.path.join(out_dir, f"ckpt-{nesterov}.pt")
            if rank == 0:
                torch.save({"model": ddp.module.state_dict(), "opt": opt.state_dict()}, path + ".tmp")
                os.replace(path + ".tmp", path)
            dist.barrier()
            ckpt = torch.load(path, weights_only=True)
            ddp = DDP(model())
            ddp.module.load_state_dict(ckpt["model"])
            opt = optimizer(ddp.parameters(), nesterov)
            opt.load_state_dict(ckpt["opt"])
            _steps(ddp, opt, x, y, STEPS - STEPS // 2)
            results[f"resumed-{nesterov}"] = [p.detach().clone() for p in ddp.module.parameters()]
        # the doctor on rank 0 on the DDP-wrapped model, the other rank waiting: no collective runs
        ddp = DDP(model())
        if rank == 0:
            import inertia

            report = inertia.doctor(ddp, *data(), lr=LR, momentum=0.9, trial_steps=5)
            results["doctor"] = {"loss": report.loss, "codes": [f.code for f in report.findings]}
        dist.barrier()
        opt = optimizer(ddp.parameters(), True)
        _steps(ddp, opt, x, y, 1)  # DDP still works after it
        results["after-doctor"] = [p.detach().clone() for p in ddp.module.parameters()]
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


QUANTITIES = ["layer_stats", "hessian_top_eigenvalue", "hessian_trace", "weight_norms"]


def monitored(net, x, y, path, wrap=None):
    """Train with a Monitor of ``QUANTITIES`` every 2 steps; ``wrap``: the DDP wrapper to train through."""
    from inertia.diagnostics import Monitor

    mon = Monitor(net, QUANTITIES, every=2, loss_fn=lambda: loss_of(net, x, y), probes=4, path=path)
    trained = wrap if wrap is not None else net
    opt = optimizer(trained.parameters(), True)
    for step in range(STEPS):
        opt.zero_grad()
        loss_of(trained, x, y).backward()
        mon.step(step)
        opt.step()
    mon.close()
    return (mon.read_records() if mon.path else mon.records), [p.detach().clone() for p in net.parameters()]


def monitor_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        x, y = data()
        x, y = x.chunk(world)[rank], y.chunk(world)[rank]
        ddp = DDP(model())
        records, params = monitored(ddp.module, x, y, os.path.join(out_dir, "monitor.jsonl"), wrap=ddp)
        torch.save({"records": records, "params": params}, os.path.join(out_dir, f"monitor-rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
