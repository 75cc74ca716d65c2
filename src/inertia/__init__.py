"""inertia: how weights start and how momentum carries the optimizer, for PyTorch.

Parts: :mod:`inertia.init` (initialization schemes), :mod:`inertia.optim` (classical momentum
and Nesterov exactly as in Sutskever et al. 2013), :mod:`inertia.diagnostics` (layer
statistics, Jacobian spectra, Hessian curvature), :mod:`inertia.data` and
:mod:`inertia.models` (the papers' data and networks), :mod:`inertia.experiments` and
:mod:`inertia.reproduce` (runs, sweeps, reproductions).
"""

__version__ = "0.1.0"

_SUBMODULES = ("init", "optim", "diagnostics", "data", "models", "experiments", "reproduce")


def __getattr__(name):  # lazy: `import inertia; inertia.init.apply(...)` imports only what is used
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    if name == "doctor":
        from .doctor import doctor

        return doctor
    raise AttributeError(f"module 'inertia' has no attribute {name!r}")
