"""How momentum carries the optimizer: classical momentum and Nesterov's accelerated gradient
exactly as in Sutskever et al. (2013), for any schedule, as fast as ``torch.optim.SGD``.

- :class:`Momentum`: the ``torch.optim.Optimizer``.
- :mod:`inertia.optim.functional`: the pure update rules over lists of tensors.
- :mod:`inertia.optim.schedules`: momentum and learning-rate schedules (``step -> value``).
- :class:`HessianFree`: Martens (2010)'s Hessian-free optimization (:mod:`inertia.optim.hessian_free`).
"""

from . import functional, schedules
from .functional import momentum as momentum_update
from .hessian_free import HessianFree, PerExample
from .momentum import Momentum

__all__ = ["Momentum", "HessianFree", "PerExample", "functional", "schedules", "momentum_update"]
