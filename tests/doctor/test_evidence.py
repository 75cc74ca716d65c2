"""The doctor's verdicts follow what training does: the trial run, scale-free gradient flow, gated
recurrences, fixes that touch only what they name, and nothing of the model changed."""

import copy

import pytest
import torch
from torch import nn

import inertia
from inertia.doctor import RULES, Finding, Rule
from inertia.doctor.rules import RuleContext, run_rules


def alarms(report, severity=("error", "warning")):
    return [f.code for f in report.findings if f.severity in severity]


class BNConvNet(nn.Module):
    def __init__(self, norm=True):
        super().__init__()
        layers = []
        c = 3
        for _ in range(3):
            layers += [nn.Conv2d(c, 16, 3, padding=1, bias=not norm), nn.BatchNorm2d(16) if norm else nn.Identity()]
            layers += [nn.ReLU()]
            c = 16
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))  # global average pooling


def images(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 8, 8, generator=g) + torch.randn(n, 3, 1, 1, generator=g)
    return x, (x.mean((2, 3)) @ torch.randn(3, 10, generator=g)).argmax(1)


def test_a_batchnorm_convnet_at_the_standard_recipe_gets_no_error():
    torch.manual_seed(0)
    model = BNConvNet()
    report = inertia.doctor(model, *images(), lr=0.1, momentum=0.9, nesterov=True, trial_seconds=120)
    assert "error" not in {f.severity for f in report.findings}, report.findings
    assert report.trial["losses"][-1] < 0.5 * report.trial["losses"][0]


def test_a_huge_learning_rate_is_an_error_found_by_the_trial_run_with_a_runnable_fix():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))
    x, y = torch.randn(128, 10), torch.randint(0, 3, (128,))
    optimizer = inertia.optim.Momentum(model.parameters(), lr=30.0, momentum=0.9, nesterov=True)
    report = inertia.doctor(model, x, y, optimizer=optimizer, trial_seconds=120)
    assert report.top.code == "unstable_lr" and report.top.severity == "error"
    assert "trial run" in report.top.message
    exec(report.top.fix, {"optimizer": optimizer, "model": model})  # runnable as printed
    assert optimizer.param_groups[0]["lr"] < 3.0


def test_global_average_pooling_does_not_raise_a_vanishing_gradient_alarm():
    torch.manual_seed(0)
    model = BNConvNet(norm=False)
    report = inertia.doctor(model, *images())
    rows = [r for r in report.layers if r.grad_ratio is not None]
    assert rows[0].backprop_std < 0.05 * rows[-1].backprop_std  # per-element std: not comparable
    assert "vanishing_gradients" not in alarms(report)


def test_an_lstm_with_large_recurrent_weights_is_not_said_to_explode():
    torch.manual_seed(0)
    lstm = nn.LSTM(4, 16, batch_first=True)
    with torch.no_grad():
        lstm.weight_hh_l0.normal_(0, 1.0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.head = lstm, nn.Linear(16, 1)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    report = inertia.doctor(Net(), torch.randn(32, 10, 4), torch.randn(32, 1))
    assert max(r.spectral_radius or 0 for r in report.layers) > 1.5
    assert "exploding_recurrence" not in [f.code for f in report.findings]


def test_the_exploding_recurrence_fix_changes_only_the_recurrent_weight():
    torch.manual_seed(0)
    model = inertia.models.TanhRNN(2, 16, 1, output="last")
    with torch.no_grad():
        inertia.init.echo_state_(model.weight_hh, spectral_radius=3.0, fan_in=15)
    report = inertia.doctor(model, torch.rand(16, 20, 2), torch.rand(16, 1))
    assert report.top.code == "exploding_recurrence"
    before = copy.deepcopy(model.state_dict())
    exec(report.top.fix, {"model": model, "inertia": inertia, "torch": torch})
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"weight_hh"}
    assert inertia.init.spectral_radius(model.weight_hh.detach()) == pytest.approx(1.1, rel=1e-4)


