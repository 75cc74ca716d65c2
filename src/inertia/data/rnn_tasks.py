"""The long-range RNN tasks of Hochreiter & Schmidhuber (1997), in the form used by Martens &
Sutskever (2011) and Sutskever et al. (2013). Sequences have a fixed length L; inputs are
batch-first float32 ``[n, L, input_size]``, as ``models.TanhRNN`` takes them.

``addition`` / ``multiplication`` (H&S experiments 4 and 5)
    2 input channels: a value ~ U[0, 1] and a marker (1 at the two marked steps, else 0). The
    first marked step is uniform in the first tenth of the sequence, [0, max(1, L // 10)); the
    second in the second half, [L // 2, L). Target: the sum (not halved, so the mean predictor's
    MSE is Var(a + b) = 1/6 = 0.167) or the product of the two marked values, float32 ``[n, 1]``,
    predicted at the last step (``output="last"``). Solved: mean squared error below 0.04.

``memorization`` (noiseless memorization, Martens & Sutskever 2011)
    k symbols from an alphabet of A are shown one per step, then L_blank = T - 1 blank steps, a
    trigger step, and k more blank steps during which the network must output the k symbols in
    order. ``bits=5`` (``"memorization5"``): k = 5 binary symbols (A = 2); ``bits=20``
    (``"memorization20"``): k = 10 symbols with A = 5 (10 log2 5 = 23 bits, the paper's "20-bit"
    problem). T is the distance from the last symbol to the trigger (200 and 80 in the paper);
    L = T + 2k. One-hot inputs over A + 2 channels (the A symbols, blank, trigger). Targets: int64
    ``[n, L]`` over A + 1 classes (the symbols, and blank = A at every step but the last k),
    scored at every step (``output="all"``). Solved: every recalled symbol right.

``temporal_order`` (H&S experiment 6a)
    8 one-hot channels: distractors a, b, c, d (0-3), the relevant X, Y (4, 5), start B (6) at the
    first step and end E (7) at the last. One of X/Y sits at a step uniform in [0.1 L, 0.2 L), the
    other at one in [0.5 L, 0.6 L); all other steps are random distractors. Target: the order,
    int64 ``[n]`` in {XX, XY, YX, YY} = {0, 1, 2, 3}, at the last step. Solved: every sequence
    classified right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ._validate import check_count, make_rng

__all__ = ["DEFAULT_SEQ_LEN", "SOLVED_MSE", "TASKS", "RNNTask", "rnn_task"]

TASKS = ("addition", "multiplication", "memorization5", "memorization20", "temporal_order")
# The sequence length T of Sutskever et al. (2013) (temporal order: H&S's 100), used when seq_len is None.
DEFAULT_SEQ_LEN = {
    "addition": 80,
    "multiplication": 80,
    "memorization5": 200,
    "memorization20": 80,
    "temporal_order": 100,
}
SOLVED_MSE = 0.04  # the success threshold for the real-valued tasks
_MEMORIZATION = {5: (5, 2), 20: (10, 5)}  # bits -> (symbols k, alphabet A)


@dataclass(frozen=True)
class RNNTask:
    """A generated task: the data and how to score predictions on it.

    Attributes:
        name: the task's registry name.
        inputs: float32 ``[n, L, input_size]``.
        targets: float32 ``[n, 1]`` (addition, multiplication), int64 ``[n, L]`` (memorization)
            or int64 ``[n]`` (temporal order).
        output: where the network predicts: ``"last"`` step (predictions ``[n, output_size]``)
            or ``"all"`` steps (``[n, L, output_size]``): the ``output`` of ``models.TanhRNN``.
        loss: ``"mse"`` (predictions are values) or ``"cross_entropy"`` (predictions are logits).
        output_size: network outputs per step.
        recall_steps: memorization: the last k steps, where the symbols are recalled.
    """

    name: str
    inputs: torch.Tensor
    targets: torch.Tensor
    output: str
    loss: str
    output_size: int
    recall_steps: int = 0

    @property
    def input_size(self) -> int:
        """Input channels per step."""
        return self.inputs.shape[-1]

    @property
    def seq_len(self) -> int:
        """L, the number of steps of every sequence."""
        return self.inputs.shape[1]

    def _check(self, predictions: torch.Tensor, targets: torch.Tensor) -> None:
        want = tuple(targets.shape) if self.loss == "mse" else (*targets.shape, self.output_size)
        if tuple(predictions.shape) != want:
            raise ValueError(
                f"{self.name}: predictions must have shape {want} for targets of shape "
                f"{tuple(targets.shape)}, got {tuple(predictions.shape)}"
            )

    def loss_fn(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss: mean squared error, or cross-entropy averaged over every scored
        symbol (for memorization, every step: the blanks before the recall too)."""
        self._check(predictions, targets)
        if self.loss == "mse":
            return F.mse_loss(predictions, targets)
        return F.cross_entropy(predictions.reshape(-1, self.output_size), targets.reshape(-1))

    def error(self, predictions: torch.Tensor, targets: torch.Tensor) -> float:
        """The test error: mean squared error (addition, multiplication); the fraction of wrongly
        recalled symbols over the recall steps (memorization); the fraction of misclassified
        sequences (temporal order)."""
        self._check(predictions, targets)
        with torch.no_grad():
            if self.loss == "mse":
                return float(F.mse_loss(predictions, targets))
            wrong = predictions.argmax(-1) != targets
            if self.recall_steps:
                wrong = wrong[:, -self.recall_steps :]
            return float(wrong.float().mean())

    def solved(self, predictions: torch.Tensor, targets: torch.Tensor) -> bool:
        """Success as in Sutskever et al. (2013): MSE below 0.04 for the real-valued tasks; no
        symbol or sequence wrong for the others."""
        err = self.error(predictions, targets)
        return err < SOLVED_MSE if self.loss == "mse" else err == 0.0


