"""Shared by the benchmark scripts: the command line every one accepts, and a median timer."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch


def parse_args(doc: str, repeats: bool = False) -> argparse.Namespace:
    """``--quick`` (smoke sizes), ``--threads N`` (set before anything runs, and printed), and
    optionally ``--repeats R``."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke-test sizes")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    if repeats:
        ap.add_argument("--repeats", type=int, default=None, help="timed repetitions (median reported)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    return args


def median_time(fn: Callable[[], object], repeats: int, block: int = 1, warmup: int = 1) -> float:
    """Median over ``repeats`` of the mean time of ``block`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(block):
            fn()
        times.append((time.perf_counter() - t0) / block)
    return statistics.median(times)