def test_a_tiny_learning_rate_makes_no_progress_and_the_fix_raises_it():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 3))
    x, y = torch.randn(128, 10), torch.randint(0, 3, (128,))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
    report = inertia.doctor(model, x, y, optimizer=optimizer, trial_seconds=120)
    assert report.top.code == "no_progress" and not report.healthy
    exec(report.top.fix, {"optimizer": optimizer})
    assert optimizer.param_groups[0]["lr"] >= 1e-5


def test_the_doctor_leaves_buffers_modes_and_the_rng_as_they_were():
    torch.manual_seed(0)
    model = nn.Sequential(BNConvNet(), nn.Dropout(0.5))
    before = copy.deepcopy(model.state_dict())
    rng = torch.get_rng_state()
    inertia.doctor(model, *images(), lr=0.1, momentum=0.9, trial_steps=5)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert model.training and torch.equal(rng, torch.get_rng_state())


class RBF(nn.Module):
    """Distances to learned centres through torch.cdist, whose backward has no derivative."""

    def __init__(self, d=6, k=8):
        super().__init__()
        self.centres = nn.Parameter(torch.randn(k, d))

    def forward(self, x):
        return torch.exp(-(torch.cdist(x, self.centres) ** 2))


def test_a_measurement_that_cannot_run_is_reported_as_skipped_not_a_crash():
    torch.manual_seed(0)
    model = nn.Sequential(RBF(), nn.Linear(8, 2))
    report = inertia.doctor(model, torch.randn(16, 6), torch.randn(16, 2))
    why = [s.why for s in report.skipped if s.name == "curvature"]
    assert why and "second derivatives" in why[0] and "_cdist_backward" in why[0] and "use_mm_for_euclid" in why[0]


def test_hardsigmoid_gates_get_curvature_through_an_equivalent_kernel():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Hardsigmoid(), nn.Linear(8, 2)).double()
    x, y = torch.randn(16, 6, dtype=torch.float64) * 3, torch.randn(16, 2, dtype=torch.float64)
    report = inertia.doctor(model, x, y)
    assert not [s for s in report.skipped if s.name == "curvature"] and report.lam_max is not None
    params = list(model.parameters())
    loss = lambda: nn.functional.mse_loss(model(x), y)  # noqa: E731
    names = [n for n, _ in model.named_parameters()]

    def f(*ps):
        return nn.functional.mse_loss(torch.func.functional_call(model, dict(zip(names, ps, strict=True)), (x,)), y)

    with inertia.diagnostics.products.twice_differentiable():  # the dense reference needs it too
        dense = torch.autograd.functional.hessian(f, tuple(params))
    n = sum(p.numel() for p in params)
    h = torch.cat(
        [
            torch.cat([dense[i][j].reshape(params[i].numel(), params[j].numel()) for j in range(len(params))], 1)
            for i in range(len(params))
        ]
    )
    assert h.shape == (n, n)
    top = inertia.diagnostics.hessian_eigenvalues(loss, params, k=1, tol=1e-10, max_iter=n)
    assert float(top.values[0]) == pytest.approx(float(torch.linalg.eigvalsh(h).abs().max()), rel=1e-8)
    assert nn.functional.hardsigmoid is not inertia.diagnostics.products._hardsigmoid  # restored after
    assert "skipped" in report.to_dict() and report.to_dict()["skipped"]


def test_attention_models_get_their_curvature_through_the_math_kernel():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
    model = nn.Sequential(layer, nn.Flatten(), nn.Linear(16 * 5, 2))
    report = inertia.doctor(model, torch.randn(8, 5, 16), torch.randint(0, 2, (8,)))
    assert report.lam_max is not None and not any(s.name == "curvature" for s in report.skipped)


def test_every_rule_is_registered_with_what_it_reads_and_why():
    assert len(RULES.available()) >= 10
    for name in RULES.available():
        r = RULES.get(name)
        assert r.name == name and r.reads and r.threshold and r.justification


