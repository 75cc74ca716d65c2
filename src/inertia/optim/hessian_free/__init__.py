"""Hessian-free optimization: Martens (2010), "Deep learning via Hessian-free optimization", for PyTorch 2.

One HF iteration at parameters theta, with f the loss on the gradient batch, g = grad f(theta),
G the generalized Gauss-Newton matrix (Schraudolph 2002) on the curvature batch and lambda the
damping, minimizes the damped quadratic model

    q(p) = f(theta) + g^T p + 1/2 p^T G p,      phi(p) = g^T p + 1/2 p^T (G + lambda I) p

by preconditioned conjugate gradient (CG), and then moves theta by the step it found. Each piece
is a small module of its own, tested alone:

1. The curvature product v -> G v (or H v with ``curvature="hessian"``) on one batch's graph:
   ``inertia.diagnostics.products`` (``GaussNewtonProduct``, ``HessianProduct``), shared with the
   curvature diagnostics; ``GaussNewtonOperator`` and ``HessianOperator`` are their names here.
2. ``preconditioner``: M = (diag(sum_i grad f_i (.) grad f_i) / n + lambda)^0.75 (section 4.7).
3. ``cg``: CG on B = G + lambda I (+ structural damping, Martens & Sutskever 2011), started from
   ``cg_init_decay * p_prev`` (section 4.5: zeta = 0.95), stopped by the relative progress rule
   (section 4.4), keeping iterates for CG-iteration backtracking (section 4.6).
4. ``damping``: Levenberg-Marquardt (section 4.1): rho = (f(theta + p) - f(theta)) / (q(p) - q(0));
   lambda <- 3/2 lambda if rho < 1/4, lambda <- 2/3 lambda if rho > 3/4.
5. ``line_search``: a backtracking (Armijo) line search on f along p, as in Martens' code.
6. ``options``: the defaults (once) and their checks; ``closure``: the step's closure contract;
   ``optimizer``: the ``HessianFree`` class that strings the pieces together.

Closure contract (``step(closure, curvature_closure=None, per_example=None)``, see
:mod:`.closure`): ``closure()`` returns the loss, as for ``torch.optim.LBFGS`` (it may call
``loss.backward()``), which suffices for ``curvature="hessian"``; or ``(outputs, loss)``, which the
Gauss-Newton matrix (the default) needs, ``outputs`` a tensor (or a list of tensors) whose first
dimension is the case and ``loss`` computed from ``outputs`` only (add an L2 penalty with
``weight_decay=``, not in the loss). ``curvature_closure``, same contract, gives the curvature
batch (section 4.3: smaller than the gradient batch); for structural damping it returns
``(outputs, loss, hidden)``. ``step`` returns the loss before the step.

See docs/optim.md ("Hessian-Free") for what is faithful to Martens (2010) and what differs.

Examples:
    >>> import torch
    >>> a = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    >>> b = torch.tensor([1.0, 1.0], dtype=torch.float64)
    >>> theta = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    >>> opt = HessianFree([theta], damping=0.0, curvature="hessian", preconditioner=None)
    >>> loss = opt.step(lambda: 0.5 * theta @ a @ theta - b @ theta)  # one step solves a quadratic
    >>> torch.allclose(theta.detach(), torch.linalg.solve(a, b))
    True
"""

from ...diagnostics.products import GaussNewtonProduct, HessianProduct
from .cg import (
    BACKTRACK_GAP,
    CGResult,
    Choice,
    Iterate,
    backtrack,
    conjugate_gradient,
    next_kept_iteration,
    relative_progress_stop,
)
from .closure import Evaluation, call_for_value, call_with_graph, parse_result
from .damping import DAMPING_BOOST, DAMPING_DROP, RHO_HIGH, RHO_LOW, adapt_damping, reduction_ratio
from .line_search import ARMIJO_C, LINE_SEARCH_MAX, LINE_SEARCH_SHRINK, LineSearchResult, armijo_line_search
from .optimizer import HessianFree
from .options import CURVATURES, DEFAULTS, LOOP_DEFAULTS, PRECONDITIONERS, HessianFreeOptions, check_options
from .preconditioner import PER_EXAMPLE_BUDGET, PerExample, martens_preconditioner, martens_preconditioner_diagonal

GaussNewtonOperator = GaussNewtonProduct  # the names HF used before the products were shared
HessianOperator = HessianProduct

__all__ = [
    # the optimizer and its options
    "HessianFree",
    "PerExample",
    "HessianFreeOptions",
    "DEFAULTS",
    "LOOP_DEFAULTS",
    "PRECONDITIONERS",
    "CURVATURES",
    "check_options",
    # the closure contract
    "Evaluation",
    "call_for_value",
    "call_with_graph",
    "parse_result",
    # curvature products
    "GaussNewtonOperator",
    "HessianOperator",
    # the preconditioner
    "martens_preconditioner",
    "martens_preconditioner_diagonal",
    "PER_EXAMPLE_BUDGET",
    # CG, its stopping rule and backtracking
    "CGResult",
    "Choice",
    "Iterate",
    "conjugate_gradient",
    "relative_progress_stop",
    "next_kept_iteration",
    "backtrack",
    "BACKTRACK_GAP",
    # damping
    "adapt_damping",
    "reduction_ratio",
    "DAMPING_BOOST",
    "DAMPING_DROP",
    "RHO_LOW",
    "RHO_HIGH",
    # line search
    "armijo_line_search",
    "LineSearchResult",
    "ARMIJO_C",
    "LINE_SEARCH_SHRINK",
    "LINE_SEARCH_MAX",
]
