"""inertia.doctor: each known-bad model gets the right top finding, each good one none."""

import json

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import inertia.init as I
from inertia import models as M
from inertia.cli import app
from inertia.doctor import doctor, recognize_scheme, stability_bound


def mlp(act, scheme, depth=5, width=256):
    torch.manual_seed(0)
    m = M.mlp([100] + [width] * depth + [10], act)
    I.apply(m, scheme, generator=torch.Generator().manual_seed(0))
    return m


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(256, 100, generator=g), torch.randint(0, 10, (256,), generator=g)


def codes(report):
    return [f.code for f in report.findings if f.severity in ("error", "warning")]


def test_tanh_mlp_with_standard_init_shrinks_backprop_but_not_weight_gradients(batch):
    # Glorot & Bengio 2010: with the standard init the back-propagated gradients shrink toward the
    # input (Figure 7) while the weight gradients stay about the same in every layer (their eq. 14);
    # the verdict benchmark's tanh nets with this init train, so it is not a vanishing-gradient alarm
    r = doctor(mlp("tanh", "standard_uniform"), *batch)
    assert r.layers[0].backprop_std / r.layers[-1].backprop_std < 0.02
    assert 0.05 < r.layers[0].grad_ratio / r.layers[-1].grad_ratio < 1
    assert "vanishing_gradients" not in codes(r)


def test_sigmoid_mlp_with_standard_init_has_vanishing_gradients_and_top_saturation(batch):
    r = doctor(mlp("sigmoid", "standard_uniform"), *batch)
    assert r.top.code == "vanishing_gradients"
    assert "sigmoid_top_saturation" in codes(r)


def test_relu_mlp_with_std_001_has_vanishing_signal(batch):
    r = doctor(mlp("relu", ("normal", {"std": 0.01})), *batch)
    assert r.top.code == "vanishing_activations"
    assert "he_normal" in r.top.fix


@pytest.mark.parametrize("scheme", ["he_normal", "glorot_uniform"])
def test_relu_mlp_with_glorot_or_he_is_healthy(batch, scheme):
    r = doctor(mlp("relu", scheme), *batch)
    assert r.healthy, [f.message for f in r.findings]


def test_tanh_mlp_with_normalized_init_is_healthy(batch):
    assert doctor(mlp("tanh", "glorot_uniform"), *batch).healthy


def deep_linear(scheme):
    torch.manual_seed(0)
    net = nn.Sequential(*[nn.Linear(32, 32, bias=False) for _ in range(64)]).double()
    I.apply(net, scheme, generator=torch.Generator().manual_seed(0))
    return net


def test_deep_linear_gaussian_depth_64_width_32_has_an_ill_conditioned_jacobian():
    x, y = torch.randn(64, 32, dtype=torch.float64), torch.randn(64, 32, dtype=torch.float64)
    r = doctor(deep_linear(("normal", {"std": 32**-0.5})), x, y)
    assert r.top.code == "ill_conditioned_jacobian"
    assert "orthogonal" in r.top.fix
    assert r.input_output_condition > 1e6


@pytest.mark.slow
def test_deep_linear_orthogonal_is_healthy():
    x, y = torch.randn(64, 32, dtype=torch.float64), torch.randn(64, 32, dtype=torch.float64)
    r = doctor(deep_linear("orthogonal"), x, y)
    assert r.healthy, [f.message for f in r.findings]
    assert r.input_output_condition == pytest.approx(1.0, abs=1e-6)


def rnn(radius):
    torch.manual_seed(0)
    net = M.TanhRNN(2, 50, 1, output="last")
    I.apply(
        net,
        "normal",
        rules={"weight_hh": ("echo_state", {"spectral_radius": radius}), "weight_ih": ("normal", {"std": 0.1})},
        generator=torch.Generator().manual_seed(0),
    )
    return net


