"""The long-range RNN tasks of Hochreiter & Schmidhuber (1997), as used by Martens & Sutskever
(2011) and Sutskever et al. (2013). Inputs are batch-first ``[n, L, input_size]`` float32.

- ``addition`` / ``multiplication`` (H&S experiment 4/5): 2 input channels, a value in U[0, 1]
  and a marker (1 at two positions, else 0). The first marked position is uniform in the first
  10% of the sequence, the second in the second half. Target (at the last step, ``[n, 1]``): the
  sum (unnormalized, so predicting the mean gives MSE 1/6 = 0.167) or the product of the two
  marked values. Solved: mean squared error below 0.04.
- ``memorization`` (noiseless memorization, Martens & Sutskever 2011): k symbols from an
  alphabet of A are shown one per step, then ``T`` - 1 blanks, then a trigger, then k blanks
  during which the network must output the k symbols in order. ``bits=5``: k = 5, A = 2
  (5 bits, T = 200 in the paper); ``bits=20``: k = 10, A = 5 (about 23 bits, T = 80 in the
  paper). Input channels: A symbols + blank + trigger; output classes: A symbols + blank.
  Sequence length L = T + 2k. Targets ``[n, L]`` int64 (blank class A except the last k steps).
  Solved: every symbol of every sequence recalled.
- ``temporal_order`` (H&S experiment 6a): symbols {a, b, c, d} (distractors), {X, Y} (relevant),
  B and E (start, end marks): 8 channels. X or Y appear at a position in [0.1L, 0.2L) and at one
  in [0.5L, 0.6L); the class (4) is their order XX, XY, YX, YY, at the last step. Solved: every
  sequence classified correctly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

TASKS = ("addition", "multiplication", "memorization", "temporal_order")


@dataclass
class RNNTask:
    """A generated task: ``inputs`` [n, L, in], ``targets``, and how to score predictions.

    ``output``: ``"last"`` (predict at the last step: ``[n, out]``) or ``"all"`` (every step:
    ``[n, L, out]``). ``loss`` is ``"mse"`` or ``"cross_entropy"``.
    """

    name: str
    inputs: torch.Tensor
    targets: torch.Tensor
    output: str
    loss: str
    output_size: int
    recall_steps: int = 0  # memorization: the last k steps are scored

    @property
    def input_size(self) -> int:
        return self.inputs.shape[-1]

    def loss_fn(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.loss == "mse":
            return F.mse_loss(predictions, targets)
        return F.cross_entropy(predictions.reshape(-1, predictions.shape[-1]), targets.reshape(-1))

    def error(self, predictions: torch.Tensor, targets: torch.Tensor) -> float:
        """MSE (real-valued tasks) or the fraction of wrongly recalled / classified symbols."""
        with torch.no_grad():
            if self.loss == "mse":
                return float(F.mse_loss(predictions, targets))
            pred = predictions.argmax(-1)
            if self.recall_steps:
                pred, targets = pred[:, -self.recall_steps:], targets[:, -self.recall_steps:]
            return float((pred != targets).float().mean())

    def solved(self, predictions: torch.Tensor, targets: torch.Tensor) -> bool:
        """Real-valued tasks: error below 0.04; symbolic tasks: no symbol wrong."""
        err = self.error(predictions, targets)
        return err < 0.04 if self.loss == "mse" else err == 0.0


def _addmul(name: str, n: int, seq_len: int, rng) -> RNNTask:
    if seq_len < 4:
        raise ValueError(f"seq_len must be at least 4 for {name}, got {seq_len}")
    values = rng.uniform(0, 1, (n, seq_len)).astype(np.float32)
    first = rng.integers(0, max(1, seq_len // 10), n)
    second = rng.integers(seq_len // 2, seq_len, n)
    marks = np.zeros((n, seq_len), np.float32)
    marks[np.arange(n), first] = 1
    marks[np.arange(n), second] = 1
    a, b = values[np.arange(n), first], values[np.arange(n), second]
    target = a + b if name == "addition" else a * b
    x = torch.from_numpy(np.stack([values, marks], -1))
    return RNNTask(name, x, torch.from_numpy(target[:, None].astype(np.float32)), "last", "mse", 1)


def _memorization(n: int, seq_len: int, bits: int, rng) -> RNNTask:
    if bits not in (5, 20):
        raise ValueError(f"memorization bits must be 5 or 20, got {bits!r}")
    k, alphabet = (5, 2) if bits == 5 else (10, 5)
    if seq_len < 1:
        raise ValueError(f"seq_len must be positive, got {seq_len}")
    total = seq_len + 2 * k
    blank, trigger = alphabet, alphabet + 1
    symbols = rng.integers(0, alphabet, (n, k))
    inp = np.full((n, total), blank)
    inp[:, :k] = symbols
    inp[:, k + seq_len - 1] = trigger
    tgt = np.full((n, total), blank)
    tgt[:, -k:] = symbols
    x = torch.from_numpy(np.eye(alphabet + 2, dtype=np.float32)[inp])
    return RNNTask(f"memorization{bits}", x, torch.from_numpy(tgt.astype(np.int64)), "all", "cross_entropy",
                   alphabet + 1, recall_steps=k)


def _temporal_order(n: int, seq_len: int, rng) -> RNNTask:
    if seq_len < 20:
        raise ValueError(f"seq_len must be at least 20 for temporal_order, got {seq_len}")
    # symbols: 0-3 distractors a-d, 4 X, 5 Y, 6 B (start), 7 E (end)
    seq = rng.integers(0, 4, (n, seq_len))
    seq[:, 0], seq[:, -1] = 6, 7
    t1 = rng.integers(int(0.1 * seq_len), int(0.2 * seq_len), n)
    t2 = rng.integers(int(0.5 * seq_len), int(0.6 * seq_len), n)
    s1, s2 = rng.integers(0, 2, n), rng.integers(0, 2, n)
    seq[np.arange(n), t1] = 4 + s1
    seq[np.arange(n), t2] = 4 + s2
    x = torch.from_numpy(np.eye(8, dtype=np.float32)[seq])
    return RNNTask("temporal_order", x, torch.from_numpy((2 * s1 + s2).astype(np.int64)), "last",
                   "cross_entropy", 4)


def rnn_task(name: str, n: int, seq_len: int, seed: int = 0, bits: int = 5) -> RNNTask:
    """Generate ``n`` sequences of a long-range task (see the module docstring)."""
    if name not in TASKS:
        raise ValueError(f"unknown RNN task {name!r}; known: {', '.join(TASKS)}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not isinstance(seq_len, int):
        raise ValueError(f"seq_len must be an integer, got {seq_len!r}")
    rng = np.random.default_rng(seed)
    if name in ("addition", "multiplication"):
        return _addmul(name, n, seq_len, rng)
    if name == "memorization":
        return _memorization(n, seq_len, bits, rng)
    return _temporal_order(n, seq_len, rng)
