"""Saving and loading: identical predictions, no pickle, tampering refused, atomic writes."""

import hashlib
import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save as safetensors_bytes

from shrinkage import ShrinkageError
from shrinkage.estimators import MLPClassifier, MLPRegressor, load, save, weights_path
from shrinkage.estimators import _persistence as persist


def _frame(n=40, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "size": rng.normal(50, 10, size=n),
            "color": rng.choice(["red", "green", "blue"], size=n),
            "age": rng.integers(1, 9, size=n),
        }
    )
    labels = np.where(frame["size"] > 52, "big", np.where(frame["size"] < 45, "small", "mid"))
    return frame, labels


@pytest.fixture(scope="module")
def classifier():
    frame, labels = _frame()
    torch.set_num_threads(1)
    return MLPClassifier(
        (6,), epochs=4, penalty="l1", strength=1e-3, layer_penalties={1: None}, random_state=0
    ).fit(frame, labels)


@pytest.fixture
def saved(classifier, tmp_path):
    return save(classifier, tmp_path / "model")


def test_classifier_round_trip_gives_identical_predictions(classifier, saved):
    frame, _ = _frame(seed=1)
    loaded = MLPClassifier.load(saved)
    np.testing.assert_array_equal(loaded.predict_proba(frame), classifier.predict_proba(frame))
    np.testing.assert_array_equal(loaded.predict(frame), classifier.predict(frame))
    np.testing.assert_array_equal(
        loaded.transform_hidden(frame), classifier.transform_hidden(frame)
    )
    assert loaded.get_params() == classifier.get_params()
    assert loaded.classes_.tolist() == ["big", "mid", "small"]
    assert loaded.plan_ == classifier.plan_
    assert loaded.history_ == classifier.history_
    assert loaded.feature_names_in_.tolist() == ["size", "color", "age"]
    assert (loaded.n_features_in_, loaded.seed_, loaded.n_iter_) == (3, 0, 4)
    for a, b in zip(loaded.layer_weights_, classifier.layer_weights_):
        np.testing.assert_array_equal(a["weight"], b["weight"])


def test_the_new_parameters_round_trip_and_an_older_model_json_still_loads(tmp_path):
    """standardize, init and learning_rate_schedule are saved with the parameters; the
    preprocessor keeps the raw columns; coef_ comes back in raw units."""
    frame, _ = _frame()
    y = frame["size"].to_numpy() * 0.3 - frame["age"].to_numpy()
    reg = MLPRegressor(
        (),
        standardize=False,
        init="glorot_uniform",
        learning_rate_schedule="cosine",
        epochs=3,
        random_state=0,
    ).fit(frame, y)
    loaded = load(reg.save(tmp_path / "raw"))
    assert loaded.get_params() == reg.get_params()
    params = json.loads((tmp_path / "raw" / "model.json").read_text())["params"]
    assert (params["standardize"], params["init"], params["learning_rate_schedule"]) == (
        False,
        "glorot_uniform",
        "cosine",
    )
    np.testing.assert_array_equal(loaded.predict(frame), reg.predict(frame))
    np.testing.assert_array_equal(loaded.coef_, reg.coef_)
    assert loaded.preprocessor_.standardize is False
    # A model saved before these parameters existed: the defaults apply.
    config = json.loads((tmp_path / "raw" / "model.json").read_text())
    for key in ("standardize", "init", "learning_rate_schedule"):
        del config["params"][key]
    del config["preprocessor"]["standardize"]
    (tmp_path / "raw" / "model.json").write_text(json.dumps(config))
    old = load(tmp_path / "raw")
    assert (old.standardize, old.init, old.learning_rate_schedule) == (True, "torch", "constant")


