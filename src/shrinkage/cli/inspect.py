"""``shrinkage inspect``: what a saved model is, and what regularization did to its weights."""

from __future__ import annotations

import json
from typing import Any

import click

from shrinkage.cli._common import OneLineCommand, console, plural

__all__ = ["inspect_cmd", "model_summary"]


def model_summary(estimator: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """The facts ``inspect`` prints about a model, as JSON values.

    Args:
        estimator: the loaded estimator.
        meta: its ``model.json``.

    Returns:
        Class, task, target, layer sizes, activation, penalty placement, mode, epochs and the
        last scores.
    """
    return {
        "estimator": meta["estimator"],
        "task": meta["task"],
        "target": meta.get("target"),
        "sizes": list(estimator.model_.sizes),
        "activation": estimator.model_.activation_name,
        "mode": estimator.mode,
        "plan": [
            {"layer": str(rule.select), "penalty": str(rule.penalty)}
            for rule in estimator.plan_.rules
        ],
        "classes": None if meta.get("classes") is None else meta["classes"]["values"],
        "features_in": estimator.preprocessor_.feature_names_in_,
        "metrics": meta.get("metrics"),
        "created": meta.get("created"),
        "shrinkage_version": meta.get("shrinkage_version"),
    }


@click.command(
    cls=OneLineCommand,
    epilog="""\b
Examples:
  shrinkage inspect model/
  shrinkage inspect model/ --json > weights.json
""",
)
@click.argument("model_dir", metavar="MODEL_DIR")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def inspect_cmd(model_dir: str, as_json: bool) -> None:
    """Show a saved model and a per-layer table of its weights.

    For each weight matrix: shape, the penalty on it, L1 norm (sum |w|), L2 norm
    (sqrt(sum w²)), max |w|, the share of exact zeros and of |w| < 1e-3, and dead units
    (rows entirely zero: neurons that ignore their inputs).
    """
    from shrinkage.analysis import SMALL, weight_table
    from shrinkage.estimators import load, read_metadata

    estimator = load(model_dir)
    meta = read_metadata(model_dir)
    summary = model_summary(estimator, meta)
    rows = weight_table(estimator)
    if as_json:
        click.echo(json.dumps({"model": summary, "layers": rows}, indent=2))
        return

    from rich.table import Table

    out = console()
    sizes = " → ".join(str(s) for s in summary["sizes"])
    out.print(f"[bold]{summary['estimator']}[/bold] ({summary['task']}) in {model_dir}")
    out.print(f"Network: {sizes}, {summary['activation']}; penalty mode: {summary['mode']}")
    if summary["target"] is not None:
        out.print(f"Target: {summary['target']}")
    metrics = summary["metrics"] or {}
    if metrics.get("train_score") is not None:
        name = "accuracy" if summary["task"] == "classification" else "R²"
        val = metrics.get("val_score")
        shown = f"train {name} {metrics['train_score']:.4f}"
        if val is not None:
            shown += f", validation {name} {val:.4f}"
        epochs = metrics.get("epochs")
        trained = plural(epochs, "epoch") if isinstance(epochs, int) else f"{epochs} epochs"
        out.print(f"After {trained}: {shown}")

    table = Table(title="Weights per layer")
    for header in (
        "layer",
        "shape",
        "penalty",
        "L1 norm",
        "L2 norm",
        "max |w|",
        "zeros",
        f"|w|<{SMALL:g}",
        "dead units",
    ):
        table.add_column(header, justify="left" if header in ("layer", "penalty") else "right")
    for row in rows:
        table.add_row(
            row["name"],
            "×".join(str(s) for s in row["shape"]),
            row["penalty"] or "-",
            f"{row['l1_norm']:.4g}",
            f"{row['l2_norm']:.4g}",
            f"{row['max_abs']:.4g}",
            f"{row['zero_fraction']:.1%}",
            f"{row['small_fraction']:.1%}",
            f"{row['dead_units']}/{row['units']}",
        )
    out.print(table)