def _addition_or_multiplication(name: str, n: int, seq_len: int, rng: np.random.Generator) -> RNNTask:
    values = rng.uniform(0, 1, (n, seq_len)).astype(np.float32)  # [n, L]
    first = rng.integers(0, max(1, seq_len // 10), n)
    second = rng.integers(seq_len // 2, seq_len, n)
    rows = np.arange(n)
    marker = np.zeros((n, seq_len), np.float32)
    marker[rows, first] = 1
    marker[rows, second] = 1
    a, b = values[rows, first], values[rows, second]
    target = a + b if name == "addition" else a * b
    inputs = torch.from_numpy(np.stack([values, marker], -1))  # [n, L, 2]
    return RNNTask(name, inputs, torch.from_numpy(target[:, None]), "last", "mse", 1)


def _memorization(name: str, n: int, seq_len: int, bits: int, rng: np.random.Generator) -> RNNTask:
    k, alphabet = _MEMORIZATION[bits]
    blank, trigger = alphabet, alphabet + 1
    total = seq_len + 2 * k
    symbols = rng.integers(0, alphabet, (n, k))
    sequence = np.full((n, total), blank)
    sequence[:, :k] = symbols
    sequence[:, k + seq_len - 1] = trigger  # T steps after the last symbol
    target = np.full((n, total), blank)
    target[:, -k:] = symbols
    inputs = torch.from_numpy(np.eye(alphabet + 2, dtype=np.float32)[sequence])  # [n, L, A + 2]
    return RNNTask(
        name, inputs, torch.from_numpy(target.astype(np.int64)), "all", "cross_entropy", alphabet + 1, recall_steps=k
    )


def _temporal_order(n: int, seq_len: int, rng: np.random.Generator) -> RNNTask:
    sequence = rng.integers(0, 4, (n, seq_len))  # distractors a-d
    sequence[:, 0], sequence[:, -1] = 6, 7  # B, E
    t1 = rng.integers(int(0.1 * seq_len), int(0.2 * seq_len), n)
    t2 = rng.integers(int(0.5 * seq_len), int(0.6 * seq_len), n)
    s1, s2 = rng.integers(0, 2, n), rng.integers(0, 2, n)  # 0: X, 1: Y
    rows = np.arange(n)
    sequence[rows, t1] = 4 + s1
    sequence[rows, t2] = 4 + s2
    inputs = torch.from_numpy(np.eye(8, dtype=np.float32)[sequence])  # [n, L, 8]
    return RNNTask(
        "temporal_order", inputs, torch.from_numpy((2 * s1 + s2).astype(np.int64)), "last", "cross_entropy", 4
    )


_MIN_SEQ_LEN = {"addition": 2, "multiplication": 2, "memorization5": 1, "memorization20": 1, "temporal_order": 20}


def rnn_task(name: str, n: int, seq_len: int | None = None, seed: int = 0, bits: int | None = None) -> RNNTask:
    """Generate ``n`` sequences of a long-range task (encodings in the module docstring).

    Args:
        name: ``"addition"``, ``"multiplication"``, ``"memorization5"``, ``"memorization20"``,
            ``"temporal_order"``; or ``"memorization"`` with ``bits`` 5 or 20.
        n: number of sequences.
        seq_len: T (see the module docstring; for memorization L = T + 2k, else L = T). None: the
            paper's T (``DEFAULT_SEQ_LEN``).
        seed: non-negative integer for ``numpy.random.default_rng``.
        bits: only with ``name="memorization"``.

    Examples:

    >>> import inertia
    >>> task = inertia.data.rnn_task("addition", 8, seed=0)
    >>> task.inputs.shape, task.targets.shape, task.output, task.loss  # T = 80, 2 channels
    (torch.Size([8, 80, 2]), torch.Size([8, 1]), 'last', 'mse')
    >>> task.solved(task.targets.clone(), task.targets)
    True
    >>> inertia.data.rnn_task("memorization", 4, bits=5).inputs.shape  # L = T + 2k = 200 + 10
    torch.Size([4, 210, 4])
    """
    if name == "memorization":
        if bits not in _MEMORIZATION:
            raise ValueError(f"memorization bits must be 5 or 20, got {bits!r}")
        name = f"memorization{bits}"
    elif bits is not None:
        raise ValueError(f"bits is only for name='memorization', got bits={bits!r} with name={name!r}")
    if name not in TASKS:
        raise ValueError(f"unknown RNN task {name!r}; known: {', '.join(TASKS)}, memorization (with bits)")
    n = check_count("n", n)
    seq_len = (
        DEFAULT_SEQ_LEN[name]
        if seq_len is None
        else check_count(f"seq_len for {name}", seq_len, minimum=_MIN_SEQ_LEN[name])
    )
    rng = make_rng(seed)
    if name in ("addition", "multiplication"):
        return _addition_or_multiplication(name, n, seq_len, rng)
    if name.startswith("memorization"):
        return _memorization(name, n, seq_len, int(name[len("memorization") :]), rng)
    return _temporal_order(n, seq_len, rng)
