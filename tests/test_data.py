"""Tests for shrinkage.data: reading, target handling, preprocessing and its JSON round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from shrinkage.data import (
    Dataset,
    Preprocessor,
    check_rows_for_folds,
    decode_target,
    detect_task,
    encode_target,
    load_dataset,
    read_table,
    split_target,
)
from shrinkage.errors import ShrinkageError

# --------------------------------------------------------------------------- helpers


def write(name: str, text: str) -> str:
    """Write ``text`` to ``name`` in the current (temporary) directory and return the name."""
    with open(name, "w", encoding="utf-8") as handle:
        handle.write(text)
    return name


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    # Messages quote the path as given; running in tmp_path keeps them short and exact.
    monkeypatch.chdir(tmp_path)


def fitted(**kwargs) -> Preprocessor:
    frame = pd.DataFrame({"age": [20.0, 30.0, 40.0], "color": ["red", "blue", "red"]})
    return Preprocessor(**kwargs).fit(frame)


GOOD = "a,b,y\n1,x,0\n2,y,1\n3,x,0\n4,y,1\n"

# --------------------------------------------------------------------------- bad inputs

# (id, call, exact message). ``call`` runs in a fresh temporary directory.
BAD_INPUTS = [
    (
        "missing file",
        lambda: read_table("missing.csv"),
        "The data file 'missing.csv' does not exist.",
    ),
    (
        "directory",
        lambda: read_table("."),
        "The data file '.' is a directory, not a file.",
    ),
    (
        "empty file",
        lambda: read_table(write("data.csv", "")),
        "The data file 'data.csv' is empty (0 bytes).",
    ),
    (
        "blank file",
        lambda: read_table(write("data.csv", "\n\n")),
        "The data file 'data.csv' is empty (no header line).",
    ),
    (
        "header only",
        lambda: read_table(write("data.csv", "a,b,y\n")),
        "The data file 'data.csv' has a header (a, b, y) but no data rows.",
    ),
    (
        "unsupported extension",
        lambda: read_table(write("data.xlsx", GOOD)),
        "The data file 'data.xlsx' has an unsupported extension '.xlsx'; "
        "supported extensions are: .csv, .tsv, .parquet, .pq.",
    ),
    (
        "duplicate column names",
        lambda: read_table(write("data.csv", "a,b,a,y\n1,2,3,4\n")),
        "The data file 'data.csv' has duplicate column names: 'a' is both column 1 and column 3.",
    ),
    (
        "malformed csv",
        lambda: read_table(write("data.csv", "a,y\n1,2\n3,4,5\n")),
        "The data file 'data.csv' could not be read as CSV: "
        "Error tokenizing data. C error: Expected 2 fields in line 3, saw 3.",
    ),
    (
        "more fields than header names",
        lambda: read_table(write("data.csv", "a,b\n1,2,3\n4,5,6\n")),
        "The data file 'data.csv' has 3 fields in its first data row but 2 names in its header; "
        "give every column a name.",
    ),
    (
        "missing target column",
        lambda: load_dataset(write("data.csv", GOOD), target="price"),
        "The 'target' column 'price' is not in data.csv; columns are: a, b, y.",
    ),
    (
        "target is the only column",
        lambda: load_dataset(write("data.csv", "y\n1\n2\n"), target="y"),
        "There are no feature columns in data.csv: the 'target' column 'y' is its only column.",
    ),
    (
        "nan in target",
        lambda: load_dataset(write("data.csv", "a,y\n1,0\n2,\n3,1\n"), target="y"),
        "The 'target' column 'y' has a missing value in row 2 (got nan); "
        "drop the rows with no target or fill them in.",
    ),
    (
        "inf in target",
        lambda: load_dataset(write("data.csv", "a,y\n1,0.5\n2,1.5\n3,-inf\n"), target="y"),
        "The 'target' column 'y' has an infinite value in row 3 (got -inf).",
    ),
    (
        "non-numeric target for regression",
        lambda: load_dataset(write("data.csv", GOOD), target="b", task="regression"),
        "The 'target' column 'b' is not numeric (got 'x' in row 1), so it cannot be a "
        "regression target; use task='classification' (CLI: --task classification).",
    ),
    (
        "single class",
        lambda: load_dataset(write("data.csv", "a,y\n1,yes\n2,yes\n3,yes\n"), target="y"),
        "The 'target' column 'y' has a single class, 'yes', in all 3 rows; "
        "classification needs at least 2 classes.",
    ),
    (
        "bad task override",
        lambda: load_dataset(write("data.csv", GOOD), target="y", task="clustering"),
        "The 'task' parameter must be 'classification' or 'regression' (or None to detect it "
        "from the target). Got 'clustering' instead.",
    ),
    (
        "nan in features without impute",
        lambda: load_dataset(write("data.csv", "a,b,y\n1,x,0\n,y,1\n3,x,0\n"), target="y"),
        "The feature column 'a' has a missing value in row 2 (got nan); pass impute=True "
        "(CLI: --impute) to fill missing values with the training median / most frequent value.",
    ),
    (
        "blank string in a categorical feature",
        lambda: Preprocessor().fit(pd.DataFrame({"c": ["x", " ", "y"]})),
        "The feature column 'c' has a missing value in row 2 (got ' '); pass impute=True "
        "(CLI: --impute) to fill missing values with the training median / most frequent value.",
    ),
    (
        "inf in a feature",
        lambda: load_dataset(write("data.csv", "a,y\n1,0\n2,1\n3,0\ninf,1\n"), target="y"),
        "The feature column 'a' has an infinite value in row 4 (got inf); "
        "infinite values are never accepted.",
    ),
    (
        "inf in a feature even with impute",
        lambda: Preprocessor(impute=True).fit(pd.DataFrame({"a": [1.0, -np.inf]})),
        "The feature column 'a' has an infinite value in row 2 (got -inf); "
        "infinite values are never accepted.",
    ),
    (
        "fewer rows than folds",
        lambda: check_rows_for_folds(3, 5),
        "The data has 3 rows, fewer than 'folds'=5; use at most 3 folds or add rows.",
    ),
    (
        "folds below 2",
        lambda: check_rows_for_folds(10, 1),
        "The 'folds' parameter must be an integer >= 2. Got 1 instead.",
    ),
    (
        "missing columns at transform time",
        lambda: fitted().transform(pd.DataFrame({"height": [1.0]})),
        "The data is missing 2 column(s) the preprocessor was fitted on: age, color; "
        "columns are: height.",
    ),
    (
        "numeric column arrives as text",
        lambda: fitted().transform(pd.DataFrame({"age": ["31", "old"], "color": ["red"] * 2})),
        "The feature column 'age' was numeric when the preprocessor was fitted but now holds "
        "non-numeric values (got 'old' in row 2).",
    ),
    (
        "missing value at transform time",
        lambda: fitted().transform(pd.DataFrame({"age": [1.0], "color": [None]})),
        "The feature column 'color' has a missing value in row 1 (got None); pass impute=True "
        "(CLI: --impute) to fill missing values with the training median / most frequent value.",
    ),
    (
        "transform before fit",
        lambda: Preprocessor().transform(pd.DataFrame({"a": [1.0]})),
        "This Preprocessor is not fitted yet; call fit() first.",
    ),
    (
        "column with nothing to impute from",
        lambda: Preprocessor(impute=True).fit(pd.DataFrame({"a": [1.0, 2.0], "b": [None, None]})),
        "The feature column 'b' has no values to impute from: all 2 rows are missing.",
    ),
    (
        "unsupported feature dtype",
        lambda: Preprocessor().fit(pd.DataFrame({"when": pd.to_datetime(["2024-01-01"])})),
        "The feature column 'when' has dtype datetime64[us], which is neither numeric nor "
        "categorical; convert it to numbers or strings first.",
    ),
    (
        "config is not a dict",
        lambda: Preprocessor.from_config([1, 2]),
        "The preprocessor config is malformed: the config must be a dict; got 'list'.",
    ),
    (
        "config with a bad scale",
        lambda: Preprocessor.from_config(
            {
                **fitted().to_config(),
                "numeric": [{"name": "age", "mean": 1.0, "var": 1.0, "scale": 0.0, "fill": None}],
            }
        ),
        "The preprocessor config is malformed: numeric[0]['scale'] must be a positive finite "
        "number; got 0.0.",
    ),
    (
        "config with a fill outside the categories",
        lambda: Preprocessor.from_config(
            {
                **fitted(impute=True).to_config(),
                "categorical": [{"name": "color", "categories": ["red"], "fill": "green"}],
            }
        ),
        "The preprocessor config is malformed: categorical[0]['fill'] must be one of its "
        "categories; got 'green'.",
    ),
    (
        "class code out of range",
        lambda: decode_target(np.array([0, 2]), ["a", "b"]),
        "The class code 2 is out of range; there are 2 classes (codes 0 to 1).",
    ),
    (
        "regression target with text",
        lambda: encode_target(pd.Series(["1.5", "n/a"], name="y"), "regression"),
        "The 'target' column 'y' is not numeric (got 'n/a' in row 2), so it cannot be a "
        "regression target.",
    ),
]


@pytest.mark.parametrize(
    ("call", "message"), [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_input_is_refused_with_one_exact_line(call, message):
    with pytest.raises(ShrinkageError) as info:
        call()
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_unreadable_parquet_names_the_file():
    with open("data.parquet", "wb") as handle:
        handle.write(b"this is not parquet")
    with pytest.raises(ShrinkageError, match=r"^The data file 'data.parquet' could not be read"):
        read_table("data.parquet")


def test_shrinkage_error_is_a_value_error():
    with pytest.raises(ValueError):
        read_table("missing.csv")


# --------------------------------------------------------------------------- reading


def test_read_csv_keeps_columns_dtypes_and_a_range_index():
    frame = read_table(write("data.csv", GOOD))
    assert list(frame.columns) == ["a", "b", "y"]
    assert frame["a"].tolist() == [1, 2, 3, 4]
    assert frame["b"].tolist() == ["x", "y", "x", "y"]
    assert isinstance(frame.index, pd.RangeIndex) and frame.index[0] == 0


def test_read_tsv_splits_on_tabs():
    frame = read_table(write("data.tsv", "a\tb\n1,5\tx\n"))
    assert list(frame.columns) == ["a", "b"]
    assert frame.loc[0, "a"] == "1,5"


@pytest.mark.parametrize("name", ["data.parquet", "data.PQ"])
def test_read_parquet(name):
    original = pd.DataFrame(
        {"x": [1.5, 2.5, -3.0], "c": ["u", "v", "u"], "flag": [True, False, True], "y": [0, 1, 0]}
    )
    original.to_parquet(name)
    frame = read_table(name)
    pd.testing.assert_frame_equal(frame, original, check_dtype=False)
    assert frame["x"].dtype == np.float64


def test_row_numbers_follow_the_index_of_a_subset():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, np.nan, 5.0]})
    train = frame.iloc[2:]  # labels 2, 3, 4: the NaN is data row 4 of the file
    with pytest.raises(ShrinkageError, match=r"missing value in row 4 "):
        Preprocessor().fit(train)
    labelled = pd.DataFrame({"a": [1.0, np.nan]}, index=["id-1", "id-2"])
    with pytest.raises(ShrinkageError, match=r"missing value in row 'id-2' "):
        Preprocessor().fit(labelled)


def test_load_dataset_returns_a_dataset():
    data = load_dataset(write("data.csv", GOOD), target="y")
    assert isinstance(data, Dataset)
    assert data.task == "classification"
    assert data.source == "data.csv"
    assert list(data.X.columns) == ["a", "b"]
    assert data.y.tolist() == [0, 1, 0, 1]


def test_load_dataset_with_impute_accepts_missing_features():
    data = load_dataset(write("data.csv", "a,b,y\n1,x,1.5\n,y,2.5\n3,,3.25\n"), "y", impute=True)
    assert data.task == "regression"
    assert int(data.X.isna().sum().sum()) == 2


def test_split_target_keeps_feature_order():
    frame = pd.DataFrame({"b": [1, 2], "y": [3.0, 4.0], "a": ["p", "q"]})
    X, y = split_target(frame, "y")
    assert list(X.columns) == ["b", "a"]
    assert y.name == "y" and y.tolist() == [3.0, 4.0]


# --------------------------------------------------------------------------- task detection

TASK_CASES = [
    ("strings", ["cat", "dog", "cat"], None, "classification"),
    ("bools", [True, False, True], None, "classification"),
    ("binary ints", [0, 1], None, "classification"),
    ("binary floats", [0.0, 1.0, 1.0, 0.0], None, "classification"),
    ("ratings 1..5 over many rows", [1, 2, 3, 4, 5] * 4, None, "classification"),
    ("integral floats, few values", [1.0, 2.0, 3.0] * 3, None, "classification"),
    ("integers, one row per value", list(range(10)), None, "regression"),
    ("integers, more than 20 values", list(range(25)) * 4, None, "regression"),
    ("non-integral floats", [0.5, 1.0, 0.5, 1.0], None, "regression"),
    ("override to regression", [0, 1, 0, 1], "regression", "regression"),
    ("override to classification", [5.0, 15.0, 5.0, 7.0], "classification", "classification"),
    ("categorical dtype", pd.Categorical(["lo", "hi", "lo"]), None, "classification"),
]


@pytest.mark.parametrize(
    ("values", "task", "expected"),
    [case[1:] for case in TASK_CASES],
    ids=[case[0] for case in TASK_CASES],
)
def test_detect_task(values, task, expected):
    assert detect_task(pd.Series(values, name="y"), task) == expected


# --------------------------------------------------------------------------- target encoding

ENCODE_CASES = [
    ("strings", ["b", "a", "c", "a"], [1, 0, 2, 0], ["a", "b", "c"]),
    ("ints", [10, -1, 10], [1, 0, 1], [-1, 10]),
    ("floats", [1.0, 0.0, 1.0], [1, 0, 1], [0.0, 1.0]),
    ("bools", [True, False], [1, 0], [False, True]),
]


@pytest.mark.parametrize(
    ("values", "codes", "classes"),
    [case[1:] for case in ENCODE_CASES],
    ids=[case[0] for case in ENCODE_CASES],
)
def test_encode_and_decode_classification(values, codes, classes):
    got_codes, got_classes = encode_target(pd.Series(values), "classification")
    assert got_codes.dtype == np.int64
    assert got_codes.tolist() == codes
    assert got_classes == classes
    assert [type(c) for c in got_classes] == [type(c) for c in classes]
    assert json.loads(json.dumps(got_classes)) == classes
    assert decode_target(got_codes, got_classes).tolist() == list(values)


def test_encode_regression_is_float32_without_classes():
    values, classes = encode_target(pd.Series([1, 2.5, -3]), "regression")
    assert classes is None
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, np.array([1.0, 2.5, -3.0], dtype=np.float32))
    np.testing.assert_array_equal(decode_target(values, None), values)


# --------------------------------------------------------------------------- preprocessing


def mixed_frames(impute: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = pd.DataFrame(
        {
            "age": [23.0, 35.5, 41.0, 29.0, 52.0, 35.5],
            "rooms": [1, 3, 2, 2, 4, 3],
            "constant": [7.0] * 6,
            "color": ["red", "blue", "red", "green", "blue", "red"],
            "member": [True, False, True, True, False, True],
        }
    )
    test = pd.DataFrame(
        {
            "extra": ["ignored", "also ignored", "x"],
            "color": ["blue", "purple", "green"],  # purple was never seen
            "age": [30.0, 99.0, -5.0],
            "rooms": [2, 10, 0],
            "constant": [7.0, 8.0, 6.0],
            "member": [False, True, True],
        }
    )
    if impute:
        train.loc[1, "age"] = np.nan
        train.loc[3, "color"] = None
        test.loc[0, "age"] = np.nan
        test.loc[2, "color"] = ""
    return train, test


@pytest.mark.parametrize("impute", [False, True], ids=["plain", "impute"])
def test_config_round_trip_transforms_identically(impute):
    train, test = mixed_frames(impute)
    original = Preprocessor(impute=impute).fit(train)
    cfg = original.to_config()
    text = json.dumps(cfg, allow_nan=False)  # JSON-native: no NumPy values, no NaN
    rebuilt = Preprocessor.from_config(json.loads(text))

    assert rebuilt.feature_names_out_ == original.feature_names_out_
    # Imputation takes 'green' out of training: 3 numeric + 3 (or 2) colors + 2 member.
    assert rebuilt.n_features_out_ == original.n_features_out_ == (7 if impute else 8)
    for frame in (train, test):
        expected = original.transform(frame)
        assert expected.dtype == np.float32
        np.testing.assert_array_equal(rebuilt.transform(frame), expected)
    assert rebuilt.to_config() == cfg


def test_feature_names_and_unseen_category():
    train, test = mixed_frames(impute=False)
    p = Preprocessor().fit(train)
    assert p.feature_names_out_ == [
        "age",
        "rooms",
        "constant",
        "color=blue",
        "color=green",
        "color=red",
        "member=False",
        "member=True",
    ]
    out = p.transform(test)
    assert out.shape == (3, p.n_features_out_)
    color = out[:, 3:6]
    np.testing.assert_array_equal(color, [[1, 0, 0], [0, 0, 0], [0, 1, 0]])


def test_standardization_uses_training_rows_only():
    train, test = mixed_frames(impute=False)
    p = Preprocessor().fit(train)
    out_train = p.transform(train).astype(np.float64)
    np.testing.assert_allclose(out_train[:, :2].mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(out_train[:, :2].std(axis=0), 1.0, atol=1e-6)

    # A constant column has scale 1: finite zeros on training rows, shifted values elsewhere.
    np.testing.assert_array_equal(out_train[:, 2], 0.0)
    out_test = p.transform(test).astype(np.float64)
    np.testing.assert_array_equal(out_test[:, 2], [0.0, 1.0, -1.0])

    for j, name in enumerate(["age", "rooms"]):
        mean, std = train[name].mean(), train[name].std(ddof=0)
        np.testing.assert_allclose(out_test[:, j], (test[name] - mean) / std, rtol=1e-6)
        # Test rows alone would be standardized differently: train statistics were used.
        assert not math.isclose(out_test[:, j].mean(), 0.0, abs_tol=1e-3)


def test_imputation_uses_training_median_and_most_frequent():
    train = pd.DataFrame({"x": [1.0, 2.0, 10.0, np.nan], "c": ["a", "b", "b", None]})
    p = Preprocessor(impute=True).fit(train)
    filled = np.array([1.0, 2.0, 10.0, 2.0])
    mean, std = filled.mean(), filled.std()
    out = p.transform(pd.DataFrame({"x": [np.nan], "c": [np.nan]}))
    np.testing.assert_allclose(out[0, 0], (2.0 - mean) / std, rtol=1e-6)
    np.testing.assert_array_equal(out[0, 1:], [0.0, 1.0])  # filled with "b"
    cfg = p.to_config()
    assert cfg["numeric"][0]["fill"] == 2.0
    assert cfg["categorical"][0]["fill"] == "b"


def test_transform_matches_columns_by_name_and_accepts_arrays():
    train, test = mixed_frames(impute=False)
    p = Preprocessor().fit(train)
    shuffled = test[list(reversed(test.columns))]
    np.testing.assert_array_equal(p.transform(shuffled), p.transform(test))

    numbers = np.array([[1.0, 10.0], [2.0, 20.0], [4.0, 40.0]])
    q = Preprocessor().fit(numbers)
    assert q.feature_names_out_ == ["x0", "x1"]
    np.testing.assert_array_equal(q.transform(numbers), q.fit_transform(pd.DataFrame(numbers)))


def test_empty_transform_keeps_the_width():
    p = fitted()
    out = p.transform(pd.DataFrame({"age": pd.Series([], dtype=float), "color": []}))
    assert out.shape == (0, 3) and out.dtype == np.float32


def test_numbers_written_as_text_are_accepted_at_transform_time():
    p = fitted()
    as_text = pd.DataFrame({"age": ["20", "40"], "color": ["red", "blue"]})
    as_numbers = pd.DataFrame({"age": [20.0, 40.0], "color": ["red", "blue"]})
    np.testing.assert_array_equal(p.transform(as_text), p.transform(as_numbers))
