"""inertia.data.get(name): every data set by the name configs use."""

import pytest
import torch

from inertia import data as D

NAMES = [
    "addition",
    "cifar10",
    "curves",
    "deep_linear_regression",
    "digits",
    "memorization20",
    "memorization5",
    "mnist",
    "mnist1d",
    "multiplication",
    "shapeset",
    "shapeset_easy",
    "temporal_order",
]


def test_available_lists_every_data_set():
    assert D.available() == NAMES


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown data set 'nope'; known: addition, cifar10, curves"):
        D.get("nope")


def test_shapeset_easy_is_the_easy_variant():
    assert torch.equal(D.get("shapeset_easy")(9, seed=1)[0], D.shapeset(9, seed=1, easy=True)[0])


@pytest.mark.parametrize(
    "name,seq_len",
    [("addition", 80), ("multiplication", 80), ("memorization5", 200), ("memorization20", 80), ("temporal_order", 100)],
)
def test_rnn_task_names_give_the_task_with_the_papers_length(name, seq_len):
    task = D.get(name)(n=3, seed=0)
    assert task.name == name and task.seq_len == seq_len + (2 * task.recall_steps)


def test_file_loaders_are_registered_by_data_set_name():
    assert D.get("mnist") is D.load_mnist and D.get("cifar10") is D.load_cifar10
