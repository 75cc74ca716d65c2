"""inertia.integrations.lightning.MonitorCallback: a Lightning fit with it trains exactly as one without it, and
records the Monitor's quantities at the optimizer steps it is asked to."""

from __future__ import annotations

import pytest
import torch
from torch import nn

L = pytest.importorskip("lightning.pytorch")

from inertia.integrations.lightning import MonitorCallback  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning", "ignore::FutureWarning")

STEPS, BATCH = 7, 8
X = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
Y = X.sum(1, keepdim=True).tanh()


class TinyModule(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, 1))
        self.losses: list[float] = []

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.losses.append(loss.item())
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


def loader(shuffle: bool) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=BATCH, shuffle=shuffle)


def fit(callbacks=(), validate=False, **trainer_kwargs) -> TinyModule:
    L.seed_everything(0, verbose=False)
    module = TinyModule()
    trainer = L.Trainer(
        max_steps=STEPS,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
        accelerator="cpu",
        callbacks=list(callbacks),
        **({"val_check_interval": 2, "limit_val_batches": 2} if validate else {"limit_val_batches": 0}),
        **trainer_kwargs,
    )
    trainer.fit(module, loader(shuffle=True), loader(shuffle=False) if validate else None)
    return module


def test_fit_with_the_callback_is_bit_identical_to_fit_without_it():
    plain = fit(validate=True)
    probe_x, probe_y = X[:16], Y[:16]
    holder: dict = {}

    def loss_fn():  # the curvature quantity's own passes (dropout draws included) must leave no trace
        return nn.functional.mse_loss(holder["module"](probe_x), probe_y)

    class Hold(L.Callback):
        def on_fit_start(self, trainer, pl_module):
            holder["module"] = pl_module

    cb = MonitorCallback(["layer_stats", "weight_norms", "hessian_trace"], every=2, loss_fn=loss_fn, probes=2)
    watched = fit([Hold(), cb], validate=True)
    assert len(cb.records) == 4  # steps 0, 2, 4, 6: the Monitor did run
    assert watched.losses == plain.losses and len(plain.losses) == STEPS
    for (name, p), q in zip(plain.state_dict().items(), watched.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_records_come_at_the_optimizer_steps_divisible_by_every():
    cb = MonitorCallback(["layer_stats"], every=3)
    fit([cb])
    assert [r["step"] for r in cb.records] == [0, 3, 6]
    for r in cb.records:
        kinds = {(e["layer"], e["kind"]) for e in r["layers"]}
        assert kinds == {
            ("net.1", "activation"),
            ("net.0", "backprop_grad"),
            ("net.3", "backprop_grad"),
            ("net.0.weight", "weight_grad"),
            ("net.3.weight", "weight_grad"),
        }
        for e in r["layers"]:
            assert e["step"] == r["step"] and e["std"] > 0 and sum(e["hist"]) > 0
            assert e["numel"] == {"net.1": BATCH * 16, "net.0": BATCH * 16, "net.3": BATCH}.get(e["layer"], e["numel"])


def test_a_record_is_made_after_backward_and_before_the_optimizer_step():
    L.seed_everything(0, verbose=False)
    initial = TinyModule()  # fit's seed: the parameters before the first update
    cb = MonitorCallback(["layer_stats", "weight_norms"], every=100)
    fit([cb])
    (record,) = cb.records
    for name, p in initial.named_parameters():
        assert record["weight_norms"][name] == pytest.approx(float(p.detach().norm()), rel=1e-6)
    assert any(e["kind"] == "weight_grad" for e in record["layers"])  # the gradients of this step were seen


def test_validation_passes_are_not_recorded_as_training():
    cb = MonitorCallback(["layer_stats"], every=2)
    fit([cb], validate=True)  # a sanity check before step 0 and validation after steps 1, 3, 5
    assert [r["step"] for r in cb.records] == [0, 2, 4, 6]
    for r in cb.records:
        acts = [e for e in r["layers"] if e["kind"] == "activation"]
        assert [e["layer"] for e in acts] == ["net.1"]  # one training pass: no "net.1#2" from validation
        assert acts[0]["numel"] == BATCH * 16


def test_gradient_accumulation_records_each_micro_batch_at_its_optimizer_step():
    cb = MonitorCallback(["layer_stats"], every=2)
    fit([cb], accumulate_grad_batches=2)
    assert [r["step"] for r in cb.records] == [0, 2, 4, 6]
    acts = [e["layer"] for e in cb.records[0]["layers"] if e["kind"] == "activation"]
    assert acts == ["net.1", "net.1#2"]


def test_the_monitor_is_closed_at_fit_end_and_its_file_holds_the_records(tmp_path):
    path = tmp_path / "diag.jsonl"
    cb = MonitorCallback(["layer_stats"], every=2, path=path)
    module = fit([cb])
    assert cb.monitor is not None and cb.monitor.layer_stats is not None
    assert cb.monitor.layer_stats._handles == [] and cb.monitor._file is None
    assert [r["step"] for r in cb.records] == [0, 2, 4, 6]
    assert len(path.read_text().splitlines()) == 4
    assert module.net[0]._forward_hooks == {}


def test_on_record_receives_each_record_as_it_is_made():
    seen: list[dict] = []
    cb = MonitorCallback(["weight_norms"], every=4, on_record=seen.append)
    fit([cb])
    assert [r["step"] for r in seen] == [0, 4] and seen == cb.records


def test_streams_to_tensorboard_while_fitting(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from inertia.integrations.tensorboard import TensorBoardWriter

    with TensorBoardWriter(tmp_path) as tb:
        cb = MonitorCallback(["layer_stats"], every=3, on_record=tb)
        fit([cb])
    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("activation/net.1/std")] == [0, 3, 6]
    assert [e.step for e in acc.Histograms("weight_grad/net.0.weight")] == [0, 3, 6]
