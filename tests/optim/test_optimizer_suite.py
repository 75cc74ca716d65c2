"""One generic suite over every optimizer configuration (in the spirit of torch's OptimizerInfo
tests): ``Momentum`` as CM and NAG, with constant and scheduled lr and momentum, on the
per-tensor, the foreach and the fused path, and ``HessianFree`` wherever a behaviour applies to it.

Every case trains the same tiny least-squares problem, out = x W + b, with a fresh batch per
step (so a continuation that lost or mixed up state shows in the parameters)."""

from __future__ import annotations

import copy
import io
import pickle
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from inertia.optim import HessianFree, Momentum, schedules

# importing torch.compile's machinery warns about torch.jit internals, not about this code
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


# -- the problem ------------------------------------------------------------------------------
def make_params(dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.nn.Parameter(torch.randn(3, 2, generator=g, dtype=torch.float64).to(dtype)),
        torch.nn.Parameter(torch.randn(2, generator=g, dtype=torch.float64).to(dtype)),
    ]


def batch(t, dtype=torch.float64):
    g = torch.Generator().manual_seed(1000 + t)
    return (
        torch.randn(6, 3, generator=g, dtype=torch.float64).to(dtype),
        torch.randn(6, 2, generator=g, dtype=torch.float64).to(dtype),
    )


def outputs_and_loss(params, x, y):
    out = x @ params[0] + params[1]  # [6, 2]
    return out, ((out - y) ** 2).mean()


# -- the cases --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    make: Callable  # params -> optimizer
    path: str = ""  # Momentum's update path: a key of PATHS
    hessian_free: bool = False
    nesterov: bool = False
    lr: object = None
    momentum: object = None

    def train(self, opt, params, start, steps, dtype=torch.float64):
        """``steps`` updates on the batches ``start, start + 1, ...``."""
        for t in range(start, start + steps):
            x, y = batch(t, dtype)
            if self.hessian_free:
                opt.step(lambda x=x, y=y: outputs_and_loss(params, x, y))
            else:
                opt.zero_grad()
                outputs_and_loss(params, x, y)[1].backward()
                opt.step()


# Momentum's options for each update path (the fused one is the default)
PATHS = {"per_tensor": {"foreach": False}, "foreach": {"foreach": True}, "fused": {}}


def _momentum_case(nesterov, scheduled, path):
    lr = schedules.cosine(0.2, 40, final=0.05) if scheduled else 0.1
    momentum = schedules.sutskever_momentum(0.99, period=2) if scheduled else 0.9
    name = f"{'NAG' if nesterov else 'CM'}-{'scheduled' if scheduled else 'constant'}-{path}"
    return Case(
        name,
        lambda ps: Momentum(ps, lr=lr, momentum=momentum, nesterov=nesterov, **PATHS[path]),
        path=path,
        nesterov=nesterov,
        lr=lr,
        momentum=momentum,
    )


MOMENTUM = [_momentum_case(n, s, p) for n in (False, True) for s in (False, True) for p in PATHS]
HF = Case(
    "HessianFree", lambda ps: HessianFree(ps, damping=1.0, cg_max_iter=4, preconditioner_examples=4), hessian_free=True
)
ALL = MOMENTUM + [HF]


def ids(cases):
    return [c.id for c in cases]


def eager_twin(case):
    """The case eager runs match under torch.compile: itself, or for the fused path the foreach
    path (the fused kernel's float arguments cannot be symbolic, see docs/optim.md)."""
    if case.path != "fused":
        return case
    return next(c for c in MOMENTUM if c.id == case.id.replace("fused", "foreach"))


def assert_same(params_a, params_b):
    for a, b in zip(params_a, params_b, strict=False):
        assert torch.equal(a, b)


def run(case, steps=6, dtype=torch.float64):
    params = make_params(dtype)
    opt = case.make(params)
    case.train(opt, params, 0, steps, dtype)
    return params, opt


