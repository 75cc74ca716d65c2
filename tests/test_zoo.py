"""init, diagnostics, the Monitor and the doctor on the zoo of tests/zoo.py (ResNet, MobileNet,
VGG, GPT and BERT style transformers, LSTM and GRU language models, a ConvTranspose decoder, Conv1d
and Conv3d nets), in train and in eval mode: no crash (or a clear error where torch has no second
derivative), and nothing of the model changed by measuring it."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch

import inertia
import inertia.init as I
from inertia import diagnostics as D

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zoo import ZOO  # noqa: E402

CASES = [(name, mode) for name in ZOO for mode in ("train", "eval")]
NO_SECOND_DERIVATIVE = {"mobilenet": "hardsigmoid"}  # squeeze-excite's gate: torch has no double backward


def build(name, mode):
    torch.manual_seed(0)
    model, x, y, loss = ZOO[name]()
    model.train(mode == "train")
    return model, x, y, loss


def snapshot(model):
    return (
        {k: v.detach().clone() for k, v in model.state_dict().items()},
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        [m.training for m in model.modules()],
        torch.get_rng_state(),
    )


def same(a, b):
    sa, ga, ma, ra = a
    sb, gb, mb, rb = b
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), "parameters or buffers changed"
    assert all((x is None and y is None) or torch.equal(x, y) for x, y in zip(ga, gb, strict=True)), "grads changed"
    assert ma == mb, "modes changed"
    assert torch.equal(ra, rb), "the global RNG moved"


@pytest.mark.parametrize("name,mode", CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_init_apply_reports_every_parameter_once(name, mode):
    model, *_ = build(name, mode)
    report = I.apply(model, "glorot_uniform", generator=torch.Generator().manual_seed(0))
    names = [r["name"] for r in report] + [t for r in report for t in r.get("tied", [])]
    assert sorted(names) == sorted({n for n, _ in model.named_parameters(remove_duplicate=False)})
    for m in model.modules():
        if isinstance(m, torch.nn.Embedding) and m.padding_idx is not None:
            assert not m.weight[m.padding_idx].any()


@pytest.mark.parametrize("name,mode", CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_layer_statistics_and_curvature_leave_the_model_as_it_was(name, mode):
    model, x, y, loss = build(name, mode)
    before = snapshot(model)
    with D.state.preserved(model):  # layer_stats' own backward leaves .grad as any backward does
        records = D.layer_stats(model, x, loss, y)
    assert records and all(r["numel"] > 0 for r in records)
    params = [p for p in model.parameters() if p.requires_grad]
    with D.state.preserved(model):
        if name in NO_SECOND_DERIVATIVE:
            with pytest.raises(ValueError, match=NO_SECOND_DERIVATIVE[name]):
                D.hessian_eigenvalues(lambda: loss(model(x), y), params, k=1, max_iter=8)
        else:
            top = D.hessian_eigenvalues(lambda: loss(model(x), y), params, k=1, max_iter=8)
            assert torch.isfinite(top.values).all()
    same(before, snapshot(model))


@pytest.mark.parametrize("name,mode", CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_the_doctor_runs_and_changes_nothing(name, mode):
    model, x, y, loss = build(name, mode)
    before = snapshot(model)
    twin = copy.deepcopy(model)
    report = inertia.doctor(model, x, y, loss_fn=loss, lr=0.01, momentum=0.9, trial_steps=5, trial_seconds=30)
    same(before, snapshot(model))
    assert report.loss is not None and report.layers
    assert all(isinstance(s.why, str) and s.why for s in report.skipped)
    if name in NO_SECOND_DERIVATIVE:
        assert any("curvature" in s.name and NO_SECOND_DERIVATIVE[name] in s.why for s in report.skipped)
    assert [type(m) for m in twin.modules()] == [type(m) for m in model.modules()]