def test_tanh_rnn_with_spectral_radius_3_explodes():
    r = doctor(rnn(3.0), torch.rand(32, 30, 2), torch.rand(32, 1))
    assert r.top.code == "exploding_recurrence"
    assert "1.1" in r.top.fix
    radius = next(x.spectral_radius for x in r.layers if x.spectral_radius is not None)
    assert radius == pytest.approx(3.0, rel=1e-4)


def test_tanh_rnn_with_spectral_radius_1_1_is_healthy():
    assert doctor(rnn(1.1), torch.rand(32, 30, 2), torch.rand(32, 1)).healthy


@pytest.mark.slow
def test_lr_above_the_momentum_bound_is_flagged_and_below_is_not(batch):
    m = mlp("tanh", "glorot_uniform")
    probe = doctor(m, *batch, lr=0.1, momentum=0.9, nesterov=True)
    lr_max = probe.stability["max_stable_lr"]
    assert probe.stability["bound"] == pytest.approx(2 * 1.9 / 2.8)
    above = doctor(m, *batch, lr=1.5 * lr_max, momentum=0.9, nesterov=True)
    below = doctor(m, *batch, lr=0.5 * lr_max, momentum=0.9, nesterov=True)
    assert above.top.code == "unstable_lr"
    assert "unstable_lr" not in codes(below)


def test_optimizer_hyperparameters_are_read_from_the_optimizer(batch):
    from inertia.optim import Momentum

    m = mlp("tanh", "glorot_uniform")
    r = doctor(m, *batch, optimizer=Momentum(m.parameters(), lr=0.05, momentum=0.99))
    assert r.stability["method"] == "cm" and r.stability["momentum"] == 0.99


def test_stability_bounds_on_a_quadratic():
    assert stability_bound("gd", 0.0) == 2.0
    assert stability_bound("cm", 0.9) == pytest.approx(3.8)
    assert stability_bound("nag", 0.9) == pytest.approx(3.8 / 2.8)


@pytest.mark.parametrize(
    "scheme,label",
    [
        ("glorot_uniform", "normalized"),
        ("he_normal", "He"),
        ("lecun_normal", "LeCun"),
        ("standard_uniform", "standard"),
        ("orthogonal", "orthogonal"),
        ("sparse", "sparse"),
    ],
)
def test_recognizes_the_init_scheme(scheme, label):
    w = torch.empty(300, 400)
    I.get(scheme)(w, generator=torch.Generator().manual_seed(0))
    assert label in recognize_scheme(w, 400, 300)[0]


def test_torch_default_linear_init_is_recognized_as_standard():
    assert "torch default" in recognize_scheme(nn.Linear(400, 300).weight, 400, 300)[0]


def test_doctor_does_not_leave_gradients_behind(batch):
    m = mlp("tanh", "glorot_uniform")
    doctor(m, *batch)
    assert all(p.grad is None for p in m.parameters())


def test_model_without_parameters_is_rejected():
    with pytest.raises(ValueError, match="no trainable parameters"):
        doctor(nn.Tanh(), torch.randn(4, 3))


def test_wrong_input_shape_is_explained():
    with pytest.raises(ValueError, match=r"model\(inputs\) failed for inputs of shape \(4, 3\)"):
        doctor(nn.Linear(5, 2), torch.randn(4, 3))


@pytest.mark.slow
def test_report_json_and_html(tmp_path, batch):
    r = doctor(mlp("sigmoid", "standard_uniform"), *batch)
    d = json.loads(r.to_json())
    assert d["findings"][0]["code"] == "vanishing_gradients" and len(d["layers"]) == 6
    r.to_html(tmp_path / "d.html")
    page = (tmp_path / "d.html").read_text()
    assert "vanishing_gradients" in page and page.count("data:image/png;base64,") >= 3


runner = CliRunner()


