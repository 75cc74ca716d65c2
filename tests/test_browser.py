"""Every HTML report kind in a real browser (headless Chromium; skipped where it is not installed,
and ``.ci/run`` installs Debian's ``chromium``): it loads with no console error, every figure is
present and drawn, tables and the page fit the width, a failed run shows its message, and a
user-supplied string that is HTML (here as an experiment name) is shown, not run.

The report is loaded in an iframe of a harness page whose script measures it and writes the
figures as JSON into the harness's DOM, which ``--dump-dom`` prints."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn

import inertia
from inertia.experiments.config import Config
from inertia.experiments.report import write_report
from inertia.experiments.sweep import run_sweep
from inertia.experiments.train import train

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package chromium)")

HOSTILE = "<img src=x onerror=window.pwned=1>"  # a valid folder name that is HTML

HARNESS = """<!doctype html><html><body style="margin:0">
<iframe id="f" src="%s" style="width:1100px;height:900px;border:0"></iframe>
<script>
const f = document.getElementById("f");
f.onload = () => {
  const d = f.contentDocument, w = f.contentWindow;
  const imgs = [...d.images].map(i => ({w: i.naturalWidth, h: i.naturalHeight,
      shown: i.getBoundingClientRect().width, right: i.getBoundingClientRect().right}));
  const tables = [...d.querySelectorAll("table")].map(t => ({scroll: t.scrollWidth,
      right: t.getBoundingClientRect().right}));
  const out = {imgs, tables, width: d.documentElement.clientWidth, scroll: d.documentElement.scrollWidth,
      pwned: !!w.pwned, text: d.body.innerText};
  const pre = document.createElement("pre");
  pre.id = "result";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
};
</script></body></html>"""


def in_browser(page: Path) -> tuple[dict, str]:
    harness = page.parent / f"harness-{page.stem}.html"
    harness.write_text(HARNESS % page.name)
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--allow-file-access-from-files",
            "--virtual-time-budget=20000",
            "--window-size=1100,900",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            harness.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    m = re.search(r'<pre id="result">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"the harness did not report: {proc.stdout[-500:]} {proc.stderr[-2000:]}"

    return json.loads(html.unescape(m.group(1))), proc.stderr


def check(page: Path, figures: int) -> dict:
    r, log = in_browser(page)
    console = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    assert len(r["imgs"]) >= figures, r["imgs"]
    assert all(i["w"] > 0 and i["h"] > 0 and i["shown"] > 0 for i in r["imgs"]), r["imgs"]  # decoded and drawn
    assert all(i["right"] <= r["width"] + 1 for i in r["imgs"]), (r["imgs"], r["width"])
    assert all(t["right"] <= r["width"] + 1 for t in r["tables"]), (r["tables"], r["width"])
    assert r["scroll"] <= r["width"] + 1, "the page scrolls sideways"
    assert not r["pwned"]
    return r


def small(**over) -> Config:
    c = Config(
        experiment=HOSTILE,
        data={"name": "curves", "n": 100, "n_test": 20},
        model={"name": "deep_autoencoder", "sizes": [784, 16]},
        init={"scheme": "glorot_uniform"},
        steps=6,
        batch_size=50,
        eval_every=3,
        monitor={"quantities": ["layer_stats"], "every": 3},
    )
    return c.replace(**over)


def test_a_run_report(tmp_path):
    train(small(), tmp_path / "run")
    _, page = write_report(tmp_path / "run")
    r = check(page, figures=2)
    assert HOSTILE in r["text"]  # shown as text


def test_a_failed_run_shows_its_message(tmp_path):
    cfg = small(
        data={"name": "deep_linear_regression", "d_in": 8, "n": 16, "d_out": 2},
        model={"name": "deep_linear", "d_in": 8, "width": 8, "depth": 3, "d_out": 2},
        init={"scheme": "normal", "std": 3.0},
        optimizer={"lr": 50.0},
        monitor={"quantities": [], "every": 10},
        steps=50,
        batch_size=16,
        eval_every=10,
    )
    res = train(cfg, tmp_path / "run")
    assert res.status == "diverged"
    _, page = write_report(tmp_path / "run")
    r = check(page, figures=0)
    assert "diverged" in r["text"] and res.message.split(":")[0] in r["text"]


def test_a_sweep_report(tmp_path):
    quiet = small(monitor={"quantities": [], "every": 10})
    res = run_sweep(quiet, {"optimizer.lr": [0.05, 0.01, 0.001]}, out=tmp_path, name="s", workers=1)
    _, page = write_report(res.directory)
    r = check(page, figures=1)
    assert "best learning rate per setting" in r["text"]


def test_a_reproduction_report(tmp_path):
    from inertia import reproduce

    reproduce.run("momentum", smoke=True, out=tmp_path)
    r = check(tmp_path / "report.html", figures=1)
    assert "PASS" in r["text"] or "FAIL" in r["text"]


def test_a_doctor_report(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 3))
    x, y = torch.randn(64, 10), torch.randint(0, 3, (64,))
    report = inertia.doctor(model, x, y, lr=100.0, momentum=0.9)
    report.to_html(tmp_path / "doctor.html")
    r = check(tmp_path / "doctor.html", figures=1)
    assert "unstable_lr" in r["text"]
