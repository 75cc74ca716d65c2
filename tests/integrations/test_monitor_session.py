"""What both callbacks share (inertia.integrations._session.MonitorSession), on a plain training loop: the Monitor's
arguments checked when the callback is made, one record per step, and passes outside a step left unrecorded."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from inertia.integrations._session import MonitorSession


def session(quantities=("layer_stats",), every=1, on_record=None, **kwargs) -> MonitorSession:
    return MonitorSession(quantities, every, on_record, kwargs)


def model() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))


def test_an_unknown_quantity_is_refused_before_training():
    with pytest.raises(ValueError, match="hessian_trace"):  # the known names are listed
        session(["layer_stats", "hessian_tarce"])


def test_a_string_of_quantities_is_refused():
    with pytest.raises(ValueError, match="sequence of names"):
        session("layer_stats")


@pytest.mark.parametrize("every", [0, -3, 2.0, True])
def test_every_must_be_a_positive_integer(every):
    with pytest.raises(ValueError, match="every must be a positive integer"):
        session(every=every)


def test_an_unknown_monitor_argument_is_refused_with_the_accepted_ones():
    with pytest.raises(TypeError, match=r"unknown Monitor arguments \['evry'\]; accepted: .*'loss_fn'"):
        session(evry=5)


def test_the_model_is_the_callbacks_to_give():
    with pytest.raises(TypeError, match=r"\['model'\]"):
        session(model=model())


def test_on_record_must_be_callable():
    with pytest.raises(ValueError, match="on_record must be a callable"):
        session(on_record="runs/x")


def test_a_pass_while_paused_is_not_recorded():
    m, s = model(), session(["layer_stats"], every=1)
    s.start(m)
    s.pause()
    m(torch.randn(5, 3))  # an evaluation pass: 5 rows
    s.resume()
    m(torch.randn(8, 3)).sum().backward()  # the training step: 8 rows
    record = s.step(0)
    assert record is not None
    assert [e["numel"] for e in record["layers"] if e["kind"] == "activation"] == [8 * 4]


def test_a_second_step_call_at_the_same_step_does_nothing():
    seen: list[dict] = []
    m, s = model(), session(["weight_norms"], on_record=seen.append)
    s.start(m)
    assert s.step(0) is not None and s.step(0) is None and s.step(1) is not None
    assert [r["step"] for r in s.records] == [0, 1] and seen == s.records


def test_start_closes_the_previous_runs_monitor():
    m, s = model(), session()
    first = s.start(m)
    second = s.start(m)
    assert first is not second and first.layer_stats is not None and first.layer_stats._handles == []
    assert s.records == [] and session().records == []