# -- state_dict -------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ALL, ids=ids(ALL))
def test_state_dict_round_trip_mid_run_continues_identically(case):
    params, opt = run(case, 4)
    buf = io.BytesIO()
    torch.save({"params": [p.detach().clone() for p in params], "opt": opt.state_dict()}, buf)
    case.train(opt, params, 4, 4)
    buf.seek(0)
    saved = torch.load(buf, weights_only=False)
    twin = [torch.nn.Parameter(p) for p in saved["params"]]
    twin_opt = case.make(twin)
    twin_opt.load_state_dict(saved["opt"])
    case.train(twin_opt, twin, 4, 4)
    assert_same(params, twin)


OPTIONAL_KEYS = {
    "Momentum": ("foreach", "fused", "weight_decay", "nesterov", "scheduled"),
    "HessianFree": ("preconditioner_examples", "cg_min_iter", "curvature", "damping_bounds"),
}


@pytest.mark.parametrize("case", ALL, ids=ids(ALL))
def test_state_dict_without_optional_keys_loads_and_continues_identically(case):
    # as torch's test_can_load_older_state_dict: keys an older version did not save are
    # taken from the optimizer being loaded into (what it was constructed with)
    params, opt = run(case, 3)
    sd = copy.deepcopy(opt.state_dict())
    for key in OPTIONAL_KEYS["HessianFree" if case.hessian_free else "Momentum"]:
        for g in sd["param_groups"]:
            del g[key]
    twin = [torch.nn.Parameter(p.detach().clone()) for p in params]
    twin_opt = case.make(twin)
    twin_opt.load_state_dict(sd)
    case.train(opt, params, 3, 3)
    case.train(twin_opt, twin, 3, 3)
    assert_same(params, twin)


# options newer than the first version, at the values the cases use (their defaults)
NEWER_OPTIONS = {
    "Momentum": ("foreach", "fused", "weight_decay", "scheduled"),
    "HessianFree": ("cg_min_iter", "curvature", "damping_bounds"),
}


@pytest.mark.parametrize("case", ALL, ids=ids(ALL))
def test_unpickled_older_optimizer_without_newer_options_gets_their_defaults(case):
    # an optimizer pickled by an older version lacks the newer options in its groups and
    # defaults; unpickling (``__setstate__``) has nothing to take them from but their defaults
    params, opt = run(case, 3)
    twin_params, twin = copy.deepcopy((params, opt))
    state = twin.__getstate__()
    for key in NEWER_OPTIONS["HessianFree" if case.hessian_free else "Momentum"]:
        for g in state["param_groups"]:
            del g[key]
        state["defaults"].pop(key, None)
    older = type(twin).__new__(type(twin))
    older.__setstate__(state)
    if not case.hessian_free:  # the defaults choose the update path: continue the original on it
        for g in opt.param_groups:
            g["foreach"] = g["fused"] = None
    case.train(opt, params, 3, 3)
    case.train(older, twin_params, 3, 3)
    assert_same(params, twin_params)


NAG = [c for c in MOMENTUM if c.nesterov]


@pytest.mark.parametrize("case", NAG, ids=ids(NAG))
def test_older_state_with_applied_momentum_per_group_loads_and_continues_identically(case):
    params, opt = run(case, 3)
    sd = copy.deepcopy(opt.state_dict())
    for g in sd["param_groups"]:  # the older layout: one applied momentum per group
        g["applied_momentum"] = sd["state"][g["params"][0]]["applied_momentum"]
        for i in g["params"]:
            del sd["state"][i]["applied_momentum"]
    twin = [torch.nn.Parameter(p.detach().clone()) for p in params]
    twin_opt = case.make(twin)
    twin_opt.load_state_dict(sd)
    assert "applied_momentum" not in twin_opt.param_groups[0]
    case.train(opt, params, 3, 3)
    case.train(twin_opt, twin, 3, 3)
    assert_same(params, twin)


