"""The data-set registry: one :class:`DataSet` per name that configs, the command line and the
doctor use, holding the generator (or file loader), the defaults a run uses when a config leaves
a keyword out, and the kind of problem; :meth:`DataSet.build` turns it into train and test tensors.

Every default exists once: the generators' own keyword defaults (``seq_len=None`` is the paper's
T of Sutskever et al. 2013, ``DEFAULT_SEQ_LEN``: 200 for 5-bit memorization, so L = T + 2k = 210
steps), and here the sizes of the sets drawn example by example (``n``, ``n_test``), which the
generators leave to the caller.

Examples:
    >>> from inertia import data
    >>> s = data.get("memorization5").build(n=4, n_test=2, seed=0)
    >>> s.kind, tuple(s.x_train.shape), tuple(s.x_test.shape)
    ('sequence', (4, 210, 4), (2, 210, 4))
    >>> dict(data.get("curves").defaults), data.get("curves").kind
    ({'n': 2000, 'n_test': None}, 'autoencoder')
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any

import torch

from .._registry import Registry
from .curves import curves
from .files import load_cifar10, load_mnist
from .packaged import Split, digits, mnist1d
from .regression import deep_linear_regression
from .rnn_tasks import TASKS, RNNTask, rnn_task
from .shapeset import shapeset

__all__ = ["KINDS", "TEST_SEED_OFFSET", "DataSet", "DataSplits", "REGISTRY"]

KINDS = ("classification", "autoencoder", "regression", "sequence")
# A drawn test set uses seed + TEST_SEED_OFFSET: independent of the training set's draws.
TEST_SEED_OFFSET = 1_000_003


@dataclass(frozen=True)
class DataSplits:
    """The tensors of one data set and what they are.

    ``kind`` (one of :data:`KINDS`): ``classification`` (y int64 ``[n]``), ``autoencoder`` (the
    inputs are the targets), ``regression`` (float targets), ``sequence`` (an RNN task; ``task``
    is the training set's :class:`~inertia.data.RNNTask`, which scores predictions).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    kind: str
    task: RNNTask | None = None


Tensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Any]  # x/y train, x/y test, task


def _pairs(train: tuple, test: tuple) -> Tensors:  # (x, y) from each call
    return train[0], train[1], test[0], test[1], None


def _images(train: torch.Tensor, test: torch.Tensor) -> Tensors:  # images are their own targets
    return train, train, test, test, None


def _sequences(train: RNNTask, test: RNNTask) -> Tensors:
    return train.inputs, train.targets, test.inputs, test.targets, train


def _fit_set(train: Any, _: None) -> Tensors:  # Hu et al. fit the training set: test = train
    return train.inputs, train.targets, train.inputs, train.targets, None


def _split(train: Any, _: None) -> Tensors:
    if not isinstance(train, Split):
        raise ValueError(f"expected a train/test split, got {type(train).__name__} (give the folder, not one file)")
    return train.x_train, train.y_train, train.x_test, train.y_test, None


