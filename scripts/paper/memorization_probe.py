"""A prototype at the paper's size before more core-hours go into 5-bit memorization at T = 200
(Sutskever et al. 2013, Table 5): the larger learning rates that the loss's averaging over all
210 steps suggests (only the 5 recall steps carry the task, so the averaged loss's gradient is
about 40x smaller than a sum over the recall steps), with and without gradient clipping.

Five runs of 4,000 updates (100 tanh units, minibatch 100, the echo-state init, the Sutskever
schedule with period 250), one worker, resumable; about 80 minutes on one core of a 2-core CPU.

Command: ``nice .venv/bin/python scripts/paper/memorization_probe.py``; then
``.venv/bin/python scripts/paper/partial_summary.py runs/reproduce/sutskever2013/memorization-probe
docs/results/sutskever2013-memorization-probe.json``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from partial_summary import fail  # this script's folder is on sys.path

from inertia.experiments.sweep import run_configs
from inertia.reproduce import sutskever2013 as S

# (mu_max, lr, clip_grad_norm)
SETTINGS = [(0.99, 0.3, None), (0.99, 1.0, None), (0.9, 0.3, None), (0.99, 0.3, 1.0), (0.0, 1.0, None)]


def main() -> None:
    torch.set_num_threads(1)
    base = S.get_config(quick=False)["memorization"].replace(steps=4000, eval_every=500)
    configs = {f"mu{mu}|lr{lr}|clip{clip}": S._rnn_config(base, mu, lr, base.seed, clip) for mu, lr, clip in SETTINGS}
    t0 = time.time()
    result = run_configs(
        configs,
        out="runs/reproduce/sutskever2013",
        name="memorization-probe",
        workers=1,
        resume=True,
        progress=lambda done, total: print(f"{done}/{total} runs, {time.time() - t0:.0f} s", flush=True),
    )
    for t in result.trials:
        m = t["metrics"]
        print(t["overrides"]["label"], t["status"], {k: m.get(k) for k in ("step", "test_error", "train_loss")})


if __name__ == "__main__":
    if sys.argv[1:]:
        fail(f"{Path(sys.argv[0]).name} takes no arguments, got {' '.join(sys.argv[1:])!r}")
    main()
