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


def test_blocks_of_any_model_are_discovered_and_exact():
    class Block(nn.Module):  # a residual unit: one block, not opened
        def __init__(self):
            super().__init__()
            self.lin, self.act = nn.Linear(6, 6), nn.Tanh()

        def forward(self, x):
            return x + self.act(self.lin(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Linear(5, 6), nn.ReLU())  # a chain: opened
            self.res = Block()
            self.act = nn.Tanh()  # parameter-free, fed by res: joins its block; used twice
            self.head = nn.Linear(6, 3)

        def forward(self, x):
            h = self.act(self.res(self.stem(x)))
            return self.head(self.act(h * 2))  # a functional op in between: head starts fresh

    torch.manual_seed(0)
    net = Net().double()
    x = torch.randn(5, 5, dtype=torch.float64)
    spectra = D.layer_jacobian_singular_values(net, x, examples=3, method="exact")
    assert [s.name for s in spectra] == ["stem.0", "res", "head"]
    assert all(s.method == "exact" for s in spectra)
    h = net.stem(x[1:2])
    j = torch.autograd.functional.jacobian(lambda v: net.act(net.res(v[None]))[0], h[0])
    torch.testing.assert_close(spectra[1].singular_values[1], torch.linalg.svdvals(j))
    assert spectra[1].shape == (6, 6) and spectra[2].shape == (3, 6)


def test_named_blocks_and_their_errors():
    net = tanh_mlp("glorot_uniform", width=8, depth=2)
    x = torch.randn(4, 64)
    named = D.layer_jacobian_singular_values(net, x, examples=2, blocks=["2"])
    j = torch.autograd.functional.jacobian(net[2], net[1](net[0](x[0])).detach())
    torch.testing.assert_close(named[0].singular_values[0], torch.linalg.svdvals(j.double()), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no module named 'nope'"):
        D.layer_jacobian_singular_values(net, x, blocks=["nope"])
    for bad, msg in (
        (dict(method="svd"), "method must be one of auto, exact, lanczos, got 'svd'"),
        (dict(examples=0), "examples must be a positive integer, got 0"),
        (dict(lanczos_steps=0), "lanczos_steps must be a positive integer"),
    ):
        with pytest.raises(ValueError, match=msg):
            D.layer_jacobian_singular_values(net, x, **bad)


def test_batchnorm_in_train_mode_uses_the_batch_statistics_and_changes_nothing():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Dropout(0.5), nn.Linear(3, 2)).double().train()
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([1.0, -2.0, 0.5]))
    x = torch.randn(16, 4, dtype=torch.float64) * 3 + 1
    state = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    spectra = D.layer_jacobian_singular_values(net, x, examples=4)
    assert [s.name for s in spectra] == ["0", "1", "3"]  # the dropout joins the BatchNorm block
    a = net[0](x).detach()
    want = (net[1].weight.detach().abs() / (a.var(0, unbiased=False) + net[1].eps).sqrt()).sort(descending=True).values
    for k in range(4):  # every example: diag(gamma / sqrt(batch var + eps)), dropout off
        torch.testing.assert_close(spectra[1].singular_values[k], want)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())  # running stats, num_batches_tracked
    assert torch.equal(torch.get_rng_state(), rng) and all(m.training for m in net.modules())


def test_token_models_are_measured_from_the_embedding_output_on():
    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.rnn, self.head = nn.Embedding(11, 4), nn.GRU(4, 5, batch_first=True), nn.Linear(5, 11)

        def forward(self, ids):
            return self.head(self.rnn(self.emb(ids))[0])

    torch.manual_seed(0)
    lm = LM().double()
    ids = torch.randint(0, 11, (3, 7))
    spectra = D.layer_jacobian_singular_values(lm, ids, examples=2)
    assert [s.name for s in spectra] == ["rnn", "head"]
    e = lm.emb(ids[1:2]).detach()
    j = torch.autograd.functional.jacobian(lambda v: lm.rnn(v)[0], e).reshape(35, 28)
    torch.testing.assert_close(spectra[0].singular_values[1], torch.linalg.svdvals(j))
    with pytest.raises(ValueError, match="needs a floating-point tensor input, got a torch.int64 tensor"):
        D.input_output_jacobian_spectrum(lm, ids)