def test_a_rule_that_raises_is_skipped_with_why_and_the_others_still_run(monkeypatch):
    def broken(report, ctx):
        raise RuntimeError("boom")

    monkeypatch.setitem(RULES._items, "broken_rule", Rule("broken_rule", ("loss",), "-", "-", broken))
    report = inertia.doctor(nn.Linear(3, 2), torch.randn(4, 3), curvature_checks=False)
    assert any(s.name == "broken_rule" and "boom" in s.why for s in report.skipped)
    assert isinstance(run_rules(report, RuleContext({}, None)), list)
    assert all(isinstance(f, Finding) for f in report.findings)


def test_per_layer_hessian_norms_stop_at_the_curvature_time_budget_and_say_so():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 3))
    x, y = torch.randn(64, 10), torch.randint(0, 3, (64,))
    full = inertia.doctor(model, x, y, lr=0.1, trial_steps=0)
    cut = inertia.doctor(model, x, y, lr=0.1, trial_steps=0, curvature_seconds=1e-9)
    assert all(r.hessian_norm is not None for r in full.layers if r.spectral_radius is None)
    # lam_max is always measured; a budget too small for it cuts its examples, and says so
    assert full.curvature_batch == 64 and cut.curvature_batch == 2 and cut.lam_max > 0
    assert "on 2 examples of 64" in str(cut)
    assert all(r.hessian_norm is None for r in cut.layers)
    skipped = [s for s in cut.skipped if s.name.startswith("Hessian norm of 3 layer")]
    assert skipped and "curvature_seconds" in skipped[0].why
    with pytest.raises(ValueError, match="curvature_seconds"):
        inertia.doctor(model, x, y, curvature_seconds=0)


