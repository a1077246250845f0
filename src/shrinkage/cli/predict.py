"""``shrinkage predict``: apply a saved model to a table and write the predictions as CSV."""

from __future__ import annotations

from typing import Any

import click

from shrinkage._io import write_csv
from shrinkage.cli._common import OneLineCommand, check_output_file, console
from shrinkage.errors import ShrinkageError

__all__ = ["predict", "prediction_frame"]


def prediction_frame(estimator: Any, features: Any) -> Any:
    """The predictions table: ``prediction``, and ``proba_<class>`` per class for a classifier.

    Args:
        estimator: a fitted estimator.
        features: the rows, with the model's feature columns.

    Returns:
        A DataFrame with one row per input row, in input order.
    """
    import pandas as pd

    frame = pd.DataFrame({"prediction": estimator.predict(features)})
    if hasattr(estimator, "predict_proba"):
        proba = estimator.predict_proba(features)
        for i, label in enumerate(estimator.classes_):
            frame[f"proba_{label}"] = proba[:, i]
    return frame


@click.command(
    cls=OneLineCommand,
    epilog="""\b
Example:
  shrinkage predict model/ new_houses.csv -o predictions.csv
""",
)
@click.argument("model_dir", metavar="MODEL_DIR")
@click.argument("data", metavar="DATA")
@click.option("--output", "-o", required=True, metavar="FILE", help="The predictions CSV to write.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
def predict(model_dir: str, data: str, output: str, quiet: bool) -> None:
    """Predict the rows of DATA with the model saved in MODEL_DIR.

    Writes one row per input row: the predicted value or class, and for a classifier the
    probability of each class. When DATA holds the target column, the score is printed.
    FILE must be new or a writable regular file (replaced, keeping its permissions), not
    DATA itself and not inside a model directory.
    """
    from shrinkage._io import check_input_file
    from shrinkage.data import read_table, split_target
    from shrinkage.estimators import load, read_metadata

    check_input_file(data, "The data file")
    check_output_file(output, inputs=(data,))
    estimator = load(model_dir)
    target = read_metadata(model_dir).get("target")
    frame = read_table(data)
    columns = list(estimator.preprocessor_.feature_names_in_)
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ShrinkageError(
            f"The data file '{data}' lacks the column(s) {', '.join(missing)} that the model in "
            f"'{model_dir}' was trained on."
        )
    predictions = prediction_frame(estimator, frame[columns])
    write_csv(predictions, output)
    if quiet:
        return
    message = f"Wrote {len(predictions)} predictions to {output}."
    if target is not None and target in frame.columns:
        try:
            _, y = split_target(frame, target, source=f"'{data}'")
            metric = "accuracy" if hasattr(estimator, "classes_") else "R²"
            message += (
                f" {metric} against column {target!r}: {_score(estimator, predictions, y):.4f}."
            )
        except (ShrinkageError, ValueError, TypeError):
            pass  # a target with gaps or other labels is just not scored
    console().print(message)


def _score(estimator: Any, predictions: Any, y: Any) -> float:
    import numpy as np
    from sklearn.metrics import accuracy_score, r2_score

    predicted = predictions["prediction"].to_numpy()
    if hasattr(estimator, "classes_"):
        truth = y.to_numpy()
        if truth.dtype != predicted.dtype:
            truth = truth.astype(str)
            predicted = np.asarray([str(v) for v in predicted])
        return float(accuracy_score(truth, predicted))
    return float(r2_score(y.to_numpy(dtype=np.float64), predicted))