# -- param groups -----------------------------------------------------------------------------
@pytest.mark.parametrize("case", MOMENTUM, ids=ids(MOMENTUM))
def test_param_groups_with_their_own_lr_and_momentum_match_one_optimizer_per_group(case):
    w, b = make_params()
    opt = case.make([w])
    opt.add_param_group({"params": [b], "lr": 0.03, "momentum": 0.5})
    w2, b2 = (torch.nn.Parameter(p.detach().clone()) for p in (w, b))
    opt_w = case.make([w2])
    opt_b = Momentum([b2], lr=0.03, momentum=0.5, nesterov=case.nesterov, **PATHS[case.path])
    for t in range(6):
        x, y = batch(t)
        for o in (opt, opt_w, opt_b):
            o.zero_grad()
        outputs_and_loss([w, b], x, y)[1].backward()
        outputs_and_loss([w2, b2], x, y)[1].backward()
        opt.step()
        opt_w.step()
        opt_b.step()
    assert_same([w, b], [w2, b2])


def test_hessian_free_refuses_a_second_param_group_clearly():
    w, b = make_params()
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        HessianFree([{"params": [w]}, {"params": [b]}])


# -- closures ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", MOMENTUM, ids=ids(MOMENTUM))
def test_step_with_a_closure_returns_its_loss_and_equals_backward_then_step(case):
    params, opt = run(case, 2)
    twin, twin_opt = copy.deepcopy((params, opt))
    x, y = batch(2)

    def closure():
        opt.zero_grad()
        loss = outputs_and_loss(params, x, y)[1]
        loss.backward()
        return loss

    loss = opt.step(closure)
    expected = outputs_and_loss(twin, x, y)[1]
    expected.backward()
    twin_opt.step()
    assert torch.equal(loss, expected.detach())
    assert_same(params, twin)


def test_hessian_free_step_returns_the_closures_loss_before_the_step():
    params, opt = run(HF, 2)
    x, y = batch(2)
    before = outputs_and_loss(params, x, y)[1].detach()
    assert torch.equal(opt.step(lambda: outputs_and_loss(params, x, y)), before)


# -- foreach == per-tensor, fused ~ foreach ---------------------------------------------------
PAIRS = [
    (a, b)
    for a in MOMENTUM
    for b in MOMENTUM
    if a.id.endswith("per_tensor") and b.id == a.id.replace("per_tensor", "foreach")
]


@pytest.mark.parametrize("per_tensor,foreach", PAIRS, ids=[a.id.rsplit("-", 1)[0] for a, _ in PAIRS])
def test_foreach_and_per_tensor_paths_are_bitwise_identical(per_tensor, foreach):
    assert_same(run(per_tensor, 8)[0], run(foreach, 8)[0])


@pytest.mark.parametrize("fused", [c for c in MOMENTUM if c.path == "fused"], ids=lambda c: c.id)
def test_fused_path_follows_the_foreach_path_to_float64_rounding(fused):
    foreach = next(c for c in MOMENTUM if c.id == fused.id.replace("fused", "foreach"))
    for a, b in zip(run(fused, 8)[0], run(foreach, 8)[0], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-13)


# -- dtypes -----------------------------------------------------------------------------------
def _value(h, t):
    return h(t) if callable(h) else h


def paper_rule(case, steps):
    """The paper's CM/NAG as a plain float64 loop (v_{t+1} = mu_t v_t - eps_t g(theta_t [+ mu_t
    v_t]), theta_{t+1} = theta_t + v_{t+1}); returns the points where the next gradient is taken."""
    thetas = [p.detach().clone() for p in make_params()]
    vs = [torch.zeros_like(p) for p in thetas]
    for t in range(steps):
        mu, lr = _value(case.momentum, t), _value(case.lr, t)
        point = [(th + mu * v if case.nesterov else th).requires_grad_() for th, v in zip(thetas, vs, strict=False)]
        grads = torch.autograd.grad(outputs_and_loss(point, *batch(t))[1], point)
        vs = [mu * v - lr * g for v, g in zip(vs, grads, strict=False)]
        thetas = [th + v for th, v in zip(thetas, vs, strict=False)]
    mu = _value(case.momentum, steps)
    return [th + mu * v if case.nesterov else th for th, v in zip(thetas, vs, strict=False)]


