"""``shrinkage fit``: train a regularized MLP on a CSV / Parquet table and save it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from shrinkage._names import PENALTY_NAMES
from shrinkage._progress import ProgressBoard
from shrinkage.cli._common import (
    ESTIMATOR_OPTIONS,
    Choice,
    Integer,
    IntList,
    Number,
    OneLineCommand,
    Status,
    Strength,
    console,
    data_options,
    plural,
    training_options,
)
from shrinkage.errors import ShrinkageError, TrainingDiverged

__all__ = ["fit"]

# Options that describe the network itself, its starting weights or the units of its inputs:
# a model loaded with --init already has them.
_ARCHITECTURE = {
    "hidden": "--hidden",
    "activation": "--activation",
    "init": "--weight-init",
    "standardize": "--standardize/--no-standardize",
}
# CLI option name -> estimator parameter.
_PARAMS = {
    "l1_ratio": "l1_ratio",
    "placement": "placement",
    "hidden": "hidden_layer_sizes",
    "activation": "activation",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "learning_rate": "learning_rate",
    "optimizer": "optimizer",
    "momentum": "momentum",
    "learning_rate_schedule": "learning_rate_schedule",
    "init": "init",
    "standardize": "standardize",
    "mode": "mode",
    "impute": "impute",
    "early_stopping": "early_stopping",
    "validation_fraction": "validation_fraction",
    "patience": "patience",
    "seed": "random_state",
    "device": "device",
}


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _penalty(options: dict[str, Any]) -> tuple[str, float] | None:
    """(penalty, strength) from --l2 / --l1 / --penalty [--strength], or None if none given."""
    chosen = [flag for flag in ("l2", "l1", "penalty") if options[flag] is not None]
    if chosen == ["l2", "l1"]:
        l1, l2 = options["l1"], options["l2"]
        total = l1 + l2
        both = (
            f"--penalty elastic_net --strength {total:g} --l1-ratio {l1 / total:g}"
            if total > 0
            else "--penalty elastic_net --strength S --l1-ratio R"
        )
        raise ShrinkageError(
            f"Give only one of --l2 and --l1; for both at once ({l1:g}·Σ|w| + {l2:g}·Σw²) use "
            f"{both}."
        )
    if len(chosen) > 1:
        shown = " and ".join(f"--{flag}" for flag in chosen)
        raise ShrinkageError(f"Give only one of --l2, --l1 and --penalty; got {shown}.")
    strength = options["strength"]
    if chosen and chosen[0] in ("l1", "l2"):
        if strength is not None:
            raise ShrinkageError(
                f"--strength goes with --penalty; --{chosen[0]} already sets the strength."
            )
        return chosen[0], options[chosen[0]]
    if chosen:
        if options["penalty"].lower() == "none" and strength is not None:
            raise ShrinkageError(
                f"--strength {strength:g} has no effect with --penalty none; drop one of them."
            )
        return options["penalty"].lower(), 1e-4 if strength is None else strength
    if strength is not None:
        return "l2", strength
    return None


@click.command(
    cls=OneLineCommand,
    params_from=ESTIMATOR_OPTIONS,
    epilog="""\b
Examples:
  shrinkage fit houses.csv --target price --l2 0.001 -o model/
  shrinkage fit churn.parquet --target churned --hidden 64,32 --l1 1e-4 \\
      --placement hidden --early-stopping -o churn_model/
  shrinkage fit new_rows.csv --target price --init model/ --penalty l2sp \\
      --strength 0.01 --epochs 50 -o model_tuned/
  shrinkage fit houses.csv --target price --layer-penalties 0=l2:3e-4,1=none,2=l2:0.01 -o model/
