"""A real two-node Ray cluster on this machine: ``ray start --head`` and a second ``ray start
--address`` node (one CPU each, token authentication, a free port), a sweep spread over both
through ``inertia sweep --backend ray --address``, the results equal to the local pool's, then both
nodes stopped (their process groups killed, nothing left running)."""

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray.tune", reason="Ray is in the dev extra; install inertia[dev] or inertia[ray]")
pytestmark = pytest.mark.slow

RAY = Path(sys.executable).parent / "ray"
START_TIMEOUT_S = 90


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(log: Path, text: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise AssertionError(f"ray start exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.5)
    raise AssertionError(f"ray start did not come up in {START_TIMEOUT_S} s: {log.read_text(errors='replace')[-2000:]}")


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # whatever of the node's group is still there
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def two_nodes(tmp_path: Path):
    """(address, env) of a running two-node cluster; both nodes are stopped on exit."""
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--block", "--disable-usage-stats"]
    nodes = []
    try:
        for i, args in enumerate(
            (["--head", "--port", str(port), "--include-dashboard=false"], ["--address", address])
        ):
            log = tmp_path / f"node{i}.log"
            with log.open("w") as out:
                proc = subprocess.Popen(
                    [str(RAY), "start", *args, *common],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            nodes.append(proc)
            _wait_for(log, "Ray runtime started", proc)
        yield address, env
    finally:
        for proc in reversed(nodes):
            _stop(proc)


def _config(tmp_path: Path) -> Path:
    cfg = {
        "experiment": "cluster",
        "data": {"name": "deep_linear_regression", "d_in": 32, "n": 256, "d_out": 4},
        "model": {"name": "deep_linear", "d_in": 32, "width": 64, "depth": 4, "d_out": 4},
        "init": {"scheme": "orthogonal"},
        "steps": 3000,  # a few seconds each, so that the two trials overlap and need both nodes
        "batch_size": 256,
        "eval_every": 500,
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    return path


def test_a_sweep_spreads_over_a_two_node_cluster_and_equals_the_local_pool(tmp_path):
    cfg = _config(tmp_path)
    sweep = [sys.executable, "-m", "inertia", "sweep", str(cfg), "--grid", "optimizer.lr=0.01,0.003", "--quiet"]
    sweep += ["--metric", "train_loss", "--name", "s"]
    local = subprocess.run(sweep + ["--out", str(tmp_path / "local")], capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr
    with two_nodes(tmp_path) as (address, env):
        res = subprocess.run(
            sweep + ["--out", str(tmp_path / "ray"), "--backend", "ray", "--address", address],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert res.returncode == 0, res.stderr[-3000:]
    a = json.loads((tmp_path / "local" / "cluster" / "s" / "results.json").read_text())["trials"]
    b = json.loads((tmp_path / "ray" / "cluster" / "s" / "results.json").read_text())["trials"]
    assert [t["id"] for t in a] == [t["id"] for t in b]
    assert [t["status"] for t in b] == ["completed", "completed"]
    for x, y in zip(a, b, strict=True):
        assert x["metrics"]["train_loss"] == y["metrics"]["train_loss"]
    assert len({t["node"] for t in b}) == 2, [t["node"] for t in b]  # one trial on each node
    left = subprocess.run(["pgrep", "-f", f"gcs_server_port={address.split(':')[1]}"], capture_output=True, text=True)
    assert left.stdout.strip() == "", "the head's GCS server still runs"


def test_an_unreachable_cluster_is_one_error_line(tmp_path):
    cfg = _config(tmp_path)
    port = _free_port()  # nothing listens there
    cmd = [sys.executable, "-m", "inertia", "sweep", str(cfg), "--grid", "optimizer.lr=0.01", "--metric", "train_loss"]
    cmd += ["--backend", "ray", "--address", f"127.0.0.1:{port}", "--out", str(tmp_path / "o")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and f"cannot connect to the Ray cluster at '127.0.0.1:{port}'" in errors[0]
    assert "Traceback" not in res.stderr
