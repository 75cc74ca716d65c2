"""NAG with Sutskever's momentum schedule under DistributedDataParallel, checkpointed by rank 0.

    torchrun --nproc-per-node 2 docs/examples/ddp_momentum.py

Each process trains on its half of the batch; DDP averages the gradients, so every process holds
the parameters one process would reach on the whole batch. The doctor runs on rank 0 only, on the
wrapped model (it measures the inner module and runs no collective).
"""

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

import inertia
from inertia.optim import Momentum, schedules

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)  # the same initial weights on every rank
model = DDP(nn.Sequential(nn.Linear(20, 64), nn.Tanh(), nn.Linear(64, 1)))
g = torch.Generator().manual_seed(1)
x, y = torch.randn(256, 20, generator=g), torch.randn(256, 1, generator=g)
mine = slice(rank * 256 // world, (rank + 1) * 256 // world)

if rank == 0:
    report = inertia.doctor(model, x, y, lr=0.01, momentum=0.9, nesterov=True, trial_steps=20)
    print("doctor:", [f.code for f in report.findings] or "healthy")
dist.barrier()

opt = Momentum(model.parameters(), lr=0.01, momentum=schedules.sutskever_momentum(mu_max=0.99), nesterov=True)
for step in range(200):
    opt.zero_grad()
    nn.functional.mse_loss(model(x[mine]), y[mine]).backward()
    opt.step()
    if step == 99 and rank == 0:  # rank 0 writes the checkpoint, atomically
        torch.save({"model": model.module.state_dict(), "opt": opt.state_dict()}, "ckpt.pt.tmp")
        os.replace("ckpt.pt.tmp", "ckpt.pt")
with torch.no_grad(), opt.at_theta():  # NAG's parameters hold the look-ahead point
    full = nn.functional.mse_loss(model(x), y).item()
print(f"rank {rank}: loss on the whole batch at theta after 200 updates {full:.6f}")
dist.destroy_process_group()
