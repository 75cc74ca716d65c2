"""inertia: how weights start and how momentum carries the optimizer, for PyTorch.

Parts: :mod:`inertia.init` (initialization schemes), :mod:`inertia.optim` (classical momentum
and Nesterov exactly as in Sutskever et al. 2013), :mod:`inertia.diagnostics` (layer
statistics, Jacobian spectra, Hessian curvature), :mod:`inertia.data` and
:mod:`inertia.models` (the papers' data and networks), :mod:`inertia.experiments` and
:mod:`inertia.reproduce` (runs, sweeps, reproductions), and :func:`inertia.doctor`.

``inertia.doctor`` is always the function :func:`inertia.doctor.doctor`; its module's other names
(``DoctorReport``, ``recognize_scheme``, ...) are imported with ``from inertia.doctor import ...``.
"""

import sys
import types
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = ("init", "optim", "diagnostics", "data", "models", "experiments", "reproduce")


class _Package(types.ModuleType):
    """The package's module type: ``doctor`` is a read-only attribute naming the function.

    Importing the submodule ``inertia.doctor`` makes the import system set the package attribute
    ``doctor`` to that submodule; the setter below ignores it, so the attribute cannot turn from
    the function into a module however and whenever the submodule is imported. Any other value
    (a test's ``mock.patch("inertia.doctor")``) replaces the function until it is deleted.
    """

    @property
    def doctor(self) -> Any:
        override = self.__dict__.get("_doctor_override")
        if override is not None:
            return override
        from .doctor import doctor

        return doctor

    @doctor.setter
    def doctor(self, value: Any) -> None:
        if isinstance(value, types.ModuleType):
            return  # the import system binding the submodule: the function stays the attribute
        self.__dict__["_doctor_override"] = value  # a user's replacement (mock.patch) is honoured

    @doctor.deleter
    def doctor(self) -> None:
        self.__dict__.pop("_doctor_override", None)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> types.ModuleType:
    # lazy: `import inertia; inertia.init.apply(...)` imports only what is used
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'inertia' has no attribute {name!r}")