def test_cli_doctor_json_on_a_factory(tmp_path, monkeypatch):
    (tmp_path / "nets.py").write_text(
        "import torch\nfrom torch import nn\n"
        "def make():\n    torch.manual_seed(0)\n"
        "    return nn.Sequential(nn.Linear(20, 50), nn.Tanh(), nn.Linear(50, 3))\n"
    )
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(
        app,
        ["doctor", "nets:make", "--input-shape", "20", "--batch", "32", "--json", "--lr", "100", "--momentum", "0.9"],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["findings"][0]["code"] == "unstable_lr"


@pytest.mark.parametrize(
    "args,match",
    [
        (["badnets:boom", "--input-shape", "4"], "raised RuntimeError: boom"),
        (["badnets:make", "--input-shape", "7"], "model(inputs) failed"),
        (["badnets:empty", "--input-shape", "4"], "no trainable parameters"),
        (["badnets:make", "--data", "nope"], "unknown data set 'nope'"),
        (["badnets:make"], "exactly one of --data NAME or --input-shape"),
    ],
)
def test_cli_doctor_bad_input_exits_2(tmp_path, monkeypatch, args, match):
    (tmp_path / "badnets.py").write_text(
        "from torch import nn\n"
        "def boom():\n    raise RuntimeError('boom')\n"
        "def make():\n    return nn.Linear(4, 2)\n"
        "def empty():\n    return nn.Tanh()\n"
    )
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["doctor", *args])
    assert res.exit_code == 2, res.output
    assert match in res.output.replace("\n", " ")


def test_denormal_share_counts_only_nonzero_entries_below_tiny():
    from inertia.doctor import denormal_share

    t = torch.tensor([0.0, 1e-39, 1.0, -1e-40, 2e-38])  # two denormals among four nonzeros
    assert denormal_share([t, None, torch.tensor([1, 2])]) == 0.5
    assert denormal_share([torch.zeros(3)]) is None
    assert denormal_share([torch.tensor([1e-300], dtype=torch.float64)]) == 0.0  # normal in float64


@pytest.mark.parametrize("where", ["input", "output of 0"])
def test_denormal_inputs_or_activations_are_flagged_with_the_fix(batch, where):
    x, y = batch
    model = mlp("tanh", "glorot_uniform")
    if where == "input":
        x = x.clone()
        x[:, :10] = 1e-39  # 10% of the input entries are denormal
    else:
        with torch.no_grad():
            model[0].weight.mul_(1e-39)  # the first layer's output is denormal (plus a zero bias)
            model[0].bias.zero_()
    report = doctor(model, x, y, curvature_checks=False)
    found = next(f for f in report.findings if f.code == "denormal_floats")
    assert found.severity == "warning" and "set_flush_denormal" in found.fix and where in found.message
    assert report.denormal_where == where and report.denormal_share >= 0.1
    assert json.loads(report.to_json())["denormal_share"] == report.denormal_share


def test_glorot_tanh_mlp_has_no_denormal_floats(batch):
    report = doctor(mlp("tanh", "glorot_uniform"), *batch, curvature_checks=False)
    assert report.denormal_share == 0.0 and "denormal_floats" not in codes(report)


def test_torchvision_fan_out_init_is_named_as_such():
    conv = nn.Conv2d(64, 128, 3)  # fan_in 576, fan_out 1152
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    label = recognize_scheme(conv.weight, 576, 1152)[0]
    assert label.startswith("He (fan_out)"), label


def test_a_small_layer_is_not_called_custom_for_sampling_noise():
    torch.manual_seed(0)
    for seed in range(20):
        torch.manual_seed(seed)
        assert "torch default" in recognize_scheme(nn.Linear(4, 3).weight, 4, 3)[0]


def test_schemes_that_the_fans_cannot_tell_apart_are_all_named():
    w = torch.empty(200, 200)
    I.get("glorot_uniform")(w, generator=torch.Generator().manual_seed(0))
    label = recognize_scheme(w, 200, 200)[0]  # sqrt(2 / (n + n)) = sqrt(1 / n)
    assert "normalized (Glorot)" in label and "LeCun" in label


def test_a_std_far_from_every_scheme_is_custom():
    w = torch.randn(300, 400) * 0.5
    assert recognize_scheme(w, 400, 300)[0].startswith("custom")
