"""MNIST-1D (equal to the mnist1d package's data) and scikit-learn's digits."""

import random

import numpy as np
import pytest
import torch

from inertia import data as D


@pytest.fixture
def restore_global_rngs():
    """make_dataset reseeds numpy's and Python's global generators: put them back afterwards."""
    np_state, py_state = np.random.get_state(), random.getstate()
    yield
    np.random.set_state(np_state)
    random.setstate(py_state)


def test_mnist1d_equals_the_packages_make_dataset(restore_global_rngs):
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = 300, 0.8, 7
    ref = make_dataset(args)
    s = D.mnist1d(240, 60, seed=7)
    assert torch.equal(s.x_train, torch.from_numpy(ref["x"].astype(np.float32)))
    assert torch.equal(s.x_test, torch.from_numpy(ref["x_test"].astype(np.float32)))
    assert s.y_train.tolist() == ref["y"].tolist() and s.y_test.tolist() == ref["y_test"].tolist()


def test_mnist1d_leaves_the_global_generators_alone():
    np_state, py_state = np.random.get_state(), random.getstate()
    D.mnist1d(20, 10, seed=3)
    assert random.getstate() == py_state
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state, strict=False))


def test_mnist1d_shapes_and_dtypes():
    s = D.mnist1d(45, 12, seed=1)  # 57 examples: not a multiple of 10
    assert s.x_train.shape == (45, 40) and s.x_test.shape == (12, 40)
    assert s.x_train.dtype == torch.float32 and s.y_train.dtype == torch.int64
    assert s.num_classes == 10


def test_mnist1d_is_deterministic_for_a_seed():
    assert torch.equal(D.mnist1d(30, 10, seed=2).x_train, D.mnist1d(30, 10, seed=2).x_train)
    assert not torch.equal(D.mnist1d(30, 10, seed=2).x_train, D.mnist1d(30, 10, seed=3).x_train)


def test_mnist1d_rejects_bad_sizes():
    with pytest.raises(ValueError, match="n_test must be an integer >= 1, got 0"):
        D.mnist1d(10, 0)


def test_digits_is_the_1797_images_scaled_to_the_unit_interval():
    s = D.digits()
    assert s.x_train.shape[1] == 64 and s.x_train.dtype == torch.float32
    assert s.x_train.shape[0] + s.x_test.shape[0] == 1797 and s.x_test.shape[0] == 359
    assert float(s.x_train.min()) == 0.0 and float(s.x_train.max()) == 1.0
    assert s.num_classes == 10


def test_digits_split_is_deterministic_for_a_seed():
    a, b, c = D.digits(seed=1), D.digits(seed=1), D.digits(seed=2)
    assert torch.equal(a.x_test, b.x_test) and not torch.equal(a.x_test, c.x_test)


def test_digits_rejects_a_test_fraction_outside_0_1():
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\), got 1.0"):
        D.digits(test_fraction=1.0)
