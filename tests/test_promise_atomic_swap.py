"""Promise: a model is replaced in one atomic step; a reader always sees one whole model.

A save writes the new weights under a new name (``weights-<hash>.safetensors``) and then
replaces ``model.json`` with one ``os.replace``: that is the commit. The scenarios run in
real processes (``tests/_procs.py``, through the session fixture ``forked``), seeded, 20
trials each:

* a process saving in a loop is SIGKILLed at a random moment: the directory always loads,
  as the old or the new model, and the next save removes what the killed one left;
* a process is SIGKILLed right after each step of a save (weights written, commit,
  clean-up): the old model before the commit, the new one after;
* two processes save to one directory at once: one wins, the other is refused in one line,
  and no orphan directory or file is left;
* one process saves in a loop while another loads (``SHRINKAGE_STRESS_SECONDS``, 3 s by
  default; ``SHRINKAGE_STRESS_SECONDS=20 pytest tests/test_promise_atomic_swap.py`` for
  the long run, also ``python bench/model_swap.py``): 0 failed loads, 0 false tamper
  alarms.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from shrinkage.errors import ShrinkageError
from shrinkage.estimators import MLPClassifier, load, save
from shrinkage.estimators import _persistence as persist

WEIGHTS = re.compile(r"weights-[0-9a-f]{16}\.safetensors")
TEMPORARY = re.compile(r"\.(model\.json|weights-[0-9a-f]{16}\.safetensors)\..+\.tmp")


def _committed(files: list[str]) -> bool:
    """model.json and at most two weights files (the current and the previous)."""
    weights = [f for f in files if WEIGHTS.fullmatch(f)]
    return "model.json" in files and 1 <= len(weights) <= 2 and len(files) == 1 + len(weights)


def test_a_save_killed_at_a_random_moment_leaves_a_whole_model(forked):
    trials = forked["kill-save"]["trials"]
    assert len(trials) == 20
    assert all(t["killed"] for t in trials)
    assert [t["loaded"] for t in trials if t["loaded"] not in ("A", "B")] == []
    for t in trials:  # only the commit and its leftovers: nothing else, nowhere else
        assert all(
            f == "model.json" or WEIGHTS.fullmatch(f) or TEMPORARY.fullmatch(f) for f in t["files"]
        ), t
    assert _committed(forked["kill-save"]["after_next_save"])


def test_a_save_killed_after_each_step_leaves_the_old_or_the_new_model(forked):
    steps = {s["step"]: s for s in forked["kill-save-steps"]["steps"]}
    assert [s["code"] for s in steps.values()] == [-9, -9, -9]
    assert steps["weights"]["loaded"] == "A"  # written, not committed: the old model
    assert steps["commit"]["loaded"] == "B"  # committed: the new one
    assert steps["clean"]["loaded"] == "B"
    assert all(_committed(s["after"]) for s in steps.values())


def test_two_saves_at_once_one_wins_the_other_is_refused_in_one_line(forked):
    trials = forked["concurrent-save"]["trials"]
    assert len(trials) == 20
    refused = 0
    for t in trials:
        assert sorted(t["codes"]) in ([0, 0], [0, 3]), t  # 3: a ShrinkageError
        lines = t["stderr"].splitlines()
        assert len(lines) == t["codes"].count(3), t
        for line in lines:
            assert line.startswith("ShrinkageError: Another process is saving a model to "), t
        refused += len(lines)
        if t["codes"].count(0) == 1:  # the winner's model is the one there
            assert t["loaded"] == "AB"[t["codes"].index(0)], t
        assert t["loaded"] in ("A", "B") and _committed(t["files"]), t
    assert refused >= 10  # the race is real: most trials overlap
    assert all(name.startswith("race-") for name in forked["concurrent-save"]["siblings"])


def test_a_reader_beside_a_writer_always_loads_a_whole_model(forked):
    report = forked["reader-writer"]
    loads = report["loads"]
    assert report["codes"] == [0, 0]
    assert (loads["wrong"], loads["tamper"], loads["failed"]) == (0, 0, 0), loads["messages"]
    assert loads["A"] > 0 and loads["B"] > 0 and report["saves"] > 10


# --------------------------------------------------------------------------- in-process


@pytest.fixture(scope="module")
def pair():
    X = np.random.default_rng(0).normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(int)
    a = MLPClassifier((4,), epochs=2, random_state=1).fit(X, y)
    b = MLPClassifier((4,), epochs=2, random_state=2).fit(X, y)
    return X, a, b


def test_a_reader_whose_weights_were_retired_reads_model_json_again(pair, tmp_path, monkeypatch):
    """The race the retry exists for, made certain: two saves commit between a reader's
    read of model.json and its open of the weights file it names."""
    X, a, b = pair
    c = MLPClassifier((4,), epochs=2, random_state=3).fit(X, (X[:, 1] > 0).astype(int))
    folder = tmp_path / "m"
    save(a, folder)
    real = persist._read_weights
    calls = []

    def racing(*args, **kwargs):
        if not calls:
            save(b, folder)
            save(c, folder)  # a's weights, which the reader is about to open, are retired
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(persist, "_read_weights", racing)
    np.testing.assert_array_equal(load(folder).predict_proba(X), c.predict_proba(X))
    assert len(calls) == 2


def test_a_save_never_makes_a_sibling_of_the_model_directory(pair, tmp_path):
    X, a, b = pair
    for model in (a, b, a):
        save(model, tmp_path / "m")
    assert os.listdir(tmp_path) == ["m"]
    assert _committed(os.listdir(tmp_path / "m"))


def test_a_missing_weights_file_is_still_reported_as_missing(pair, tmp_path):
    X, a, _ = pair
    save(a, tmp_path / "m")
    name = json.loads((tmp_path / "m" / "model.json").read_text())["weights"]["file"]
    (tmp_path / "m" / name).unlink()
    with pytest.raises(ShrinkageError, match=r"The weights file '.*' is missing\.$"):
        load(tmp_path / "m")
