"""Layer statistics stay accurate when the spread is small next to the mean, and record (never
raise on) NaN, inf and empty batches, so a diverging run is reported as diverged."""

import json
import math

import pytest
import torch
from torch import nn

from inertia import diagnostics as D
from inertia.experiments.config import from_dict
from inertia.experiments.train import train


def reference_std(x: torch.Tensor) -> float:
    """Two-pass std in float64 of the same float32 values."""
    x = x.double().reshape(-1)
    return float(((x - x.mean()) ** 2).sum() / (x.numel() - 1)) ** 0.5


def test_std_of_a_small_spread_around_a_large_mean_is_accurate():
    x = 0.5 + 1e-4 * torch.randn(100_000, generator=torch.Generator().manual_seed(0))
    r = D.tensor_stats(x)
    # sums of x - c (c: the sample mean) in float32 by torch's cascade summation: relative error a
    # small multiple of 2^-24 (the uncentred E[x^2] - E[x]^2 in float32 reports std 0 here)
    assert r["std"] == pytest.approx(reference_std(x), rel=1e-6)
    assert r["mean"] == pytest.approx(float(x.double().mean()), rel=1e-7)


@pytest.mark.parametrize(
    "make",
    [
        lambda g: torch.randn(784_000, generator=g) * 1e-3,
        lambda g: torch.tanh(2 * torch.randn(256, 1000, generator=g) + 0.3),
        lambda g: 1e3 + torch.randn(2_500_000, generator=g),
        lambda g: torch.randn(1_000_000, generator=g) ** 5,  # heavy tails
        lambda g: torch.rand(3, 5, generator=g),
        lambda g: torch.randn(1, generator=g),
    ],
    ids=["weight-grad", "tanh", "offset", "heavy", "tiny", "one"],
)
def test_mean_and_std_match_float64_two_pass(make):
    x = make(torch.Generator().manual_seed(0))
    r = D.tensor_stats(x)
    ref = x.double().reshape(-1)
    assert r["mean"] == pytest.approx(float(ref.mean()), rel=1e-6, abs=1e-7 * float(ref.abs().max()))
    assert r["std"] == pytest.approx(float(ref.std(correction=1)) if ref.numel() > 1 else 0.0, rel=1e-6)


def test_values_whose_squares_overflow_float32_take_the_exact_path():
    x = 1e30 * torch.randn(10_000, generator=torch.Generator().manual_seed(0))
    r = D.tensor_stats(x)
    assert r["nonfinite"] == 0 and math.isfinite(r["std"])
    assert r["std"] == pytest.approx(float(x.double().std()), rel=1e-9)


def test_float16_and_bfloat16_are_measured_in_float32():
    x = torch.randn(4096, generator=torch.Generator().manual_seed(0))
    for dtype in (torch.float16, torch.bfloat16):
        r = D.tensor_stats(x.to(dtype))
        ref = x.to(dtype).double()
        assert r["std"] == pytest.approx(float(ref.std()), rel=1e-6)
        assert sum(r["hist"]) == 2048 and r["numel"] == 4096


def test_saturated_sigmoid_layer_reports_its_nonzero_spread():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 256), nn.Sigmoid())
    with torch.no_grad():
        m[0].weight.normal_(0.0, 0.01)
        m[0].bias.fill_(12.0)  # sigmoid(12) = 1 - 6e-6: every unit saturated
    x = torch.randn(512, 4)
    r = next(r for r in D.layer_stats(m, x) if r["kind"] == "activation")
    h = m(x).detach()
    assert r["saturated"] == 1.0
    assert reference_std(h) > 0
    assert r["std"] == pytest.approx(reference_std(h), rel=1e-6)


def test_nonfinite_elements_are_counted_and_left_out_of_the_statistics():
    x = torch.tensor([1.0, 2.0, float("nan"), 3.0, float("inf"), float("-inf")])
    r = D.tensor_stats(x)
    assert r["numel"] == 6 and r["nonfinite"] == 3
    assert r["mean"] == pytest.approx(2.0) and r["std"] == pytest.approx(1.0)
    assert sum(r["hist"]) == 3 and r["hist_range"] == [1.0, 3.0]


def test_all_nonfinite_tensor_gives_nan_statistics_without_a_histogram():
    r = D.tensor_stats(torch.full((10,), float("nan")))
    assert r["nonfinite"] == 10 and math.isnan(r["mean"]) and math.isnan(r["std"]) and "hist" not in r


def test_finite_tensor_records_zero_nonfinite():
    assert D.tensor_stats(torch.randn(100))["nonfinite"] == 0


def test_empty_batch_gives_nan_statistics_instead_of_dividing_by_zero():
    m = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    recs = D.layer_stats(m, torch.empty(0, 3), lambda out: out.sum())
    per_example = [r for r in recs if r["kind"] in ("activation", "backprop_grad")]
    assert per_example and all(r["numel"] == 0 and math.isnan(r["std"]) for r in per_example)
    assert all(r["std"] == 0.0 for r in recs if r["kind"] == "weight_grad")  # a zero gradient, not empty


def test_constant_tensor_has_a_histogram_in_one_bin():
    r = D.tensor_stats(torch.full((100,), 1e6), bins=10)
    assert r["std"] == 0.0 and r["hist"] == [100] + [0] * 9


def test_hooks_record_nan_activations_and_gradients_without_raising():
    m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    with torch.no_grad():
        m[0].weight[0, 0] = float("nan")
    recs = D.layer_stats(m, torch.randn(8, 3), lambda out: out.sum())
    act = next(r for r in recs if r["layer"] == "1" and r["kind"] == "activation")
    assert act["nonfinite"] == 8  # unit 0 of every example
    assert {r["kind"] for r in recs} == {"activation", "backprop_grad", "weight_grad"}