class SharedReLU(nn.Module):
    """One ReLU module used after both layers, as torchvision's ResNet blocks use theirs."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.head = nn.Linear(10, 32), nn.Linear(32, 32), nn.Linear(32, 3)
        self.relu = nn.ReLU()
        with torch.no_grad():
            self.fc2.weight.mul_(10.0)  # the second call's statistics differ from the first's

    def forward(self, x):
        return self.head(self.relu(self.fc2(self.relu(self.fc1(x)))))


def test_each_call_of_a_shared_activation_module_reports_its_own_statistics():
    torch.manual_seed(0)
    model, x = SharedReLU(), torch.randn(64, 10)
    recs = inertia.diagnostics.layer_stats(model, x)
    acts = {r["layer"]: r for r in recs if r["kind"] == "activation"}
    h1 = torch.relu(model.fc1(x)).detach()
    h2 = torch.relu(model.fc2(h1)).detach()
    assert set(acts) == {"relu", "relu#2"}
    assert acts["relu"]["std"] == pytest.approx(float(h1.std()), rel=1e-5)
    assert acts["relu#2"]["std"] == pytest.approx(float(h2.std()), rel=1e-5)
    report = inertia.doctor(model, x, torch.randint(0, 3, (64,)), trial_steps=0, curvature_checks=False)
    rows = {r.name: r for r in report.layers}
    assert rows["fc1"].act_std == pytest.approx(float(h1.std()), rel=1e-5)
    assert rows["fc2"].act_std == pytest.approx(float(h2.std()), rel=1e-5)
    assert rows["fc1"].activation == rows["fc2"].activation == "ReLU"


class TinyLM(nn.Module):
    """Hugging Face style: model(input_ids=..., attention_mask=...) -> an object with .logits."""

    def __init__(self, vocab=30, d=16):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.mix = nn.Linear(d, d)
        self.act = nn.Tanh()
        self.head = nn.Linear(d, vocab)

    def forward(self, input_ids, attention_mask):
        h = self.act(self.mix(self.emb(input_ids))) * attention_mask[..., None]

        class Out:
            logits = self.head(h)

        return Out()


def lm_loss(logits, labels):
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def test_the_doctor_takes_a_dict_batch_and_an_output_with_logits():
    torch.manual_seed(0)
    model = TinyLM()
    ids = torch.randint(0, 30, (8, 12))
    batch = {"input_ids": ids, "attention_mask": torch.ones(8, 12)}
    report = inertia.doctor(model, batch, ids, loss_fn=lm_loss, lr=0.5, momentum=0.9, trial_seconds=60)
    assert report.loss == pytest.approx(float(lm_loss(model(**batch).logits, ids)), rel=1e-5)
    assert report.trial is not None and report.trial["steps_run"] > 0
    # layer Jacobians from the embedding output on; a dict batch has no single input to differentiate
    assert any(s.name == "input-output Jacobian" for s in report.skipped)
    assert {r.name for r in report.layers if r.jacobian_mean is not None} == {"mix", "head"}
    assert set(report.jacobian_blocks) == {"mix", "head"}
    assert {r.name for r in report.layers} >= {"mix", "head"}


def test_the_doctor_takes_a_tuple_batch():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 8), nn.Linear(3, 8)
            self.out = nn.Linear(8, 2)

        def forward(self, x, z):
            return self.out(torch.tanh(self.a(x) + self.b(z)))

    torch.manual_seed(0)
    x, z, y = torch.randn(16, 4), torch.randn(16, 3), torch.randint(0, 2, (16,))
    report = inertia.doctor(Two(), (x, z), y, lr=0.1, trial_seconds=60)
    assert report.trial["steps_run"] == 150


def test_a_batch_that_is_not_tensors_is_refused():
    with pytest.raises(ValueError, match="inputs must be a tensor, a tuple of tensors"):
        inertia.doctor(nn.Linear(2, 2), [1.0, 2.0])


def test_no_layer_hessian_norm_is_started_that_would_end_past_the_curvature_budget(monkeypatch):
    """A fake clock: each per-layer Hessian norm takes 1 s, nothing else takes time."""
    import types

    from inertia.diagnostics import curvature
    from inertia.doctor import measure

    clock = [0.0]
    monkeypatch.setattr(measure, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    real = curvature.hessian_frobenius_norm

    def slow(*a, **k):
        clock[0] += 1.0
        return real(*a, **k)

    monkeypatch.setattr(measure.curvature, "hessian_frobenius_norm", slow)
    torch.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(5) for m in (nn.Linear(8, 8), nn.Tanh())], nn.Linear(8, 3))
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    report = inertia.doctor(model, x, y, lr=0.1, trial_steps=0, curvature_seconds=3.5)
    measured = [r.name for r in report.layers if r.hessian_norm is not None]
    # norms end at 1, 2, 3 s; a 4th would end at 4 s > 3.5 s
    assert len(measured) == 3
    assert any(s.name.startswith("Hessian norm of 3 layer") for s in report.skipped)


def test_lam_max_takes_no_more_products_than_fit_in_half_the_curvature_budget(monkeypatch):
    """A fake clock: the one timed forward/backward pass takes 0.1 s, so a product takes 0.3 s."""
    import types

    from inertia.doctor import measure

    clock = [0.0]

    def tick():
        clock[0] += 0.1  # the two readings around the pass are 0.1 s apart
        return clock[0]

    monkeypatch.setattr(measure, "time", types.SimpleNamespace(perf_counter=tick))
    model = nn.Linear(3, 1)
    x = torch.randn(64, 3)
    ex = types.SimpleNamespace(
        inputs=x, model=model, params=list(model.parameters()), batch_loss=lambda m, n: m(x[:n]).square().sum()
    )
    # 12 products (3.6 s) fit in 20 s; 66 would, capped at 40
    assert measure._curvature_batch(ex, 40.0) == (64, 64, measure.LAM_MAX_ITER)
    assert measure._curvature_batch(ex, 10.0) == (64, 64, 16)  # 5 s / 0.3 s
    # 12 products do not fit in 2 s: the examples are cut (to 35), and the products stay at 12
    assert measure._curvature_batch(ex, 4.0) == (35, 64, measure.LAM_MAX_PRODUCTS)
    assert measure._curvature_batch(ex, None) == (64, 64, measure.LAM_MAX_ITER)
