"""shrinkage.analysis: the over-fitting verdict, search-result readings, activations and the
placement study (penalizing only the output layer moves the weight into the hidden layer)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_moons
from torch import nn

from shrinkage.analysis import (
    BALANCED,
    HIGH_BIAS,
    HIGH_VARIANCE,
    activation_summary,
    as_results_frame,
    best_index,
    diagnose,
    diagnose_estimator,
    diagnose_history,
    diagnose_scores,
    diagnose_search,
    grid_rows,
    hidden_activations,
    layer_indices,
    layer_weights,
    one_standard_error_index,
    placement_table,
)
from shrinkage.errors import ShrinkageError
from shrinkage.estimators import MLPClassifier
from shrinkage.models import MLP
from shrinkage.search import SearchCV, placement_study


def results_frame(rows: list[dict]) -> pd.DataFrame:
    """A results table with the SearchCV columns, from (strength, placement, mean, std) rows."""
    records = []
    for r in rows:
        mean, std = r["mean"], r.get("std", 0.02)
        records.append(
            {
                "param_kind": r.get("kind", "l2"),
                "param_strength": r["strength"],
                "param_l1_ratio": math.nan,
                "param_placement": r.get("placement", "all"),
                "stage": r.get("stage", "grid"),
                "split0_test_score": mean - std,
                "split1_test_score": mean,
                "split2_test_score": mean + std,
                "split3_test_score": mean,
                "mean_test_score": mean,
                "std_test_score": std,
                "mean_train_score": r.get("train", mean + 0.02),
                "weight_l2_layer0": r.get("w0", 1.0),
                "weight_l2_layer1": r.get("w1", 1.0),
                "sparsity_layer0": 0.0,
                "sparsity_layer1": 0.0,
            }
        )
    return pd.DataFrame(records)


# --------------------------------------------------------------------------- the verdict

# (id, train error, validation error, keyword thresholds, verdict, direction)
VERDICTS = [
    ("seed: 1% vs 11%", 0.01, 0.11, {}, HIGH_VARIANCE, "increase"),
    ("both high: bias first", 0.15, 0.30, {}, HIGH_BIAS, "decrease"),
    ("high bias, small gap", 0.20, 0.22, {}, HIGH_BIAS, "decrease"),
    ("balanced", 0.02, 0.04, {}, BALANCED, "keep"),
    ("gap exactly at threshold", 0.0, 0.05, {}, BALANCED, "keep"),
    ("bias exactly at threshold", 0.05, 0.06, {}, BALANCED, "keep"),
    ("noisy task: baseline error", 0.15, 0.17, {"baseline_error": 0.12}, BALANCED, "keep"),
    (
        "tighter variance threshold",
        0.01,
        0.04,
        {"variance_threshold": 0.02},
        HIGH_VARIANCE,
        "increase",
    ),
    ("looser bias threshold", 0.08, 0.10, {"bias_threshold": 0.1}, BALANCED, "keep"),
]


@pytest.mark.parametrize(
    "train, val, kwargs, verdict, direction",
    [c[1:] for c in VERDICTS],
    ids=[c[0] for c in VERDICTS],
)
def test_diagnose_verdicts(train, val, kwargs, verdict, direction):
    found = diagnose(train, val, **kwargs)
    assert (found.verdict, found.direction) == (verdict, direction)
    assert found.gap == pytest.approx(val - train)
    assert found.avoidable_bias == pytest.approx(train - kwargs.get("baseline_error", 0.0))


def test_seed_example_reads_as_a_sentence():
    found = diagnose(0.01, 0.11)
    assert str(found) == (
        "train error 1.0%, validation error 11.0% (gap 10.0 points): high variance; "
        "regularize more: increase lambda (or add data)."
    )
    assert found.to_dict()["gap"] == pytest.approx(0.10)
    assert found.to_dict()["verdict"] == "high variance"


def test_scores_are_one_minus_errors():
    assert diagnose_scores(0.99, 0.89).to_dict() == pytest.approx(diagnose(0.01, 0.11).to_dict())
    # R² below 0 is an error above 1: still a valid reading.
    assert diagnose_scores(0.99, -0.2).verdict == HIGH_VARIANCE


def test_history_uses_the_last_epoch_with_a_validation_score():
    history = [
        {"epoch": 1, "train_score": 0.7, "val_score": 0.69},
        {"epoch": 2, "train_score": 0.99, "val_score": 0.89},
        {"epoch": 3, "train_score": 0.995, "val_score": None},
    ]
    assert diagnose_history(history).train_error == pytest.approx(0.01)
    assert diagnose_history(history).verdict == HIGH_VARIANCE


def test_estimator_diagnosis_scores_both_sets():
    class Stub:
        def score(self, X, y):
            return {"train": 0.99, "val": 0.89}[X]

    assert diagnose_estimator(Stub(), "train", None, "val", None).verdict == HIGH_VARIANCE


# (id, call, exact message)
BAD_INPUTS = [
    (
        "negative error",
        lambda: diagnose(-0.1, 0.2),
        "The 'train_error' parameter must be a finite float in the range [0, inf). "
        "Got -0.1 instead.",
    ),
    (
        "nan error",
        lambda: diagnose(0.1, float("nan")),
        "The 'val_error' parameter must be a finite float in the range [0, inf). Got nan instead.",
    ),
    (
        "string threshold",
        lambda: diagnose(0.1, 0.2, variance_threshold="big"),
        "The 'variance_threshold' parameter must be a finite float in the range [0, inf). "
        "Got 'big' instead.",
    ),
    (
        "bool baseline",
        lambda: diagnose(0.1, 0.2, baseline_error=True),
        "The 'baseline_error' parameter must be a finite float in the range [0, inf). "
        "Got True instead.",
    ),
    (
        "score above one",
        lambda: diagnose_scores(1.2, 0.5),
        "The scores must be at most 1 (accuracy or R²). Got train_score=1.2, val_score=0.5 "
        "instead.",
    ),
    (
        "score not a number",
        lambda: diagnose_scores(None, 0.5),
        "The 'train_score' parameter must be a finite float. Got None instead.",
    ),
    (
        "history without validation",
        lambda: diagnose_history([{"train_score": 0.9, "val_score": None}]),
        "The 'history' has no epoch with both 'train_score' and 'val_score'; fit with "
        "validation rows (validation_fraction > 0) to diagnose it.",
    ),
    (
        "results of the wrong type",
        lambda: as_results_frame(42),
        "The 'results' parameter must be a search, its cv_results_ dict or a DataFrame. "
        "Got int instead.",
    ),
    (
        "results without scores",
        lambda: as_results_frame(pd.DataFrame({"param_strength": [1.0]})),
        "The search results lack the column(s) 'mean_test_score'; columns are: param_strength.",
    ),
    (
        "search row out of range",
        lambda: diagnose_search(results_frame([{"strength": 0.1, "mean": 0.9}]), 3),
        "The 'index' parameter must be a row of the results, in [0, 1). Got 3 instead.",
    ),
    (
        "placement table without norms",
        lambda: placement_table(
            results_frame([{"strength": 0.1, "mean": 0.9}]).drop(
                columns=["weight_l2_layer0", "weight_l2_layer1", "sparsity_layer0"]
            )
        ),
        "The search results have no weight_l2_layer{i} columns; columns are: param_kind, "
        "param_strength, param_l1_ratio, param_placement, stage, split0_test_score, "
        "split1_test_score, split2_test_score, split3_test_score, mean_test_score, "
        "std_test_score, mean_train_score, sparsity_layer1.",
    ),
    (
        "placement table, unknown kind",
        lambda: placement_table(results_frame([{"strength": 0.1, "mean": 0.9}]), kind="l1"),
        "The 'kind' parameter must be one of the searched kinds (l2). Got 'l1' instead.",
    ),
    (
        "activations of a missing layer",
        lambda: activation_summary(MLP(2, (3,), 1), np.zeros((2, 2)), layers=[1]),
        "The 'layers' parameter must hold indices in [0, 1) for a network with 1 hidden "
        "layers. Got 1 instead.",
    ),
    (
        "activations of a non-network",
        lambda: activation_summary(object(), np.zeros((2, 2))),
        "The 'model' parameter must be a fitted estimator or a shrinkage.models.MLP. "
        "Got object instead.",
    ),
    (
        "weights of a non-model",
        lambda: layer_weights(3.5),
        "The weights must come from an estimator, an nn.Module, a dict or a list of arrays. "
        "Got float instead.",
    ),
    (
        "empty strength grid",
        lambda: placement_study(np.zeros((4, 2)), [0, 1, 0, 1], []),
        "The 'strengths' parameter must hold at least one strength. Got [].",
    ),
]


@pytest.mark.parametrize(
    "call, message", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_inputs(call, message):
    with pytest.raises(ShrinkageError) as err:
        call()
    assert str(err.value) == message


# --------------------------------------------------------------------------- search results


def test_best_index_breaks_ties_toward_the_larger_strength_and_prefers_refinement():
    frame = results_frame(
        [
            {"strength": 0.01, "mean": 0.9},
            {"strength": 0.1, "mean": 0.9},
            {"strength": 1.0, "mean": 0.8},
        ]
    )
    assert best_index(frame) == 1
    refined = pd.concat(
        [frame, results_frame([{"strength": 0.05, "mean": 0.85, "stage": "refine"}])],
        ignore_index=True,
    )
    # Refined rows are the final stage: the choice is made among them, as SearchCV does.
    assert best_index(refined) == 3
    assert grid_rows(refined).tolist() == [True, True, True, False]


def test_one_standard_error_index_takes_the_strongest_close_enough():
    # best 0.90 with std 0.04 over 4 splits: se = 0.02, so anything >= 0.88 qualifies.
    frame = results_frame(
        [
            {"strength": 0.001, "mean": 0.90, "std": 0.04},
            {"strength": 0.01, "mean": 0.885},
            {"strength": 0.1, "mean": 0.881},
            {"strength": 1.0, "mean": 0.70},
        ]
    )
    assert best_index(frame) == 0
    assert one_standard_error_index(frame) == 2


def test_readings_match_what_search_chooses():
    X, y = make_moons(80, noise=0.3, random_state=0)
    estimator = MLPClassifier((8,), epochs=15, batch_size=80, learning_rate=0.05)
    kwargs = dict(strengths=[1e-3, 1e-2, 1e-1, 1.0], placements=("all", "output"), cv=2)
    plain = SearchCV(estimator, refit=False, random_state=0, **kwargs).fit(X, y)
    one_se = SearchCV(
        estimator, refit=False, random_state=0, one_standard_error=True, **kwargs
    ).fit(X, y)
    assert best_index(plain) == plain.best_index_
    assert one_standard_error_index(one_se) == one_se.best_index_
    assert layer_indices(as_results_frame(plain)) == [0, 1]


def test_search_diagnosis_reads_the_grid():
    # Chosen at the largest strength while validation error is far above train error.
    edge = results_frame(
        [
            {"strength": 0.01, "mean": 0.80, "train": 1.0},
            {"strength": 0.1, "mean": 0.85, "train": 0.99},
        ]
    )
    found = diagnose_search(edge)
    assert found.verdict == HIGH_VARIANCE
    assert found.advice == (
        "regularize more: increase lambda (or add data); the strength 0.1 is at the end of "
        "the grid, so extend the grid that way"
    )
    # High bias, but the grid already tried less regularization and it validated worse.
    tried = results_frame(
        [
            {"strength": 0.001, "mean": 0.80, "train": 0.86},
            {"strength": 0.01, "mean": 0.82, "train": 0.84},
            {"strength": 0.1, "mean": 0.70, "train": 0.72},
        ]
    )
    found = diagnose_search(tried)
    assert (found.verdict, found.direction) == (HIGH_BIAS, "decrease")
    assert "no smaller strength of the grid validates better" in found.advice
    # A search object's own choice is diagnosed, not the best row.
    chosen = type("Search", (), {"cv_results_": tried.to_dict("list"), "best_index_": 2})()
    assert diagnose_search(chosen).train_error == pytest.approx(0.28)


def test_placement_table_averages_rows_of_one_strength_and_placement():
    frame = results_frame(
        [
            {"strength": 0.1, "placement": "all", "mean": 0.9, "w0": 1.0, "w1": 2.0},
            {"strength": 0.1, "placement": "all", "mean": 0.8, "w0": 3.0, "w1": 4.0},
            {"strength": 0.1, "placement": "output", "mean": 0.7, "w0": 5.0, "w1": 0.5},
            {"strength": 0.1, "placement": "output", "mean": 0.7, "stage": "refine", "w0": 99},
        ]
    )
    table = placement_table(frame)
    assert list(table.columns) == ["strength", "placement", "layer", "weight_l2"]
    got = {(r.placement, r.layer): r.weight_l2 for r in table.itertuples()}
    assert got == {("all", 0): 2.0, ("all", 1): 3.0, ("output", 0): 5.0, ("output", 1): 0.5}


# --------------------------------------------------------------------------- activations


def test_activation_summary_counts_dead_relus():
    net = MLP(2, (3,), 1)
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        net.layers[0].bias.copy_(torch.tensor([0.0, 0.0, -1.0]))  # unit 2 never fires
    X = np.array([[1.0, -2.0], [3.0, 4.0]])
    (row,) = activation_summary(net, X)
    # ReLU outputs: [[1, 0, 0], [3, 4, 0]]
    assert row == {
        "layer": 0,
        "units": 3,
        "rows": 2,
        "mean_activation": pytest.approx(8 / 6),
        "fraction_active": pytest.approx(3 / 6),
        "dead_units": 1,
        "fraction_dead": pytest.approx(1 / 3),
    }


def test_estimator_activations_go_through_its_preprocessing():
    X, y = make_moons(40, noise=0.2, random_state=0)
    est = MLPClassifier((6, 4), epochs=3, random_state=0).fit(X * 100, y)
    summary = activation_summary(est, X * 100)
    assert [(r["layer"], r["units"], r["rows"]) for r in summary] == [(0, 6, 40), (1, 4, 40)]
    np.testing.assert_allclose(
        hidden_activations(est, X * 100, 1), est.transform_hidden(X * 100, 1)
    )
    assert activation_summary(est, X * 100, layers=1) == summary[1:]


@pytest.mark.parametrize(
    "source",
    [
        "estimator",
        "mlp",
        "sequential",
        "mapping",
        "arrays",
    ],
)
def test_layer_weights_from_every_source(source):
    net = MLP(3, (4,), 2)
    expected = [net.layers[0].weight.detach().numpy(), net.layers[1].weight.detach().numpy()]
    given = {
        "estimator": type(
            "Est", (), {"layer_weights_": [{"weight": w, "bias": 0} for w in expected]}
        )(),
        "mlp": net,
        "sequential": nn.Sequential(net.layers[0], nn.ReLU(), net.layers[1]),
        "mapping": {"a": expected[0], "b": expected[1]},
        "arrays": expected,
    }[source]
    got = layer_weights(given)
    assert len(got) == 2
    for (_, w), e in zip(got, expected):
        np.testing.assert_array_equal(w, e)


# --------------------------------------------------------------------------- placement shift

STRENGTHS = [1e-2, 1e-1]


def _shift_checks(table: pd.DataFrame) -> None:
    """With the penalty on the output layer only, the hidden layer's norm grows."""
    norm = table.set_index(["placement", "strength", "layer"])["weight_l2"]
    free_hidden, free_output = norm[("none", 0.0, 0)], norm[("none", 0.0, 1)]
    for s in STRENGTHS:
        # output only: the output layer shrinks, the hidden layer grows past the
        # unregularized fit and past the fit that penalizes every layer.
        assert norm[("output", s, 1)] < free_output
        assert norm[("output", s, 0)] > free_hidden
        assert norm[("output", s, 0)] > norm[("all", s, 0)]
        # the mirror image: penalizing only the hidden layer grows the output layer.
        assert norm[("hidden", s, 1)] > free_output
        assert norm[("hidden", s, 0)] < free_hidden
    # the shift grows with the strength.
    assert norm[("output", STRENGTHS[1], 0)] > norm[("output", STRENGTHS[0], 0)]


def test_placement_shift_from_the_search_results():
    X, y = make_moons(120, noise=0.2, random_state=0)
    est = MLPClassifier((8,), epochs=60, batch_size=120, learning_rate=0.05)
    search = SearchCV(
        est,
        strengths=[0.0, *STRENGTHS],
        placements=("all", "hidden", "output"),
        cv=2,
        random_state=0,
        refit=False,
    ).fit(X, y)
    table = placement_table(search)
    # strength 0 is the same unregularized fit under every placement.
    free = table[table["strength"] == 0].groupby("layer")["weight_l2"]
    assert (free.max() - free.min()).max() < 1e-9
    table.loc[table["strength"] == 0, "placement"] = "none"
    _shift_checks(table.drop_duplicates(["placement", "strength", "layer"]))


def test_placement_shift_from_direct_fits():
    X, y = make_moons(120, noise=0.2, random_state=0)
    est = MLPClassifier((8,), epochs=60, batch_size=120, learning_rate=0.05, random_state=0)
    table = placement_study(X, y, STRENGTHS, estimator=est)
    assert set(table["placement"]) == {"none", "all", "hidden", "output"}
    assert len(table) == 2 * (1 + 3 * len(STRENGTHS))
    _shift_checks(table)
