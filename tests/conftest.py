"""Shared test settings: one intra-op thread (the CI machine has 2 cores and tests must be
deterministic), float32 default dtype, and a fixed global seed for anything not seeded."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield
