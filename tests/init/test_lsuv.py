"""LSUV (Mishkin & Matas 2016) brings every layer's output std to the target."""

import pytest
import torch
from torch import nn

import inertia.init as I


def test_every_layer_output_std_is_within_tol_of_target():
    torch.manual_seed(0)
    layers = []
    for _ in range(6):
        layers += [nn.Linear(64, 64), nn.Tanh()]
    m = nn.Sequential(*layers)
    x = torch.randn(256, 64)
    I.lsuv_(m, x, target_std=1.0, tol=0.02, generator=torch.Generator().manual_seed(0))
    outs = []
    hooks = [m[i].register_forward_hook(lambda _m, _i, o: outs.append(float(o.std()))) for i in range(0, 12, 2)]
    with torch.no_grad():
        m(x)
    for h in hooks:
        h.remove()
    assert all(abs(s - 1.0) < 0.02 for s in outs), outs


def test_lsuv_rejects_bad_target():
    with pytest.raises(ValueError, match="target_std must be a positive finite number, got 0"):
        I.lsuv_(nn.Linear(3, 3), torch.randn(4, 3), target_std=0)


class WithZeroWidthBranch(nn.Module):
    """a -> [a's output, a zero-width branch] -> b: the branch adds no features."""

    def __init__(self):
        super().__init__()
        self.a, self.empty, self.b = nn.Linear(8, 8), nn.Linear(8, 0), nn.Linear(8, 8)

    def forward(self, x):
        h = torch.tanh(self.a(x))
        return self.b(torch.cat([h, self.empty(h)], dim=1))


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op")
def test_zero_width_layers_are_left_out_and_the_others_reach_the_target():
    m = WithZeroWidthBranch()
    x = torch.randn(256, 8, generator=torch.Generator().manual_seed(1))
    report = I.lsuv_(m, x, tol=0.02, generator=torch.Generator().manual_seed(0))
    assert sorted(report) == ["a", "b"]
    assert all(abs(r["std"] - 1.0) < 0.02 for r in report.values())


def test_lsuv_on_a_transformer_rescales_attention_out_proj_through_its_parent():
    torch.manual_seed(0)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, dropout=0.0), 2)
    x = torch.randn(8, 5, 16)
    result = I.lsuv_(enc, x, generator=torch.Generator().manual_seed(0))
    assert "layers.0.self_attn.out_proj" in result and "layers.1.linear2" in result
    captured = {}
    attn = enc.layers[0].self_attn
    h = attn.register_forward_hook(lambda m, i, o: captured.__setitem__("o", o[0]))
    with torch.no_grad():
        enc(x)
    h.remove()
    assert abs(result["layers.0.self_attn.out_proj"]["std"] - 1.0) < 0.05
    assert captured["o"].std().item() == pytest.approx(result["layers.0.self_attn.out_proj"]["std"], rel=0.2)


def test_lsuv_names_the_recurrent_layers_it_leaves_alone():
    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.head = nn.LSTM(8, 16, batch_first=True), nn.Linear(16, 4)

        def forward(self, x):
            return self.head(self.lstm(x)[0])

    model = LM()
    before = model.lstm.weight_hh_l0.detach().clone()
    with pytest.warns(UserWarning, match=r"lstm \(LSTM: recurrent weights\)"):
        result = I.lsuv_(model, torch.randn(4, 5, 8), generator=torch.Generator().manual_seed(0))
    assert list(result) == ["head"] and torch.equal(model.lstm.weight_hh_l0, before)
