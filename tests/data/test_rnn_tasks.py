"""The long-range RNN tasks: encodings, targets on hand-made and generated sequences, scoring."""

import pytest
import torch
import torch.nn.functional as F

from inertia import data as D
from inertia.data.rnn_tasks import RNNTask

# ---- addition and multiplication ----


def test_addition_inputs_are_value_and_marker_channels():
    t = D.rnn_task("addition", 64, 50, seed=0)
    assert t.inputs.shape == (64, 50, 2) and t.inputs.dtype == torch.float32
    assert t.targets.shape == (64, 1) and t.targets.dtype == torch.float32
    values, marker = t.inputs[..., 0], t.inputs[..., 1]
    assert 0 <= float(values.min()) and float(values.max()) <= 1
    assert torch.all(marker.sum(1) == 2) and set(marker.unique().tolist()) == {0.0, 1.0}
    assert (t.output, t.loss, t.output_size, t.input_size, t.seq_len) == ("last", "mse", 1, 2, 50)


def test_addition_marks_one_step_in_the_first_tenth_and_one_in_the_second_half():
    t = D.rnn_task("addition", 500, 80, seed=1)
    marked = t.inputs[..., 1].nonzero()[:, 1].reshape(500, 2)  # [n, 2] marked steps, in order
    assert torch.all(marked[:, 0] < 8) and torch.all(marked[:, 1] >= 40)
    assert set(marked[:, 0].tolist()) == set(range(8)) and set(marked[:, 1].tolist()) == set(range(40, 80))


def test_addition_target_is_the_unnormalized_sum_of_the_marked_values():
    t = D.rnn_task("addition", 200, 30, seed=2)
    want = (t.inputs[..., 0] * t.inputs[..., 1]).sum(1, keepdim=True)
    torch.testing.assert_close(t.targets, want)


def test_multiplication_target_is_the_product_of_the_marked_values():
    t = D.rnn_task("multiplication", 100, 40, seed=1)
    pair = t.inputs[..., 0][t.inputs[..., 1] == 1].reshape(100, 2)
    torch.testing.assert_close(t.targets[:, 0], pair[:, 0] * pair[:, 1])


def test_addition_mean_predictor_has_mse_one_sixth_and_does_not_solve_it():
    t = D.rnn_task("addition", 5000, 40, seed=2)
    mean = torch.full_like(t.targets, float(t.targets.mean()))
    # Var(a + b) = 2/12; the sample MSE has standard error about 0.002: allow 5
    assert t.error(mean, t.targets) == pytest.approx(1 / 6, abs=0.01)
    assert not t.solved(mean, t.targets)


@pytest.mark.parametrize("name", ["addition", "multiplication"])
def test_real_valued_task_is_solved_by_the_targets_and_not_by_a_constant(name):
    t = D.rnn_task(name, 300, 20, seed=3)
    assert t.solved(t.targets.clone(), t.targets)
    assert not t.solved(torch.zeros_like(t.targets), t.targets)


def test_real_valued_success_threshold_is_mse_0_04():
    t = D.rnn_task("addition", 10, 20, seed=0)
    assert t.solved(t.targets + 0.19, t.targets)  # MSE 0.0361
    assert not t.solved(t.targets + 0.21, t.targets)  # MSE 0.0441


def test_hand_made_addition_sequence_is_scored_by_mse():
    task = RNNTask("addition", torch.zeros(2, 4, 2), torch.tensor([[1.0], [0.5]]), "last", "mse", 1)
    assert task.error(torch.tensor([[1.1], [0.3]]), task.targets) == pytest.approx((0.01 + 0.04) / 2)


# ---- memorization ----


def test_memorization5_shows_the_symbols_then_blanks_then_the_trigger():
    t = D.rnn_task("memorization5", 10, 30, seed=0)
    k, blank, trigger = 5, 2, 3
    assert t.inputs.shape == (10, 30 + 2 * k, 4) and torch.all(t.inputs.sum(-1) == 1)  # one-hot
    seq = t.inputs.argmax(-1)
    assert torch.all(seq[:, :k] < 2)  # binary symbols
    assert torch.all(seq[:, k : k + 29] == blank)
    assert torch.all(seq[:, k + 29] == trigger)  # T = 30 steps after the last symbol
    assert torch.all(seq[:, k + 30 :] == blank)


def test_memorization_targets_are_blank_then_the_symbols_in_order():
    t = D.rnn_task("memorization5", 10, 30, seed=0)
    symbols = t.inputs[:, :5].argmax(-1)
    assert t.targets.dtype == torch.int64 and t.targets.shape == (10, 40)
    assert torch.equal(t.targets[:, -5:], symbols)
    assert torch.all(t.targets[:, :-5] == 2)
    assert (t.output, t.loss, t.output_size, t.recall_steps) == ("all", "cross_entropy", 3, 5)