@pytest.mark.parametrize("labels", [np.array([0, 1, 1, 0] * 5), np.array([True, False] * 10)])
def test_regressor_and_label_types_round_trip(tmp_path, labels):
    X = np.random.default_rng(0).normal(size=(20, 3))
    clf = MLPClassifier((4,), epochs=2, random_state=1).fit(X, labels)
    again = load(clf.save(tmp_path / "c"))
    assert again.classes_.dtype == clf.classes_.dtype
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))
    reg = MLPRegressor((), penalty="elastic_net", epochs=2, random_state=1).fit(X, X[:, 0])
    loaded = MLPRegressor.load(reg.save(tmp_path / "r"))
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))


def test_model_json_holds_everything_but_the_weights(saved):
    meta = json.loads((saved / "model.json").read_text())
    assert meta["format"] == "shrinkage.model" and meta["format_version"] == 2
    assert meta["estimator"] == "MLPClassifier" and meta["task"] == "classification"
    assert meta["architecture"] == {"sizes": [5, 6, 3], "activation": "relu"}
    assert meta["params"]["layer_penalties"] == {"1": None}
    assert meta["plan"]["rules"] == [
        {"select": "layers.0.weight", "penalty": {"class_name": "L1", "config": {"l1": 0.001}}}
    ]
    assert meta["preprocessor"]["columns"] == ["size", "color", "age"]
    assert meta["classes"] == {"values": ["big", "mid", "small"], "kind": "U"}
    assert len(meta["history"]) == 4 and meta["metrics"]["epochs"] == 4
    assert meta["weights"]["tensors"] == {
        "layers.0.weight": [6, 5],
        "layers.0.bias": [6],
        "layers.1.weight": [3, 6],
        "layers.1.bias": [3],
    }
    name = meta["weights"]["file"]
    data = (saved / name).read_bytes()
    assert meta["weights"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert name == f"weights-{meta['weights']['sha256'][:16]}.safetensors"
    assert meta["weights"]["bytes"] == len(data)
    assert sorted(os.listdir(saved)) == ["model.json", name]


# --------------------------------------------------------------------------- refused files


def _set_weights(folder, data, update_checksum=True):
    """Replace the weights; with ``update_checksum``, as an attacker who controls both files
    would: under the name and checksum model.json then records. Returns the file."""
    old = weights_path(folder)
    if not update_checksum:
        old.write_bytes(data)
        return old
    digest = hashlib.sha256(data).hexdigest()
    new = folder / f"weights-{digest[:16]}.safetensors"
    old.unlink()
    new.write_bytes(data)
    meta = json.loads((folder / "model.json").read_text())
    meta["weights"].update(file=new.name, sha256=digest, bytes=len(data))
    (folder / "model.json").write_text(json.dumps(meta))
    return new


def test_truncated_weights_are_refused(saved):
    path = weights_path(saved)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ShrinkageError) as err:
        load(saved)
    assert str(err.value) == (
        f"The weights file '{path}' does not match the checksum in "
        "model.json: it was truncated or modified after saving."
    )


def test_truncated_weights_with_a_forged_checksum_are_refused_by_the_parser(saved):
    data = weights_path(saved).read_bytes()
    path = _set_weights(saved, data[: len(data) - 10])
    with pytest.raises(ShrinkageError) as err:
        load(saved)
    message = str(err.value)
    assert message.startswith(f"The weights file '{path}' is not a valid safetensors file (")
    assert "\n" not in message


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_placed_as_weights_is_refused_and_never_executed(saved, tmp_path):
    marker = tmp_path / "executed"
    payload = pickle.dumps({"layers.0.weight": _Payload(str(marker))})
    _set_weights(saved, payload)
    with pytest.raises(ShrinkageError) as err:
        load(saved)
    assert "is not a valid safetensors file" in str(err.value)
    assert not marker.exists()
    # torch.save's zip-pickle format too
    torch.save({"layers.0.weight": _Payload(str(marker))}, tmp_path / "zip.pt")
    _set_weights(saved, (tmp_path / "zip.pt").read_bytes())
    with pytest.raises(ShrinkageError):
        load(saved)
    assert not marker.exists()


