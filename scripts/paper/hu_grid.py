"""Hu, Xiao & Pennington (2020), section 5, at paper scale: the (width, depth) grid of losses after
1,000 full-batch gradient-descent steps, orthogonal against Gaussian init, widths 16-512 and depths
2-512 (the paper goes to width 1000 and depth 700; those cells alone would take longer than the
rest of the grid on this CPU). The claims are the quick mode's, decided by the same tests.

Two workers, resumable (rerun the same command). Writes docs/results/hu2020-full.json and
docs/figures/hu2020-full-heatmaps.png.

Command: ``nice .venv/bin/python scripts/paper/hu_grid.py`` (56 minutes on two cores of the 2-core CPU, 2026-12-02).
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
from pathlib import Path

import torch
from partial_summary import fail  # this script's folder is on sys.path

from inertia.reproduce import hu2020

SIZES = hu2020.Sizes(widths=[16, 32, 64, 128, 256, 512], depths=[2, 4, 8, 16, 32, 64, 128, 256, 512], steps=1000)
RESULT = Path("docs/results/hu2020-full.json")
FIGURE = Path("docs/figures/hu2020-full-heatmaps.png")


def main() -> None:
    torch.set_num_threads(1)
    res = hu2020.run(quick=False, out=Path("runs/reproduce-paper"), sizes=SIZES, workers=2)
    d = res.to_dict()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(res.figures[0].path, FIGURE)
    d["figures"] = [{"path": str(FIGURE), "caption": res.figures[0].caption}]
    d["command"] = "nice .venv/bin/python scripts/paper/hu_grid.py"
    d["sizes"] = {"widths": SIZES.widths, "depths": SIZES.depths, "steps": SIZES.steps}
    d["paper_sizes"] = {"widths": "10 to 1000", "depths": "1 to 700"}
    d["machine"] = f"{platform.machine()}, 1 torch thread, torch {torch.__version__}"
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(d, indent=2, default=str) + "\n")
    for c in res.claims:
        print(c.verdict, c.statement, c.measured)


if __name__ == "__main__":
    if sys.argv[1:]:
        fail(f"{Path(sys.argv[0]).name} takes no arguments, got {' '.join(sys.argv[1:])!r}")
    main()
