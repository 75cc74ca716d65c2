"""The contract every registered tensor initializer keeps (DESIGN.md; docs/init.md, first section):
the same seed, shape and dtype give the same tensor; half precision holds the float32 draws
rounded, float64 has its own; integer tensors are refused before anything is written; a tensor
with no elements is left alone, and so is a zero-width layer in apply()."""

import pytest
import torch
from torch import nn

import inertia.init as I

TENSOR_SCHEMES = [n for n in I.available() if not getattr(I.get(n), "model_level", False)]
RANDOM_SCHEMES = [n for n in TENSOR_SCHEMES if n != "constant"]
WORKS_IN_FLOAT64 = {"echo_state"}  # draws float64 for every dtype (an eigenvalue rescaling)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def shape_for(name):
    return {"echo_state": (20, 20), "delta_orthogonal": (8, 6, 3, 3)}.get(name, (20, 30))


def empty_shapes_for(name):
    return {"echo_state": [(0, 0)], "delta_orthogonal": [(0, 4, 3), (4, 0, 3, 3)]}.get(
        name, [(0, 4), (4, 0), (0, 4, 3, 3)]
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("name", RANDOM_SCHEMES)
def test_same_seed_same_dtype_same_tensor_and_another_seed_another(name, dtype):
    fn = I.get(name)
    a = fn(torch.empty(shape_for(name), dtype=dtype), generator=gen(1))
    b = fn(torch.empty(shape_for(name), dtype=dtype), generator=gen(1))
    c = fn(torch.empty(shape_for(name), dtype=dtype), generator=gen(2))
    assert a.dtype == dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", RANDOM_SCHEMES)
def test_half_precision_holds_the_working_precision_draws_rounded(name, dtype):
    fn = I.get(name)
    work = torch.float64 if name in WORKS_IN_FLOAT64 else torch.float32
    half = fn(torch.empty(shape_for(name), dtype=dtype), generator=gen(1))
    full = fn(torch.empty(shape_for(name), dtype=work), generator=gen(1))
    assert torch.equal(half, full.to(dtype))


@pytest.mark.parametrize("name", [n for n in RANDOM_SCHEMES if n not in WORKS_IN_FLOAT64])
def test_float64_gets_other_numbers_than_float32_from_the_same_seed(name):
    fn = I.get(name)
    single = fn(torch.empty(shape_for(name), dtype=torch.float32), generator=gen(1))
    double = fn(torch.empty(shape_for(name), dtype=torch.float64), generator=gen(1))
    assert not torch.allclose(single.double(), double, rtol=1e-3, atol=0)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
@pytest.mark.parametrize("name", RANDOM_SCHEMES)
def test_integer_tensor_is_refused_naming_its_dtype_and_left_unchanged(name, dtype):
    t = torch.ones(shape_for(name), dtype=dtype)
    with pytest.raises(TypeError, match=rf"needs a floating-point tensor .*got dtype {dtype}"):
        I.get(name)(t, generator=gen())
    assert torch.all(t == 1)


def test_constant_fills_an_integer_tensor_with_a_whole_value():
    assert torch.all(I.constant_(torch.zeros(3, 4, dtype=torch.int64), 7) == 7)


def test_constant_refuses_a_fraction_for_an_integer_tensor():
    t = torch.zeros(3, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"value 0.5 is not a whole number, so a torch.int64 tensor cannot hold it"):
        I.constant_(t, 0.5)
    assert torch.all(t == 0)


@pytest.mark.parametrize("name,shape", [(n, s) for n in TENSOR_SCHEMES for s in empty_shapes_for(n)])
def test_zero_element_tensor_is_returned_unchanged_without_drawing(name, shape):
    t = torch.empty(shape)
    g = gen()
    before = g.get_state()
    assert I.get(name)(t, generator=g) is t
    assert t.shape == shape
    assert torch.equal(g.get_state(), before)


def _model_with_zero_width_layers(name):
    # First layers at least 15 wide: sparse and echo-state take 15 inputs per unit by default.
    if name == "echo_state":
        return nn.Sequential(nn.Linear(16, 16), nn.Linear(0, 0))
    if name == "delta_orthogonal":
        return nn.Sequential(nn.Conv1d(4, 3, 3), nn.Conv1d(3, 0, 3), nn.Conv1d(0, 2, 3))
    return nn.Sequential(nn.Linear(20, 16), nn.Linear(16, 0), nn.Linear(0, 2))


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op")
@pytest.mark.parametrize("name", TENSOR_SCHEMES)
def test_apply_initializes_a_model_with_zero_width_layers(name):
    model = _model_with_zero_width_layers(name)
    with torch.no_grad():
        model[0].weight.fill_(7.0)
    report = I.apply(model, name, bias=0.5, generator=gen())
    assert len(report) == 2 * len(model)
    assert not torch.all(model[0].weight == 7.0)
    assert all(torch.all(m.bias == 0.5) for m in model)
