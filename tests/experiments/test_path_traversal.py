"""Names that become folders (experiment, run id, sweep name) cannot reach outside the output folder,
whichever entry point builds the path (issue 15, item 24)."""

from pathlib import Path

import pytest

from inertia.experiments.config import Config
from inertia.experiments.sweep import run_configs, run_sweep

BAD = ["../x", "../../x", "/abs", "a/b", "..", "."]  # an empty name means the default name


def _base(**over):
    cfg = Config(
        experiment="sw",
        data={"name": "curves", "n": 100, "n_test": 20},
        model={"name": "deep_autoencoder", "sizes": [784, 16]},
        steps=2,
        batch_size=50,
        eval_every=2,
    )
    return cfg.replace(**over)


def _nothing_outside(tmp_path: Path) -> None:
    assert sorted(p.name for p in tmp_path.parent.iterdir() if p.name in ("x", "abs")) == []


@pytest.mark.parametrize("name", BAD)
def test_a_sweep_name_that_is_not_one_folder_is_refused_before_anything_is_written(tmp_path, name):
    out = tmp_path / "runs"
    with pytest.raises(ValueError, match="single folder name"):
        run_sweep(_base(), {"optimizer.lr": [0.01]}, 1, out, name, workers=1)
    assert not out.exists()
    _nothing_outside(tmp_path)


@pytest.mark.parametrize("name", ["../x", "/abs", ".."])
def test_a_configs_sweep_name_that_is_not_one_folder_is_refused(tmp_path, name):
    out = tmp_path / "runs"
    with pytest.raises(ValueError, match="single folder name"):
        run_configs({"a": _base()}, out, name, workers=1)
    assert not out.exists()


@pytest.mark.parametrize("experiment", ["..", "../x", "/abs"])
def test_an_experiment_that_is_not_one_folder_is_refused(tmp_path, experiment):
    with pytest.raises(ValueError, match="single folder name"):
        _base(experiment=experiment)