@pytest.mark.parametrize(
    "tensors, message",
    [
        (
            {"layers.0.weight": torch.zeros(6, 5), "layers.0.bias": torch.zeros(6)},
            "does not fit the architecture [5, 6, 3]: missing tensors ['layers.1.bias', "
            "'layers.1.weight'], unexpected tensors [].",
        ),
        (
            {
                "layers.0.weight": torch.zeros(6, 4),
                "layers.0.bias": torch.zeros(6),
                "layers.1.weight": torch.zeros(3, 6),
                "layers.1.bias": torch.zeros(3),
            },
            "has layers.0.weight of shape (6, 4) and dtype torch.float32; the architecture "
            "[5, 6, 3] needs shape (6, 5), float32.",
        ),
        (
            {
                "layers.0.weight": torch.zeros(6, 5, dtype=torch.float64),
                "layers.0.bias": torch.zeros(6),
                "layers.1.weight": torch.zeros(3, 6),
                "layers.1.bias": torch.zeros(3),
            },
            "has layers.0.weight of shape (6, 5) and dtype torch.float64; the architecture "
            "[5, 6, 3] needs shape (6, 5), float32.",
        ),
        (
            {
                "layers.0.weight": torch.full((6, 5), float("nan")),
                "layers.0.bias": torch.zeros(6),
                "layers.1.weight": torch.zeros(3, 6),
                "layers.1.bias": torch.zeros(3),
            },
            "has NaN or infinite values in layers.0.weight.",
        ),
    ],
)
def test_tensors_that_do_not_fit_the_architecture_are_refused(saved, tensors, message):
    path = _set_weights(saved, safetensors_bytes(tensors))
    with pytest.raises(ShrinkageError) as err:
        load(saved)
    assert str(err.value) == f"The weights file '{path}' {message}"


def _edit_json(folder, change):
    meta = json.loads((folder / "model.json").read_text())
    change(meta)
    (folder / "model.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda d: weights_path(d).unlink(),
            "The weights file '{d}/{weights}' is missing.",
        ),
        (
            lambda d: (d / "model.json").unlink(),
            "'{d}' is not a shrinkage model directory: model.json is missing.",
        ),
        (
            lambda d: (d / "model.json").write_text('{"format": '),
            "The model file '{d}/model.json' is not valid JSON (Expecting value: line 1 column 12 "
            "(char 11)).",
        ),
        (
            lambda d: _edit_json(d, lambda m: m.update(format_version=99)),
            "The model file '{d}/model.json' has format version 99; this shrinkage 0.1.0 reads "
            "versions 1, 2.",
        ),
        (
            lambda d: _edit_json(d, lambda m: m.update(estimator="os.system")),
            "The model file '{d}/model.json' is malformed: 'estimator' must be one of "
            "MLPClassifier, MLPRegressor; got 'os.system'.",
        ),
        (
            lambda d: _edit_json(d, lambda m: m["architecture"].update(sizes=[5, 7, 3])),
            "The model file '{d}/model.json' is malformed: the architecture [5, 7, 3] (relu) does "
            "not match the parameters hidden_layer_sizes=(6,), activation='relu'.",
        ),
        (
            lambda d: _edit_json(d, lambda m: m["params"].update(strength=-1)),
            "The model file '{d}/model.json' is malformed: The 'strength' parameter must be a "
            "finite float in the range [0, inf). Got -1 instead.",
        ),
    ],
)
def test_damaged_model_directories_are_refused(saved, damage, message):
    weights = weights_path(saved).name
    damage(saved)
    with pytest.raises(ShrinkageError) as err:
        load(saved)
    assert str(err.value) == message.format(d=saved, weights=weights)


