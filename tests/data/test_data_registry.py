"""inertia.data.get(name): every data set by the name configs use, as a registered builder that
carries its kind and its defaults (the same data whichever entry point builds it)."""

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
    assert D.get("mnist").generate is D.load_mnist and D.get("cifar10").generate is D.load_cifar10
    assert D.get("mnist").reads_files and not D.get("mnist").seeded and not D.get("curves").reads_files


KINDS = {
    "addition": "sequence",
    "cifar10": "classification",
    "curves": "autoencoder",
    "deep_linear_regression": "regression",
    "digits": "classification",
    "memorization20": "sequence",
    "memorization5": "sequence",
    "mnist": "classification",
    "mnist1d": "classification",
    "multiplication": "sequence",
    "shapeset": "classification",
    "shapeset_easy": "classification",
    "temporal_order": "sequence",
}


def test_every_data_set_says_what_kind_of_problem_it_is():
    assert {name: D.get(name).kind for name in D.available()} == KINDS


def test_a_registered_data_set_is_a_data_set_with_a_known_kind():
    assert all(isinstance(D.get(n), D.DataSet) and D.get(n).kind in D.KINDS for n in D.available())
    with pytest.raises(ValueError, match=r"kind must be one of \['classification'"):
        D.DataSet("x", D.curves, "images", lambda tr, te: (tr, tr, te, te, None))


def test_memorization5_defaults_to_the_papers_T_of_200_so_210_steps():
    # Sutskever et al. (2013) / Martens & Sutskever (2011): 5-bit memorization with T = 200; L = T + 2k
    s = D.get("memorization5").build(n=2, n_test=1)
    assert s.x_train.shape[1] == s.x_test.shape[1] == 200 + 2 * 5 == D.DEFAULT_SEQ_LEN["memorization5"] + 10


@pytest.mark.parametrize("name", ["addition", "memorization5", "temporal_order"])
def test_build_gives_the_generators_own_sequences_and_the_task(name):
    s = D.get(name).build(seed=3, n=4, n_test=2)
    train, test = D.rnn_task(name, 4, seed=3), D.rnn_task(name, 2, seed=3 + D.TEST_SEED_OFFSET)
    assert s.kind == "sequence" and s.task.name == name
    assert torch.equal(s.x_train, train.inputs) and torch.equal(s.y_train, train.targets)
    assert torch.equal(s.x_test, test.inputs) and torch.equal(s.y_test, test.targets)


def test_a_drawn_test_set_is_a_fifth_of_the_training_set_by_default():
    s = D.get("curves").build(seed=1, n=10)
    assert s.kind == "autoencoder" and s.x_test.shape[0] == 2 and s.y_train is s.x_train
    assert torch.equal(s.x_test, D.curves(2, seed=1 + D.TEST_SEED_OFFSET))
    assert D.get("shapeset").build(seed=0, n=3).x_test.shape[0] == 1  # at least one


def test_drawn_sets_default_to_2000_images_or_1000_sequences():
    assert dict(D.get("shapeset").defaults) == dict(D.get("curves").defaults) == {"n": 2000, "n_test": None}
    assert all(dict(D.get(t).defaults) == {"n": 1000, "n_test": 1000} for t in D.TASKS)
    train_kw, test_kw = D.get("curves").calls(seed=5)
    assert train_kw == {"n": 2000, "seed": 5} and test_kw == {"n": 400, "seed": 5 + D.TEST_SEED_OFFSET}


def test_a_split_set_is_one_call_and_a_regression_set_is_tested_on_its_training_set():
    split = D.get("digits").build(seed=2)
    ref = D.digits(seed=2)
    assert split.kind == "classification" and torch.equal(split.x_test, ref.x_test)
    reg = D.get("deep_linear_regression").build(seed=0, d_in=8, n=4, d_out=2)
    assert reg.kind == "regression" and torch.equal(reg.x_test, reg.x_train) and reg.x_train.shape == (4, 8)


def test_examples_of_a_drawn_set_are_drawn_with_n_and_a_fixed_set_gives_its_first_n():
    x, y = D.get("shapeset").examples(5, seed=4)
    assert torch.equal(x, D.shapeset(5, seed=4)[0]) and torch.equal(y, D.shapeset(5, seed=4)[1])
    x, y = D.get("digits").examples(5, seed=4)
    assert torch.equal(x, D.digits(seed=4).x_train[:5])


def test_a_file_set_given_one_file_instead_of_a_folder_is_refused_by_name():
    pair = (torch.zeros(1, 2), torch.zeros(1, dtype=torch.int64))  # what a loader returns for one file
    one_file = D.DataSet("one_file", lambda: pair, "classification", D.get("mnist").assemble, reads_files=True)
    with pytest.raises(ValueError, match=r"expected a train/test split, got tuple \(give the folder"):
        one_file.build()