DTYPES = {torch.float64: 1e-12, torch.float32: None, torch.bfloat16: None}


@pytest.mark.parametrize("dtype", list(DTYPES), ids=["float64", "float32", "bfloat16"])
@pytest.mark.parametrize("case", MOMENTUM, ids=ids(MOMENTUM))
def test_runs_in_the_parameters_dtype_and_follows_the_paper_rule_to_its_precision(case, dtype):
    steps = 5
    params, opt = run(case, steps, dtype)
    for p in params:
        assert opt.state[p]["velocity_direction"].dtype == dtype
    reference = paper_rule(case, steps)
    # each step rounds the inputs, the gradient (a few ops per entry) and the three in-place
    # updates to the dtype's unit roundoff u, relative to values of size ~max|p|; the errors
    # add up over the steps (the problem is well conditioned: nothing amplifies them much)
    u = torch.finfo(dtype).eps / 2
    scale = max(r.abs().max().item() for r in reference)
    atol = DTYPES[dtype] or 10 * steps * u * scale
    for p, r in zip(params, reference, strict=False):
        torch.testing.assert_close(p.detach().double(), r, rtol=0, atol=atol)


# -- deepcopy and pickle ----------------------------------------------------------------------
@pytest.mark.parametrize("case", ALL, ids=ids(ALL))
def test_deepcopy_mid_run_continues_identically(case):
    params, opt = run(case, 3)
    twin, twin_opt = copy.deepcopy((params, opt))
    case.train(opt, params, 3, 3)
    case.train(twin_opt, twin, 3, 3)
    assert_same(params, twin)


@pytest.mark.parametrize("case", ALL, ids=ids(ALL))
def test_pickle_mid_run_continues_identically(case):
    params, opt = run(case, 3)
    twin, twin_opt = pickle.loads(pickle.dumps((params, opt)))
    case.train(opt, params, 3, 3)
    case.train(twin_opt, twin, 3, 3)
    assert_same(params, twin)


# -- torch.compile ----------------------------------------------------------------------------
def _compiled_run(make, steps):
    """Train with ``torch.compile(opt.step)`` (the eager backend: Dynamo's tracing is what is
    under test); returns the parameters and the number of graphs compiled after each step."""
    graphs = []

    def counting_backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    params = make_params()
    opt = make(params)
    step = torch.compile(opt.step, backend=counting_backend)
    counts = []
    for t in range(steps):
        opt.zero_grad()
        outputs_and_loss(params, *batch(t))[1].backward()
        step()
        counts.append(len(graphs))
    torch._dynamo.reset()
    return params, counts


@pytest.fixture(scope="module")
def torch_sgd_graphs():
    """How many graphs ``torch.compile`` builds for torch's own SGD(momentum) on this problem."""
    return _compiled_run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), 6)[1][-1]


@pytest.mark.slow
@pytest.mark.parametrize("case", MOMENTUM, ids=ids(MOMENTUM))
def test_compiled_step_stops_building_graphs_and_matches_eager(case, torch_sgd_graphs):
    params, counts = _compiled_run(case.make, 14)
    # torch's SGD: one graph creates the state, one serves every later step. inertia needs one
    # more: at step 1 Dynamo sees the float velocity scale (and NAG's applied momentum) for the
    # first time and takes it as a constant; when it changes at step 2 it becomes a symbolic
    # float, and from then on the same graph serves every step, schedules included
    assert counts[-1] == counts[2] <= torch_sgd_graphs + 1
    assert_same(params, run(eager_twin(case), 14)[0])


