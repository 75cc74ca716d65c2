"""One 5-bit memorization run at T = 200 (Sutskever et al. 2013, Table 5; the config of
``inertia reproduce sutskever2013 --full``) in a plain loop that prints, every ``--every`` updates,
the test loss (all steps and the 5 recall steps), the test error over the recalled symbols, |W_hh|
and the largest gradient norm since the last line: what the run store's metrics do not show, to see
why a setting fails (a gradient-norm spike that undoes what was learned).

Commands behind docs/REPRODUCTIONS.md (one core each, about 80 ms per update):
``nice .venv/bin/python scripts/paper/memorization_dynamics.py --lr 0.003 --steps 8000`` and
``... --lr 0.01 --clip 1 --steps 8000``.
"""

import argparse
import time

import torch

from inertia.experiments.train import build_parts
from inertia.optim import Momentum, schedules
from inertia.reproduce import sutskever2013 as S

torch.set_num_threads(1)
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, required=True)
p.add_argument("--mu", type=float, default=0.99)
p.add_argument("--steps", type=int, default=5000)
p.add_argument("--loss", default="all", choices=["all", "recall"])
p.add_argument("--clip", type=float, default=None)
p.add_argument("--every", type=int, default=250)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--nesterov", type=int, default=1)
p.add_argument("--out", default=None, help="write the lines as JSON here too")
a = p.parse_args()
for bad, what in (
    (not a.lr > 0 or a.lr == float("inf"), f"--lr must be a positive finite number, got {a.lr}"),
    (not 0 <= a.mu < 1, f"--mu must be in [0, 1), got {a.mu}"),
    (a.steps < 1 or a.every < 1, f"--steps and --every must be at least 1, got {a.steps} and {a.every}"),
    (a.clip is not None and not a.clip > 0, f"--clip must be a positive number, got {a.clip}"),
):
    if bad:
        p.error(what)  # one error line, exit status 2
base = S.get_config(quick=False)["memorization"].replace(seed=a.seed)
data, m, loss_fn, _ = build_parts(base)
opt = Momentum(
    m.parameters(),
    lr=a.lr,
    momentum=schedules.sutskever_momentum(a.mu, period=250) if a.mu > 0 else 0.0,
    nesterov=bool(a.nesterov),
)
g = torch.Generator().manual_seed(a.seed)
t0 = time.time()
gmax = 0.0
rows = []
for step in range(a.steps + 1):
    if step % a.every == 0:
        with torch.no_grad(), opt.at_theta():
            out = m(data.x_test)
            err = float((out[:, -5:].argmax(-1) != data.y_test[:, -5:]).float().mean())
            lt = float(loss_fn(out, data.y_test))
            lr_ = float(loss_fn(out[:, -5:], data.y_test[:, -5:]))
            Wn = float(m.weight_hh.norm())
        rows.append(dict(step=step, loss=lt, recall_loss=lr_, test_error=err, whh_norm=Wn, max_grad_norm=gmax))
        print(
            f"{step} {time.time() - t0:.0f}s loss {lt:.4f} recall {lr_:.4f} err {err:.3f}",
            f"|Whh| {Wn:.2f} gmax {gmax:.3g}",
            flush=True,
        )
        gmax = 0.0
        if err == 0.0:
            print("SOLVED", step)
            break
    idx = torch.randint(0, len(data.x_train), (100,), generator=g)
    x, y = data.x_train[idx], data.y_train[idx]
    out = m(x)
    loss = loss_fn(out[:, -5:], y[:, -5:]) if a.loss == "recall" else loss_fn(out, y)
    opt.zero_grad()
    loss.backward()
    gn = float(torch.nn.utils.clip_grad_norm_(m.parameters(), a.clip if a.clip else float("inf")))
    gmax = max(gmax, gn)
    opt.step()
if a.out:
    import json

    json.dump({"args": vars(a), "rows": rows}, open(a.out, "w"), indent=1)
