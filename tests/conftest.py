"""Shared test settings and builders: one thread (small models on 2 cores), deterministic
seeds, and the small data and searches several test files train on."""

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_classification

from shrinkage.estimators import MLPClassifier
from shrinkage.search import SearchCV

matplotlib.use("Agg")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def classification_data():
    """``build(n=40, seed=0) -> (X, y)``: a small binary problem, 4 features, 3 informative."""

    def build(n=40, seed=0):
        return make_classification(n, 4, n_informative=3, n_redundant=0, random_state=seed)

    return build


@pytest.fixture(scope="session")
def small_search():
    """``build(random_state=0, **params) -> SearchCV``: 3 strengths x 2 placements x 2 folds of
    a 5-unit MLP trained 3 epochs (``estimator=`` and any SearchCV parameter override)."""

    def build(random_state=0, **params):
        estimator = MLPClassifier(
            hidden_layer_sizes=(5,), epochs=3, batch_size=8, learning_rate=0.05
        )
        settings = dict(strengths=[1e-4, 1e-2, 1.0], placements=("all", "output"), cv=2)
        settings.update(random_state=random_state, refit=False)
        settings.update(params)
        return SearchCV(settings.pop("estimator", estimator), **settings)

    return build


#: Seconds the reader/writer test runs (``SHRINKAGE_STRESS_SECONDS=20`` for the long run).
STRESS_SECONDS = float(os.environ.get("SHRINKAGE_STRESS_SECONDS", "3"))


@pytest.fixture(scope="session")
def forked(tmp_path_factory):
    """The real-process scenarios of ``tests/_procs.py`` (SIGKILLed saves, racing saves, a
    reader beside a writer, killed and resumed searches), run once in one process that
    imports torch once and forks a child per trial: ``{scenario: summary}``."""
    root = tmp_path_factory.mktemp("procs")
    scenarios = ["kill-save", "kill-save-steps", "concurrent-save", "reader-writer", "kill-resume"]
    command = [sys.executable, str(Path(__file__).parent / "_procs.py"), *scenarios]
    command += ["--trials", "20", "--seed", "0", "--seconds", str(STRESS_SECONDS)]
    command += ["--root", str(root)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def hostile_model():
    """``(frame, model)``: 60 rows of ``a, b, c -> y`` and a 3-4-1 classifier fitted 3 epochs."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({name: rng.normal(size=60) for name in "abc"})
    frame["y"] = (frame["a"] - frame["b"] > 0).astype(int)
    model = MLPClassifier((4,), epochs=3, random_state=0).fit(frame[["a", "b", "c"]], frame["y"])
    return frame, model


@pytest.fixture
def place(tmp_path, monkeypatch, hostile_model):
    """The adversarial suite's working directory (``tmp_path``): ``data.csv`` (target ``y``),
    ``houses.csv`` (target ``price``) and the model saved in ``M/`` (target ``y``)."""
    from shrinkage.estimators import save

    frame, model = hostile_model
    monkeypatch.chdir(tmp_path)
    frame.to_csv("data.csv", index=False)
    frame.drop(columns="y").assign(price=3 * frame["a"] + frame["c"]).to_csv(
        "houses.csv", index=False
    )
    save(model, "M", target="y")
    return tmp_path
