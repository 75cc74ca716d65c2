"""A library must not choose the user's matplotlib backend: importing every inertia module and
making every kind of figure leaves the backend as the user set it and never imports pyplot."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import importlib, json, pkgutil, sys
    from pathlib import Path
    import matplotlib
    matplotlib.use("svg")  # the user's choice, not Agg
    import torch
    from torch import nn
    import inertia
    for mod in pkgutil.walk_packages(inertia.__path__, "inertia."):
        importlib.import_module(mod.name)
    from inertia import diagnostics as D
    from inertia.diagnostics import plots
    from inertia.doctor import doctor
    from inertia.experiments.report import write_report
    from inertia.experiments.train import train
    from inertia.optim import schedules
    from inertia.diagnostics.plots import subplots
    from inertia.render import save_figure

    out = Path(sys.argv[1])
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    loss_fn = lambda: nn.functional.cross_entropy(m(x), y)
    mon = D.Monitor(m, ["layer_stats", "hessian_trace"], every=1, loss_fn=loss_fn, probes=2)
    for t in range(2):
        m.zero_grad(); loss_fn().backward(); mon.step(t, loss=1.0)
    mon.close()
    plots.plot_layer_stats(mon.records, path=out / "a.png")
    plots.plot_histograms(mon.records, "backprop_grad", path=out / "b.png")
    plots.plot_curvature(mon.records, keys=("hessian_trace",), path=out / "c.png", loss_key="loss")
    plots.plot_jacobian_singular_values(D.layer_jacobian_singular_values(m, x), path=out / "d.png")
    plots.plot_spectral_density(D.hessian_spectral_density(loss_fn, list(m.parameters()), iterations=5),
                                path=out / "e.png")
    schedules.plot(schedules.get("sutskever_momentum")(mu_max=0.99), 20, path=out / "f.png")
    doctor(m, x, y).to_html(out / "doctor.html")
    fig, ax = subplots(1, 2, figsize=(4, 2), sharey=True)
    ax[0].plot([0, 1]); save_figure(fig, out / "g.png")
    train(dict(experiment="r", data={"name": "deep_linear_regression", "d_in": 4, "n": 16, "d_out": 2},
               model={"name": "deep_linear", "d_in": 4, "width": 4, "depth": 2, "d_out": 2},
               steps=4, batch_size=8, eval_every=2,
               monitor={"quantities": ["layer_stats", "hessian_trace"], "every": 2}),
          out / "run")
    write_report(out / "run")
    print(json.dumps([matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules,
                      sorted(p.name for p in out.rglob("*.png"))]))
""")


@pytest.mark.slow
def test_importing_and_plotting_keeps_the_users_backend_and_never_imports_pyplot(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # conftest sets it to Agg
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-3000:]
    backend, pyplot_imported, pngs = json.loads(res.stdout.strip().splitlines()[-1])
    assert backend == "svg"
    assert not pyplot_imported
    assert {"a.png", "b.png", "c.png", "d.png", "e.png", "f.png", "g.png", "loss.png", "curvature.png"} <= set(pngs)
