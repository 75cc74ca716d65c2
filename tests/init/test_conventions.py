"""init.apply on the conventions of the models people train: an embedding's padding row, tied
weights, attention's stacked q/k/v projections, small layers under the sparse init, the meta
device, and errors that name the parameter."""

import math

import pytest
import torch
from torch import nn

import inertia.init as I


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("scheme", ["glorot_uniform", "he_normal", "orthogonal", ("normal", {"std": 0.02})])
def test_the_padding_row_of_an_embedding_stays_zero(scheme):
    e = nn.Embedding(20, 8, padding_idx=3)
    I.apply(e, scheme, generator=gen())
    assert torch.equal(e.weight[3], torch.zeros(8))
    assert (e.weight[torch.arange(20) != 3] != 0).all()


class TiedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.head = nn.Linear(16, 50, bias=False)
        self.head.weight = self.emb.weight  # GPT-2's tying


def test_tied_weights_are_initialized_once_and_reported_once_with_their_current_std():
    m = TiedLM()
    calls = []

    def scheme(t, generator=None):
        calls.append(t.shape)
        return t.normal_(0, 0.02, generator=generator)

    rep = I.apply(m, scheme, generator=gen())
    assert len(calls) == 1 and len(rep) == 1
    row = rep["emb.weight"]
    assert row["tied"] == ["head.weight"] and row["std"] == pytest.approx(float(m.emb.weight.std()))
    assert m.head.weight is m.emb.weight


def test_attention_in_proj_is_three_projections_for_fans():
    mha = nn.MultiheadAttention(64, 4)
    rep = I.apply(mha, "glorot_uniform", generator=gen())
    row = rep["in_proj_weight"]
    assert (row["fan_in"], row["fan_out"]) == (64, 64)
    expected = math.sqrt(2 / (64 + 64))  # Glorot std of one [64, 64] projection
    for block in mha.in_proj_weight.detach().chunk(3):
        assert float(block.std()) == pytest.approx(expected, rel=0.05)
    assert I.fans(mha, "in_proj_weight") == (64, 64)


def test_sparse_on_a_layer_with_fewer_than_15_inputs_uses_all_of_them():
    m = nn.Sequential(nn.Linear(5, 30), nn.Tanh(), nn.Linear(30, 4))
    I.apply(m, "sparse", generator=gen())
    assert (m[0].weight != 0).sum(1).tolist() == [5] * 30  # every input
    assert (m[2].weight != 0).sum(1).tolist() == [15] * 4  # the paper's 15
    with pytest.raises(ValueError, match="fan_in=15 is larger than the number of inputs 5"):
        I.sparse_(torch.empty(3, 5), fan_in=15)  # asked for explicitly: refused


def test_a_model_on_the_meta_device_initializes_then_materializes():
    with torch.device("meta"):
        m = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    rep = I.apply(m, "glorot_uniform")
    assert all(r["std"] is None for r in rep)
    m = m.to_empty(device="cpu")
    I.apply(m, "glorot_uniform", generator=gen())
    assert float(m[0].weight.std()) == pytest.approx(math.sqrt(2 / 24), rel=0.2)


def test_an_error_names_the_parameter_and_suggests_rules():
    m = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    with pytest.raises(ValueError, match=r"0\.weight .*Linear.*fan_in=30.*rules=\{'0\.weight'"):
        I.apply(m, ("sparse", {"fan_in": 30}))


def test_hugging_face_conv1d_fans_read_its_in_out_layout():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from zoo import Conv1D

    layer = Conv1D(nf=96, nx=32)  # 32 inputs, 96 outputs, weight [32, 96]
    assert I.fans(layer) == (32, 96)
    I.apply(layer, "he_normal", generator=gen())
    assert float(layer.weight.std()) == pytest.approx(math.sqrt(2 / 32), rel=0.05)