def test_memorization20_has_ten_symbols_from_an_alphabet_of_five():
    t = D.rnn_task("memorization20", 400, 80, seed=0)
    assert t.inputs.shape == (400, 100, 7) and t.output_size == 6 and t.recall_steps == 10
    assert set(t.targets[:, -10:].unique().tolist()) == set(range(5))


def test_memorization_with_bits_is_the_same_task_as_its_alias():
    a, b = D.rnn_task("memorization", 5, 12, seed=4, bits=20), D.rnn_task("memorization20", 5, 12, seed=4)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets) and a.name == b.name


def test_memorization_is_solved_only_when_every_symbol_is_recalled():
    t = D.rnn_task("memorization5", 8, 20, seed=3)
    perfect = F.one_hot(t.targets, t.output_size).float()
    assert t.solved(perfect, t.targets)
    one_wrong = perfect.clone()
    one_wrong[0, -1] = one_wrong[0, -1].roll(1)
    assert not t.solved(one_wrong, t.targets)
    assert t.error(one_wrong, t.targets) == pytest.approx(1 / (8 * 5))


def test_memorization_constant_blank_prediction_fails():
    t = D.rnn_task("memorization5", 8, 20, seed=3)
    blank = F.one_hot(torch.full_like(t.targets, 2), 3).float()
    assert not t.solved(blank, t.targets) and t.error(blank, t.targets) == 1.0


def test_memorization_error_counts_only_the_recall_steps():
    t = D.rnn_task("memorization5", 4, 20, seed=5)
    pred = F.one_hot(t.targets, 3).float()
    pred[:, :-5] = F.one_hot(torch.zeros(4, 25, dtype=torch.int64), 3).float()  # wrong before the recall
    assert t.error(pred, t.targets) == 0.0 and t.solved(pred, t.targets)


def test_memorization_loss_is_cross_entropy_over_every_step():
    t = D.rnn_task("memorization5", 4, 10, seed=0)
    logits = torch.randn(4, 20, 3)
    want = F.cross_entropy(logits.reshape(-1, 3), t.targets.reshape(-1))
    torch.testing.assert_close(t.loss_fn(logits, t.targets), want)


# ---- temporal order ----


def test_temporal_order_class_is_the_order_of_x_and_y():
    t = D.rnn_task("temporal_order", 300, 100, seed=0)
    assert t.inputs.shape == (300, 100, 8) and t.targets.shape == (300,)
    sym = t.inputs.argmax(-1)  # [n, L]
    assert torch.all(sym[:, 0] == 6) and torch.all(sym[:, -1] == 7)  # B ... E
    relevant = (sym == 4) | (sym == 5)
    assert torch.all(relevant.sum(1) == 2)
    steps = relevant.nonzero()[:, 1].reshape(300, 2)
    assert torch.all((10 <= steps[:, 0]) & (steps[:, 0] < 20)) and torch.all((50 <= steps[:, 1]) & (steps[:, 1] < 60))
    first, second = sym.gather(1, steps[:, :1])[:, 0] - 4, sym.gather(1, steps[:, 1:])[:, 0] - 4
    assert torch.equal(t.targets, 2 * first + second)
    assert set(t.targets.tolist()) == {0, 1, 2, 3}


def test_temporal_order_is_solved_by_the_classes_and_not_by_a_constant():
    t = D.rnn_task("temporal_order", 50, 40, seed=0)
    assert t.solved(F.one_hot(t.targets, 4).float(), t.targets)
    assert not t.solved(F.one_hot(torch.zeros_like(t.targets), 4).float(), t.targets)


# ---- common ----


@pytest.mark.parametrize("name", D.TASKS)
def test_each_task_is_deterministic_for_a_seed(name):
    a, b = D.rnn_task(name, 6, 30, seed=7), D.rnn_task(name, 6, 30, seed=7)
    c = D.rnn_task(name, 6, 30, seed=8)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)


@pytest.mark.parametrize(
    "name,length", [("addition", 80), ("memorization5", 210), ("memorization20", 100), ("temporal_order", 100)]
)
def test_default_sequence_length_is_the_papers(name, length):
    assert D.rnn_task(name, 2).seq_len == length


def test_predictions_of_the_wrong_shape_are_refused():
    t = D.rnn_task("addition", 5, 10)
    with pytest.raises(ValueError, match=r"addition: predictions must have shape \(5, 1\).*got \(5,\)"):
        t.error(torch.zeros(5), t.targets)


@pytest.mark.parametrize(
    "args,kwargs,message",
    [
        (("xor", 4, 10), {}, r"unknown RNN task 'xor'; known: addition, multiplication, memorization5"),
        (("memorization", 4, 10), {"bits": 8}, "memorization bits must be 5 or 20, got 8"),
        (("addition", 4, 10), {"bits": 5}, "bits is only for name='memorization'"),
        (("temporal_order", 4, 10), {}, "seq_len for temporal_order must be an integer >= 20, got 10"),
        (("addition", 0, 10), {}, "n must be an integer >= 1, got 0"),
    ],
)
def test_bad_arguments_are_named(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        D.rnn_task(*args, **kwargs)
