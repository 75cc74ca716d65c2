"""inertia.init against torch.nn.init, measured in the same run.

    python benchmarks/bench_init.py [--quick] [--threads N] [--repeats R]

Prints median wall time per call and the ratio ours / torch (below 1.0: inertia is faster).
Goal (issue 3): orthogonal_ on 4096x4096 float32 and float16 at most 1.0x torch's float32 time
(torch cannot do float16 at all).
"""

from __future__ import annotations

import torch

import inertia.init as I
from _common import median_time, parse_args


def timeit(fn, repeats: int) -> float:
    return median_time(fn, repeats)


def main() -> None:
    args = parse_args(__doc__, repeats=True)
    n = 1024 if args.quick else 4096
    repeats = args.repeats or (3 if args.quick else 5)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, n={n}, median of {repeats}")
    rows = []
    g = torch.Generator().manual_seed(0)
    w32 = torch.empty(n, n)
    w16 = torch.empty(n, n, dtype=torch.float16)
    t_torch = timeit(lambda: torch.nn.init.orthogonal_(w32, generator=g), repeats)
    rows.append(("orthogonal_ float32", timeit(lambda: I.orthogonal_(w32, generator=g), repeats), t_torch))
    rows.append(
        ("orthogonal_ float16 (torch: float32)", timeit(lambda: I.orthogonal_(w16, generator=g), repeats), t_torch)
    )
    wl = torch.empty(n, n)
    rows.append(
        (
            "glorot_uniform_ vs xavier_uniform_",
            timeit(lambda: I.glorot_uniform_(wl, generator=g), repeats),
            timeit(lambda: torch.nn.init.xavier_uniform_(wl, generator=g), repeats),
        )
    )
    rows.append(
        (
            "he_normal_ vs kaiming_normal_",
            timeit(lambda: I.he_normal_(wl, generator=g), repeats),
            timeit(lambda: torch.nn.init.kaiming_normal_(wl, generator=g), repeats),
        )
    )
    print(f"{'case':40s} {'ours (ms)':>10s} {'torch (ms)':>11s} {'ratio':>7s}")
    for name, ours, peer in rows:
        print(f"{name:40s} {ours * 1e3:10.1f} {peer * 1e3:11.1f} {ours / peer:7.2f}")


if __name__ == "__main__":
    main()
