"""The package as a whole: `inertia.doctor` is the function however the module is imported, every
module imports without the optional extras, and the wheel ships its type information."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SCRIPTS = {
    "called_twice": "import inertia, torch\n"
    "m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))\n"
    "x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))\n"
    "r1 = inertia.doctor(m, x, y); r2 = inertia.doctor(m, x, y)\n"
    "assert callable(inertia.doctor) and r1.healthy == r2.healthy\n",
    "after_from_import": "from inertia.doctor import DoctorReport\n"
    "import inertia, inspect\n"
    "assert inspect.isfunction(inertia.doctor), type(inertia.doctor)\n"
    "assert DoctorReport.__module__.startswith('inertia.doctor')\n",
    "after_import_module": "import importlib, inertia, inspect\n"
    "importlib.import_module('inertia.doctor')\n"
    "assert inspect.isfunction(inertia.doctor)\n"
    "assert inspect.ismodule(importlib.import_module('inertia.doctor'))\n",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_inertia_doctor_is_always_the_function(name):
    # a fresh interpreter each: the defect showed only on a module's first imports
    subprocess.run([sys.executable, "-c", SCRIPTS[name]], check=True, capture_output=True, timeout=120)


def test_inertia_doctor_can_be_patched_and_restored():
    from unittest import mock

    import inertia
    from inertia.doctor import doctor

    with mock.patch("inertia.doctor") as fake:
        assert inertia.doctor is fake
    assert inertia.doctor is doctor


def test_unknown_attribute_is_an_attribute_error():
    import inertia

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        inertia.nope  # noqa: B018


def test_importing_the_main_module_runs_no_command():
    res = subprocess.run(
        [sys.executable, "-c", "import inertia.__main__", "run", "nothing.yaml"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0 and res.stdout == "" and res.stderr == ""


ROOT = Path(__file__).resolve().parents[1]

IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
for extra in ("ray", "tensorboard", "torch.utils.tensorboard"):
    sys.modules[extra] = None  # importing it now raises ImportError, as where the extra is missing
import inertia
names = [m.name for m in pkgutil.walk_packages(inertia.__path__, "inertia.")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


@pytest.mark.slow
def test_every_module_imports_without_the_optional_extras():
    # what pytest --doctest-modules does to every module of src/inertia (scripts/test runs it)
    res = subprocess.run([sys.executable, "-c", IMPORT_EVERY_MODULE], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert int(res.stdout.split()[-1]) > 40


@pytest.mark.slow
def test_the_wheel_ships_py_typed(tmp_path):
    # PEP 561: without the marker, a user's type checker ignores the package's annotations
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", "dist", "."],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("inertia-*.whl")
    assert "inertia/py.typed" in zipfile.ZipFile(wheel).namelist()
