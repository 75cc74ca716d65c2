"""A Monitor that streams to a file holds a bounded number of records, whatever the run length;
what it wrote can be read back."""

import gc
import math
import tracemalloc

import pytest
import torch
from torch import nn

from inertia import diagnostics as D


def model_and_batch():
    torch.manual_seed(0)
    return (
        nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 3)),
        torch.randn(16, 10),
        torch.randint(0, 3, (16,)),
    )


def run_steps(mon, m, x, y, steps, start=0):
    for t in range(start, start + steps):
        m.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        mon.step(t, loss=0.5)


def held_bytes() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@pytest.mark.slow
def test_monitor_with_a_path_holds_memory_independent_of_the_number_of_steps(tmp_path):
    m, x, y = model_and_batch()
    mon = D.Monitor(m, ["layer_stats", "weight_norms"], every=1, path=tmp_path / "diag.jsonl")
    tracemalloc.start()
    try:
        run_steps(mon, m, x, y, 220)  # torch's own lazily built caches settle within ~200 steps
        before = held_bytes()
        run_steps(mon, m, x, y, 200, start=220)
        grown = held_bytes() - before
    finally:
        tracemalloc.stop()
        mon.close()
    record_bytes = (tmp_path / "diag.jsonl").stat().st_size / 420  # one record's size as JSON text
    # a monitor that held the 200 new records would grow by about 200 records (2 MB here before
    # the fix); one that holds none grows by what torch's own caches do (a few KB, measured from
    # -2 to +7 KB, about one record), far below 10 records
    assert grown < 10 * record_bytes, (grown, record_bytes)
    assert mon.records == [] and mon.layer_stats.records == []


def test_keep_bounds_the_records_held_in_memory(tmp_path):
    m, x, y = model_and_batch()
    with D.Monitor(m, ["layer_stats"], every=2, path=tmp_path / "diag.jsonl", keep=3) as mon:
        run_steps(mon, m, x, y, 20)
        assert [r["step"] for r in mon.records] == [14, 16, 18]
    with D.Monitor(m, ["layer_stats"], every=2, keep=2) as mon:  # in memory only, still bounded
        run_steps(mon, m, x, y, 20)
        assert [r["step"] for r in mon.records] == [16, 18]


def test_monitor_without_a_path_keeps_every_record():
    m, x, y = model_and_batch()
    with D.Monitor(m, ["layer_stats"], every=2) as mon:
        run_steps(mon, m, x, y, 20)
        assert [r["step"] for r in mon.records] == list(range(0, 20, 2))


def test_read_records_returns_what_this_monitor_wrote_and_not_what_the_file_held(tmp_path):
    path = tmp_path / "diag.jsonl"
    path.write_text('{"step": -1}\n')  # an earlier run's record stays in the file
    m, x, y = model_and_batch()
    with D.Monitor(m, ["layer_stats"], every=5, path=path) as mon:
        run_steps(mon, m, x, y, 12)
        back = mon.read_records()
    assert [r["step"] for r in back] == [0, 5, 10]
    assert path.read_text().startswith('{"step": -1}\n')
    m2, x, y = model_and_batch()  # the same run with a monitor that keeps its records in memory
    ref = D.Monitor(m2, ["layer_stats"], every=5)
    run_steps(ref, m2, x, y, 12)
    ref.close()
    assert [[r["std"] for r in rec["layers"]] for rec in back] == [
        [r["std"] for r in rec["layers"]] for rec in ref.records
    ]


def test_read_records_restores_nonfinite_floats(tmp_path):
    mon = D.Monitor(
        nn.Linear(2, 2), [lambda mon, step: {"x": math.nan, "y": -math.inf}], every=1, path=tmp_path / "d.jsonl"
    )
    mon.step(0)
    mon.close()
    r = mon.read_records()[0]
    assert math.isnan(r["x"]) and r["y"] == -math.inf


@pytest.mark.parametrize("keep", [-1, 1.5, True, "3"])
def test_keep_must_be_a_non_negative_integer(keep):
    with pytest.raises(ValueError, match=r"keep must be None or a non-negative integer, got"):
        D.Monitor(nn.Linear(2, 2), ["weight_norms"], keep=keep)


def test_records_read_from_the_json_file_with_nonfinite_strings_still_plot(tmp_path):
    from inertia.diagnostics import plots
    from inertia.experiments.store import read_jsonl

    m, x, y = model_and_batch()
    curv = lambda mon, step: {"hessian_trace": math.nan if step == 2 else 1.0 + step}  # noqa: E731
    with D.Monitor(m, ["layer_stats", curv], every=1, path=tmp_path / "diag.jsonl") as mon:
        run_steps(mon, m, x, y, 2)
        mon.layer_stats.active = True
        m(torch.empty(0, 10)).sum().backward()  # an empty batch: NaN statistics
        mon.step(2, loss=math.inf)
    recs = read_jsonl(tmp_path / "diag.jsonl")  # plain JSON: "nan" and "inf" are strings
    assert recs[2]["hessian_trace"] == "nan" and recs[2]["layers"][0]["mean"] == "nan"
    plots.plot_layer_stats(recs, "activation", path=tmp_path / "a.png")
    plots.plot_curvature(recs, keys=("hessian_trace",), loss_key="loss", path=tmp_path / "c.png")
    assert (tmp_path / "a.png").stat().st_size > 500 and (tmp_path / "c.png").stat().st_size > 500
