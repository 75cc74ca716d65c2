"""Layer statistics and Jacobian spectra: checked against direct computation, and Glorot &
Bengio's standard-vs-normalized contrast."""

import pytest
import torch
from torch import nn

import inertia.init as I
from inertia import diagnostics as D


def tanh_mlp(scheme, width=100, depth=5, seed=0):
    torch.manual_seed(seed)
    layers = []
    for i in range(depth):
        layers += [nn.Linear(64 if i == 0 else width, width), nn.Tanh()]
    m = nn.Sequential(*layers, nn.Linear(width, 9))
    I.apply(m, scheme, generator=torch.Generator().manual_seed(seed))
    return m


def test_activation_statistics_equal_direct_computation():
    m = tanh_mlp("glorot_uniform")
    x = torch.randn(128, 64)
    recs = D.layer_stats(m, x)
    h = m[1](m[0](x)).detach()
    r = next(r for r in recs if r["layer"] == "1" and r["kind"] == "activation")
    assert r["mean"] == pytest.approx(float(h.mean()), abs=1e-6)
    assert r["std"] == pytest.approx(float(h.std()), rel=1e-5)
    sample = h.reshape(-1)[:: max(1, h.numel() // 2048)]
    assert r["saturated"] == pytest.approx(float((sample.abs() > 0.99).float().mean()))
    assert r["p98"] == pytest.approx(float(torch.quantile(sample, 0.98)), abs=0.02)
    assert sum(r["hist"]) == sample.numel()


def test_backprop_gradient_is_the_gradient_at_the_preactivation():
    m = tanh_mlp("glorot_uniform")
    x, y = torch.randn(32, 64), torch.randint(0, 9, (32,))
    recs = D.layer_stats(m, x, nn.functional.cross_entropy, y)
    # reference: gradient of the loss w.r.t. layer 2's output (a pre-activation)
    a2 = None

    def keep(_m, _i, out):
        nonlocal a2
        out.retain_grad()
        a2 = out

    h = m[2].register_forward_hook(keep)
    m.zero_grad()
    nn.functional.cross_entropy(m(x), y).backward()
    h.remove()
    r = next(r for r in recs if r["layer"] == "2" and r["kind"] == "backprop_grad")
    assert r["std"] == pytest.approx(float(a2.grad.std()), rel=1e-5)
    w = next(r for r in recs if r["layer"] == "2.weight" and r["kind"] == "weight_grad")
    assert w["std"] == pytest.approx(float(m[2].weight.grad.std()), rel=1e-5)


def test_standard_init_shrinks_backprop_gradients_toward_the_input_normalized_does_not():
    # Glorot & Bengio 2010, Figure 7: with 5 tanh layers the back-propagated gradient variance
    # shrinks toward the input under the standard init and stays level under the normalized one.
    ratios = {}
    for scheme in ("standard_uniform", "glorot_uniform"):
        m = tanh_mlp(scheme, width=200)
        x, y = torch.rand(128, 64), torch.randint(0, 9, (128,))
        recs = D.layer_stats(m, x, nn.functional.cross_entropy, y)
        g = {r["layer"]: r["std"] for r in recs if r["kind"] == "backprop_grad"}
        ratios[scheme] = g["0"] / g["8"]
    assert ratios["standard_uniform"] < 0.3 < ratios["glorot_uniform"]


def test_preactivations_are_recorded_when_asked_or_when_there_are_no_activation_modules():
    m = tanh_mlp("glorot_uniform")
    recs = D.layer_stats(m, torch.randn(8, 64), kinds=["preactivation"])
    assert {r["kind"] for r in recs} == {"preactivation"}
    lin = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    assert "preactivation" in {r["kind"] for r in D.layer_stats(lin, torch.randn(8, 4))}
    with pytest.raises(ValueError, match=r"unknown kinds \['grads'\]"):
        D.LayerStats(m, kinds=["grads"])


def test_hooks_are_removable_and_inactive_steps_record_nothing():
    m = tanh_mlp("glorot_uniform")
    ls = D.LayerStats(m)
    ls.active = False
    m(torch.randn(4, 64)).sum().backward()
    assert ls.collect(0) == []
    ls.remove()
    ls.active = True
    m(torch.randn(4, 64))
    assert ls.collect(1) == []


def test_layer_jacobian_singular_values_match_explicit_jacobians():
    m = tanh_mlp("glorot_uniform", width=20, depth=2)
    x = torch.randn(3, 64)
    spectra = D.layer_jacobian_singular_values(m, x, examples=3)
    assert [s.name for s in spectra] == ["0", "2", "4"]
    h0 = x[1]
    j = torch.autograd.functional.jacobian(lambda v: m[1](m[0](v)), h0)
    torch.testing.assert_close(spectra[0].singular_values[1], torch.linalg.svdvals(j.double()), rtol=1e-5, atol=1e-6)


def test_glorot_mean_jacobian_singular_value_about_half_vs_above_two_thirds():
    means = {}
    for scheme in ("standard_uniform", "glorot_uniform"):
        m = tanh_mlp(scheme, width=200)
        spectra = D.layer_jacobian_singular_values(m, torch.rand(16, 64))
        means[scheme] = sum(s.mean for s in spectra[1:-1]) / len(spectra[1:-1])  # hidden-to-hidden
    assert 0.4 < means["standard_uniform"] < 0.55
    assert 0.65 < means["glorot_uniform"] < 0.9


def test_input_output_jacobian_of_a_linear_map_is_its_singular_values():
    lin = nn.Linear(6, 4).double()
    s = D.input_output_jacobian_spectrum(lin, torch.randn(2, 6, dtype=torch.float64), examples=2)
    torch.testing.assert_close(s.singular_values[0], torch.linalg.svdvals(lin.weight.detach()))


def test_non_sequential_model_needs_blocks():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)

        def forward(self, x):
            return self.a(x)

    with pytest.raises(ValueError, match="need an nn.Sequential"):
        D.layer_jacobian_singular_values(Net(), torch.randn(2, 3))
