"""The fused path: Sutskever et al. (2013)'s CM and NAG through torch's fused SGD kernel
(``torch._fused_sgd_``), equal to the foreach and per-tensor paths to float tolerance for any
schedule, and the foreach path wherever the kernel does not apply."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch

from inertia.optim import Momentum, functional, schedules

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")

PATHS = {"per_tensor": {"foreach": False}, "foreach": {"foreach": True}, "fused": {}}
KERNEL_OK = all(functional.fused_kernel_applies("cpu", dtype) for dtype in (torch.float32, torch.float64))
needs_kernel = pytest.mark.skipif(not KERNEL_OK, reason="torch's fused SGD kernel is wrong or missing on this CPU")


def lr_every_step(t):
    return 0.05 * (1 + 0.5 * math.sin(t))


def mu_every_step(t):
    return 0.5 + 0.45 * math.cos(0.7 * t) ** 2


HYPERS = {
    "constant": (0.05, 0.9),
    "changing_every_step": (lr_every_step, mu_every_step),
    "step_decay_and_sutskever": (schedules.step_decay(0.1, 0.3, every=3), schedules.sutskever_momentum(0.99, period=4)),
    "lr_dropping_a_thousandfold": (schedules.step_decay(0.1, 1e-3, every=5), 0.9),
}


@pytest.fixture
def kernel_calls(monkeypatch):
    """The (dtype, number of tensors) of every ``torch._fused_sgd_`` call."""
    calls = []
    real = torch._fused_sgd_
    for dtype in (torch.float32, torch.float64, torch.bfloat16):  # the kernel's check runs before the spy
        functional.fused_kernel_applies("cpu", dtype)

    def spy(params, *args, **kwargs):
        calls.append((params[0].dtype, len(params)))
        return real(params, *args, **kwargs)

    monkeypatch.setattr(torch, "_fused_sgd_", spy)
    return calls


def make_params(dtype=torch.float64, seed=0, shapes=((7, 5), (5,), (3, 2, 2))):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=g, dtype=torch.float64).to(dtype)) for s in shapes]


def set_grads(params, t):
    """Gradients of a fixed quadratic plus a step-dependent drift (deterministic)."""
    g = torch.Generator().manual_seed(100 + t)
    for i, p in enumerate(params):
        noise = torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype)
        p.grad = (1 + i) * p.detach() + 0.1 * noise


def train(params, opt, steps, start=0):
    for t in range(start, start + steps):
        set_grads(params, t)
        opt.step()
    return [p.detach().clone() for p in params]


def trained(path, nesterov, lr, mu, steps=12, dtype=torch.float64, **kwargs):
    params = make_params(dtype)
    opt = Momentum(params, lr=lr, momentum=mu, nesterov=nesterov, **PATHS[path], **kwargs)
    return train(params, opt, steps)


def tolerance(dtype, steps, result):
    # each update rounds a few operations per entry to the dtype's unit roundoff u, on values of
    # the size of the result; the problem contracts, so the errors add up at most linearly
    scale = max(x.abs().max().item() for x in result)
    return 4 * steps * torch.finfo(dtype).eps / 2 * scale


def assert_close(a, b, atol):
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.double(), y.double(), rtol=0, atol=atol)


# -- the same rule as the other paths -----------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("hypers", list(HYPERS), ids=list(HYPERS))
@pytest.mark.parametrize("nesterov", [False, True], ids=["CM", "NAG"])
def test_fused_equals_foreach_and_per_tensor_to_float_tolerance(nesterov, hypers, dtype):
    lr, mu = HYPERS[hypers]
    fused = trained("fused", nesterov, lr, mu, dtype=dtype)
    atol = tolerance(dtype, 12, fused)
    assert_close(fused, trained("foreach", nesterov, lr, mu, dtype=dtype), atol)
    assert_close(fused, trained("per_tensor", nesterov, lr, mu, dtype=dtype), atol)


@needs_kernel
@pytest.mark.parametrize("hypers", list(HYPERS), ids=list(HYPERS))
@pytest.mark.parametrize("nesterov", [False, True], ids=["CM", "NAG"])
def test_fused_path_runs_the_kernel_at_every_update_it_can_express(nesterov, hypers, kernel_calls):
    lr, mu = HYPERS[hypers]
    trained("fused", nesterov, lr, mu)
    assert len(kernel_calls) == 12 and all(n == 3 for _, n in kernel_calls)


@pytest.mark.parametrize("nesterov", [False, True], ids=["CM", "NAG"])
def test_fused_with_weight_decay_equals_foreach(nesterov):
    lr, mu = HYPERS["changing_every_step"]
    fused = trained("fused", nesterov, lr, mu, weight_decay=0.05)
    assert_close(fused, trained("foreach", nesterov, lr, mu, weight_decay=0.05), 1e-12)
    assert_close(fused, trained("per_tensor", nesterov, lr, mu, weight_decay=0.05), 1e-12)


@pytest.mark.parametrize("nesterov", [False, True], ids=["CM", "NAG"])
def test_fused_param_groups_with_their_own_hyperparameters_equal_foreach(nesterov):
    results = []
    for path in ("fused", "foreach"):
        params = make_params()
        groups = [
            {"params": params[:1]},
            {"params": params[1:2], "lr": schedules.cosine(0.2, 10), "weight_decay": 0.01},
            {"params": params[2:], "momentum": schedules.sutskever_momentum(0.99, period=2)},
        ]
        opt = Momentum(groups, lr=lr_every_step, momentum=mu_every_step, nesterov=nesterov, **PATHS[path])
        results.append(train(params, opt, 10))
    assert_close(*results, 1e-12)


@pytest.mark.parametrize("nesterov", [False, True], ids=["CM", "NAG"])
def test_fused_parameter_without_gradient_keeps_its_state_and_rejoins_exactly(nesterov):
    # the second tensor has no gradient at steps 3 and 4, while mu changes: its scale and applied
    # momentum then differ from the others', so the update splits into groups of equal state
    results = []
    for path in ("fused", "foreach"):
        params = make_params()
        opt = Momentum(params, lr=lr_every_step, momentum=mu_every_step, nesterov=nesterov, **PATHS[path])
        for t in range(10):
            set_grads(params, t)
            if t in (3, 4):
                params[1].grad = None
            opt.step()
        results.append([p.detach().clone() for p in params] + [opt.velocity(p) for p in params])
    assert_close(*results, 1e-12)


# -- exactly torch's arguments with constant hyperparameters ------------------------------------
@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("nesterov", [False, True], ids=["CM", "NAG"])
def test_fused_with_constant_lr_and_momentum_is_torch_fused_sgd_bitwise(nesterov, dtype):
    ours, theirs = make_params(dtype), make_params(dtype)
    opt = Momentum(ours, lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=1e-3)
    sgd = torch.optim.SGD(theirs, lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=1e-3, fused=True)
    for t in range(10):
        set_grads(ours, t)
        set_grads(theirs, t)
        opt.step()
        sgd.step()
    for p, q in zip(ours, theirs, strict=True):
        assert torch.equal(p, q)
        assert torch.equal(opt.state[p]["velocity_direction"], sgd.state[q]["momentum_buffer"])
        assert opt.state[p]["velocity_scale"] == 0.05


def test_fused_cm_keeps_the_buffer_when_the_learning_rate_drops_a_thousandfold():
    # m <= 1 and c <= 1: after the drop b' = b + (eps / (mu k)) g, where the choice k' = eps_t
    # (v = -eps_{t-1} b) would multiply b by mu * 1000 at the drop
    params = make_params()
    opt = Momentum(params, lr=schedules.step_decay(0.1, 1e-3, every=5), momentum=0.9)
    train(params, opt, 5)
    before = max(opt.state[p]["velocity_direction"].abs().max().item() for p in params)
    train(params, opt, 5, start=5)
    after = max(opt.state[p]["velocity_direction"].abs().max().item() for p in params)
    assert after < 1.01 * before


# -- where the fused kernel does not apply: the foreach path ------------------------------------
def test_fused_kernel_check_finds_a_kernel_that_skips_the_update(monkeypatch):
    monkeypatch.setattr(functional, "_KERNEL_VERIFIED", {})
    monkeypatch.setattr(torch, "_fused_sgd_", lambda *args, **kwargs: None)
    assert not functional.fused_kernel_applies("cpu", torch.float32)


def test_fused_kernel_check_accepts_a_kernel_that_computes_its_formula(monkeypatch):
    monkeypatch.setattr(functional, "_KERNEL_VERIFIED", {})
    assert functional.fused_kernel_applies("cpu", torch.float64)


@pytest.mark.parametrize("dtype", [torch.int64, torch.complex64], ids=str)
def test_fused_kernel_check_refuses_dtypes_without_a_kernel(dtype):
    assert not functional.fused_kernel_applies("cpu", dtype)


def test_dtype_whose_kernel_is_wrong_takes_the_foreach_path_bitwise(monkeypatch, kernel_calls):
    monkeypatch.setitem(functional._KERNEL_VERIFIED, ("cpu", torch.float64), False)
    lr, mu = HYPERS["changing_every_step"]
    fused = trained("fused", True, lr, mu)
    assert not kernel_calls
    assert_close(fused, trained("foreach", True, lr, mu), 0)


@pytest.mark.skipif(functional.fused_kernel_applies("cpu", torch.bfloat16), reason="this torch's kernel is right")
def test_bfloat16_on_cpu_takes_the_foreach_path_where_torchs_kernel_is_wrong(kernel_calls):
    # torch 2.13's CPU kernel skips whole vector blocks in bfloat16 (pytorch/pytorch#191763)
    fused = trained("fused", False, 0.05, 0.9, dtype=torch.bfloat16)
    assert not kernel_calls
    assert_close(fused, trained("foreach", False, 0.05, 0.9, dtype=torch.bfloat16), 0)


def _parameter_and_gradient(kind):
    g = torch.Generator().manual_seed(3)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    if kind == "transposed_gradient":
        return torch.nn.Parameter(randn(6, 8)), randn(8, 6).t()
    if kind == "strided_view":  # a parameter with gaps between its rows
        return torch.nn.Parameter(randn(6, 16)[:, ::2]), randn(6, 8)
    cl = torch.channels_last
    return torch.nn.Parameter(randn(2, 3, 4, 5).to(memory_format=cl)), randn(2, 3, 4, 5).to(memory_format=cl)


@needs_kernel
@pytest.mark.parametrize(
    "kind,fused", [("transposed_gradient", False), ("strided_view", False), ("channels_last", True)]
)
def test_fused_kernel_runs_only_where_parameter_gradient_and_direction_share_a_dense_layout(kind, fused, kernel_calls):
    # the kernel walks storage as a flat array: a transposed gradient or a parameter with gaps
    # would be updated at the wrong entries; one channels_last layout for all three is fine
    results = []
    for path in ("fused", "per_tensor"):
        p, grad = _parameter_and_gradient(kind)
        opt = Momentum([p], lr=0.1, momentum=0.9, nesterov=True, **PATHS[path])
        for _ in range(3):
            p.grad = grad
            opt.step()
        results.append(p.detach().clone())
    assert len(kernel_calls) == (3 if fused else 0)
    assert_close(*results, 1e-12)


@pytest.mark.parametrize(
    "nesterov,lr,mu",
    [
        (True, lambda t: 0.0 if t == 2 else 0.1, 0.9),  # eps_t = 0: k' would be 0
        (True, 0.1, lambda t: 0.0 if t == 3 else 0.9),  # mu_{t+1} = 0: the kernel drops the buffer
        (False, lambda t: 0.0 if t < 2 else 0.1, 0.9),  # eps = 0 and v = 0: v' = 0, k' = 0
    ],
    ids=["NAG_zero_lr", "NAG_zero_next_momentum", "CM_zero_lr_from_rest"],
)
def test_updates_the_kernel_cannot_express_take_the_foreach_path_and_stay_exact(nesterov, lr, mu, kernel_calls):
    # one such update in the first two cases (at t = 2: eps_2 = 0, resp. mu_3 = 0), two in the
    # third (t = 0, 1); at t = 3 of the second, mu_t k_t = 0 is the kernel's first step again
    fused = trained("fused", nesterov, lr, mu, steps=6)
    assert len(kernel_calls) == ((4 if not nesterov else 5) if KERNEL_OK else 0)
    assert_close(fused, trained("per_tensor", nesterov, lr, mu, steps=6), 1e-12)


def test_cm_with_zero_lr_after_moving_stays_on_the_fused_path(kernel_calls):
    # eps_t = 0 with v_t != 0 is m = 1, c = 0: theta moves by mu_t v_t
    lr = schedules.join([schedules.constant(0.1), schedules.constant(0.0)], [3])
    fused = trained("fused", False, lr, 0.9, steps=6)
    assert len(kernel_calls) == (6 if KERNEL_OK else 0)
    assert_close(fused, trained("per_tensor", False, lr, 0.9, steps=6), 1e-12)


@pytest.mark.parametrize("kwargs", [{"fused": False}, {"foreach": True}, {"foreach": False}], ids=str)
def test_fused_false_or_an_explicit_foreach_never_runs_the_kernel(kwargs, kernel_calls):
    params = make_params()
    train(params, Momentum(params, lr=0.1, momentum=0.9, **kwargs), 3)
    assert not kernel_calls


def test_fused_true_with_foreach_false_runs_the_kernel(kernel_calls):
    params = make_params()
    train(params, Momentum(params, lr=0.1, momentum=0.9, fused=True, foreach=False), 3)
    assert len(kernel_calls) == (3 if KERNEL_OK else 0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"fused": True, "foreach": True}, r"fused=True and foreach=True cannot both be set"),
        ({"fused": "yes"}, r"fused must be True or False \(or None\), got 'yes'"),
        ({"foreach": 1}, r"foreach must be True or False \(or None\), got 1"),
    ],
)
def test_contradictory_or_malformed_path_options_raise_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Momentum(make_params(), lr=0.1, **kwargs)


def test_functional_refuses_fused_and_foreach_together():
    p, g, d = torch.ones(2), torch.ones(2), torch.zeros(2)
    with pytest.raises(ValueError, match=r"fused=True and foreach=True cannot both be set"):
        functional.momentum([p], [g], [d], [0.0], lr=0.1, momentum=0.9, fused=True, foreach=True)


# -- state across paths --------------------------------------------------------------------------
@pytest.mark.parametrize("nesterov", [False, True], ids=["CM", "NAG"])
@pytest.mark.parametrize("saved,loaded", [("fused", "foreach"), ("foreach", "fused"), ("fused", "per_tensor")])
def test_state_dict_saved_on_one_path_loads_into_another_and_continues_to_float_tolerance(nesterov, saved, loaded):
    lr, mu = HYPERS["step_decay_and_sutskever"]
    params = make_params()
    opt = Momentum(params, lr=lr, momentum=mu, nesterov=nesterov, **PATHS[saved])
    train(params, opt, 5)
    buf = io.BytesIO()
    torch.save({"params": [p.detach().clone() for p in params], "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved_state = torch.load(buf, weights_only=False)
    twin = [torch.nn.Parameter(p) for p in saved_state["params"]]
    twin_opt = Momentum(twin, lr=lr, momentum=mu, nesterov=nesterov, **PATHS[loaded])
    twin_opt.load_state_dict(saved_state["opt"])
    # loading restores the saved groups, their path options included (as torch's optimizers do):
    # choosing another path after loading is setting the group's options
    for g in twin_opt.param_groups:
        g["foreach"], g["fused"] = PATHS[loaded].get("foreach"), PATHS[loaded].get("fused")
    ref = train(params, opt, 6, start=5)
    assert_close(train(twin, twin_opt, 6, start=5), ref, 1e-12)


@needs_kernel
@pytest.mark.parametrize("nesterov", [False, True], ids=["CM", "NAG"])
def test_torch_sgd_state_dict_loads_into_the_fused_path_and_continues_like_torch_fused_bitwise(nesterov):
    ours, theirs = make_params(), make_params()
    sgd = torch.optim.SGD(theirs, lr=0.05, momentum=0.9, nesterov=nesterov, fused=True)
    train(theirs, sgd, 4)
    for p, q in zip(ours, theirs, strict=True):
        p.data.copy_(q)
    opt = Momentum(ours, lr=0.05, momentum=0.9, nesterov=nesterov)
    opt.load_state_dict(sgd.state_dict())
    for a, b in zip(train(ours, opt, 5, start=4), train(theirs, sgd, 5, start=4), strict=True):
        assert torch.equal(a, b)


def test_state_dict_saved_before_the_fused_option_existed_loads_with_the_optimizers_own():
    params = make_params()
    opt = Momentum(params, lr=0.1, momentum=0.9, fused=False)
    train(params, opt, 2)
    sd = copy.deepcopy(opt.state_dict())
    for g in sd["param_groups"]:
        del g["fused"]
    twin = Momentum([torch.nn.Parameter(p.detach().clone()) for p in params], lr=0.1, momentum=0.9)
    twin.load_state_dict(sd)
    assert twin.param_groups[0]["fused"] is None  # from the optimizer it was loaded into


# -- torch.compile -------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("nesterov", [False, True], ids=["CM", "NAG"])
def test_compiled_default_step_is_one_graph_without_breaks_and_equals_eager_foreach(nesterov):
    # under torch.compile the kernel's float arguments would be constants (a graph break and a
    # recompilation at every update), so the default path is then the foreach path, traced whole
    lr, mu = HYPERS["step_decay_and_sutskever"]
    torch._dynamo.reset()
    params = make_params()
    opt = Momentum(params, lr=lr, momentum=mu, nesterov=nesterov)
    step = torch.compile(opt.step, backend="eager")
    for t in range(4):
        set_grads(params, t)
        step()
    set_grads(params, 4)
    explained = torch._dynamo.explain(opt.step)()
    torch._dynamo.reset()
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    eager = make_params()
    eager_opt = Momentum(eager, lr=lr, momentum=mu, nesterov=nesterov, foreach=True)
    train(eager, eager_opt, 5)
    assert_close([p.detach() for p in params], [p.detach() for p in eager], 0)