@dataclass(frozen=True)
class DataSet:
    """A registered data set.

    Attributes:
        name: the registry name.
        generate: the library function that makes (or reads) it; calling the ``DataSet`` calls it.
        kind: the problem, one of :data:`KINDS` (see :class:`DataSplits`).
        assemble: ``(training result, test result or None) -> (x_train, y_train, x_test, y_test,
            task)``.
        drawn: the generator draws ``n`` independent examples: the test set is a second call with
            ``n=n_test`` and ``seed + TEST_SEED_OFFSET``. Otherwise one call gives both sets.
        defaults: the builder's keyword defaults, used where a config leaves them out: ``n`` and
            ``n_test`` for drawn sets (``n_test=None``: ``max(n // 5, 1)``); the generator's own
            defaults apply to everything else.
        reads_files: the user's files (MNIST, CIFAR-10): nothing to generate, nothing to cache.
    """

    name: str
    generate: Callable[..., Any]
    kind: str
    assemble: Callable[[Any, Any], Tensors]
    drawn: bool = False
    defaults: Mapping[str, Any] = field(default_factory=dict)
    reads_files: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"data set {self.name!r}: kind must be one of {list(KINDS)}, got {self.kind!r}")
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.generate(*args, **kwargs)

    @property
    def seeded(self) -> bool:
        """The generator takes a ``seed`` (files do not)."""
        return "seed" in inspect.signature(self.generate).parameters

    def _generator_default(self, keyword: str) -> Any:
        return inspect.signature(self.generate).parameters[keyword].default

    @property
    def builder_keywords(self) -> tuple[str, ...]:
        """Keywords :meth:`build` takes besides the generator's own (``n_test`` for drawn sets)."""
        return ("n_test",) if self.drawn else ()

    def calls(self, **kwargs: Any) -> tuple[dict, dict | None]:
        """The keyword arguments of the generator call for the training set and of the one for the
        test set (``None`` when one call gives both), with the defaults filled in. Nothing is
        checked here: the generator checks its values (and refuses keywords it does not take)."""
        kw = dict(kwargs)
        if not self.drawn:
            return kw, None
        n_test = kw.pop("n_test", self.defaults.get("n_test"))
        train_kw = {"n": self.defaults["n"], **kw}
        n, seed = train_kw["n"], train_kw.setdefault("seed", self._generator_default("seed"))
        if n_test is None:
            n_test = max(n // 5, 1) if isinstance(n, int) else n  # a bad n is reported by the generator
        test_seed = seed + TEST_SEED_OFFSET if isinstance(seed, int) and not isinstance(seed, bool) else seed
        return train_kw, dict(train_kw, n=n_test, seed=test_seed)

    def build(self, **kwargs: Any) -> DataSplits:
        """Train and test tensors from the generator's keywords (``seed``, sizes, ...; and
        ``n_test`` for drawn sets), the defaults filling in the rest."""
        train_kw, test_kw = self.calls(**kwargs)
        train = self.generate(**train_kw)
        x_train, y_train, x_test, y_test, task = self.assemble(
            train, self.generate(**test_kw) if test_kw is not None else None
        )
        return DataSplits(x_train, y_train, x_test, y_test, self.kind, task)

    def examples(self, n: int, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` training examples: a drawn set is built with ``n`` (as a config ``{name, n}``
        would), a fixed one (a split, a regression problem) gives its first ``n``."""
        splits = self.build(**kwargs, n=n) if self.drawn else self.build(**kwargs)
        return splits.x_train[:n], splits.y_train[:n]


REGISTRY: Registry[DataSet] = Registry("data set")


def _register(name: str, generate: Callable[..., Any], kind: str, assemble: Callable[[Any, Any], Tensors], **kw: Any):
    REGISTRY.register(name, DataSet(name, generate, kind, assemble, **kw))


_IMAGES = {"n": 2000, "n_test": None}  # drawn image sets: 2000 training images, a fifth as many to test
_SEQUENCES = {"n": 1000, "n_test": 1000}  # RNN tasks: 1000 sequences each way
_register("shapeset", shapeset, "classification", _pairs, drawn=True, defaults=_IMAGES)
_register("shapeset_easy", partial(shapeset, easy=True), "classification", _pairs, drawn=True, defaults=_IMAGES)
_register("curves", curves, "autoencoder", _images, drawn=True, defaults=_IMAGES)
for _task in TASKS:
    _register(_task, partial(rnn_task, _task), "sequence", _sequences, drawn=True, defaults=_SEQUENCES)
_register("deep_linear_regression", deep_linear_regression, "regression", _fit_set)
_register("mnist1d", mnist1d, "classification", _split)
_register("digits", digits, "classification", _split)
_register("mnist", load_mnist, "classification", _split, reads_files=True)
_register("cifar10", load_cifar10, "classification", _split, reads_files=True)
del _task
