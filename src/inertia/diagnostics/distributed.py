"""The Monitor under ``torch.distributed`` (data parallel: every process runs the same model on its
shard of the global batch and calls ``Monitor.step`` at the same steps).

- Layer statistics describe the global batch: element counts and finite counts are summed, means
  and variances combined exactly (Chan et al.'s pairwise formula), and the percentiles, saturation
  and histograms come from the union of every process's evenly spaced sample. Back-propagated
  gradients are those of the global loss (DDP's average: each process's divided by the world size,
  as DDP divides the summed parameter gradients); weight gradients are read from ``.grad`` at
  ``Monitor.step``, after DDP has averaged them, so they are the global gradient itself.
- Curvature quantities use Hessian-vector products of the global loss: each process's product is
  all-reduced and averaged, then broadcast from rank 0, so every process runs the same Lanczos
  iterations (the same collectives at the same steps: no deadlock).

Everything here runs collectives: every process must call it at the same point. Nothing imports
``torch.distributed`` unless a process group is initialized.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

__all__ = ["averaged_product", "combine_pending", "world"]


def world() -> tuple[int, int] | None:
    """(rank, world size) inside an initialized process group of more than one process, else None."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return dist.get_rank(), dist.get_world_size()


def _gather(t: torch.Tensor) -> torch.Tensor:
    import torch.distributed as dist

    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.stack(parts)


def combine_pending(pending: Sequence[tuple], max_sample: int) -> list[tuple]:
    """Every process's pending layer records ``(name, kind, code, numel, moments, sample)`` made
    into the global batch's: the same order and names (every process records the same tensors)."""
    size = torch.distributed.get_world_size()
    count = _gather(torch.tensor([len(pending)], dtype=torch.int64))
    if any(int(c) != len(pending) for c in count):
        raise RuntimeError(
            f"the processes recorded different numbers of tensors ({[int(c) for c in count.flatten()]}): every "
            "process must run the same model and call Monitor.step at the same steps"
        )
    if not pending:
        return []
    width = 2 * max_sample  # a sample has fewer than 2 max_sample elements
    stats = torch.zeros(len(pending), 4, dtype=torch.float64)
    samples = torch.full((len(pending), width), math.inf, dtype=torch.float64)
    for i, (_, kind, _, n, moments, sample) in enumerate(pending):
        k, mean, var = (float(v) for v in torch.as_tensor(moments, dtype=torch.float64).tolist())
        s = sample.detach().to("cpu", torch.float64)
        if kind == "backprop_grad":  # the global loss's gradient: DDP's average over the processes
            mean, var, s = mean / size, var / size**2, s / size
        stats[i] = torch.tensor([n, k, mean, var], dtype=torch.float64)
        samples[i, : s.numel()] = s[:width]
    all_stats, all_samples = _gather(stats), _gather(samples)  # [W, L, 4], [W, L, width]
    out = []
    for i, (name, kind, code, _, _, _) in enumerate(pending):
        if kind == "weight_grad":  # read from .grad after DDP's average: already global, the same everywhere
            out.append(pending[i])
            continue
        ns, ks, means, variances = all_stats[:, i].unbind(1)
        means, variances = torch.nan_to_num(means), torch.nan_to_num(variances)  # a process with nothing finite
        total = float(ks.sum())
        if total == 0:
            moments = [0.0, math.nan, math.nan]
        else:
            m = float((ks / total * means).sum())
            m2 = float(((ks - 1).clamp(min=0) * variances + ks * (means - m) ** 2).sum())
            moments = [total, m, m2 / max(total - 1, 1)]
        sample = all_samples[:, i].reshape(-1)
        sample = sample[torch.isfinite(sample)]  # the padding goes (non-finite values are counted by the moments)
        out.append((name, kind, code, int(ns.sum()), moments, sample))
    return out


class averaged_product:  # noqa: N801 - used as a function
    """A curvature product of the global loss from each process's product of its own loss: the
    average over the processes, identical on every process (broadcast from rank 0)."""

    def __init__(self, product: Callable[[Sequence[torch.Tensor]], list[torch.Tensor]]) -> None:
        self.product = product

    @property
    def num_products(self) -> int:
        return int(getattr(self.product, "num_products", 0))

    def __call__(self, vectors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        import torch.distributed as dist

        out = [t.detach().clone() for t in self.product(vectors)]
        for t in out:
            dist.all_reduce(t)
            t.div_(dist.get_world_size())
            dist.broadcast(t, 0)
        return out
