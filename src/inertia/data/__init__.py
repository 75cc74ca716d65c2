"""Data for the four papers' experiments, generated here (nothing is downloaded) or read from
files the user already has. Every generator is deterministic for a seed and returns torch
tensors with documented shapes and dtypes.

- :func:`shapeset`: Shapeset-3x2 (Glorot & Bengio 2010), and its labelled ``easy`` variant.
- :func:`curves`: CURVES-like images (Hinton & Salakhutdinov 2006; Sutskever et al. 2013).
- :func:`rnn_task`: addition, multiplication, memorization, temporal order (Hochreiter &
  Schmidhuber 1997; Martens & Sutskever 2011).
- :func:`deep_linear_regression`: Hu, Xiao & Pennington (2020)'s X and Y = W* X.
- :func:`mnist1d`, :func:`digits`: small real classification sets, offline.
- :func:`load_mnist`, :func:`load_cifar10`: the user's MNIST IDX and CIFAR-10 files.

Registry: ``get(name)`` returns the :class:`DataSet` of that name (calling it calls the generator or
loader; ``build(seed, **keywords)`` gives train and test tensors as :class:`DataSplits`, with the
defaults runs use), ``available()`` lists the names. Configs, the command line and the doctor's
``--data`` all build through it (:mod:`inertia.data.registry`).
"""

from .curves import curves
from .files import load_cifar10, load_mnist, read_idx
from .packaged import Split, digits, mnist1d
from .registry import KINDS, REGISTRY, TEST_SEED_OFFSET, DataSet, DataSplits
from .regression import LinearRegressionData, deep_linear_regression
from .rnn_tasks import DEFAULT_SEQ_LEN, TASKS, RNNTask, rnn_task
from .shapeset import SHAPES, SHAPESET_CLASS_NAMES, SHAPESET_CLASSES, as_images, render_grid, shapeset

get = REGISTRY.get  # unknown names raise ValueError listing the known ones
available = REGISTRY.available

__all__ = [
    "shapeset",
    "as_images",
    "render_grid",
    "SHAPES",
    "SHAPESET_CLASSES",
    "SHAPESET_CLASS_NAMES",
    "curves",
    "rnn_task",
    "RNNTask",
    "TASKS",
    "DEFAULT_SEQ_LEN",
    "deep_linear_regression",
    "LinearRegressionData",
    "mnist1d",
    "digits",
    "Split",
    "load_mnist",
    "load_cifar10",
    "read_idx",
    "get",
    "available",
    "REGISTRY",
    "DataSet",
    "DataSplits",
    "KINDS",
    "TEST_SEED_OFFSET",
]
