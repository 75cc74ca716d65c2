"""The tanh RNN of Sutskever et al. (2013), with a hand-written back-propagation through time.

    h_t = tanh(W_ih x_t + W_hh h_{t-1} + b_h),  h_0 = 0,     y_t = W_ho h_t + b_o

The input projection ``x W_ih^T + b_h`` for all steps is one matrix product, and the recurrence
runs in :class:`_TanhRecurrence`, an ``autograd.Function`` whose backward is the BPTT recursion

    da_t = (dh_t + da_{t+1} W_hh) * (1 - h_t^2),     dW_hh = sum_t da_t^T h_{t-1}

(dW_hh as a single matrix product over all steps), storing only the hidden states instead of a
graph node per step. A test checks its gradients against autograd's to 1e-10 in float64.
"""

from __future__ import annotations

import torch
from torch import nn


class _TanhRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: torch.Tensor, w_hh: torch.Tensor) -> torch.Tensor:
        # a: [n, T, H] input projections; returns hidden states [n, T, H]
        n, steps, hidden = a.shape
        hs = torch.empty_like(a)
        h = a.new_zeros(n, hidden)
        w_t = w_hh.t()
        for t in range(steps):
            h = torch.tanh(torch.addmm(a[:, t], h, w_t))
            hs[:, t] = h
        ctx.save_for_backward(hs, w_hh)
        return hs

    @staticmethod
    def backward(ctx, grad_hs: torch.Tensor):
        hs, w_hh = ctx.saved_tensors
        n, steps, hidden = hs.shape
        da = torch.empty_like(hs)
        carry = hs.new_zeros(n, hidden)  # da_{t+1} W_hh
        for t in range(steps - 1, -1, -1):
            d = (grad_hs[:, t] + carry) * (1 - hs[:, t] * hs[:, t])
            da[:, t] = d
            carry = d @ w_hh
        prev = torch.cat([hs.new_zeros(n, 1, hidden), hs[:, :-1]], dim=1)  # h_{t-1}
        grad_w = da.reshape(-1, hidden).t() @ prev.reshape(-1, hidden)
        return da, grad_w


def tanh_recurrence(a: torch.Tensor, w_hh: torch.Tensor, fast: bool = True) -> torch.Tensor:
    """Hidden states of h_t = tanh(a_t + W_hh h_{t-1}) for a [n, T, H]; ``fast`` uses the
    hand-written BPTT, else plain autograd."""
    if fast:
        return _TanhRecurrence.apply(a, w_hh)
    h = a.new_zeros(a.shape[0], a.shape[2])
    out = []
    for t in range(a.shape[1]):
        h = torch.tanh(a[:, t] + h @ w_hh.t())
        out.append(h)
    return torch.stack(out, 1)


class TanhRNN(nn.Module):
    """Tanh RNN with parameters ``weight_ih`` [H, in], ``weight_hh`` [H, H], ``weight_ho`` [out, H],
    ``bias_h`` [H], ``bias_o`` [out]; batch-first inputs ``[n, T, in]``.

    Args:
        output: ``"all"`` returns ``[n, T, out]``, ``"last"`` returns ``[n, out]``.
        fast_bptt: use the hand-written BPTT (default); ``False`` uses autograd step by step.

    Parameters: H * (in + H + out + 1) + out. Initialized like torch's ``nn.RNN``
    (U[-1/sqrt(H), 1/sqrt(H)]); use ``inertia.init.apply`` for the paper's scheme.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, output: str = "all",
                 fast_bptt: bool = True) -> None:
        super().__init__()
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size), ("output_size", output_size)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if output not in ("all", "last"):
            raise ValueError(f"output must be 'all' or 'last', got {output!r}")
        self.output, self.fast_bptt = output, fast_bptt
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.weight_ho = nn.Parameter(torch.empty(output_size, hidden_size))
        self.bias_h = nn.Parameter(torch.zeros(hidden_size))
        self.bias_o = nn.Parameter(torch.zeros(output_size))
        bound = 1 / hidden_size ** 0.5
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound)

    def hidden_states(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.weight_ih.shape[1]:
            raise ValueError(f"input must be [n, T, {self.weight_ih.shape[1]}], got shape {tuple(x.shape)}")
        a = torch.matmul(x, self.weight_ih.t()) + self.bias_h  # [n, T, H]
        return tanh_recurrence(a, self.weight_hh, self.fast_bptt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hs = self.hidden_states(x)
        if self.output == "last":
            hs = hs[:, -1]
        return torch.matmul(hs, self.weight_ho.t()) + self.bias_o
