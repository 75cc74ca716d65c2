"""inertia.integrations.tensorboard: the Monitor's records written as TensorBoard scalars and histograms, read back
with TensorBoard's own EventAccumulator."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from inertia.diagnostics import Monitor
from inertia.integrations.tensorboard import (
    TensorBoardWriter,
    record_histograms,
    record_scalars,
    write_monitor_records,
)

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

STEPS, EVERY = 5, 2


def monitored_records(path=None, histograms=True) -> list[dict]:
    """A plain training loop's records at steps 0, 2, 4: layer statistics, weight norms, a curvature quantity
    and the loss passed as an extra."""
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    x, y = torch.randn(16, 3), torch.randn(16, 1)

    def loss_fn():
        return nn.functional.mse_loss(model(x), y)

    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    quantities = ["layer_stats", "weight_norms", "hessian_trace"]
    with Monitor(model, quantities, every=EVERY, loss_fn=loss_fn, probes=2, path=path, histograms=histograms) as mon:
        for step in range(STEPS):
            loss = loss_fn()
            loss.backward()
            mon.step(step, loss=loss.item())
            opt.step()
            opt.zero_grad()
        return mon.read_records() if path is not None else mon.records


def read_back(log_dir) -> EventAccumulator:
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def layer(record: dict, name: str, kind: str) -> dict:
    (entry,) = [e for e in record["layers"] if e["layer"] == name and e["kind"] == kind]
    return entry


def test_every_layer_statistic_is_a_scalar_at_its_step(tmp_path):
    records = monitored_records()
    write_monitor_records(records, tmp_path)
    acc = read_back(tmp_path)
    for tag, kind, name, stat in [
        ("activation/1/std", "activation", "1", "std"),
        ("activation/1/saturated", "activation", "1", "saturated"),
        ("backprop_grad/0/mean", "backprop_grad", "0", "mean"),
        ("weight_grad/2.weight/p98", "weight_grad", "2.weight", "p98"),
    ]:
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [0, 2, 4]
        expected = [layer(r, name, kind)[stat] for r in records]
        assert [e.value for e in events] == pytest.approx(expected, rel=1e-6, abs=1e-12)  # stored as float32


def test_curvature_norms_and_extras_are_scalars_at_their_steps(tmp_path):
    records = monitored_records()
    write_monitor_records(records, tmp_path)
    acc = read_back(tmp_path)
    for tag, get in [
        ("curvature/hessian_trace", lambda r: r["hessian_trace"]),
        ("curvature/hessian_trace_stderr", lambda r: r["hessian_trace_stderr"]),
        ("weight_norms/0.weight", lambda r: r["weight_norms"]["0.weight"]),
        ("loss", lambda r: r["loss"]),
    ]:
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [0, 2, 4]
        assert [e.value for e in events] == pytest.approx([get(r) for r in records], rel=1e-6)


def test_the_scalar_tags_are_exactly_those_of_record_scalars(tmp_path):
    records = monitored_records()
    out = write_monitor_records(records, tmp_path)
    tags = set(read_back(tmp_path).Tags()["scalars"])
    expected = [tag for r in records for tag, _ in record_scalars(r)]
    assert tags == set(expected) and out.scalars == len(expected) and out.records == 3
    assert "step" not in tags and not any(t.endswith("/numel") for t in tags)


def test_each_layer_histogram_is_the_monitors_counts_over_its_range(tmp_path):
    records = monitored_records()
    out = write_monitor_records(records, tmp_path)
    acc = read_back(tmp_path)
    assert set(acc.Tags()["histograms"]) == {
        "activation/1",
        "backprop_grad/0",
        "backprop_grad/2",
        "weight_grad/0.weight",
        "weight_grad/2.weight",
    }
    assert out.histograms == 5 * 3
    events = acc.Histograms("weight_grad/0.weight")  # 24 elements: the whole tensor is the sample
    assert [e.step for e in events] == [0, 2, 4]
    for e, r in zip(events, records, strict=True):
        entry = layer(r, "0.weight", "weight_grad")
        h = e.histogram_value
        lo, hi = entry["hist_range"]
        assert h.bucket == [float(c) for c in entry["hist"]] and h.num == sum(entry["hist"]) == 24
        assert (h.min, h.max) == (lo, hi) and h.bucket_limit[-1] == hi and len(h.bucket_limit) == 50
        assert h.bucket_limit[0] == pytest.approx(lo + (hi - lo) / 50)
        assert h.sum == pytest.approx(entry["mean"] * 24)
        assert h.sum_squares == pytest.approx((entry["std"] ** 2 + entry["mean"] ** 2) * 24)


def test_a_monitors_jsonl_file_exports_the_same_as_its_records(tmp_path):
    path = tmp_path / "diag.jsonl"
    records = monitored_records(path=path)
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"step": 6, "loss"')  # a write cut off by a kill: left out
    a, b = write_monitor_records(records, tmp_path / "a"), write_monitor_records(path, tmp_path / "b")
    assert (a.records, a.scalars, a.histograms) == (b.records, b.scalars, b.histograms)
    assert a.records == 3 and a.histograms == 15
    sa, sb = read_back(tmp_path / "a"), read_back(tmp_path / "b")
    assert [e.value for e in sa.Scalars("loss")] == [e.value for e in sb.Scalars("loss")]


def test_a_monitor_without_histograms_gives_scalars_only(tmp_path):
    out = write_monitor_records(monitored_records(histograms=False), tmp_path)
    acc = read_back(tmp_path)
    assert out.histograms == 0 and acc.Tags()["histograms"] == []
    assert [e.step for e in acc.Scalars("activation/1/std")] == [0, 2, 4]


def test_non_finite_values_are_written_as_they_are(tmp_path):
    record = {"step": 3, "hessian_trace": math.nan, "weight_norms": {"w": math.inf}, "note": "text", "flag": True}
    out = write_monitor_records([record], tmp_path)
    acc = read_back(tmp_path)
    assert math.isnan(acc.Scalars("curvature/hessian_trace")[0].value)
    assert acc.Scalars("weight_norms/w")[0].value == math.inf
    assert out.scalars == 2  # the string and the bool are not scalars


def test_a_constant_tensors_histogram_is_one_bucket():
    entry = {"layer": "relu", "kind": "activation", "mean": 0.0, "std": 0.0, "hist": [12, 0, 0], "hist_range": [0, 0]}
    (h,) = record_histograms({"step": 0, "layers": [entry]})
    assert h["tag"] == "activation/relu" and h["bucket_limits"] == [0.0] and h["bucket_counts"] == [12.0]
    assert h["num"] == 12


def test_the_writer_streams_records_from_a_training_loop(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    with TensorBoardWriter(tmp_path) as tb, Monitor(model, ["layer_stats"], every=1) as mon:
        for step in range(3):
            model(torch.randn(8, 3)).square().mean().backward()
            tb(mon.step(step))
            assert [e.step for e in read_back(tmp_path).Scalars("activation/1/dead")] == list(range(step + 1))
    assert tb.records == 3


def test_the_writer_rejects_what_is_not_a_record(tmp_path):
    with TensorBoardWriter(tmp_path) as tb, pytest.raises(ValueError, match="integer 'step'"):
        tb.write(None)  # type: ignore[arg-type]
