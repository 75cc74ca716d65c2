"""Small real classification sets available offline: MNIST-1D and scikit-learn's 8x8 digits."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._validate import check_count, make_rng

__all__ = ["Split", "digits", "mnist1d"]


@dataclass(frozen=True)
class Split:
    """Train and test tensors of a classification set: x float32 ``[n, ...]``, y int64 ``[n]``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def num_classes(self) -> int:
        """1 + the largest label in either split."""
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def mnist1d(n_train: int = 4000, n_test: int = 1000, seed: int = 0) -> Split:
    """MNIST-1D (Greydanus 2020): 1-D signals of the 10 digit templates, padded, dilated, scaled,
    translated, with correlated and i.i.d. noise and a shear, subsampled to 40 points; 10 classes.

    The ``mnist1d`` package's ``make_dataset`` (default arguments) draws each example with a
    dozen numpy and scipy calls, about 1 ms each example. This function draws the same random
    numbers from the same stream (``numpy.random.RandomState(seed)``, in the package's order) and
    does the arithmetic for all examples at once, so it returns the package's data, equal to
    float32 rounding (a test checks it), about 10x faster, and without reseeding the global numpy
    and ``random`` generators as ``make_dataset`` does. With ``seed=42`` and 4000/1000 it is
    ``make_dataset(get_dataset_args())``, the standard MNIST-1D.

    Like the package: examples are generated class by class, shuffled, and standardized with
    the mean and std of the whole set; the first ``n_train`` are the training split and the
    next ``n_test`` the test split. The package makes ``num_samples // 10`` examples per class;
    here ``ceil((n_train + n_test) / 10)`` are made so that both splits are full, and any extra
    examples are dropped.

    Returns:
        :class:`Split`: x float32 ``[n, 40]``, y int64 ``[n]`` in 0..9.

    Example (not run as a doctest: importing ``mnist1d`` and scipy takes seconds)::

        split = inertia.data.mnist1d(seed=42)  # the standard MNIST-1D
        split.x_train.shape, split.y_test.shape  # (torch.Size([4000, 40]), torch.Size([1000]))
    """
    n_train, n_test = check_count("n_train", n_train), check_count("n_test", n_test)
    make_rng(seed)  # validates the seed
    x, y = _mnist1d_arrays(math.ceil((n_train + n_test) / 10), int(seed))
    f = lambda a: torch.from_numpy(a.astype(np.float32))  # noqa: E731
    i = lambda a: torch.from_numpy(a.astype(np.int64))  # noqa: E731
    end = n_train + n_test
    return Split(f(x[:n_train]), i(y[:n_train]), f(x[n_train:end]), i(y[n_train:end]))


def _mnist1d_arrays(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The package's ``make_dataset`` with its default arguments and ``num_samples = 10 *
    per_class``, before the train/test split: x float64 [10 per_class, 40], y [10 per_class]."""
    from mnist1d.data import get_dataset_args, get_templates
    from scipy.ndimage import gaussian_filter1d

    args = get_dataset_args()
    templates = get_templates()
    rs = np.random.RandomState(seed)  # the stream np.random.seed(seed) gives the package
    n = 10 * per_class
    length = args.template_len + args.padding[-1]  # 72 points after dilation
    grid = np.linspace(0, 1, length)
    lo, hi = args.padding
    x = np.empty((n, length))
    corr = np.empty((n, length))
    iid = np.empty((n, length))
    shear = np.empty(n)
    row = 0
    for label in range(10):
        template = templates["x"][label] + 1e-8  # the package's eps
        for _ in range(per_class):  # random draws in the package's order (transform.transform)
            pad = lo + int(rs.rand() * (hi - lo + 1))
            padded = np.concatenate([template, np.zeros(pad)])
            dilated = np.interp(grid, np.linspace(0, 1, padded.size), padded)  # scipy's interp1d linear
            dilated *= 1 + args.scale_coeff * (rs.rand() - 0.5)
            k = rs.choice(args.max_translation)
            x[row] = np.concatenate([dilated[-k:], dilated[:-k]])
            corr[row] = args.corr_noise_scale * rs.randn(length)
            iid[row] = args.iid_noise_scale * rs.randn(length)
            shear[row] = args.shear_scale * (rs.rand() - 0.5)
            row += 1
    mask = x != 0
    x = mask * x + (1 - mask) * gaussian_filter1d(corr, 2, axis=-1)  # noise where the signal is 0
    x = x + iid
    x = x - shear[:, None] * np.linspace(-0.5, 0.5, length)
    final = np.linspace(0, 1, args.final_seq_length)
    x = np.stack([np.interp(final, grid, v) for v in x])  # [n, 40]
    y = np.repeat(templates["y"], per_class)
    order = rs.permutation(n)
    x, y = x[order], y[order]
    return (x - x.mean()) / x.std(), y


def digits(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """scikit-learn's 8x8 handwritten digits (Alpaydin & Kaynak 1998, the UCI optical digits
    test set; bundled with scikit-learn, no download): 1797 images, 10 classes, pixel counts
    0..16 scaled to [0, 1]. A random split (``numpy.random.default_rng(seed)``) puts
    round(test_fraction * 1797) images in the test set.

    Returns:
        :class:`Split`: x float32 ``[n, 64]`` (row-major 8x8), y int64 ``[n]`` in 0..9.

    Example (not run as a doctest: importing scikit-learn takes seconds)::

        split = inertia.data.digits()
        split.x_train.shape, split.x_test.shape  # (torch.Size([1438, 64]), torch.Size([359, 64]))
    """
    from sklearn.datasets import load_digits

    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    rng = make_rng(seed)
    d = load_digits()
    x = torch.from_numpy((d.data / 16.0).astype(np.float32))
    y = torch.from_numpy(d.target.astype(np.int64))
    order = torch.from_numpy(rng.permutation(len(y)))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    return Split(x[train], y[train], x[test], y[test])
