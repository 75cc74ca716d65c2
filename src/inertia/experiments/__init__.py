"""Experiments: ``train(config) -> metrics``, the configs that name everything by registry strings,
the run store (one folder per run), sweeps (local pool or Ray) and reports.

- :mod:`~inertia.experiments.config`: :class:`Config`, :func:`from_dict`, :func:`load`; validated eagerly.
- :mod:`~inertia.experiments.components`: a run's pieces built from a config; :func:`dry_build`.
- :mod:`~inertia.experiments.steps`: the training step of each optimizer kind.
- :mod:`~inertia.experiments.train`: :func:`train`, the one training loop.
- :mod:`~inertia.experiments.stacked`: :func:`train_stacked`, many runs of one shape trained as one.
- :mod:`~inertia.experiments.store`, :mod:`~inertia.experiments.sweep`, :mod:`~inertia.experiments.report`.

Importing this package imports none of them (nor torch): each name below is imported when first
used. ``inertia.experiments.train`` is always the function :func:`inertia.experiments.train.train`
(as ``inertia.doctor`` is the doctor); its module's other names are imported with
``from inertia.experiments.train import ...``.

Examples:
    >>> from inertia import experiments
    >>> cfg = experiments.from_dict({"data": {"name": "digits"}, "model": {"name": "mlp", "sizes": [64, 10]}})
    >>> cfg.data["name"], callable(experiments.train)
    ('digits', True)
"""

import importlib
import sys
import types

# public name -> the submodule that defines it
_NAMES = {
    "Config": "config",
    "ConfigError": "config",
    "MonitorConfig": "config",
    "OptimizerConfig": "config",
    "from_dict": "config",
    "load": "config",
    "TrainData": "components",
    "build_data": "components",
    "dry_build": "components",
    "STEPS": "steps",
    "batch_indices": "steps",
    "TrainResult": "train",
    "train_data_parallel": "train",
    "deterministic": "train",
    "RunDir": "store",
    "read_jsonl": "store",
    "SweepResult": "sweep",
    "expand": "sweep",
    "load_sweep": "sweep",
    "parse_grid": "sweep",
    "run_configs": "sweep",
    "run_sweep": "sweep",
    "TuneOptions": "sweep",
    "default_backend": "sweep",
    "parse_space": "search",
    "sample_points": "search",
    "write_report": "report",
    "train_stacked": "stacked",
    "group_stackable": "stacked",
}

__all__ = ["train", *sorted(_NAMES)]


class _Package(types.ModuleType):
    """The package's module type: ``train`` is the function, whenever the submodule of that name is
    imported (the import system then sets the attribute to the submodule; the setter ignores it).
    Any other value (a test's ``mock.patch``) replaces the function until it is deleted."""

    @property
    def train(self):
        override = self.__dict__.get("_train_override")
        if override is not None:
            return override
        from .train import train

        return train

    @train.setter
    def train(self, value):
        if isinstance(value, types.ModuleType):
            return  # the import system binding the submodule: the function stays the attribute
        self.__dict__["_train_override"] = value

    @train.deleter
    def train(self):
        self.__dict__.pop("_train_override", None)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name in _NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
