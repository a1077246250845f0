"""``shrinkage demo``: the classic over-fitting case study, no arguments, no network access.

make_moons(n_samples=100, noise=0.2, random_state=1); the first 30 rows train, the other
70 test; one hidden layer of 500 ReLU units; Adam (lr 1e-3); 4000 epochs of full batches
(30 rows). The unregularized network is compared with the same network whose hidden layer
carries ``L2(0.001)`` — Keras's ``kernel_regularizer=l2(0.001)`` on the hidden ``Dense``
only, as in the case study — with Keras's settings: the raw inputs (``standardize=False``)
and ``Dense``'s initialization (``init="glorot_uniform"``).

:func:`case_study` is the whole published study (7 strengths, 5 seeds, 35 networks trained as
one stack): its mean test accuracies come within 0.015 of the published table at every
strength (``python bench/moons_case_study.py``; ``tests/test_case_study.py``).

The table is built by :func:`demo_rows` from a list of :class:`DemoConfig`, so further
configurations (e.g. one tuned by the search) are one more entry in that list.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from shrinkage._progress import ProgressBoard
from shrinkage.cli._common import OneLineCommand, Status, check_output_file, console

__all__ = [
    "CASE_STUDY_STRENGTHS",
    "DemoConfig",
    "DemoRow",
    "EPOCHS",
    "KERAS_SETTINGS",
    "L2_STRENGTH",
    "N_TRAIN",
    "PUBLISHED",
    "baseline_configs",
    "case_study",
    "convention_lines",
    "demo",
    "demo_rows",
    "moons_split",
    "render_table",
]

EPOCHS = 4000
N_TRAIN = 30
L2_STRENGTH = 0.001
TIME_TARGET_S = 60.0
# Tiny matrices (30 x 500): a second thread costs more in synchronization than it saves, and
# on a shared 2-core machine it can make each step many times slower.
DEMO_THREADS = 1

#: Keras's defaults, which the case study used: the inputs as they are, ``Dense``'s
#: glorot-uniform weights and zero biases (the estimators' own defaults standardize the
#: inputs and draw torch's ``nn.Linear`` initialization).
KERAS_SETTINGS: dict[str, Any] = {"standardize": False, "init": "glorot_uniform"}

#: The strengths of the published study (``0.0``: no penalty), hidden layer only.
CASE_STUDY_STRENGTHS = (0.0, 0.1, 0.01, 1e-3, 1e-4, 1e-5, 1e-6)

#: The published test accuracies of the case study, by strength (Keras, one hidden
#: ``Dense(500, relu)`` with ``kernel_regularizer=l2(strength)``, 4000 epochs of Adam).
PUBLISHED: dict[float, float] = {
    0.0: 0.914,
    0.1: 0.829,
    0.01: 0.943,
    1e-3: 0.943,
    1e-4: 0.929,
    1e-5: 0.929,
    1e-6: 0.914,
}


@dataclass(frozen=True)
class DemoConfig:
    """One network of the demo: its name, its penalty in words, and the estimator parameters.

    ``params`` are passed to :class:`~shrinkage.estimators.MLPClassifier` on top of the
    shared architecture and optimizer settings of the case study.
    """

    name: str
    penalty: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoRow:
    """One line of the table: accuracies, log-losses, hidden-weight size and time."""

    name: str
    penalty: str
    train_accuracy: float
    test_accuracy: float
    train_log_loss: float
    test_log_loss: float
    hidden_sq_norm: float
    seconds: float
    estimator: Any = field(default=None, compare=False, repr=False)


def moons_split() -> tuple[Any, Any, Any, Any]:
    """``X_train, y_train, X_test, y_test``: make_moons(100, noise=0.2, random_state=1), 30/70."""
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=100, noise=0.2, random_state=1)
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


def baseline_configs() -> list[DemoConfig]:
    """The two networks of the case study: unregularized, and ``L2(0.001)`` on the hidden layer."""
    return [
        DemoConfig("unregularized", "none", {"penalty": "none"}),
        DemoConfig(
            "L2 hidden layer",
            f"L2({L2_STRENGTH:g}), layer 0",
            {"penalty": "l2", "strength": L2_STRENGTH, "placement": "hidden"},
        ),
    ]


def _shared_params(epochs: int) -> dict[str, Any]:
    return {
        "hidden_layer_sizes": (500,),
        "activation": "relu",
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "epochs": epochs,
        "batch_size": N_TRAIN,
        "random_state": 0,
        **KERAS_SETTINGS,
    }


def case_study(
    strengths: Sequence[float] = CASE_STUDY_STRENGTHS,
    seeds: Sequence[int] = range(5),
    epochs: int = EPOCHS,
    *,
    standardize: bool = False,
    init: str = "glorot_uniform",
    progress: Callable[[int], None] | None = None,
) -> dict[float, list[float]]:
    """The published over-fitting study: the test accuracy of every strength and seed.

    Each ``(strength, seed)`` network is the demo's :class:`~shrinkage.MLPClassifier`
    (``L2(strength)`` on the hidden layer, ``random_state=seed``); all of them train at once
    as one stack of the batched engine, which gives every candidate the weights the
    estimator fitted alone would have (``tests/test_search.py``).

    Args:
        strengths: L2 strengths on the hidden layer (0: none).
        seeds: the seeds of the initializations.
        epochs: full-batch epochs of Adam (lr 1e-3).
        standardize: standardize the inputs on the training rows (the estimators' default;
            the case study used them raw).
        init: the initialization (the case study used Keras's ``"glorot_uniform"``).
        progress: called with the epoch number after each epoch.

    Returns:
        ``{strength: [test accuracy per seed]}``.
    """
    import numpy as np
    import torch

    from shrinkage.data import Preprocessor
    from shrinkage.search.engine import StackedMLP, TrainSettings, predict_stack, train_stack

    X_train, y_train, X_test, y_test = moons_split()
    X = np.concatenate([X_train, X_test])
    features = Preprocessor(standardize=standardize).fit(X_train).transform(X)
    configs = [(float(s), int(seed)) for s in strengths for seed in seeds]
    stack = StackedMLP.from_seeds([seed for _, seed in configs], [2, 500, 1], "relu", init=init)
    l2 = torch.tensor([[s, 0.0] for s, _ in configs])
    settings = TrainSettings(
        task="classification", n_classes=2, learning_rate=1e-3, epochs=epochs, batch_size=N_TRAIN
    )
    inputs = torch.from_numpy(features)
    labels = torch.from_numpy(np.concatenate([y_train, y_test]).astype(np.float32))
    rows = torch.arange(N_TRAIN)
    seeds_k = [seed for _, seed in configs]
    zero = torch.zeros_like(l2)
    train_stack(
        stack, inputs, labels, [rows] * len(configs), seeds_k, zero, l2, settings, progress=progress
    )
    test = torch.arange(N_TRAIN, len(X)).repeat(len(configs), 1)
    logits = predict_stack(stack, inputs, test)[..., 0]
    correct = ((logits > 0).float() == labels[N_TRAIN:]).float().mean(dim=1).tolist()
    out: dict[float, list[float]] = {}
    for (strength, _), accuracy in zip(configs, correct):
        out.setdefault(strength, []).append(accuracy)
    return out


def _log_loss(estimator: Any, X: Any, y: Any) -> float:
    import numpy as np

    log_proba = estimator.predict_log_proba(X)
    return float(-np.mean(log_proba[np.arange(len(y)), y]))


def demo_rows(
    configs: Sequence[DemoConfig] | None = None,
    epochs: int = EPOCHS,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
    on_start: Callable[[DemoConfig], None] | None = None,
) -> list[DemoRow]:
    """Train each configuration on the 30 training rows and measure it on both splits.

    Args:
        configs: the networks (default: :func:`baseline_configs`).
        epochs: epochs per network (the case study: 4000).
        progress: called after every epoch of every network.
        on_start: called before each network is trained.

    Returns:
        One :class:`DemoRow` per configuration, in order.
    """
    from shrinkage.estimators import MLPClassifier

    X_train, y_train, X_test, y_test = moons_split()
    rows = []
    for config in configs or baseline_configs():
        if on_start is not None:
            on_start(config)
        started = time.perf_counter()
        clf = MLPClassifier(**{**_shared_params(epochs), **config.params})
        clf.fit(X_train, y_train, progress=progress)
        rows.append(measure_row(config.name, config.penalty, clf, time.perf_counter() - started))
    return rows


def measure_row(name: str, penalty: str, clf: Any, seconds: float) -> DemoRow:
    """Score a fitted demo network on both splits (accuracy, log-loss, hidden ΣW²)."""
    X_train, y_train, X_test, y_test = moons_split()
    hidden = clf.layer_weights_[0]["weight"]
    return DemoRow(
        name=name,
        penalty=penalty,
        train_accuracy=float(clf.score(X_train, y_train)),
        test_accuracy=float(clf.score(X_test, y_test)),
        train_log_loss=_log_loss(clf, X_train, y_train),
        test_log_loss=_log_loss(clf, X_test, y_test),
        hidden_sq_norm=float((hidden.astype("float64") ** 2).sum()),
        seconds=seconds,
        estimator=clf,
    )


def tuned_row(
    epochs: int = EPOCHS, progress: Callable[[Any], None] | None = None
) -> tuple[DemoRow, Any]:
    """The demo's second part: tune the L2 strength and its placement by 3-fold CV.

    7 strengths x 3 placements x 3 folds = 63 candidates trained as one stack, then the
    best configuration refit on the 30 training rows. ``progress`` is the search's hook.
    """
    from shrinkage.cli._workflows import tune_demo

    X_train, y_train, X_test, y_test = moons_split()
    started = time.perf_counter()
    best, _, search = tune_demo(
        X_train, y_train, X_test, y_test, epochs=epochs, progress=progress, **KERAS_SETTINGS
    )
    seconds = time.perf_counter() - started
    penalty = f"L2({best['strength']:.3g}), placement {best['placement']}"
    return measure_row("tuned by CV", penalty, search.best_estimator_, seconds), search


def convention_lines(strength: float = L2_STRENGTH, m: int = N_TRAIN) -> list[str]:
    """What ``L2(strength)`` means, in the three conventions a reader may know.

    Keras ``l2(s)`` adds ``s * sum(W**2)`` to the mean loss (gradient ``2 s W``); the
    course's ``(lambda / 2m) * sum(W**2)`` is the same for ``lambda = 2 m s``; torch's
    ``weight_decay = wd`` adds ``wd * W`` to the gradient, the same for ``wd = 2 s``.
    """
    lam = 2 * m * strength
    wd = 2 * strength
    return [
        f"Penalty: L2({strength:g}) is Keras's kernel_regularizer=l2({strength:g}) on the hidden "
        f"layer: + {strength:g}·ΣW² on the mean loss,",
        f"  gradient {wd:g}·W; the course's (λ/2m)·ΣW² with m={m} is λ = {lam:g}; torch's "
        f"weight_decay (coupled, SGD/Adam) is {wd:g}.",
    ]


def render_table(rows: Sequence[DemoRow]) -> Any:
    """The rows as a rich table, train and test side by side."""
    from rich.table import Table

    table = Table(title=f"make_moons: {N_TRAIN} training rows, 70 test rows, 500 ReLU units")
    for header in (
        "network",
        "penalty",
        "train acc",
        "test acc",
        "train log-loss",
        "test log-loss",
        "ΣW² hidden",
        "time",
    ):
        table.add_column(header, justify="left" if header in ("network", "penalty") else "right")
    for row in rows:
        table.add_row(
            row.name,
            row.penalty,
            f"{row.train_accuracy:.3f}",
            f"{row.test_accuracy:.3f}",
            f"{row.train_log_loss:.4f}",
            f"{row.test_log_loss:.4f}",
            f"{row.hidden_sq_norm:.1f}",
            f"{row.seconds:.1f} s",
        )
    return table


@click.command(
    cls=OneLineCommand,
    epilog="""\b
Example:
  shrinkage demo
  shrinkage demo --quiet     # no progress bar
""",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--epochs", type=int, default=EPOCHS, hidden=True, help="For tests only.")
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False),
    default="shrinkage-demo",
    show_default=True,
    help="Directory for the HTML report.",
)
def demo(quiet: bool, epochs: int, output: str) -> None:
    """Over-fitting on make_moons, without and with L2 on the hidden layer (< 1 minute).

    Trains one hidden layer of 500 ReLU units with Adam for 4000 epochs on 30 points, once
    unregularized and once with Keras's l2(0.001) on the hidden layer, and prints train and
    test accuracy side by side. No arguments, no network access.
    """
    from shrinkage._io import check_writable_folder

    report_path = Path(output) / "report.html"
    if Path(output).is_dir():  # checked before a minute of training, not after
        check_output_file(report_path)
    else:
        check_writable_folder(output, "The '--output' folder")
    started = time.perf_counter()
    with Status("Loading torch and scikit-learn …", not quiet):
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(DEMO_THREADS)
        configs = baseline_configs()
        # The first torch optimizer imports torch._dynamo (seconds on a busy machine): paid
        # here, once, so that the per-network times compare training alone.
        torch.optim.Adam([torch.zeros(1, requires_grad=True)])
        import shrinkage.estimators  # noqa: F401

    setup = time.perf_counter() - started
    board = ProgressBoard("demo", display="off" if quiet else "auto")
    for config in configs:
        board.add(config.name, epochs, config.penalty)
    board.add("grid", epochs, "7 strengths x 3 placements x 3 folds: 63 networks, one stack")
    board.add("refit", epochs, "the CV choice on the 30 training rows")
    board.add("report", None, "figures and report.html")
    try:
        with board:
            current: list[str] = []

            def start(config: DemoConfig) -> None:
                current[:] = [config.name]
                board.start(config.name)

            def trained(epoch: int, row: dict[str, Any]) -> None:
                board.update(current[0], epoch)

            rows = demo_rows(configs, epochs=epochs, progress=trained, on_start=start)
            tuned, search = tuned_row(epochs, progress=board.search_callback())
            rows.append(tuned)
            board.start("report")
            from shrinkage.cli._workflows import write_demo_report

            Path(output).mkdir(parents=True, exist_ok=True)  # `make demo` on a fresh clone
            report = write_demo_report(
                report_path,
                tuned.estimator,
                rows[0].estimator,
                *moons_split(),
                search=search,
            )
            board.finish("report")
    finally:
        torch.set_num_threads(threads)
    wall = time.perf_counter() - started

    out = console()
    out.print(render_table(rows))
    for line in convention_lines():
        out.print(line)
    out.print(f"Report: {report}")
    trained = sum(row.seconds for row in rows)
    parts = ", ".join(f"{row.name} {row.seconds:.1f} s" for row in rows)
    out.print(
        f"Wall time: {wall:.1f} s (setup {setup:.1f} s, {parts}, scoring and output "
        f"{wall - trained - setup:.1f} s; {epochs} epochs per network, {DEMO_THREADS} torch "
        "thread)."
    )
    if wall > TIME_TARGET_S:
        per_epoch = 1000 * trained / max(1, epochs * len(rows))
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        out.print(
            f"Slower than the {TIME_TARGET_S:.0f} s target: the training loops took "
            f"{trained:.1f} s ({per_epoch:.2f} ms per epoch, each a forward, backward and Adam "
            f"step plus the per-epoch penalty and accuracy); load average {load:.1f} on "
            f"{os.cpu_count()} cores, so the machine is shared or slow."
        )
