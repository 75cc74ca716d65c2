"""``HessianFree``: the ``torch.optim.Optimizer`` that runs one Martens (2010) HF iteration per ``step``.

The class holds the state (lambda, the previous CG solution, counters) and strings together the
pure pieces of this package: the curvature product (``inertia.diagnostics.products``), the
preconditioner, CG with its stopping rule and backtracking, the line search and the damping rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from ...diagnostics.products import GaussNewtonProduct, HessianProduct, flatten, unflatten
from ..momentum import with_missing_group_keys
from .cg import CGResult, Choice, backtrack, conjugate_gradient
from .closure import Evaluation, call_for_value, call_with_graph
from .damping import adapt_damping, reduction_ratio
from .line_search import LineSearchResult, armijo_line_search
from .options import DEFAULTS, HessianFreeOptions, check_options
from .preconditioner import PerExample, martens_preconditioner, martens_preconditioner_diagonal

__all__ = ["HessianFree"]

_D = HessianFreeOptions()  # the defaults, written once (options.py)

Product = GaussNewtonProduct | HessianProduct


class HessianFree(Optimizer):
    """Hessian-free optimization (Martens 2010) with the generalized Gauss-Newton matrix.

    Args:
        params: the parameters (one group: an HF step couples all of them, as in ``LBFGS``).
        lr: the step multiplier; the line search starts from it (Martens: 1).
        damping: the initial Levenberg-Marquardt lambda (adapted unless ``adapt_damping=False``).
        cg_max_iter: CG iterations per HF iteration at most (Martens: 250).
        cg_init_decay: zeta, CG starts from zeta times the previous HF iteration's last CG iterate
            (Martens: 0.95; 0 starts from zero).
        structural_damping: mu of Martens & Sutskever (2011): adds mu lambda J_h^T J_h to the
            curvature, with h the ``hidden`` the curvature closure returns.
        preconditioner: ``"martens"``: M = (diag(F) + lambda + weight_decay)^exponent, F the
            empirical Fisher (:func:`martens_preconditioner_diagonal`); ``"none"``/None.
        preconditioner_exponent: xi, Martens: 0.75.
        cg_min_iter: CG iterations at least before the progress rule may stop it.
        cg_tol: eps of the progress rule (Martens: 5e-4).
        backtracking: CG-iteration backtracking on the gradient batch's loss.
        line_search: the Armijo line search on the gradient batch's loss (else alpha = lr).
        adapt_damping: adapt lambda by the reduction ratio rho.
        damping_bounds: lambda is kept in [low, high].
        curvature: ``"ggn"`` (default, positive semi-definite; needs the model outputs from the
            closure) or ``"hessian"`` (the true Hessian of the loss, by double backward; CG stops at
            negative curvature; works with a closure that returns only the loss).
        weight_decay: wd, the objective is loss + wd/2 ||theta||^2 (exact in gradient and curvature).
        preconditioner_examples: cases used by the graph estimate of the preconditioner when
            ``step`` gets no ``per_example``.

    The defaults are ``inertia.optim.hessian_free.DEFAULTS``. After each step, ``last_info``
    holds: ``loss`` (before), ``loss_after``, ``rho``, ``damping`` (the lambda used) and
    ``next_damping``, ``alpha`` (line search), ``cg_iters``, ``cg_reason``, ``chosen_iter`` (after
    backtracking), ``curvature_products``, ``function_evals``, ``preconditioner`` (the method used).

    Examples:
        torch's training loop, with a closure that returns the loss (the Hessian as curvature;
        without outputs there are no per-case gradients for Martens' preconditioner):

        >>> import torch
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model, x, y = torch.nn.Linear(4, 1), torch.randn(32, 4), torch.randn(32, 1)
        >>> opt = HessianFree(model.parameters(), curvature="hessian", preconditioner=None)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = torch.nn.functional.mse_loss(model(x), y)
        ...     loss.backward()
        ...     return loss
        >>> first = opt.step(closure)
        >>> bool(opt.step(closure) < first)
        True

        The Gauss-Newton matrix needs the outputs: return ``(outputs, loss)`` (and pass a smaller
        curvature batch and exact per-case gradients for the preconditioner when you have them)::

            def closure():
                out = model(x)
                return out, loss_fn(out, y)
            opt = HessianFree(model.parameters(), damping=45.0)
            opt.step(closure, curvature_closure, per_example=PerExample(model, x, y, loss_fn))
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = _D.lr,
        damping: float = _D.damping,
        cg_max_iter: int = _D.cg_max_iter,
        cg_init_decay: float = _D.cg_init_decay,
        structural_damping: float = _D.structural_damping,
        preconditioner: str | None = _D.preconditioner,
        *,
        preconditioner_exponent: float = _D.preconditioner_exponent,
        cg_min_iter: int = _D.cg_min_iter,
        cg_tol: float = _D.cg_tol,
        backtracking: bool = _D.backtracking,
        line_search: bool = _D.line_search,
        adapt_damping: bool = _D.adapt_damping,
        damping_bounds: tuple[float, float] = _D.damping_bounds,
        curvature: str = _D.curvature,
        weight_decay: float = _D.weight_decay,
        preconditioner_examples: int = _D.preconditioner_examples,
    ) -> None:
        options = check_options(
            lr=lr,
            damping=damping,
            cg_max_iter=cg_max_iter,
            cg_init_decay=cg_init_decay,
            structural_damping=structural_damping,
            preconditioner=preconditioner,
            preconditioner_exponent=preconditioner_exponent,
            cg_min_iter=cg_min_iter,
            cg_tol=cg_tol,
            backtracking=backtracking,
            line_search=line_search,
            adapt_damping=adapt_damping,
            damping_bounds=damping_bounds,
            curvature=curvature,
            weight_decay=weight_decay,
            preconditioner_examples=preconditioner_examples,
        )
        super().__init__(params, options.as_dict())
        if len(self.param_groups) != 1:
            raise ValueError(
                "HessianFree doesn't support per-parameter options (parameter groups): "
                f"got {len(self.param_groups)} groups; pass one list of parameters"
            )
        self._params: list[Tensor] = self.param_groups[0]["params"]
        self.last_info: dict[str, Any] = {}

    @staticmethod
    def check_options(**options: Any) -> None:
        """Validate constructor keyword options without building anything (ValueError)."""
        check_options(**options)

    def add_param_group(self, param_group: dict) -> None:
        if getattr(self, "param_groups", None):
            raise ValueError(
                "HessianFree doesn't support per-parameter options (parameter groups); pass one list of parameters"
            )
        super().add_param_group(param_group)

    def load_state_dict(self, state_dict: dict) -> None:
        """Like torch's; options a saved state lacks (an older version's) keep this optimizer's values."""
        super().load_state_dict(with_missing_group_keys(state_dict, self.param_groups))

    def __setstate__(self, state: dict) -> None:
        # unpickling (and deepcopy) restore only defaults, state and param_groups (torch's
        # __getstate__): rebuild the rest, and fill options an older pickle lacks
        super().__setstate__(state)
        for key, default in DEFAULTS.items():
            self.param_groups[0].setdefault(key, self.defaults.get(key, default))
        self._params = self.param_groups[0]["params"]
        self.__dict__.setdefault("last_info", {})

    # global state, kept in the first parameter's state as torch's LBFGS does
    @property
    def _global(self) -> dict:
        st = self.state[self._params[0]]
        for k in ("step", "cg_iters_total", "curvature_products", "function_evals"):
            st.setdefault(k, 0)
        st.setdefault("rho", float("nan"))
        return st

    @property
    def counters(self) -> dict:
        """HF iterations (``step``), CG iterations and curvature-vector products in all, closure
        calls (``function_evals``) and the last reduction ratio ``rho``."""
        st = self._global
        return {k: st[k] for k in ("step", "cg_iters_total", "curvature_products", "function_evals", "rho")}

    @property
    def damping(self) -> float:
        """The current Levenberg-Marquardt lambda."""
        return float(self.param_groups[0]["damping"])

    # -- the step --------------------------------------------------------------------------------
    def step(  # type: ignore[override]  # like torch's LBFGS: a closure is required
        self,
        closure: Callable[[], Any],
        curvature_closure: Callable[[], Any] | None = None,
        per_example: PerExample | tuple | None = None,
    ) -> Tensor:
        """One HF iteration; returns the loss before the step (detached), like ``LBFGS.step``.

        ``closure()`` evaluates the gradient batch and returns the loss, or ``(outputs, loss)``
        (needed for ``curvature="ggn"``), or ``(outputs, loss, hidden)`` for structural damping;
        see :mod:`inertia.optim.hessian_free.closure` for the exact contract (it may call
        ``loss.backward()`` when it returns only the loss). ``curvature_closure()``, same contract,
        evaluates the curvature batch (default: the gradient batch's graph is reused).
        ``per_example``: exact per-case gradients for the preconditioner (else they are estimated
        from the graph of the closure's outputs). Leaves the batch gradient in ``p.grad``. When
        the loss is not finite, the parameters are left unchanged.
        """
        per_example = _checked_step_arguments(closure, curvature_closure, per_example)
        st = self._global
        evals0 = st["function_evals"]
        info: dict[str, Any] = {"damping": self.damping}
        self.last_info = info
        first, calls_backward = self._evaluate_with_graph(closure, "closure")
        loss = first.loss.detach()
        info["loss"] = float(loss)
        if not math.isfinite(info["loss"]):
            info.update(loss_after=info["loss"], rho=float("nan"), alpha=0.0, cg_iters=0)
            return loss
        theta0 = self._theta()
        g, res, products = self._solve(first, theta0, curvature_closure, per_example, info)
        del first  # free the graph: the parameters change from here on
        f0 = info["loss"] + self._penalty(theta0)

        def f(p: Tensor) -> float:  # the objective at theta0 + p
            return self._objective(closure, theta0 + p, calls_backward)

        choice = backtrack(res.iterates if self.param_groups[0]["backtracking"] else res.iterates[-1:], f)
        gp = float(torch.dot(g, choice.step))
        search = self._line_search(f, choice, f0, gp)
        rho, more_products = self._reduction_ratio(curvature_closure or closure, theta0, choice, f0, gp)
        self._finish(theta0, g, choice, search, rho, res, products + more_products)
        info["function_evals"] = st["function_evals"] - evals0
        return loss

    # -- the pieces of a step ----------------------------------------------------------------------
    def _evaluate_with_graph(self, closure: Callable[[], Any], what: str) -> tuple[Evaluation, bool]:
        self._global["function_evals"] += 1
        return call_with_graph(closure, what)

    def _solve(
        self,
        first: Evaluation,
        theta0: Tensor,
        curvature_closure: Callable[[], Any] | None,
        per_example: PerExample | None,
        info: dict[str, Any],
    ) -> tuple[Tensor, CGResult, int]:
        """The gradient g (with the L2 term) and CG's solution of (G + lambda I) p = -g, from the
        graph of the closure's first evaluation; and the curvature products it took."""
        group = self.param_groups[0]
        lam, wd = float(group["damping"]), float(group["weight_decay"])
        reuse_hessian = group["curvature"] == "hessian" and curvature_closure is None
        with torch.enable_grad():
            grads = torch.autograd.grad(
                first.loss, self._params, retain_graph=True, allow_unused=True, create_graph=reuse_hessian
            )
        grads_ = [torch.zeros_like(p) if gr is None else gr for gr, p in zip(grads, self._params, strict=True)]
        g = flatten([gr.detach() for gr in grads_])
        if wd:
            g = g + wd * theta0
        with torch.enable_grad():
            if curvature_closure is not None:
                op = self._curvature_product(curvature_closure, float(group["structural_damping"]) * lam)
            elif reuse_hessian:
                op = HessianProduct(first.loss, self._params, grads_)
            else:
                op = self._gauss_newton(first, float(group["structural_damping"]) * lam, "closure")
        precond_inv = self._preconditioner(first, per_example, info)

        def apply_a(v: Tensor) -> Tensor:
            return flatten(op(unflatten(v, self._params))) + (lam + wd) * v

        res = conjugate_gradient(
            apply_a,
            -g,
            self._warm_start(),
            precond_inv=precond_inv,
            max_iter=group["cg_max_iter"],
            min_iter=group["cg_min_iter"],
            tol=group["cg_tol"],
        )
        for p, v in zip(self._params, unflatten(res.x, self._params), strict=True):
            self.state[p]["cg_solution"] = v.detach().clone()
        info.update(cg_iters=res.iterations, cg_reason=res.reason)
        return g, res, op.num_products

    def _curvature_product(self, curvature_closure: Callable[[], Any], hidden_weight: float) -> Product:
        """The curvature product on a fresh graph of ``curvature_closure()`` at the current parameters."""
        evaluation, _ = self._evaluate_with_graph(curvature_closure, "curvature_closure")
        if self.param_groups[0]["curvature"] == "hessian":
            return HessianProduct(evaluation.loss, self._params)
        return self._gauss_newton(evaluation, hidden_weight, "curvature_closure")

    def _gauss_newton(self, evaluation: Evaluation, hidden_weight: float, what: str) -> GaussNewtonProduct:
        if evaluation.outputs is None:
            raise ValueError(
                f"curvature='ggn' needs the model outputs: let the {what} return (outputs, loss), or "
                "construct HessianFree(..., curvature='hessian') to use a closure that returns only the loss"
            )
        structural = self.param_groups[0]["structural_damping"] > 0
        if structural and evaluation.hidden is None:
            raise ValueError(
                "structural_damping > 0 needs the hidden activities: let the curvature closure (or "
                "the closure) return (outputs, loss, hidden)"
            )
        hidden = evaluation.hidden if structural else None
        return GaussNewtonProduct(evaluation.outputs, evaluation.loss, self._params, hidden, hidden_weight)

    def _preconditioner(self, first: Evaluation, per_example: PerExample | None, info: dict[str, Any]) -> Tensor | None:
        """M^{-1} for CG (None without a preconditioner); records the method in ``info``."""
        group = self.param_groups[0]
        if group["preconditioner"] != "martens":
            info["preconditioner"] = "none"
            return None
        if per_example is None and first.outputs is None:
            raise ValueError(
                "preconditioner='martens' needs per-case gradients: pass step(..., per_example=PerExample("
                "model, inputs, targets, loss_fn)), let the closure return (outputs, loss), or construct "
                "HessianFree(..., preconditioner=None)"
            )
        with torch.enable_grad():
            diag, method = martens_preconditioner_diagonal(
                self._params,
                per_example=per_example,
                outputs=first.outputs,
                loss=first.loss,
                max_examples=group["preconditioner_examples"],
            )
        info["preconditioner"] = method
        return martens_preconditioner(
            flatten(diag),
            float(group["damping"]),
            weight_decay=float(group["weight_decay"]),
            exponent=group["preconditioner_exponent"],
        )

    def _warm_start(self) -> Tensor | None:
        """zeta times the previous HF iteration's CG solution (Martens 2010 section 4.5), or None."""
        zeta = self.param_groups[0]["cg_init_decay"]
        if zeta > 0 and all("cg_solution" in self.state[p] for p in self._params):
            return zeta * flatten([self.state[p]["cg_solution"] for p in self._params])
        return None

    def _line_search(self, f: Callable[[Tensor], float], choice: Choice, f0: float, gp: float) -> LineSearchResult:
        """The step size along the chosen step: Armijo from lr, or lr itself without a line search."""
        group = self.param_groups[0]
        lr = float(group["lr"])
        value = choice.value if lr == 1.0 else None  # f at alpha = 1 is known from backtracking
        if group["line_search"]:
            return armijo_line_search(lambda alpha: f(alpha * choice.step), f0, gp, lr, value)
        return LineSearchResult(lr, f(lr * choice.step) if value is None else value, int(value is None))

    def _reduction_ratio(
        self, curvature_closure: Callable[[], Any], theta0: Tensor, choice: Choice, f0: float, gp: float
    ) -> tuple[float, int]:
        """rho against the undamped model, q(p) - q(0) = g^T p + 1/2 p^T (G + wd I) p with G at
        theta0: the curvature graph is rebuilt there (one forward of the curvature batch), as the
        first one is gone. Returns rho and the curvature products it took."""
        self._set(theta0)
        wd = float(self.param_groups[0]["weight_decay"])
        p = choice.step
        with torch.enable_grad():
            op = self._curvature_product(curvature_closure, 0.0)
        model_change = gp + 0.5 * float(torch.dot(p, flatten(op(unflatten(p, self._params))) + wd * p))
        return reduction_ratio(f0, choice.value, model_change), op.num_products

    def _finish(
        self,
        theta0: Tensor,
        g: Tensor,
        choice: Choice,
        search: LineSearchResult,
        rho: float,
        res: CGResult,
        products: int,
    ) -> None:
        """Adapt lambda, move theta, leave g in ``p.grad`` and record the iteration."""
        group, st = self.param_groups[0], self._global
        if group["adapt_damping"]:
            group["damping"] = adapt_damping(float(group["damping"]), rho, group["damping_bounds"])
        theta_new = theta0 + search.alpha * choice.step
        self._set(theta_new)
        for p, gr in zip(self._params, unflatten(g, self._params), strict=True):
            p.grad = gr.detach().clone()
        st["step"] += 1
        st["cg_iters_total"] += res.iterations
        st["curvature_products"] += products
        st["rho"] = rho
        self.last_info.update(
            chosen_iter=choice.iteration,
            rho=rho,
            next_damping=float(group["damping"]),
            alpha=search.alpha,
            loss_after=search.value - self._penalty(theta_new),
            curvature_products=products,
        )

    # -- parameters as one flat vector -------------------------------------------------------------
    def _theta(self) -> Tensor:
        return flatten([p.detach() for p in self._params])

    def _set(self, flat: Tensor) -> None:
        with torch.no_grad():
            for p, v in zip(self._params, unflatten(flat, self._params), strict=True):
                p.copy_(v)

    def _penalty(self, theta: Tensor) -> float:
        """wd/2 ||theta||^2 (0 without weight decay)."""
        wd = float(self.param_groups[0]["weight_decay"])
        return 0.5 * wd * float(torch.dot(theta, theta)) if wd else 0.0

    def _objective(self, closure: Callable[[], Any], theta: Tensor, calls_backward: bool) -> float:
        """f at theta (parameters set to it), with the L2 term; +inf when not finite."""
        self._set(theta)
        self._global["function_evals"] += 1
        value = call_for_value(closure, calls_backward=calls_backward) + self._penalty(theta)
        return value if math.isfinite(value) else math.inf


def _checked_step_arguments(
    closure: Any, curvature_closure: Any, per_example: PerExample | Sequence | None
) -> PerExample | None:
    if not callable(closure):
        raise ValueError(
            f"HessianFree.step needs a closure returning the loss or (outputs, loss); got {type(closure).__name__}"
        )
    if curvature_closure is not None and not callable(curvature_closure):
        raise ValueError(f"curvature_closure must be callable or None, got {type(curvature_closure).__name__}")
    if per_example is None or isinstance(per_example, PerExample):
        return per_example
    if isinstance(per_example, tuple) and len(per_example) == 4:
        return PerExample(*per_example)
    raise ValueError(
        f"per_example must be PerExample(model, inputs, targets, loss_fn), got {type(per_example).__name__}"
    )