""",
)
@data_options
@click.option("--l2", type=Strength("l2"), help="L2 strength (Keras: adds X*sum(W**2)).")
@click.option("--l1", type=Strength("l1"), help="L1 strength (Keras: adds X*sum|W|).")
@click.option(
    "--penalty",
    type=Choice(PENALTY_NAMES, case_sensitive=False),
    help="Penalty kind, with --strength.  [default: l2 with strength 1e-4]",
)
@click.option("--strength", type=Strength("strength"), help="Strength of --penalty.")
@click.option(
    "--l1-ratio", type=Number(), default=0.5, show_default=True, help="Elastic net share of L1."
)
@click.option(
    "--placement",
    type=IntList("placement", "0,2", allow_words=("all", "hidden", "output")),
    default="all",
    show_default=True,
    help="Regularized layers: all, hidden, output, or layer indices like 0,2.",
)
@click.option(
    "--layer-penalties",
    metavar="I=KIND:S,...",
    help="Per-layer penalties, e.g. 0=l2:3e-4,1=none,2=l2:0.01 (what tune --per-layer prints).",
)
@training_options
@click.option("--impute", is_flag=True, help="Fill missing features (median / most frequent).")
@click.option("--early-stopping", is_flag=True, help="Stop on a held-out validation split.")
@click.option("--validation-fraction", type=Number(), default=0.1, show_default=True)
@click.option("--patience", type=Integer(), default=10, show_default=True)
@click.option("--seed", type=Integer(), default=0, show_default=True, help="Random seed.")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cuda.")
@click.option(
    "--init",
    "init_dir",
    metavar="MODEL_DIR",
    help="Start from a saved model's weights (fine-tuning); with --penalty l2sp, pull toward them.",
)
@click.option("--output", "-o", required=True, metavar="MODEL_DIR", help="Where to save.")
@click.option(
    "--force", is_flag=True, help="Replace the shrinkage model already in MODEL_DIR, if any."
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@click.pass_context
def fit(
    ctx: click.Context,
    data: str,
    target: str,
    output: str,
    force: bool,
    quiet: bool,
    **options: Any,
) -> None:
    """Train a regularized MLP on DATA (CSV, TSV or Parquet) and save it to MODEL_DIR.

    Numeric columns are standardized and categorical ones one-hot encoded (fitted on the
    training rows); the penalty has the Keras meaning (added to the mean loss). MODEL_DIR
    must be new, empty, or (with --force) hold a shrinkage model; only the model's own files
    are replaced there. A training run that diverges is not saved.
    """
    started = time.perf_counter()
    with Status(f"Reading {data} (loading torch, scikit-learn and pandas) …", not quiet) as status:
        estimator, dataset, features, y = _prepare(
            ctx, data, target, output, force, options, status
        )
    epochs = estimator.get_params()["epochs"]
    sizes = "×".join(str(n) for n in dataset.X.shape)
    board = ProgressBoard("fit", display="off" if quiet else "auto", delay=1.0, transient=True)
    board.add("train", epochs, f"{type(estimator).__name__} on {sizes}")
    from shrinkage.estimators import save

    try:
        with board:
            estimator.fit(features, y, progress=board.epoch_callback("train"))
    except TrainingDiverged as err:
        raise ShrinkageError(
            f"{str(err).rstrip('.')} (--lr, --strength); nothing was saved."
        ) from None
    save(estimator, output, target=target, overwrite=force)
    if not quiet:
        _summary(estimator, dataset, output, time.perf_counter() - started)


def _prepare(
    ctx: click.Context,
    data: str,
    target: str,
    output: str,
    force: bool,
    options: dict[str, Any],
    status: Any,
) -> tuple[Any, Any, Any, Any]:
    """Every check, then the data: ``(estimator, dataset, features, y)``."""
    import numpy as np
    import pandas as pd

    from shrinkage.data import CLASSIFICATION, load_dataset
    from shrinkage.estimators import (
        MLPClassifier,
        MLPRegressor,
        check_output_dir,
        load,
        parse_layer_penalties,
    )

    penalty = _penalty(options)
    init_dir = options.pop("init_dir")
    params: dict[str, Any] = {}
    for option, param in _PARAMS.items():
        if init_dir is None or _given(ctx, option):
            params[param] = options[option]
    if penalty is not None:
        params["penalty"], params["strength"] = penalty
    layers = options.pop("layer_penalties")
    if layers is not None:
        parsed = parse_layer_penalties(layers)
        if penalty is None and init_dir is None:
            # Only the layers named get a penalty; a bare strength is an L2 strength.
            params["penalty"] = "none"
            parsed = {i: ("l2", v) if isinstance(v, float) else v for i, v in parsed.items()}
        params["layer_penalties"] = parsed

    base: Any = None
    if init_dir is not None:
        clash = [flag for name, flag in _ARCHITECTURE.items() if _given(ctx, name)]
        if clash:
            raise ShrinkageError(
                f"{' and '.join(clash)} cannot be combined with --init: the network comes "
                f"from the model in '{init_dir}'."
            )
        base = load(init_dir)
        base.set_params(**params, warm_start=True)
        base._resolve_params()
    else:
        MLPRegressor(**params)._resolve_params()  # bad options fail before the data is read
    check_output_dir(output, overwrite=force)

    task = None if options["task"] == "auto" else options["task"]
    if base is not None:
        model_task = base._task
        if task is not None and task != model_task:
            raise ShrinkageError(
                f"--task {task} does not match the {model_task} model loaded with --init."
            )
        task = model_task
    status.update(f"Reading {data} …")
    dataset = load_dataset(data, target, task=task, impute=bool(params.get("impute", False)))
    if base is not None:
        estimator = base
        missing = [c for c in base.preprocessor_.feature_names_in_ if c not in dataset.X.columns]
        if missing:
            raise ShrinkageError(
                f"The data file '{data}' lacks the column(s) {', '.join(missing)} that the model "
                f"in '{init_dir}' was trained on."
            )
        features = dataset.X[list(base.preprocessor_.feature_names_in_)]
    else:
        kind = MLPClassifier if dataset.task == CLASSIFICATION else MLPRegressor
        estimator = kind(**params)
        features = dataset.X

    if dataset.task == CLASSIFICATION:
        y = dataset.y.to_numpy()
    else:
        y = pd.to_numeric(dataset.y).to_numpy(dtype=np.float64)
    return estimator, dataset, features, y


def _summary(estimator: Any, dataset: Any, output: str, seconds: float) -> None:
    from shrinkage.estimators import weights_path

    out = console()
    last = estimator.history_[-1]
    metric = "accuracy" if estimator._task == "classification" else "R²"
    sizes = " → ".join(str(s) for s in estimator.model_.sizes)
    if len(estimator.model_.sizes) > 2:
        sizes += f", {estimator.model_.activation_name}"
    out.print(
        f"Trained {type(estimator).__name__} ({sizes}) on "
        f"{len(dataset.y)} rows × {dataset.X.shape[1]} columns, "
        f"{plural(estimator.n_iter_, 'epoch')}, "
        f"in {seconds:.1f} s."
    )
    placed = [f"{r.select} {r.penalty}" for r in estimator.plan_.rules]
    out.print(f"Penalty ({estimator.mode} mode): {'; '.join(placed) or 'none'}.")
    scores = f"train {metric} {last['train_score']:.4f}"
    if estimator.early_stopping:
        best = estimator.history_[estimator.best_epoch_ - 1]
        scores = (
            f"train {metric} {best['train_score']:.4f}, validation {metric} "
            f"{best['val_score']:.4f} (epoch {estimator.best_epoch_} kept)"
        )
    out.print(f"Final loss {last['data_loss']:.4g} + penalty {last['penalty']:.4g}; {scores}.")
    out.print(f"Saved to {Path(output)}/ (model.json + {weights_path(output).name}).")
