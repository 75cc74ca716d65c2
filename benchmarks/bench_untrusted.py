"""Peak memory of refusing crafted data files (docs/data.md, "Untrusted files").

Builds, in a temporary folder, the two crafted files of tests/data/test_untrusted_files.py (a gzip
IDX file whose data runs past its header, a CIFAR pickle of memo-shared lists) and prints each
file's size and the peak of Python allocations (tracemalloc) while inertia refuses it.
Run: .venv/bin/python benchmarks/bench_untrusted.py
"""

from __future__ import annotations

import gzip
import pickle
import struct
import tempfile
import tracemalloc
from pathlib import Path

from inertia import data as D

MB = 1 << 20


def _peak(fn, path):
    tracemalloc.start()
    try:
        fn(path)
        outcome = "loaded"
    except ValueError:
        outcome = "refused"
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return outcome, peak


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        idx = Path(tmp) / "t10k-images-idx3-ubyte.gz"
        header = struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">3I", 4, 28, 28)
        idx.write_bytes(gzip.compress(header + bytes(3136) + bytes(64 * MB), compresslevel=1))
        x = [0] * 1000
        cifar = Path(tmp) / "data_batch_1"
        cifar.write_bytes(
            pickle.dumps({"data": [x] * 100_000, "labels": [0] * 100_000, "filenames": [], "batch_label": "b"})
        )
        print(f"{'file':58s} {'size MB':>8s} {'result':>8s} {'peak MB':>8s}")
        for label, fn, path in (
            ("gzip IDX declaring (4, 28, 28), inflating to 64 MB", D.read_idx, idx),
            ("CIFAR pickle of 100,000 references to one 1,000-list", D.load_cifar10, cifar),
        ):
            outcome, peak = _peak(fn, path)
            print(f"{label:58s} {path.stat().st_size / MB:8.2f} {outcome:>8s} {peak / MB:8.2f}")


if __name__ == "__main__":
    main()
