"""The batched search for CNNs and LSTMs: fused stacks against a loop of single fits.

The two tasks of issue #14, with the examples' data and networks:

* ``cnn``: ``examples/cnn_digits.make_cnn`` (Conv 16 -> pool -> Conv 32 -> Linear 64 ->
  Linear 10) on the digits training split (539 images 8x8); 6 L2 strengths x 3 repeats of
  the train -> validation split (each repeat its own seed) = 18 candidates; 10 epochs of
  SGD(0.05, momentum 0.9), batches of 32 (what ``examples/cnn_digits.py`` searches).
* ``lstm``: ``examples/lstm_sequence.Classifier`` (LSTM 8 -> 32, a one-logit head) on 300
  sequences of 20 steps; 6 L2 strengths x 3 folds = 18 candidates; 10 epochs of Adam(1e-2),
  batches of 32.

Variants, each trains and scores the 18 candidates (same seeds, rows, strengths: their
scores agree):

* ``loop``: each candidate alone, one after the other: ``factory()`` after
  ``torch.manual_seed(seed)``, :func:`shrinkage.training.fit_model` on its fold, then its
  outputs on the training and the validation rows (what a search scores);
* ``fused``: :func:`shrinkage.search.run_chunk` on the fused stack (all 18 as one network);
* ``torch.func``: the same chunk on ``StackedModule`` (``vmap``; the path before fusion,
  which cannot run ``nn.LSTM``);
* ``fused+c++`` (``--compiled``): the fused stack with the compiled LSTM kernel;
* ``search``: ``SearchCV(model_factory=..., refit=False).fit`` end to end (path choice,
  preprocessing, training, scoring).

Every repetition runs every variant once, in a rotated order (interleaved, so load from
other processes hits them alike); medians of wall time and of this thread's CPU time
(``time.thread_time``) are reported, and the ratio to the loop per repetition (paired).
The stacks' achieved GFLOP/s counts the GEMM work of the networks analytically
(:func:`gemm_flops`) and is printed next to a 1-thread ``torch.mm`` (512^3) measured in the
same run. ``--scaling`` times the fused stack at K in {1, 8, 32, 128} candidates against K
single fits. With CUDA present, the same comparison runs on the GPU (wall time).

Run::

    python bench/search_networks.py                    # both tasks, 5 repetitions, scaling
    python bench/search_networks.py --compiled         # + the compiled LSTM kernel
    python bench/search_networks.py --quick            # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import KFold

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import cnn_digits  # noqa: E402
import lstm_sequence  # noqa: E402

from shrinkage import ElasticNet, Plan, Regularizer  # noqa: E402
from shrinkage._io import atomic_write  # noqa: E402
from shrinkage.estimators import MLPClassifier  # noqa: E402
from shrinkage.models import dropout_seed, generators  # noqa: E402
from shrinkage.search import SearchCV, run_chunk  # noqa: E402
from shrinkage.search.engine import StackPath, layer_strengths  # noqa: E402
from shrinkage.search.engine._lstm_ext import compiled_lstm  # noqa: E402
from shrinkage.search.engine._stack import _build  # noqa: E402
from shrinkage.training import fit_model, make_loss, make_optimizer  # noqa: E402

STRENGTHS = [0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2]


class Task:
    """A search: the data, the factory, the estimator that carries the training settings."""

    def __init__(self, name: str, epochs: int, device: str) -> None:
        self.name, self.device = name, device
        if name == "cnn":
            data = cnn_digits.digits(images=True)
            n_train = len(data["y_train"])
            self.X = torch.cat([data["X_train"], data["X_val"]]).numpy()
            self.y = torch.cat([data["y_train"], data["y_val"]]).numpy()
            split = (np.arange(n_train), np.arange(n_train, len(self.y)))
            self.cv: object = [split] * 3
            self.factory: Callable = cnn_digits.make_cnn
            self.estimator = MLPClassifier(
                optimizer="sgd", learning_rate=0.05, momentum=0.9, epochs=epochs, batch_size=32
            )
        else:
            X, y = lstm_sequence.sequences(300, 1)
            self.X, self.y = X.numpy(), y.numpy()
            self.cv = KFold(3, shuffle=True, random_state=0)
            self.factory = lstm_sequence.Classifier
            self.estimator = MLPClassifier(
                optimizer="adam", learning_rate=1e-2, epochs=epochs, batch_size=32
            )
        self.setup = self.search().prepare(self.X, self.y)

    def search(self) -> SearchCV:
        return SearchCV(
            self.estimator,
            strengths=STRENGTHS,
            cv=self.cv,
            model_factory=self.factory,
            refit=False,
            random_state=0,
            device=self.device,
        )

    def specs(self, k: int) -> list:
        """The first ``k`` candidates, cycling with fresh seeds beyond the grid's."""
        base = self.setup.specs
        return [
            replace(base[i % len(base)], index=i, seed=base[i % len(base)].seed + i // len(base))
            for i in range(k)
        ]


def gemm_flops(task: Task, specs: list) -> float:
    """The GEMM work of training ``specs``: forward, weight gradients and input gradients
    (none for the first layer's input), ``2 * MACs`` each, over every training row of every
    epoch. Elementwise work, pooling and the optimizer are not counted.

    CNN per sample: conv1 64 * 16 * 9 MACs (no input gradient), conv2 4 * 32 * 144, the
    Linear layers 128 * 64 + 64 * 10. LSTM per sample (T=20, H=32, In=8): per step the gate
    product 4H (H + In), its weight gradient, and the recurrent input gradient 4H * H; the
    head 3 * H.
    """
    data = task.setup.data
    epochs = data.settings.epochs
    if task.name == "cnn":
        first, rest = 64 * 16 * 9, 4 * 32 * 144 + 128 * 64 + 64 * 10
        macs = 2 * first + 3 * rest
    else:
        steps, h, n_in = 20, 32, 8
        macs = steps * 4 * h * (2 * (h + n_in) + h) + 3 * h
    rows = sum(len(data.folds[s.fold][0]) for s in specs)
    return 2.0 * macs * rows * epochs


def run_loop(task: Task, specs: list) -> None:
    """Each candidate alone: the module, its penalty and optimizer, fit_model, its score."""
    data = task.setup.data
    settings = data.settings
    loss = make_loss(settings.task, settings.n_classes)
    for spec in specs:
        model = _build(task.factory, spec.seed).to(data.device)
        names = [n for n, p in model.named_parameters() if p.dim() > 1]
        l1, l2 = layer_strengths(spec.kind, spec.strength, len(names), spec.placement)
        plan = Plan({n: ElasticNet(a, b) for n, a, b in zip(names, l1, l2)})
        reg = Regularizer(model, plan, settings.mode)
        opt = make_optimizer(
            settings.optimizer, model.parameters(), settings.learning_rate, settings.momentum
        )
        train, test = data.folds[spec.fold]
        offset = data.offset(spec.fold)
        rows = torch.as_tensor(train + offset, device=data.device)
        fit_model(
            model,
            data.X[rows],
            data.y[torch.as_tensor(train, device=data.device)],
            loss_fn=loss,
            regularizer=reg,
            optimizer=opt,
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            shuffle_generator=generators(spec.seed)[1],
            dropout_seed=dropout_seed(spec.seed),
        )
        reg.remove()
        with torch.no_grad():  # its scores on the training and the validation rows
            model.eval()
            model(data.X[rows])
            model(data.X[torch.as_tensor(test + offset, device=data.device)])


def run_stack(task: Task, specs: list, path: str) -> None:
    data = replace(task.setup.data)
    compiled = path == "fused+c++"
    data.path = StackPath("fused" if compiled else path, "benchmark", True)
    with compiled_lstm(compiled):
        run_chunk(data, specs)


def run_search(task: Task, specs: list) -> None:
    task.search().fit(task.X, task.y)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(fn: Callable, task: Task, specs: list) -> dict:
    _sync(task.device)
    wall, cpu = time.perf_counter(), time.thread_time()
    fn(task, specs)
    _sync(task.device)
    return {"wall": time.perf_counter() - wall, "cpu": time.thread_time() - cpu}


def sgemm(device: str, n: int = 512, reps: int = 15) -> dict:
    """1-thread ``torch.mm`` of two n x n float32 matrices: GFLOP/s (wall and CPU)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)
    walls, cpus = [], []
    for _ in range(reps):
        _sync(device)
        w, c = time.perf_counter(), time.thread_time()
        torch.mm(a, b)
        _sync(device)
        walls.append(time.perf_counter() - w)
        cpus.append(time.thread_time() - c)
    flop = 2.0 * n**3
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    return {"wall": flop / wall / 1e9, "cpu": flop / cpu / 1e9}


VARIANTS: dict[str, Callable] = {
    "loop": run_loop,
    "fused": lambda t, s: run_stack(t, s, "fused"),
    "fused+c++": lambda t, s: run_stack(t, s, "fused+c++"),
    "torch.func": lambda t, s: run_stack(t, s, "torch.func"),
    "search": run_search,
}


def compare(task: Task, variants: list[str], reps: int, gemms: list[dict], out: dict) -> None:
    """Every variant once per repetition, rotated; a 1-thread sgemm measured in each."""
    specs = task.specs(len(task.setup.specs))
    flops = gemm_flops(task, specs)
    results: dict[str, list[dict]] = {}
    for v in variants:  # warm-up: first kernels, allocator; a variant that cannot run says so
        try:
            VARIANTS[v](task, specs[:2])
            results[v] = []
        except Exception as err:  # noqa: BLE001
            results[v] = [{"error": f"{type(err).__name__}: {str(err).splitlines()[0][:150]}"}]
    live = [v for v in variants if not results[v]]
    for r in range(reps):
        for v in live[r % len(live) :] + live[: r % len(live)]:
            results[v].append(measure(VARIANTS[v], task, specs))
        gemms.append(sgemm(task.device))
    # the least disturbed measurement of the run: the machine's 1-thread matmul rate
    key = "cpu" if task.device == "cpu" else "wall"
    gemm = max(gemms, key=lambda g: g[key])
    print(
        f"\n[{task.name}] {len(specs)} candidates, {task.setup.data.settings.epochs} epochs, "
        f"{task.device}; GEMM work {flops / 1e9:.1f} GFLOP; median of {reps} (wall / thread "
        f"CPU); sgemm in this run: median {statistics.median(g[key] for g in gemms):.0f}, "
        f"best {gemm[key]:.0f} GFLOP/s ({key}), the % below are of the best"
    )
    loop = results.get("loop", [])
    for v, rs in results.items():
        if rs and "error" in rs[0]:
            print(f"  {v:11s} cannot run: {rs[0]['error']}")
            continue
        wall = statistics.median(r["wall"] for r in rs)
        cpu = statistics.median(r["cpu"] for r in rs)
        rate = flops / cpu / 1e9 if task.device == "cpu" else flops / wall / 1e9
        line = f"  {v:11s} {wall:7.2f} s / {cpu:6.2f} s  {rate:6.1f} GFLOP/s"
        peak = gemm["cpu"] if task.device == "cpu" else gemm["wall"]
        line += f" ({100 * rate / peak:5.1f}% of sgemm)"
        if v != "loop" and loop and "error" not in loop[0]:
            paired_wall = statistics.median(a["wall"] / b["wall"] for a, b in zip(loop, rs))
            paired_cpu = statistics.median(a["cpu"] / b["cpu"] for a, b in zip(loop, rs))
            line += f"  loop / {v}: {paired_wall:5.2f}x wall, {paired_cpu:5.2f}x CPU"
        print(line, flush=True)
    out[task.name] = {"gflop": flops / 1e9, "results": results, "sgemm": gemm}


def scaling(task: Task, ks: list[int], reps: int, variant: str, out: dict) -> None:
    """The fused stack of K candidates against K single fits (one fit measured)."""
    one = [measure(run_loop, task, task.specs(1)) for _ in range(max(2, reps))]
    single = {key: statistics.median(r[key] for r in one) for key in ("wall", "cpu")}
    print(
        f"\n[{task.name}] stack size ({variant}): one single fit {single['wall']:.3f} s wall, "
        f"{single['cpu']:.3f} s CPU"
    )
    rows = {}
    for k in ks:
        specs = task.specs(k)
        rs = [measure(VARIANTS[variant], task, specs) for _ in range(reps)]
        wall = statistics.median(r["wall"] for r in rs)
        cpu = statistics.median(r["cpu"] for r in rs)
        key = "cpu" if task.device == "cpu" else "wall"
        value = cpu if task.device == "cpu" else wall
        rate = gemm_flops(task, specs) / value / 1e9
        print(
            f"  K={k:4d}: {wall:7.2f} s wall / {cpu:7.2f} s CPU = {1e3 * value / k:7.1f} ms per "
            f"candidate; K single fits / stack: {single[key] * k / value:5.2f}x; "
            f"{rate:6.1f} GFLOP/s",
            flush=True,
        )
        rows[k] = rs
    out[f"{task.name}_scaling"] = {"single": one, "stack": rows}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs, 1 repetition, K <= 8")
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions")
    parser.add_argument("--tasks", default="cnn,lstm")
    parser.add_argument("--compiled", action="store_true", help="also the compiled LSTM kernel")
    parser.add_argument("--no-scaling", action="store_true", help="skip the stack-size table")
    parser.add_argument("--ks", default="1,8,32,128")
    parser.add_argument("--json", default=None, help="default: bench/results/search_networks*.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    epochs, reps = (2, 1) if args.quick else (10, args.reps)
    ks = [1, 8] if args.quick else [int(k) for k in args.ks.split(",")]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    out: dict = {
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "load_average": os.getloadavg()[0],
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
        "epochs": epochs,
        "reps": reps,
    }
    if not torch.cuda.is_available():
        print("No CUDA device: the GPU section is skipped.")
    for device in devices:
        gemms = [sgemm(device) for _ in range(3)]
        print(
            f"\n=== {device}: torch {torch.__version__}, {torch.get_num_threads()} thread; load "
            f"average {os.getloadavg()[0]:.1f}; sgemm 512^3: "
            + ", ".join(f"{g['cpu']:.0f}" for g in gemms)
            + " GFLOP/s CPU"
        )
        section: dict = {"sgemm": gemms}
        for name in args.tasks.split(","):
            task = Task(name, epochs, device)
            variants = ["loop", "fused", "search"]
            if name == "cnn":
                variants.insert(2, "torch.func")
            elif args.compiled:
                variants.insert(2, "fused+c++")
            compare(task, variants, reps, gemms, section)
            if not args.no_scaling:
                best = "fused+c++" if name == "lstm" and args.compiled else "fused"
                scaling(task, ks, 1 if args.quick else 2, best, section)
        out[device] = section
    path = args.json or str(
        ROOT / "bench" / "results" / f"search_networks{'-quick' if args.quick else ''}.json"
    )
    atomic_write(path, json.dumps(out, indent=1, default=str))
    print(f"\nwrote {path}")
    return out


if __name__ == "__main__":
    main()