@pytest.mark.slow
@pytest.mark.parametrize("path", list(PATHS))
def test_compiled_step_with_schedules_that_change_late_stays_bounded(path, torch_sgd_graphs):
    # lr halves at step 4 and mu first changes at step 5: NAG's applied momentum, a constant
    # until then, becomes symbolic (one graph), and foreach's lerp, which branches on whether
    # its weight eps/k is at least 1/2, takes its other branch once (one graph)
    def make(ps):
        return Momentum(
            ps,
            lr=schedules.step_decay(0.1, 0.5, every=4),
            momentum=schedules.sutskever_momentum(0.99, period=5),
            nesterov=True,
            **PATHS[path],
        )

    params, counts = _compiled_run(make, 20)
    assert counts[-1] == counts[6] <= torch_sgd_graphs + 3
    eager = make_params()
    eager_opt = make(eager)
    if path == "fused":  # compiled, the fused path is the foreach path
        eager_opt.param_groups[0].update(foreach=True, fused=None)
    Case("late", make).train(eager_opt, eager, 0, 20)
    assert_same(params, eager)


# -- zero_grad --------------------------------------------------------------------------------
@pytest.mark.parametrize("case", MOMENTUM, ids=ids(MOMENTUM))
def test_zero_grad_set_to_none_leaves_every_parameter_and_its_state_untouched(case):
    params, opt = run(case, 3)
    before = [p.detach().clone() for p in params]
    velocities = [opt.velocity(p) for p in params]
    opt.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in params)
    opt.step()
    assert_same(params, before)
    assert_same([opt.velocity(p) for p in params], velocities)


@pytest.mark.parametrize("case", MOMENTUM, ids=ids(MOMENTUM))
def test_zero_grad_keeping_tensors_steps_on_momentum_alone(case):
    params, opt = run(case, 3)
    twin, twin_opt = copy.deepcopy((params, opt))
    grads = [p.grad for p in params]
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is g and not g.any() for p, g in zip(params, grads, strict=False))
    for p in twin:
        p.grad = torch.zeros_like(p)
    before = [p.detach().clone() for p in params]
    opt.step()
    twin_opt.step()
    assert_same(params, twin)
    assert not any(torch.equal(p, b) for p, b in zip(params, before, strict=False))  # the velocity still moves them


def test_hessian_free_ignores_the_gradients_left_by_zero_grad():
    results = []
    for set_to_none in (True, False):
        params, opt = run(HF, 2)
        opt.zero_grad(set_to_none=set_to_none)
        HF.train(opt, params, 2, 1)
        results.append(params)
    assert_same(*results)


# -- parameters without gradients -------------------------------------------------------------
@pytest.mark.parametrize("case", MOMENTUM, ids=ids(MOMENTUM))
def test_parameter_without_gradient_is_left_alone_and_the_others_move_as_without_it(case):
    # the bias gets no gradient at step 2; the weight moves as if it were alone
    w, b = make_params()
    opt = case.make([w, b])
    w_alone = torch.nn.Parameter(w.detach().clone())
    opt_alone = case.make([w_alone])
    for t in range(5):
        x, y = batch(t)
        opt.zero_grad()
        opt_alone.zero_grad()
        outputs_and_loss([w, b], x, y)[1].backward()
        outputs_and_loss([w_alone, b.detach()], x, y)[1].backward()
        if t == 2:
            b.grad = None
            b_before, v_before = b.detach().clone(), opt.velocity(b)
            with opt.at_theta():
                theta_before = b.detach().clone()
        opt.step()
        opt_alone.step()
        if t == 2:
            assert torch.equal(b, b_before) and torch.equal(opt.velocity(b), v_before)
            with opt.at_theta():
                assert torch.equal(b, theta_before)
    assert torch.equal(w, w_alone)


def test_hessian_free_leaves_a_parameter_outside_the_loss_unchanged():
    params = make_params()
    unused = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    opt = HF.make(params + [unused])
    HF.train(opt, params, 0, 3)
    assert torch.equal(unused, torch.ones(4, dtype=torch.float64))
    assert torch.equal(unused.grad, torch.zeros(4, dtype=torch.float64))
