"""TensorBoard: what log_weights / log_plan write, read back from the event file."""

import pytest
import torch
from torch import nn

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

from shrinkage import L1, L2, Plan, Regularizer, ShrinkageError  # noqa: E402
from shrinkage.integrations.tensorboard import log_plan, log_weights  # noqa: E402


def train_and_log(logdir, steps=30, every=10, **kwargs):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1))
    X, y = torch.randn(64, 6), torch.randn(64, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    reg = Regularizer(model, Plan({"*": L1(0.05)}), mode="proximal").attach(opt)
    written = {}
    with SummaryWriter(str(logdir)) as writer:
        log_plan(writer, reg)
        for step in range(steps + 1):
            if step % every == 0:
                written[step] = log_weights(writer, reg, step, **kwargs)
            if step == steps:
                break
            opt.zero_grad()
            nn.functional.mse_loss(model(X), y).backward()
            opt.step()
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    return model, reg, written, events


def test_scalars_read_back_equal_what_was_written(tmp_path):
    model, reg, written, events = train_and_log(tmp_path)
    tags = set(events.Tags()["scalars"])
    assert tags == {
        "shrinkage/penalty",
        "shrinkage/l2_norm/0.weight",
        "shrinkage/zero_fraction/0.weight",
        "shrinkage/l2_norm/2.weight",
        "shrinkage/zero_fraction/2.weight",
    }
    for tag in tags:
        series = events.Scalars(tag)
        assert [e.step for e in series] == [0, 10, 20, 30]
        for event in series:
            assert event.value == pytest.approx(written[event.step][tag], rel=1e-6)
    # The numbers are the weights': the penalty falls and L1's exact zeros appear.
    penalty = [e.value for e in events.Scalars("shrinkage/penalty")]
    assert penalty[-1] < penalty[0]
    zeros = [e.value for e in events.Scalars("shrinkage/zero_fraction/0.weight")]
    assert zeros[0] == 0 and zeros[-1] > 0.2


def test_histograms_and_plan_text(tmp_path):
    model, reg, _, events = train_and_log(tmp_path, steps=10, every=10, histograms=True)
    assert set(events.Tags()["histograms"]) == {
        "shrinkage/weights/0.weight",
        "shrinkage/weights/2.weight",
    }
    last = events.Histograms("shrinkage/weights/0.weight")[-1].histogram_value
    assert last.num == model[0].weight.numel()
    assert last.min == pytest.approx(float(model[0].weight.detach().min()), rel=1e-6)
    text = events.Tensors("shrinkage/plan/text_summary")[0].tensor_proto.string_val[0].decode()
    lines = text.splitlines()
    assert lines[0] == "| parameter | shape | penalty | strength | reason |"
    assert lines[2] == "| 0.weight | (8, 6) | L1 | l1=0.05 | rule 0 ('*') |"
    assert len(lines) == 2 + len(reg.describe().rows) - 1


def test_a_plain_module_and_a_prefix(tmp_path):
    model = nn.Linear(3, 2)
    with SummaryWriter(str(tmp_path)) as writer:
        stats = log_weights(writer, model, 5, prefix="run1")
    assert list(stats) == ["run1/l2_norm/weight", "run1/zero_fraction/weight"]
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    (event,) = events.Scalars("run1/l2_norm/weight")
    assert event.step == 5
    assert event.value == pytest.approx(float(model.weight.detach().norm()), rel=1e-6)
    with pytest.raises(ShrinkageError, match="Got str instead"):
        log_weights(writer, "model", 0)
    reg = Regularizer(model, L2(0.1))
    assert "shrinkage/penalty" in log_weights(SummaryWriter(str(tmp_path / "b")), reg, 0)
