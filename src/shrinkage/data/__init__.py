"""The data layer: a user's table in, validated columns and standardized arrays out.

:func:`read_table` reads CSV / TSV / Parquet, :func:`split_target` and :func:`detect_task`
pick the target apart, :func:`encode_target` / :func:`encode_labels` turn it into numbers
(one label encoder for the whole package), and :class:`Preprocessor` standardizes numeric
columns and one-hot encodes categorical ones, fitted on training rows only and saved as
plain JSON. Every bad input raises a one-line :class:`~shrinkage.errors.ShrinkageError`
naming the argument, column or row and the value received.
"""

from shrinkage._names import CLASSIFICATION, REGRESSION, TASKS
from shrinkage.data._preprocessing import Preprocessor
from shrinkage.data._tables import (
    SUPPORTED_EXTENSIONS,
    Dataset,
    check_rows_for_folds,
    load_dataset,
    read_table,
    split_target,
)
from shrinkage.data._target import (
    MAX_AUTO_CLASSES,
    decode_target,
    detect_task,
    encode_labels,
    encode_regression,
    encode_target,
)

__all__ = [
    "CLASSIFICATION",
    "MAX_AUTO_CLASSES",
    "REGRESSION",
    "SUPPORTED_EXTENSIONS",
    "TASKS",
    "Dataset",
    "Preprocessor",
    "check_rows_for_folds",
    "decode_target",
    "detect_task",
    "encode_labels",
    "encode_regression",
    "encode_target",
    "load_dataset",
    "read_table",
    "split_target",
]
