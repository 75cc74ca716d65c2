"""The integrations import no framework until one is used, and a missing framework is an ImportError that names the
extra to install. No test here imports Lightning, transformers or TensorBoard."""

from __future__ import annotations

import re
import subprocess
import sys
import types

import pytest

import inertia.integrations.huggingface as hf_module
import inertia.integrations.lightning as lightning_module
from inertia.integrations.tensorboard import TensorBoardWriter, record_scalars

IMPORT_ALL = """
import sys
import inertia.integrations, inertia.integrations.lightning, inertia.integrations.huggingface
import inertia.integrations.tensorboard
heavy = ("lightning", "pytorch_lightning", "transformers", "accelerate", "tensorboard", "torch.utils.tensorboard")
print([m for m in heavy if m in sys.modules])
"""


def block(monkeypatch, *modules: str) -> None:
    """Make importing each of ``modules`` raise ImportError, as where it is not installed."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.slow
def test_importing_the_integrations_imports_no_framework():
    res = subprocess.run([sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "[]"


def test_without_lightning_the_callback_names_the_extra(monkeypatch):
    block(monkeypatch, "lightning", "lightning.pytorch", "pytorch_lightning")
    monkeypatch.delitem(vars(lightning_module), "MonitorCallback", raising=False)  # made by an earlier test
    message = "MonitorCallback for Lightning needs lightning: pip install 'inertia[lightning]'"
    with pytest.raises(ImportError, match=re.escape(message)):
        from inertia.integrations.lightning import MonitorCallback  # noqa: F401


def test_without_transformers_the_callback_names_the_extra(monkeypatch):
    block(monkeypatch, "transformers")
    monkeypatch.delitem(vars(hf_module), "MonitorCallback", raising=False)
    message = "MonitorCallback for Hugging Face needs transformers: pip install 'inertia[hf]'"
    with pytest.raises(ImportError, match=re.escape(message)):
        from inertia.integrations.huggingface import MonitorCallback  # noqa: F401


def test_a_transformers_without_on_pre_optimizer_step_is_refused(monkeypatch):
    old = types.ModuleType("transformers")
    old.__version__ = "4.40.0"  # type: ignore[attr-defined]
    old.TrainerCallback = type("TrainerCallback", (), {"on_step_end": lambda self, *a, **k: None})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "transformers", old)
    monkeypatch.delitem(vars(hf_module), "MonitorCallback", raising=False)
    with pytest.raises(ImportError, match=r"needs transformers>=4\.45 .*found 4\.40\.0: pip install 'inertia\[hf\]'"):
        from inertia.integrations.huggingface import MonitorCallback  # noqa: F401


def test_without_tensorboard_the_writer_names_the_extra_and_the_tags_still_work(monkeypatch, tmp_path):
    block(monkeypatch, "tensorboard", "torch.utils.tensorboard")
    message = "TensorBoard export needs tensorboard: pip install 'inertia[tensorboard]'"
    with pytest.raises(ImportError, match=re.escape(message)):
        TensorBoardWriter(tmp_path)
    assert list(record_scalars({"step": 0, "hessian_trace": 1.0})) == [("curvature/hessian_trace", 1.0)]


def test_an_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'Callback'"):
        lightning_module.Callback  # noqa: B018