def test_missing_directory_and_wrong_class(saved, tmp_path):
    with pytest.raises(ShrinkageError) as err:
        load(tmp_path / "nowhere")
    assert str(err.value) == f"The model directory '{tmp_path / 'nowhere'}' does not exist."
    with pytest.raises(ShrinkageError) as err:
        MLPRegressor.load(saved)
    assert str(err.value) == f"The model in '{saved}' is a MLPClassifier, not a MLPRegressor."
    with pytest.raises(ShrinkageError) as err:
        save(MLPClassifier(), tmp_path / "unfitted")
    assert str(err.value) == "This MLPClassifier is not fitted yet; call fit() before save()."
    assert not (tmp_path / "unfitted").exists()


# --------------------------------------------------------------------------- atomic writes


def _leftovers(folder):
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith("."))


def test_an_interrupted_save_leaves_the_previous_model_intact(classifier, saved, monkeypatch):
    frame, _ = _frame(seed=2)
    before = {name: (saved / name).read_bytes() for name in os.listdir(saved)}
    other = MLPClassifier((6,), epochs=1, random_state=5).fit(*_frame())
    real_write = persist.atomic_write
    calls = []

    def failing_write(path, data):
        calls.append(path.name)
        if path.name == "model.json":  # the new weights are already written by then
            raise OSError("disk full")
        real_write(path, data)

    monkeypatch.setattr(persist, "atomic_write", failing_write)
    with pytest.raises(ShrinkageError, match=r"could not be written: disk full\.$"):
        save(other, saved)
    monkeypatch.undo()
    assert calls[-1] == "model.json" and calls[0].startswith("weights-")
    orphan = saved / calls[0]
    assert orphan.is_file()  # the new weights, never committed
    assert {name: (saved / name).read_bytes() for name in before} == before
    assert _leftovers(saved) == []
    np.testing.assert_array_equal(load(saved).predict_proba(frame), classifier.predict_proba(frame))
    # the next save cleans up what the interrupted one left
    save(classifier, saved)
    assert not orphan.exists() and sorted(os.listdir(saved)) == sorted(before)


def test_the_commit_is_one_replace_of_model_json(classifier, saved, monkeypatch):
    """Every rename a save makes, in order: the weights under a new name, then model.json."""
    other = MLPClassifier((6,), epochs=1, random_state=5).fit(*_frame())
    renames = []
    real_replace = os.replace

    def replace(src, dst):
        renames.append(os.path.basename(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    save(other, saved)
    monkeypatch.undo()
    assert len(renames) == 2 and renames[0].startswith("weights-") and renames[1] == "model.json"
    assert load(saved).seed_ == 5


def test_save_replaces_a_model_but_never_another_directory(classifier, saved, tmp_path):
    other = MLPClassifier((6,), epochs=1, random_state=5).fit(*_frame())
    save(other, saved)
    assert load(saved).seed_ == 5
    assert _leftovers(saved) == []
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(ShrinkageError) as err:
        save(classifier, folder)
    assert str(err.value) == (
        f"The model directory '{folder}' exists and is not a shrinkage model (it has no "
        "model.json but holds 'keep.txt'); refusing to write there. Choose a new or empty "
        "directory."
    )
    assert os.listdir(folder) == ["keep.txt"]


def test_a_format_1_model_still_loads_and_is_upgraded_by_the_next_save(classifier, saved):
    frame, _ = _frame()
    path = weights_path(saved)
    path.rename(saved / "weights.safetensors")
    meta = json.loads((saved / "model.json").read_text())
    meta["format_version"] = 1
    del meta["weights"]["bytes"]
    meta["weights"]["file"] = "weights.safetensors"
    (saved / "model.json").write_text(json.dumps(meta))
    np.testing.assert_array_equal(load(saved).predict_proba(frame), classifier.predict_proba(frame))
    save(classifier, saved)
    assert sorted(os.listdir(saved)) == ["model.json", path.name]
    assert json.loads((saved / "model.json").read_text())["format_version"] == 2


def test_a_save_where_nothing_can_be_written_is_one_line(classifier):
    with pytest.raises(ShrinkageError) as err:
        save(classifier, "/proc/shrinkage-model")
    assert str(err.value).startswith(
        "The model directory '/proc/shrinkage-model' could not be written: "
    )
