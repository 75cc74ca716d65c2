"""``inertia reproduce --backend ray``: a paper's training pools run as Ray trials and decide the
same claims with the same measurements as the local pool."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("ray.tune", reason="Ray is in the dev extra; install inertia[dev] or inertia[ray]")
pytestmark = pytest.mark.slow


def _claims(out):
    (res,) = json.loads((out / "results.json").read_text())
    return [(c["statement"], c["measured"], c["passed"]) for c in res["claims"]]


def test_a_reproduction_on_ray_decides_what_the_local_pool_decides(tmp_path):
    base = [sys.executable, "-m", "inertia", "reproduce", "temperoni2020", "--quick", "--quiet"]
    local = subprocess.run(base + ["--out", str(tmp_path / "local")], capture_output=True, text=True, timeout=600)
    assert local.returncode == 0, local.stderr[-3000:]
    ray = subprocess.run(
        base + ["--out", str(tmp_path / "ray"), "--backend", "ray"], capture_output=True, text=True, timeout=600
    )
    assert ray.returncode == 0, ray.stderr[-3000:]
    assert _claims(tmp_path / "ray") == _claims(tmp_path / "local")
    assert (tmp_path / "ray" / "temperoni2020" / "sweep-quick" / "ray" / "tune").is_dir()  # the pool went through Tune
    assert "Number of trials" not in ray.stdout  # Tune's own tables went to its log
    assert (
        "Number of trials"
        in (tmp_path / "ray" / "temperoni2020" / "sweep-quick" / "ray" / "tune-output.log").read_text()
    )