@pytest.mark.slow
def test_a_run_diverging_with_layer_statistics_on_is_marked_diverged(tmp_path):
    cfg = from_dict(
        dict(
            experiment="div",
            data={"name": "deep_linear_regression", "d_in": 32, "n": 16, "d_out": 4},
            model={"name": "deep_linear", "d_in": 32, "width": 16, "depth": 3, "d_out": 4},
            init={"scheme": "normal", "std": 1.0},
            steps=200,
            batch_size=16,
            eval_every=50,
            optimizer={"lr": 10.0},
            monitor={"quantities": ["layer_stats"], "every": 1},
        )
    )
    res = train(cfg, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert res.status == summary["status"] == "diverged", summary["message"]
    assert (tmp_path / "run" / "diagnostics.jsonl").read_text()  # the steps before it stay recorded


def test_hooks_leave_outputs_and_gradients_bit_identical():
    def run(watch: bool):
        torch.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 8), nn.Sigmoid(), nn.Linear(8, 8), nn.ReLU(inplace=True), nn.Linear(8, 3))
        x = torch.randn(5, 6)
        ls = D.LayerStats(m, kinds=list(D.LayerStats.KINDS)) if watch else None
        out = m(x)
        out.square().sum().backward()
        if ls is not None:
            assert ls.collect(0)
            ls.remove()
        return out.detach(), [p.grad for p in m.parameters()]

    (out0, grads0), (out1, grads1) = run(False), run(True)
    assert torch.equal(out0, out1)
    assert all(torch.equal(a, b) for a, b in zip(grads0, grads1, strict=False))


@pytest.mark.parametrize(
    "x",
    [
        torch.randn(50_000, generator=torch.Generator().manual_seed(1)),
        0.5 + 1e-4 * torch.randn(10_000, generator=torch.Generator().manual_seed(2)),
        torch.tensor([1.0, float("nan"), 3.0, float("inf"), 2.0]),
        torch.full((7,), float("nan")),
        torch.empty(0),
    ],
    ids=["normal", "offset", "nonfinite", "all-nan", "empty"],
)
def test_the_accelerator_path_gives_the_cpu_path_statistics(x):
    """The exact float64 path (what a GPU runs, with no host sync) and the CPU's float32 sums agree."""
    from inertia.diagnostics.layers import _measure, _record, _summaries

    def stats(exact):
        n, mom, sample = _measure(x, 2048, exact=exact)
        return _record(n, _summaries([mom], [sample], [0], 20, True)[0], 0, True)

    fast, slow = stats(False), stats(True)
    assert fast.keys() == slow.keys()
    for key in fast:
        a, b = fast[key], slow[key]
        if isinstance(a, float) and math.isnan(a):
            assert math.isnan(b), key
        else:  # a mean near 0 is compared on the scale of the spread
            assert a == pytest.approx(b, rel=1e-6, abs=1e-6 * slow["std"] if key == "mean" else 0), key


def test_collect_summarizes_every_layer_in_one_batched_pass(monkeypatch):
    from inertia.diagnostics import layers

    calls = []
    real = layers._summaries
    monkeypatch.setattr(layers, "_summaries", lambda *a: calls.append(len(a[0])) or real(*a))
    m = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 8), nn.Sigmoid(), nn.Linear(8, 2))
    with D.LayerStats(m) as ls:
        m(torch.randn(4, 3)).sum().backward()
        recs = ls.collect(0)
    assert calls == [len(recs)] and len(recs) == 2 + 3 + 3  # activations, backprop and weight grads


def _summary_inputs(seed: int):
    """Moments and samples of a layer batch with every special case: NaN, +-inf, an empty and
    an all-NaN tensor, a constant, exact zeros (ReLU), values on the saturation bounds, a small
    spread far from 0, float64, and samples of different sizes."""
    from inertia.diagnostics.layers import _measure

    g = torch.Generator().manual_seed(seed)
    xs = [
        torch.tanh(2 * torch.randn(256, 1000, generator=g)),
        torch.sigmoid(4 * torch.randn(256, 300, generator=g)),
        torch.relu(torch.randn(999, generator=g)),
        torch.tensor([0.99, -0.99, 0.9, -0.9, 0.01, 0.0, -0.0, 1.0, float("nan"), float("inf"), -float("inf")]),
        torch.full((7,), float("nan")),
        torch.empty(0),
        torch.full((5000,), 3.25),
        0.5 + 1e-4 * torch.randn(20_000, generator=g),
        torch.randn(4097, generator=g, dtype=torch.float64) ** 3,
        torch.softmax(torch.randn(8, 50, generator=g), 1) * 0.9,
    ]
    ms = [_measure(x, 2048) for x in xs]
    return [m[1] for m in ms], [m[2] for m in ms], [2, 1, 4, 2, 0, 0, 3, 1, 0, 3]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("histogram", [True, False])
def test_the_host_summary_equals_the_device_summary_bit_for_bit(seed, histogram):
    """numpy's sort on the CPU and the device path's topk and scatter_add give the same numbers."""
    import numpy as np

    from inertia.diagnostics.layers import _summaries_device, _summaries_host

    moments, samples, codes = _summary_inputs(seed)
    host = np.array(_summaries_host(moments, samples, codes, 20, histogram))
    device = np.array(_summaries_device(moments, samples, codes, 20, histogram))
    assert host.shape == device.shape
    np.testing.assert_array_equal(host, device)  # NaN where NaN, every other value identical


def test_the_cpu_summary_goes_through_the_host_path(monkeypatch):
    from inertia.diagnostics import layers

    used = []
    real = layers._summaries_host
    monkeypatch.setattr(layers, "_summaries_host", lambda *a: used.append(1) or real(*a))
    D.tensor_stats(torch.randn(100))
    assert used == [1]
