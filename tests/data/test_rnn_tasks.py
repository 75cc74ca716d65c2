"""The long-range RNN tasks: encodings on hand-made sequences, and the success tests."""

import pytest
import torch

from inertia import data as D


def test_addition_target_is_the_sum_of_the_two_marked_values():
    t = D.rnn_task("addition", 200, 50, seed=0)
    assert t.inputs.shape == (200, 50, 2) and t.targets.shape == (200, 1)
    marks = t.inputs[..., 1]
    assert torch.all(marks.sum(1) == 2)
    want = (t.inputs[..., 0] * marks).sum(1, keepdim=True)
    torch.testing.assert_close(t.targets, want)
    first = marks.argmax(1)
    assert torch.all(first < 5)  # the first mark is in the first 10%


def test_multiplication_target_is_the_product():
    t = D.rnn_task("multiplication", 100, 40, seed=1)
    vals = t.inputs[..., 0][t.inputs[..., 1] == 1].reshape(100, 2)
    torch.testing.assert_close(t.targets[:, 0], vals[:, 0] * vals[:, 1])


def test_addition_mean_predictor_error_is_about_one_sixth_and_not_solved():
    t = D.rnn_task("addition", 5000, 40, seed=2)
    pred = torch.full_like(t.targets, float(t.targets.mean()))
    assert t.error(pred, t.targets) == pytest.approx(1 / 6, abs=0.01)
    assert not t.solved(pred, t.targets)
    assert t.solved(t.targets.clone(), t.targets)


def test_memorization_recalls_the_symbols_after_the_trigger():
    t = D.rnn_task("memorization", 10, 30, seed=0, bits=5)
    k, alphabet = 5, 2
    assert t.inputs.shape == (10, 30 + 2 * k, alphabet + 2)
    sym = t.inputs[:, :k, :alphabet].argmax(-1)
    assert torch.equal(t.targets[:, -k:], sym)
    assert torch.all(t.targets[:, :-k] == alphabet)  # blank class before the recall
    trig = t.inputs[:, :, alphabet + 1]
    assert torch.all(trig.argmax(1) == k + 30 - 1)


def test_memorization20_has_ten_symbols_of_five_values():
    t = D.rnn_task("memorization", 4, 80, seed=0, bits=20)
    assert t.inputs.shape == (4, 100, 7) and t.output_size == 6


def test_memorization_solved_needs_every_symbol():
    t = D.rnn_task("memorization", 8, 20, seed=3)
    perfect = torch.nn.functional.one_hot(t.targets, t.output_size).float()
    assert t.solved(perfect, t.targets)
    wrong = perfect.clone()
    wrong[0, -1] = wrong[0, -1].roll(1)
    assert not t.solved(wrong, t.targets)
    constant = torch.zeros_like(perfect)
    constant[..., t.output_size - 1] = 1  # always "blank"
    assert not t.solved(constant, t.targets)


def test_temporal_order_class_is_the_order_of_x_and_y():
    t = D.rnn_task("temporal_order", 50, 100, seed=0)
    sym = t.inputs.argmax(-1)  # [n, T]
    for s, c in zip(sym, t.targets):
        rel = s[(s == 4) | (s == 5)] - 4
        assert rel.numel() == 2 and int(2 * rel[0] + rel[1]) == int(c)
    perfect = torch.nn.functional.one_hot(t.targets, 4).float()
    assert t.solved(perfect, t.targets) and not t.solved(torch.zeros(50, 4), t.targets)


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown RNN task 'xor'; known: addition, multiplication"):
        D.rnn_task("xor", 4, 10)
