"""Training under DistributedDataParallel (gloo, 2 CPU processes) equals one process.

Each rank gets one half of every global batch; DDP averages the two gradients, so with
equal halves the per-rank mean losses average to the mean loss of the global batch. Every
apply mode must then give the weights single-process training gives on the same global
batches. The two processes are spawned once for the whole table of cases (torch's import
dominates the cost); each case is one parametrized test comparing the gathered weights.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from shrinkage import L1, L2, ElasticNet, Plan, Regularizer

WORLD_SIZE = 2
STEPS = 6
BATCH = 16  # global batch; each rank takes 8 rows of it

# (case id, mode, penalty, optimizer name): every apply mode with L2 and L1 under SGD with
# momentum, plus Adam where decoupled and coupled penalties differ.
CASES = [
    (f"{mode}-{name}-sgd", mode, penalty, "sgd")
    for mode in ("loss", "gradient", "decoupled", "proximal")
    for name, penalty in (("l2", L2(0.05)), ("l1", L1(0.3)))
] + [
    ("decoupled-l2-adam", "decoupled", L2(0.05), "adam"),
    ("gradient-elastic-adam", "gradient", ElasticNet(0.3, 0.05), "adam"),
    ("proximal-elastic-adam", "proximal", ElasticNet(0.3, 0.05), "adam"),
]


def make_model() -> nn.Module:
    torch.manual_seed(1234)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 1)).double()


def make_data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(99)
    x = torch.randn(STEPS * BATCH, 5, generator=generator, dtype=torch.float64)
    y = x @ torch.randn(5, 1, generator=generator, dtype=torch.float64) + 0.1
    return x, y


def make_optimizer(name: str, params) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.1, momentum=0.9)
    return torch.optim.Adam(params, lr=0.05)


def train(model: nn.Module, reg_model: nn.Module, mode: str, penalty, optimizer: str, rows):
    """``STEPS`` steps; ``rows(step)`` gives the rows of the batch this process sees."""
    x, y = make_data()
    opt = make_optimizer(optimizer, model.parameters())
    reg = Regularizer(reg_model, penalty, mode=mode).attach(opt)
    for step in range(STEPS):
        index = rows(step)
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x[index]), y[index]) + reg.loss()
        loss.backward()
        opt.step()
    return reg


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE, timeout=timedelta(seconds=60))
    try:
        half = BATCH // WORLD_SIZE
        results = {}
        for case_id, mode, penalty, optimizer in CASES:
            ddp = nn.parallel.DistributedDataParallel(make_model())

            def rows(step: int) -> slice:
                start = step * BATCH + rank * half
                return slice(start, start + half)

            # A plan written with the user's own names works on the DDP wrapper: the
            # Regularizer resolves it on ddp.module (no "module." prefix to add).
            plan = Plan({"0.weight": penalty, "2.weight": penalty})
            reg = train(ddp, ddp, mode, plan, optimizer, rows)
            names = [a.name for a in reg.assignments if a.penalty is not None]
            results[case_id] = {
                "state": {k: v.detach().clone() for k, v in ddp.module.state_dict().items()},
                "penalized": names,
            }
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory) -> list[dict]:
    out_dir = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(_free_port(), str(out_dir)), nprocs=WORLD_SIZE, join=True)
    return [torch.load(out_dir / f"rank{r}.pt") for r in range(WORLD_SIZE)]


@pytest.mark.parametrize(
    ("mode", "penalty", "optimizer"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_ddp_matches_single_process(ddp_results, mode, penalty, optimizer):
    case_id = next(c[0] for c in CASES if c[1:] == (mode, penalty, optimizer))
    single = make_model()
    train(single, single, mode, penalty, optimizer, lambda s: slice(s * BATCH, (s + 1) * BATCH))
    start = make_model().state_dict()
    for rank_result in ddp_results:
        got = rank_result[case_id]
        assert got["penalized"] == ["0.weight", "2.weight"]
        for name, expected in single.state_dict().items():
            torch.testing.assert_close(got["state"][name], expected, rtol=1e-10, atol=1e-12)
            # the comparison means something only if training moved the weights
            assert not torch.equal(expected, start[name])
    if isinstance(penalty, L1 | ElasticNet) and mode == "proximal":
        # proximal L1 gives exact zeros, the same ones on both ranks
        zeros = [r[case_id]["state"]["0.weight"] == 0 for r in ddp_results]
        assert zeros[0].any() and torch.equal(zeros[0], zeros[1])
