"""inertia.integrations.huggingface.MonitorCallback: a Hugging Face Trainer run with it trains exactly as one without
it, and records the Monitor's quantities at the optimizer steps it is asked to."""

from __future__ import annotations

import pytest
import torch
from torch import nn

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # the Trainer needs it

from inertia.integrations.huggingface import MonitorCallback  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

STEPS, BATCH = 7, 8
X = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
Y = X.sum(1).tanh()


class TinyRegressor(nn.Module):
    """A plain torch model in the Trainer's convention: keyword inputs, a dict with ``loss`` out."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, 1))

    def forward(self, x, labels=None):
        out = self.net(x).squeeze(-1)
        return {"loss": nn.functional.mse_loss(out, labels), "logits": out}


class Pairs(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return len(X)

    def __getitem__(self, i: int) -> dict:
        return {"x": X[i], "labels": Y[i]}


def train(tmp_path, callbacks=(), evaluate=False, **arg_overrides):
    torch.manual_seed(0)
    model = TinyRegressor()
    evaluation = {"eval_strategy": "steps", "eval_steps": 2, "eval_on_start": True} if evaluate else {}
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=STEPS,
        per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=BATCH,
        learning_rate=0.05,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
        **evaluation,
        **arg_overrides,
    )
    trainer = transformers.Trainer(
        model=model,
        args=args,
        train_dataset=Pairs(),
        eval_dataset=Pairs() if evaluate else None,
        callbacks=list(callbacks),
    )
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return model, losses


def test_training_with_the_callback_is_bit_identical_to_training_without_it(tmp_path):
    plain, plain_losses = train(tmp_path, evaluate=True)
    holder: dict = {}

    def loss_fn():  # the curvature quantity's own passes (dropout draws included) must leave no trace
        return nn.functional.mse_loss(holder["model"].net(X[:16]).squeeze(-1), Y[:16])

    class Hold(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            holder["model"] = model

    cb = MonitorCallback(["layer_stats", "weight_norms", "hessian_trace"], every=2, loss_fn=loss_fn, probes=2)
    watched, watched_losses = train(tmp_path, [Hold(), cb], evaluate=True)
    assert len(cb.records) == 4  # steps 0, 2, 4, 6: the Monitor did run
    assert watched_losses == plain_losses and len(plain_losses) == STEPS
    for (name, p), q in zip(plain.state_dict().items(), watched.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_records_come_at_the_optimizer_steps_divisible_by_every(tmp_path):
    cb = MonitorCallback(["layer_stats"], every=3)
    train(tmp_path, [cb])
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


def test_a_record_is_made_before_the_optimizer_step(tmp_path):
    torch.manual_seed(0)
    initial = TinyRegressor()  # train's seed: the parameters before the first update
    cb = MonitorCallback(["weight_norms"], every=100)
    train(tmp_path, [cb])
    (record,) = cb.records
    for name, p in initial.named_parameters():
        assert record["weight_norms"][name] == pytest.approx(float(p.detach().norm()), rel=1e-6)


def test_evaluation_passes_are_not_recorded_as_training(tmp_path):
    cb = MonitorCallback(["layer_stats"], every=2)
    train(tmp_path, [cb], evaluate=True)  # evaluation before step 0 and after steps 1, 3, 5
    assert [r["step"] for r in cb.records] == [0, 2, 4, 6]
    for r in cb.records:
        acts = [e for e in r["layers"] if e["kind"] == "activation"]
        assert [e["layer"] for e in acts] == ["net.1"] and acts[0]["numel"] == BATCH * 16


def test_gradient_accumulation_records_each_micro_batch_at_its_optimizer_step(tmp_path):
    cb = MonitorCallback(["layer_stats"], every=2)
    train(tmp_path, [cb], gradient_accumulation_steps=2)
    assert [r["step"] for r in cb.records] == [0, 2, 4, 6]
    acts = [e["layer"] for e in cb.records[0]["layers"] if e["kind"] == "activation"]
    assert acts == ["net.1", "net.1#2"]


def test_the_monitor_is_closed_at_train_end_and_its_file_holds_the_records(tmp_path):
    path = tmp_path / "diag.jsonl"
    seen: list[dict] = []
    cb = MonitorCallback(["layer_stats"], every=2, path=path, on_record=seen.append)
    model, _ = train(tmp_path, [cb])
    assert cb.monitor is not None and cb.monitor._file is None
    assert model.net[0]._forward_hooks == {}
    assert [r["step"] for r in cb.records] == [0, 2, 4, 6] == [r["step"] for r in seen]
    assert len(path.read_text().splitlines()) == 4