def test_lanczos_estimate_matches_the_exact_spectrum_and_says_so():
    torch.manual_seed(0)
    lin = nn.Linear(600, 700).double()  # every example's Jacobian is W: 700 x 600
    x = torch.randn(3, 600, dtype=torch.float64)
    exact = torch.linalg.svdvals(lin.weight.detach())
    est = D.layer_jacobian_singular_values(nn.Sequential(lin), x, examples=3)[0]  # 420,000 entries > 2**18
    assert est.method == "lanczos" and est.shape == (700, 600)
    assert est.singular_values.shape == est.weights.shape == (3, 30)
    torch.testing.assert_close(est.weights.sum(1), torch.ones(3, dtype=torch.float64))
    assert est.max == pytest.approx(float(exact.max()), rel=1e-6)  # Lanczos finds the extremes first
    assert est.mean == pytest.approx(float(exact.mean()), rel=0.03)
    assert est.std == pytest.approx(float(exact.std()), rel=0.1)
    assert "lanczos" in repr(est)
    forced = D.layer_jacobian_singular_values(nn.Sequential(lin), x, examples=1, method="exact")[0]
    torch.testing.assert_close(forced.singular_values[0], exact)
    small = D.layer_jacobian_singular_values(nn.Sequential(lin), x, examples=1, max_entries=10**6)[0]
    assert small.method == "exact"
    io = D.input_output_jacobian_spectrum(lin, x, examples=2, method="lanczos", lanczos_steps=40)
    assert io.method == "lanczos" and io.mean == pytest.approx(float(exact.mean()), rel=0.03)


def test_no_jacobian_block_is_started_that_would_end_past_the_budget(monkeypatch):
    """A fake clock: every forward call of a block takes 1 ms, nothing else takes time."""
    import types

    from inertia.diagnostics import jacobians as J

    clock = [0.0]
    monkeypatch.setattr(J, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))

    class Slow(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            clock[0] += 1e-3
            return torch.tanh(self.lin(x))

    torch.manual_seed(0)
    model = nn.Sequential(*[Slow() for _ in range(12)])
    x = torch.randn(4, 4)

    def timed(seconds):
        clock[0] = 0.0
        spectra = D.layer_jacobian_singular_values(model, x, examples=2, seconds=seconds)
        return spectra, clock[0]

    full, took_all = timed(None)
    first, took_first = timed(1e-9)  # the set-up and the first block, which always runs
    assert len(first) == 1 and len(first.skipped) == 11 and len(full) == 12
    per_block = (took_all - took_first) / 11
    cut, took = timed(took_first + 3.5 * per_block)  # the budget counts the tracing pass too
    # after the tracing pass and the first block, blocks 2-4 fit in 3.5 x per_block, a 5th would not
    assert len(cut) == 4 and cut.skipped == [str(i) for i in range(4, 12)]
    assert took - took_first == pytest.approx(3 * per_block)


def test_the_loop_of_pullbacks_equals_the_vmapped_one(monkeypatch):
    from inertia.diagnostics import jacobians as J

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4)).double()
    x = torch.randn(3, 6, dtype=torch.float64)
    looped = J._dense(net, x)  # 4 output coordinates: at most LOOP_ROWS, one pullback each
    monkeypatch.setattr(J, "LOOP_ROWS", 0)
    batched = J._dense(net, x)
    explicit = torch.stack([torch.autograd.functional.jacobian(net, x[i]) for i in range(3)])
    assert torch.allclose(looped, batched, atol=1e-14) and torch.allclose(looped, explicit, atol=1e-14)
