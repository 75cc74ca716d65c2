"""Data for the four papers' experiments, generated here (no downloads) or read from files the
user already has. Every generator is deterministic for a seed and returns torch tensors.

Registry: ``get(name)`` returns the generator or loader; ``available()`` lists the names.
"""

from functools import partial

from .._registry import Registry
from .files import Split, digits, load_cifar10, load_mnist, mnist1d, read_idx
from .rnn_tasks import TASKS, RNNTask, rnn_task
from .synthetic import (
    SHAPESET_CLASS_NAMES,
    SHAPESET_CLASSES,
    LinearRegressionData,
    curves,
    deep_linear_regression,
    render_grid,
    shapeset,
)

REGISTRY = Registry("data set")
for _name, _fn in {
    "shapeset": shapeset,
    "shapeset_easy": partial(shapeset, easy=True),
    "curves": curves,
    "addition": partial(rnn_task, "addition"),
    "multiplication": partial(rnn_task, "multiplication"),
    "memorization5": partial(rnn_task, "memorization", bits=5),
    "memorization20": partial(rnn_task, "memorization", bits=20),
    "temporal_order": partial(rnn_task, "temporal_order"),
    "deep_linear_regression": deep_linear_regression,
    "mnist1d": mnist1d,
    "digits": digits,
    "mnist": load_mnist,
    "cifar10": load_cifar10,
}.items():
    REGISTRY.register(_name, _fn)
del _name, _fn


get = REGISTRY.get  # unknown names raise ValueError listing the known ones
available = REGISTRY.available

__all__ = [
    "shapeset", "curves", "render_grid", "deep_linear_regression", "LinearRegressionData", "rnn_task", "RNNTask",
    "TASKS", "mnist1d", "digits", "load_mnist", "load_cifar10", "read_idx", "Split", "SHAPESET_CLASSES",
    "SHAPESET_CLASS_NAMES", "get", "available", "REGISTRY",
]
