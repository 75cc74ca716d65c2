"""The tanh RNN of Sutskever et al. (2013), with a hand-written back-propagation through time.

    h_t = tanh(W_ih x_t + W_hh h_{t-1} + b_h),  h_0 = 0,     y_t = W_ho h_t + b_o

The input projection ``a_t = W_ih x_t + b_h`` for all steps is one matrix product; the recurrence
h_t = tanh(a_t + W_hh h_{t-1}) runs in :class:`_TanhRecurrence`, an ``autograd.Function`` whose
backward is the BPTT recursion (Werbos 1990; Rumelhart, Hinton & Williams 1986)

    da_t = (dh_t + W_hh^T da_{t+1}) * (1 - h_t^2),     dW_hh = sum_t da_t h_{t-1}^T

with dW_hh as one matrix product over all steps. It keeps only the hidden states (no graph node
per step) and works time-major in place, so each step is one ``addmm_`` and one elementwise op.
Its forward-mode rule (``jvp``) is the tangent recursion

    dh_t = (1 - h_t^2) * (da_t + W_hh dh_{t-1} + dW_hh h_{t-1}),

so double backward (Hessian-vector products), ``torch.func`` transforms (``grad``, ``vmap``,
``jacrev``, ``jacfwd``, ``hessian``) and ``torch.autograd.forward_ad`` all work. Tests check its
gradients against autograd's step-by-step graph to 1e-10 in float64.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["TanhRNN", "tanh_recurrence"]


def _recurrence_reference(a: torch.Tensor, w_hh: torch.Tensor) -> torch.Tensor:
    """h_t = tanh(a_t + h_{t-1} W_hh^T), step by step with out-of-place ops (autograd records
    every step). a: [n, T, H] -> hidden states [n, T, H]."""
    h = a.new_zeros(a.shape[0], a.shape[2])
    out = []
    for t in range(a.shape[1]):
        h = torch.tanh(a[:, t] + h @ w_hh.t())
        out.append(h)
    return torch.stack(out, 1)


def _time_major_copy(x: torch.Tensor) -> torch.Tensor:
    """A fresh contiguous [T, n, H] copy of batch-first x [n, T, H] (never a view of x: the
    callers overwrite it in place)."""
    return x.transpose(0, 1).clone(memory_format=torch.contiguous_format)


def _save_states_and_weights(ctx: Any, inputs: tuple[torch.Tensor, torch.Tensor], output: torch.Tensor) -> None:
    """What both recurrences keep for their backward and forward-mode rules: the hidden states
    (their output) and W_hh."""
    _, w_hh = inputs
    ctx.save_for_backward(output, w_hh)
    ctx.save_for_forward(output, w_hh)


def _recurrence_jvp(ctx: Any, tangent_a: torch.Tensor | None, tangent_w: torch.Tensor | None) -> torch.Tensor:
    """The forward-mode rule of both recurrences (:func:`_tangent_recursion` on what they saved)."""
    hs, w_hh = ctx.saved_tensors
    return _tangent_recursion(hs, w_hh, tangent_a, tangent_w)


class _TanhRecurrence(torch.autograd.Function):
    """hs = recurrence(a, W_hh) with a hand-written backward (BPTT) and forward-mode rule."""

    @staticmethod
    def forward(a: torch.Tensor, w_hh: torch.Tensor) -> torch.Tensor:
        hs = _time_major_copy(a)  # [T, n, H], overwritten with h_t
        w_t = w_hh.t()
        hs[0].tanh_()  # h_0 = 0, so h_1 = tanh(a_1)
        for t in range(1, hs.shape[0]):
            hs[t].addmm_(hs[t - 1], w_t).tanh_()
        return hs.transpose(0, 1)  # [n, T, H]

    setup_context = staticmethod(_save_states_and_weights)

    @staticmethod
    def backward(ctx: Any, grad_hs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hs, w_hh = ctx.saved_tensors  # hs [n, T, H]
        if torch.is_grad_enabled():
            # create_graph=True (double backward): out-of-place ops, so autograd can record them
            return _bptt_out_of_place(grad_hs, hs, w_hh)
        da = _time_major_copy(grad_hs)  # [T, n, H]: dh_t, overwritten with da_t
        h_tm = hs.transpose(0, 1)  # [T, n, H] view
        tanh_prime = torch.empty_like(da)  # 1 - h_t^2, time-major
        torch.mul(h_tm, h_tm, out=tanh_prime).neg_().add_(1)
        steps, _, hidden = da.shape
        da[steps - 1].mul_(tanh_prime[steps - 1])
        for t in range(steps - 2, -1, -1):
            da[t].addmm_(da[t + 1], w_hh).mul_(tanh_prime[t])
        # dW_hh = sum_{t>=2} da_t^T h_{t-1} (h_0 = 0 contributes nothing)
        grad_w = da[1:].reshape(-1, hidden).t() @ h_tm[:-1].reshape(-1, hidden)
        return da.transpose(0, 1), grad_w

    jvp = staticmethod(_recurrence_jvp)

    @staticmethod
    def vmap(
        info: Any, in_dims: tuple[int | None, int | None], a: torch.Tensor, w_hh: torch.Tensor
    ) -> tuple[torch.Tensor, int]:
        a_dim, w_dim = in_dims
        if w_dim is None:
            # vmapped over inputs only: fold the vmapped dimension into the batch, one recurrence
            assert a_dim is not None  # vmap batches at least one argument
            a = a.movedim(a_dim, 0)  # [B, n, T, H]
            batch, n = a.shape[:2]
            hs = _TanhRecurrence.apply(a.reshape(batch * n, *a.shape[2:]), w_hh)
            return hs.reshape(batch, n, *hs.shape[1:]), 0
        # vmapped over the recurrent weights: one batched recurrence for all of them
        w_hh = w_hh.movedim(w_dim, 0)  # [K, H, H]
        if a_dim is None:
            a = a.expand(w_hh.shape[0], *a.shape)
        else:
            a = a.movedim(a_dim, 0)  # [K, n, T, H]
        return _StackedTanhRecurrence.apply(a, w_hh), 0


class _StackedTanhRecurrence(torch.autograd.Function):
    """K independent recurrences at once: a [K, n, T, H], W_hh [K, H, H] -> hs [K, n, T, H].

    The same recursions as :class:`_TanhRecurrence`, with each step one ``baddbmm_`` over the K
    weight matrices instead of K ``addmm_``: what ``vmap`` over stacked recurrent weights (many runs
    trained as one, :mod:`inertia.experiments.stacked`) runs."""

    @staticmethod
    def forward(a: torch.Tensor, w_hh: torch.Tensor) -> torch.Tensor:
        hs = a.permute(2, 0, 1, 3).clone(memory_format=torch.contiguous_format)  # [T, K, n, H]
        w_t = w_hh.transpose(1, 2)
        hs[0].tanh_()
        for t in range(1, hs.shape[0]):
            hs[t].baddbmm_(hs[t - 1], w_t).tanh_()
        return hs.permute(1, 2, 0, 3)  # [K, n, T, H]

    setup_context = staticmethod(_save_states_and_weights)

    @staticmethod
    def backward(ctx: Any, grad_hs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hs, w_hh = ctx.saved_tensors  # hs [K, n, T, H]
        if torch.is_grad_enabled():
            return _bptt_out_of_place(grad_hs, hs, w_hh)
        da = grad_hs.permute(2, 0, 1, 3).clone(memory_format=torch.contiguous_format)  # [T, K, n, H]
        h_tm = hs.permute(2, 0, 1, 3)  # [T, K, n, H] view
        tanh_prime = torch.mul(h_tm, h_tm).neg_().add_(1)
        steps, k, _, hidden = da.shape
        da[steps - 1].mul_(tanh_prime[steps - 1])
        for t in range(steps - 2, -1, -1):
            da[t].baddbmm_(da[t + 1], w_hh).mul_(tanh_prime[t])
        # dW_hh[k] = sum_{t>=2} da_t^T h_{t-1}, per stacked recurrence
        da_k = da[1:].transpose(0, 1).reshape(k, -1, hidden)  # [K, (T-1) n, H]
        h_k = h_tm[:-1].transpose(0, 1).reshape(k, -1, hidden)
        grad_w = torch.bmm(da_k.transpose(1, 2), h_k)
        return da.permute(1, 2, 0, 3), grad_w

    jvp = staticmethod(_recurrence_jvp)

    @staticmethod
    def vmap(
        info: Any, in_dims: tuple[int | None, int | None], a: torch.Tensor, w_hh: torch.Tensor
    ) -> tuple[torch.Tensor, int]:
        # vmap of a stack (rare: nested transforms): one stacked recurrence per outer index
        a_dim, w_dim = in_dims
        size = info.batch_size
        a_b = a.movedim(a_dim, 0) if a_dim is not None else a.expand(size, *a.shape)
        w_b = w_hh.movedim(w_dim, 0) if w_dim is not None else w_hh.expand(size, *w_hh.shape)
        return torch.stack([_StackedTanhRecurrence.apply(a_b[i], w_b[i]) for i in range(size)], 0), 0


def _tangent_recursion(
    hs: torch.Tensor, w_hh: torch.Tensor, tangent_a: torch.Tensor | None, tangent_w: torch.Tensor | None
) -> torch.Tensor:
    """dh_t = (1 - h_t^2) * (da_t + W_hh dh_{t-1} + dW_hh h_{t-1}) for hs [..., T, H] (one
    recurrence or a stack of them), laid out like hs (time-major in memory, as the forward's
    output is: forward-mode AD needs a tangent of the primal's layout)."""
    steps = hs.shape[-2]
    dh = torch.zeros_like(hs[..., 0, :])
    out = []
    for t in range(steps):
        pre = torch.zeros_like(dh) if tangent_a is None else tangent_a[..., t, :]
        if t > 0:
            pre = pre + dh @ w_hh.transpose(-1, -2)
            if tangent_w is not None:
                pre = pre + hs[..., t - 1, :] @ tangent_w.transpose(-1, -2)
        dh = (1 - hs[..., t, :] ** 2) * pre
        out.append(dh)
    return torch.stack(out, 0).movedim(0, -2)


def _bptt_out_of_place(
    grad_hs: torch.Tensor, hs: torch.Tensor, w_hh: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The BPTT recursion of :class:`_TanhRecurrence` written without in-place ops, for hs
    [n, T, H] with W_hh [H, H], or a stack hs [K, n, T, H] with W_hh [K, H, H]."""
    steps = hs.shape[-2]
    carry = torch.zeros_like(hs[..., 0, :])  # W_hh^T da_{t+1}, as rows: da_{t+1} @ W_hh
    das_backwards = []  # da_T, ..., da_1
    for t in range(steps - 1, -1, -1):
        d = (grad_hs[..., t, :] + carry) * (1 - hs[..., t, :] ** 2)
        das_backwards.append(d)
        carry = d @ w_hh
    da = torch.stack(das_backwards[::-1], -2)  # laid out like hs
    grad_w = da[..., 1:, :].flatten(-3, -2).transpose(-1, -2) @ hs[..., :-1, :].flatten(-3, -2)
    return da, grad_w


def tanh_recurrence(a: torch.Tensor, w_hh: torch.Tensor, fast: bool = True) -> torch.Tensor:
    """Hidden states of h_t = tanh(a_t + W_hh h_{t-1}), h_0 = 0.

    Args:
        a: input projections ``[n, T, H]`` (batch-first).
        w_hh: recurrent weights ``[H, H]``.
        fast: use the hand-written BPTT (default); ``False`` records every step with autograd.

    Returns:
        hidden states ``[n, T, H]``.

    Examples:

    >>> a = torch.randn(2, 5, 3)
    >>> torch.allclose(tanh_recurrence(a, torch.zeros(3, 3)), torch.tanh(a))  # no recurrence: h_t = tanh(a_t)
    True
    """
    if a.dim() != 3 or w_hh.shape != (a.shape[2], a.shape[2]):
        raise ValueError(f"a must be [n, T, H] and w_hh [H, H], got shapes {tuple(a.shape)} and {tuple(w_hh.shape)}")
    if a.shape[1] == 0:
        raise ValueError("the sequence must have at least one step, got T = 0")
    if fast:
        return _TanhRecurrence.apply(a, w_hh)
    return _recurrence_reference(a, w_hh)


class TanhRNN(nn.Module):
    """Tanh RNN (Elman 1990) as trained by Sutskever et al. (2013, section 4):

        h_t = tanh(W_ih x_t + W_hh h_{t-1} + b_h),  h_0 = 0,     y_t = W_ho h_t + b_o

    Parameters ``weight_ih`` [H, in], ``weight_hh`` [H, H], ``weight_ho`` [out, H], ``bias_h``
    [H], ``bias_o`` [out]: H * (in + H + out + 1) + out numbers. Initialized like torch's
    ``nn.RNN`` (all U[-1/sqrt(H), 1/sqrt(H)]); use ``inertia.init.apply`` for the paper's scheme.

    Args:
        input_size, hidden_size, output_size: in, H, out.
        output: ``"all"``: outputs at every step ``[n, T, out]``; ``"last"``: ``[n, out]``.
        fast_bptt: run the recurrence through the hand-written BPTT (default; it supports double
            backward, ``torch.func`` and forward-mode AD). ``False`` records every step with
            autograd (the reference the fast path is tested against).

    Input: batch-first ``[n, T, in]``, any floating dtype matching the parameters.

    Examples:

    >>> import inertia
    >>> rnn = inertia.models.TanhRNN(input_size=2, hidden_size=16, output_size=1, output="last")
    >>> rnn(torch.randn(4, 80, 2)).shape  # the addition task: one prediction per sequence
    torch.Size([4, 1])
    """

    def __init__(
        self, input_size: int, hidden_size: int, output_size: int, output: str = "all", fast_bptt: bool = True
    ) -> None:
        super().__init__()
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size), ("output_size", output_size)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if output not in ("all", "last"):
            raise ValueError(f"output must be 'all' or 'last', got {output!r}")
        self.output, self.fast_bptt = output, bool(fast_bptt)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.weight_ho = nn.Parameter(torch.empty(output_size, hidden_size))
        self.bias_h = nn.Parameter(torch.empty(hidden_size))
        self.bias_o = nn.Parameter(torch.empty(output_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / self.hidden_size**0.5
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound)

    @property
    def input_size(self) -> int:
        return self.weight_ih.shape[1]

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.shape[0]

    @property
    def output_size(self) -> int:
        return self.weight_ho.shape[0]

    def hidden_states(self, x: torch.Tensor) -> torch.Tensor:
        """h_1..h_T for batch-first x [n, T, in]: ``[n, T, H]``."""
        if x.dim() != 3 or x.shape[-1] != self.input_size or x.shape[1] == 0:
            raise ValueError(f"input must be [n, T, {self.input_size}] with T >= 1, got shape {tuple(x.shape)}")
        a = torch.matmul(x, self.weight_ih.t()) + self.bias_h  # [n, T, H]
        return tanh_recurrence(a, self.weight_hh, self.fast_bptt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_hidden(x)[0]

    def forward_with_hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(outputs, hidden states [n, T, H])`` from one pass: what Hessian-Free's structural
        damping (Martens & Sutskever 2011) needs, the hidden activities whose change it penalizes."""
        hs = self.hidden_states(x)  # [n, T, H]
        last = hs[:, -1] if self.output == "last" else hs  # [n, H] or [n, T, H]
        return torch.matmul(last, self.weight_ho.t()) + self.bias_o, hs

    def extra_repr(self) -> str:
        return (
            f"input_size={self.input_size}, hidden_size={self.hidden_size}, output_size={self.output_size}, "
            f"output={self.output!r}, fast_bptt={self.fast_bptt}"
        )
