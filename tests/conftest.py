"""Shared test settings and builders: one thread (small models on 2 cores), deterministic
seeds, and the small data and searches several test files train on."""

import matplotlib
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
