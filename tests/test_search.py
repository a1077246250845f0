"""SearchCV: the grid, the folds, the choice, the refit; a candidate equals the estimator alone."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_classification, make_regression
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
)
from sklearn.model_selection import KFold

from shrinkage.analysis import grid_edge
from shrinkage.cli._workflows import tune_demo
from shrinkage.errors import ShrinkageError
from shrinkage.estimators import MLPClassifier, MLPRegressor
from shrinkage.models import MLP
from shrinkage.search import (
    SearchCV,
    chunk_layout,
    default_strengths,
    parse_memory,
    run_chunk,
)
from shrinkage.search._candidates import (
    ChunkRun,
    _divergence,
    _objective,
    predict_stack,
    scores,
)
from shrinkage.search._results import choose
from shrinkage.search.engine import StackPath, TrainSettings, predict_rows
from shrinkage.search.engine._memory import PREDICT_BYTES, PREDICT_MIN_ROWS, PREDICT_ROWS


def _classification(n=50, classes=2, seed=0):
    X, y = make_classification(
        n, 5, n_informative=3, n_redundant=0, n_classes=classes, random_state=seed
    )
    X[:, 0] = 100 * X[:, 0] + 7  # unscaled: the per-fold standardization matters
    return X, y


def _estimator(**kw):
    params = dict(hidden_layer_sizes=(6,), epochs=4, batch_size=8, learning_rate=0.02)
    params.update(kw)
    return MLPClassifier(**params)


def _search(**kw):
    params = dict(strengths=[1e-3, 0.1], placements=("all", "output"), cv=3, random_state=0)
    params.update(kw)
    return SearchCV(params.pop("estimator", _estimator()), **params)


# The estimator's own options go through the search unchanged: the raw columns (Keras), its
# initializations, the cosine schedule, and the proximal step of SGD with momentum.
KERAS_LIKE = {"standardize": False, "init": "glorot_uniform", "learning_rate_schedule": "cosine"}


@pytest.mark.parametrize(
    "optimizer, mode, extra",
    [
        ("adam", "gradient", {}),
        ("sgd", "gradient", {}),
        ("adam", "proximal", {}),
        ("sgd", "proximal", {"init": "he_uniform"}),
        ("adam", "proximal", KERAS_LIKE),
    ],
    ids=["adam-gradient", "sgd-gradient", "adam-proximal", "sgd-proximal-he", "adam-keras-like"],
)
def test_each_candidate_equals_the_estimator_fitted_alone_on_its_fold(optimizer, mode, extra):
    X, y = _classification(50, classes=3)
    estimator = _estimator(optimizer=optimizer, mode=mode, **extra)
    search = _search(estimator=estimator, kinds=("l2", "l1", "elastic_net"), l1_ratios=(0.3,), cv=3)
    plan = search.prepare(X, y)
    result = run_chunk(plan.data, plan.specs, keep_states=True)
    assert len(plan.specs) == 36
    # Every fold, kind and placement appear among every fifth candidate.
    for spec, state in list(zip(plan.specs, result.states))[::5]:
        train = plan.data.folds[spec.fold][0]
        alone = _estimator(
            optimizer=optimizer,
            mode=mode,
            **extra,
            penalty=spec.kind,
            strength=spec.strength,
            l1_ratio=spec.l1_ratio,
            placement=spec.placement,
            random_state=spec.seed,
        ).fit(X[train], y[train])
        for name, tensor in alone.model_.state_dict().items():
            np.testing.assert_allclose(state[name], tensor.numpy(), atol=1e-5, rtol=0)


def test_validation_rows_never_reach_a_candidate():
    X, y = _classification(40)
    rows = np.arange(40)
    train, test = rows[rows % 4 != 0], rows[rows % 4 == 0]
    estimator = MLPRegressor(hidden_layer_sizes=(5,), epochs=3, batch_size=8)
    options = dict(estimator=estimator, cv=[(train, test)], scoring="neg_mean_squared_error")
    clean = _search(**options).fit(X, y.astype(float))
    X_bad, y_bad = X.copy(), y.astype(float)
    X_bad[test] = 1e6  # would move every fold statistic if it leaked into standardization
    y_bad[test] = 1e9 * np.arange(len(test))  # would blow up any weight it reached
    dirty = _search(**options).fit(X_bad, y_bad)
    a, b = clean.cv_results_, dirty.cv_results_
    for key in ("split0_train_score", "weight_l2_layer0", "weight_l2_layer1"):
        np.testing.assert_array_equal(a[key], b[key])
    assert np.all(b["split0_test_score"] < a["split0_test_score"])


def test_same_random_state_same_results_and_other_state_other_folds():
    X, y = _classification()
    first = _search(refit=False).fit(X, y)
    again = _search(refit=False).fit(X, y)
    other = _search(refit=False, random_state=1).fit(X, y)
    for key, value in first.cv_results_.items():
        if key.endswith("_time"):
            continue
        np.testing.assert_array_equal(value, again.cv_results_[key], err_msg=key)
    assert first.seeds_ == again.seeds_ != other.seeds_
    assert not all(
        np.array_equal(a[0], b[0]) for a, b in zip(first.folds_, other.folds_, strict=True)
    )


def test_candidates_of_a_fold_share_their_seed_and_folds_differ():
    plan = _search().prepare(*_classification())
    by_fold = {}
    for spec in plan.specs:
        by_fold.setdefault(spec.fold, set()).add(spec.seed)
    assert all(len(seeds) == 1 for seeds in by_fold.values())
    assert len({seeds.pop() for seeds in by_fold.values()}) == 3


def test_chunking_gives_the_results_of_one_chunk():
    X, y = _classification()
    whole = _search(refit=False).fit(X, y)
    plan = _search().prepare(X, y)
    per, shared = _search()._bytes(plan.data)
    chunked = _search(refit=False, max_memory=shared + 3 * per).fit(X, y)
    assert whole.chunking_["n_chunks"] == 1
    assert chunked.chunking_["n_chunks"] == 4 and chunked.chunking_["candidates_per_chunk"] == 3
    for key, value in whole.cv_results_.items():
        if key.endswith("_time") or value.dtype == object:
            continue
        np.testing.assert_allclose(value, chunked.cv_results_[key], atol=1e-6, err_msg=key)


def test_prediction_blocks_hold_the_byte_budget():
    assert predict_rows(18, None) == PREDICT_ROWS
    assert predict_rows(18, 10**12) == PREDICT_MIN_ROWS
    assert predict_rows(1, 1) == PREDICT_ROWS
    for k, row_bytes in [(50, 260), (250, 424), (50, 516)]:
        rows = predict_rows(k, row_bytes)
        assert rows * k * row_bytes <= PREDICT_BYTES < (rows + 1) * k * row_bytes
    setup = _search().prepare(*_classification())
    assert setup.data.row_bytes == 4 * sum(setup.data.sizes[1:])
    X, y = _sequences()
    setup = _search(model_factory=_Sequence).prepare(X, y)
    # the LSTM's saved gates, cell states and inputs: well above its 8-wide output per row
    assert setup.data.row_bytes > 4 * 8 * X.shape[1]


def test_scores_do_not_depend_on_the_prediction_block():
    X, y = _classification(n=300)  # every candidate scores 300 rows: five blocks of 64
    setup = _search().prepare(X, y)
    whole = run_chunk(setup.data, setup.specs)
    setup.data.row_bytes = PREDICT_BYTES  # the fewest rows per candidate per forward pass
    blocks = run_chunk(setup.data, setup.specs)
    for a, b in zip(whole.rows, blocks.rows):
        for key in ("test_score", "train_score", "test_loss_score"):
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-7), key


def test_cv_results_columns_shapes_and_best():
    X, y = _classification()
    search = _search(kinds=("l2", "elastic_net"), l1_ratios=(0.2, 0.8)).fit(X, y)
    r = search.cv_results_
    n = 3 * 2 * 2  # (l2 + two elastic-net ratios) x two placements x two strengths
    assert all(len(v) == n for v in r.values())
    expected = {
        "param_kind",
        "param_strength",
        "param_l1_ratio",
        "param_placement",
        "params",
        "stage",
        "mean_test_score",
        "std_test_score",
        "rank_test_score",
        "mean_train_score",
        "std_train_score",
        "mean_fit_time",
        "std_fit_time",
        "mean_score_time",
        "std_score_time",
        "n_diverged",
        "status",
        "failure",
        *(f"split{i}_{s}_score" for i in range(3) for s in ("test", "train")),
        *(f"{m}_layer{i}" for i in range(2) for m in ("weight_l2", "sparsity")),
    }
    assert set(r) == expected
    splits = np.column_stack([r[f"split{i}_test_score"] for i in range(3)])
    np.testing.assert_allclose(r["mean_test_score"], splits.mean(axis=1))
    np.testing.assert_allclose(r["std_test_score"], splits.std(axis=1))
    assert np.isnan(r["param_l1_ratio"][r["param_kind"] == "l2"]).all()
    assert set(r["param_l1_ratio"][r["param_kind"] == "elastic_net"]) == {0.2, 0.8}
    assert r["rank_test_score"][search.best_index_] == 1
    assert search.best_score_ == r["mean_test_score"].max()
    assert search.best_params_ == r["params"][search.best_index_]
    frame = search.results_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == n and "params" not in frame


def test_refit_is_the_estimator_with_the_chosen_configuration():
    X, y = _classification()
    search = _search().fit(X, y)
    best = search.best_estimator_
    assert isinstance(best, MLPClassifier)
    assert best.penalty == search.best_params_["penalty"]
    assert best.strength == search.best_params_["strength"]
    assert best.placement == search.best_params_["placement"]
    assert best.random_state == search.refit_seed_
    assert search.predict(X).shape == (50,)
    assert search.score(X, y) == best.score(X, y)
    assert search.best_model_ is best.model_


def test_model_factory_path_matches_the_mlp_path():
    X, y = _classification()
    mlp = _search(refit=False).fit(X, y)
    func = _search(model_factory=lambda: MLP(5, (6,), 1), refit=True).fit(X, y)
    for key in ("mean_test_score", "mean_train_score", "weight_l2_layer0", "weight_l2_layer1"):
        np.testing.assert_allclose(func.cv_results_[key], mlp.cv_results_[key], atol=1e-5)
    assert func.best_estimator_ is None and isinstance(func.best_model_, MLP)


def test_refine_adds_a_finer_grid_around_the_best_strength():
    X, y = _classification()
    search = _search(strengths=[1e-4, 1e-2, 1.0], refine=True, refine_points=3, refit=False)
    search.fit(X, y)
    r = search.cv_results_
    refine = r["stage"] == "refine"
    assert refine.sum() == 3 and (r["stage"] == "grid").sum() == 6
    grid_best = choose(r, np.flatnonzero(~refine), False)
    centre = r["param_strength"][grid_best]
    # two thirds of a grid step (2 decades) each side; past the edge when the best is one
    offsets = {1.0: [0, 2, 4], 1e-4: [-4, -2, 0]}.get(centre, [-4 / 3, 0, 4 / 3])
    np.testing.assert_allclose(
        np.log10(r["param_strength"][refine]), np.log10(centre) + np.array(offsets)
    )
    assert set(r["param_placement"][refine]) == {r["param_placement"][grid_best]}
    assert refine[search.best_index_]


def test_refine_looks_past_the_edge_when_the_best_is_the_strongest_tried():
    X, y = _classification()
    # Penalties too small to change a score: the scores tie, and ties go to the larger
    # strength, so the best is the top of the grid.
    search = _search(
        strengths=[1e-9, 1e-8], placements=("all",), refine=True, refine_points=3, refit=False
    ).fit(X, y)
    r = search.cv_results_
    refine = r["stage"] == "refine"
    np.testing.assert_array_equal(r["mean_test_score"][~refine], r["mean_test_score"][0])
    np.testing.assert_allclose(r["param_strength"][refine], [1e-8, 1e-7, 1e-6])
    # the grid's top is no longer an edge once the refinement looked past it
    assert grid_edge(r, 1) is None and grid_edge(r, 4) == "upper"


ONE_SE_CASES = [
    # strengths, mean scores, std of the best, one_se, chosen row
    ([1e-3, 1e-2, 1e-1, 1.0], [0.80, 0.90, 0.88, 0.70], 0.05, False, 1),
    ([1e-3, 1e-2, 1e-1, 1.0], [0.80, 0.90, 0.88, 0.70], 0.05, True, 2),
    ([1e-3, 1e-2, 1e-1, 1.0], [0.80, 0.90, 0.88, 0.70], 0.001, True, 1),
    ([1e-3, 1e-2, 1e-1, 1.0], [0.90, 0.90, 0.60, math.nan], 0.0, False, 1),
]


@pytest.mark.parametrize("strengths, means, std, one_se, chosen", ONE_SE_CASES)
def test_choice_and_the_one_standard_error_rule(strengths, means, std, one_se, chosen):
    results = {
        "mean_test_score": np.array(means),
        "std_test_score": np.full(4, std),
        "param_strength": np.array(strengths),
        "split0_test_score": np.zeros(4),
        "split1_test_score": np.zeros(4),
        "split2_test_score": np.zeros(4),
        "split3_test_score": np.zeros(4),
    }
    # one standard error = std / sqrt(4 splits) = std / 2
    assert choose(results, np.arange(4), one_se) == chosen


SCORE_CASES = [
    ("accuracy", accuracy_score, "classification", 3),
    ("balanced_accuracy", balanced_accuracy_score, "classification", 3),
    ("neg_log_loss", None, "classification", 3),
    ("accuracy", accuracy_score, "classification", 2),
    ("neg_log_loss", None, "classification", 2),
    ("r2", r2_score, "regression", None),
    ("neg_mean_squared_error", mean_squared_error, "regression", None),
    ("neg_root_mean_squared_error", None, "regression", None),
    ("neg_mean_absolute_error", mean_absolute_error, "regression", None),
]


@pytest.mark.parametrize("scoring, metric, task, n_classes", SCORE_CASES)
def test_scores_match_scikit_learn(scoring, metric, task, n_classes):
    g = torch.Generator().manual_seed(0)
    n_out = 1 if n_classes in (None, 2) else n_classes
    outputs = torch.randn(2, 30, n_out, generator=g)
    if task == "regression":
        y = torch.randn(30, generator=g)
    else:
        y = torch.randint(0, n_classes, (30,), generator=g).float()
    mask = torch.rand(2, 30, generator=g) > 0.3
    settings = TrainSettings(task=task, n_classes=n_classes)
    got = scores(outputs, y, mask, scoring, settings)
    for k in range(2):
        m = mask[k].numpy()
        truth, out = y.numpy()[m], outputs[k].double().numpy()[m]
        if task == "regression":
            pred = out[:, 0]
            if metric is None:
                expected = -math.sqrt(mean_squared_error(truth, pred))
            else:
                expected = metric(truth, pred)
                expected = expected if scoring == "r2" else -expected
        elif metric is not None:
            pred = (out[:, 0] > 0).astype(int) if n_out == 1 else out.argmax(1)
            expected = metric(truth.astype(int), pred)
        else:
            if n_out == 1:
                p1 = 1 / (1 + np.exp(-out[:, 0]))
                proba = np.column_stack([1 - p1, p1])
            else:
                e = np.exp(out - out.max(1, keepdims=True))
                proba = e / e.sum(1, keepdims=True)
            expected = -log_loss(truth.astype(int), proba, labels=list(range(n_classes)))
        assert got[k] == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_regression_search_with_kfold_splitter_and_validation_fraction():
    X, y = make_regression(40, 4, noise=1.0, random_state=0)
    estimator = MLPRegressor(hidden_layer_sizes=(), epochs=5, learning_rate=0.05, batch_size=16)
    search = SearchCV(estimator, strengths=[1e-3], cv=KFold(4), refit=False, random_state=0).fit(
        X, y
    )
    assert search.n_splits_ == 4 and search.scoring_ == "r2"
    assert search.cv_results_["weight_l2_layer0"].shape == (1,)
    holdout = SearchCV(estimator, strengths=[1e-3, 1e-1], validation_fraction=0.25, refit=False)
    holdout.fit(X, y)
    assert holdout.n_splits_ == 1 and len(holdout.folds_[0][1]) == 10


def test_checkpoint_writes_each_chunk_atomically(tmp_path):
    X, y = _classification()
    plan = _search().prepare(X, y)
    per, shared = _search()._bytes(plan.data)
    search = _search(max_memory=shared + 6 * per, checkpoint_dir=tmp_path, refit=False)
    search.fit(X, y)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["grid-chunk-00000.json", "grid-chunk-00001.json"]
    payload = json.loads((tmp_path / files[1]).read_text())
    assert payload["fingerprint"] == plan.fingerprint
    assert [r["candidate"] for r in payload["rows"]] == list(range(6, 12))


def test_progress_reports_every_epoch_of_every_stage():
    X, y = _classification()
    seen = []
    search = _search(refine=True, refine_epochs=2)
    search.fit(X, y, progress=seen.append)
    # Each stage says it starts (epoch 0), then reports every epoch.
    grid = [(p.chunk, p.n_chunks, p.epoch, p.epochs) for p in seen if p.stage == "grid"]
    assert grid == [(1, 1, e, 4) for e in range(5)]
    refine = [(p.chunk, p.n_chunks, p.epoch, p.epochs) for p in seen if p.stage == "refine"]
    assert refine == [(1, 2, 0, 2), (1, 2, 1, 2), (1, 2, 2, 2), (2, 2, 1, 2), (2, 2, 2, 2)]
    assert [p.epoch for p in seen if p.stage == "refit"] == list(range(5))
    assert [p.stage for p in seen][-1] == "refit" and not any(p.reused for p in seen)
    # The steps announced beforehand are the ones reported.
    assert search.phases(search.prepare(X, y)) == {"grid": 4, "refine": 4, "refit": 4}


def test_diverged_candidates_score_nan_and_rank_last():
    X, y = _classification()
    search = _search(
        estimator=_estimator(optimizer="sgd", learning_rate=0.05, momentum=0.0),
        strengths=[1e-3, 1e12],
        refit=False,
    ).fit(X, y)
    r = search.cv_results_
    blown = r["param_strength"] == 1e12
    assert np.isnan(r["mean_test_score"][blown]).all() and (r["n_diverged"][blown] == 3).all()
    assert (r["rank_test_score"][blown] > r["rank_test_score"][~blown].max()).all()


class _FiniteStack:
    k, device = 2, torch.device("cpu")
    tensors = [torch.ones(2, 3)]


def test_divergence_asks_for_the_start_only_when_a_loss_ends_high():
    """The reference is max(start, zero-output loss): an end within 1000 times the zero
    loss cannot have diverged, so the starting objective (a pass over the data) is skipped."""
    asked = []

    def start():
        asked.append(True)
        return np.array([10.0, 3.0])

    zero = np.array([1.0, 1.0])
    assert _divergence(_FiniteStack(), np.array([2.0, 900.0]), zero, start) == ["", ""]
    assert not asked
    reasons = _divergence(_FiniteStack(), np.array([5000.0, 5000.0]), zero, start)
    assert asked == [True]
    assert reasons == ["", "loss rose from 3 to 5000, over 1000 times its start"]
    nan = _divergence(_FiniteStack(), np.array([np.nan, 2.0]), zero, start)
    assert nan == ["loss became NaN/inf", ""] and asked == [True]


def test_the_start_objective_is_that_of_the_starting_weights_and_restores_the_trained():
    X, y = _classification()
    data = _search(estimator=_estimator(epochs=3), strengths=[1e-3, 1e-1]).prepare(X, y).data
    specs = _search(estimator=_estimator(epochs=3), strengths=[1e-3, 1e-1]).prepare(X, y).specs
    chunk = ChunkRun(data, specs)
    stack = chunk.stack
    index, train_mask, _ = chunk._rows()
    outputs = predict_stack(stack, data.X, index, 64)
    expected = _objective(stack, outputs, data, train_mask, chunk._l1, chunk._l2)
    chunk.train_to(3)
    trained = stack.flat.clone()
    np.testing.assert_allclose(chunk._start_objective(), expected, rtol=1e-6)
    assert torch.equal(stack.flat, trained)
    chunk.keep([specs[2].index, specs[0].index])  # the objective already computed
    np.testing.assert_allclose(chunk._start_objective(), expected[[2, 0]], rtol=1e-6)
    later = ChunkRun(data, specs)  # the starting weights kept, the objective not yet
    later.train_to(2)
    later.keep([specs[3].index, specs[1].index])
    np.testing.assert_allclose(later._start_objective(), expected[[3, 1]], rtol=1e-6)


def test_default_grid_is_thirteen_half_decades():
    grid = default_strengths()
    assert len(grid) == 13 and grid[0] == pytest.approx(1e-6) and grid[-1] == 1.0
    np.testing.assert_allclose(np.diff(np.log10(grid)), 0.5)
    plan = SearchCV(_estimator(), cv=3, random_state=0).prepare(*_classification())
    assert len(plan.configs) == 13 and plan.chunking["n_candidates"] == 39


@pytest.mark.parametrize(
    "value, expected",
    [("2GB", 2 * 10**9), ("512MiB", 512 * 2**20), (" 1.5 kb", 1500), (4096, 4096), ("1e3", 1000)],
)
def test_parse_memory(value, expected):
    assert parse_memory(value) == expected


def test_plan_chunks_balances_and_refuses_a_budget_below_one_candidate():
    assert chunk_layout(10, 100, 50, 50 + 4 * 100) == (3, 4)
    with pytest.raises(ShrinkageError, match="too small"):
        chunk_layout(10, 100, 50, 120)


@pytest.mark.parametrize(
    "kinds, l1_ratios, keys",
    [
        (("l2",), (0.5,), {"penalty", "strength", "placement"}),
        (("elastic_net",), (0.25, 0.75), {"penalty", "strength", "placement", "l1_ratio"}),
    ],
)
def test_best_params_are_estimator_parameters(kinds, l1_ratios, keys):
    X, y = _classification()
    search = SearchCV(
        MLPClassifier((4,), epochs=2),
        strengths=[1e-3, 1e-1],
        kinds=kinds,
        l1_ratios=l1_ratios,
        placements=("all", (0,)),
        cv=2,
        random_state=0,
        refit=False,
    ).fit(X, y)
    assert set(search.best_params_) == keys
    estimator = MLPClassifier((4,), epochs=2, random_state=0).set_params(**search.best_params_)
    assert estimator.get_params()["penalty"] == search.best_params_["penalty"]
    assert estimator.fit(X, y).strength == search.best_params_["strength"]


def test_tune_demo_returns_params_accuracy_and_search():
    X, y = _classification(40)
    params, accuracy, search = tune_demo(
        X[:30], y[:30], X[30:], y[30:], hidden=(8,), epochs=3, strengths=[1e-3, 1e-1]
    )
    assert set(params) == {"penalty", "strength", "placement"}
    assert 0 <= accuracy <= 1 and search.chunking_["n_candidates"] == 18


BAD = [
    (
        dict(kinds=("l3",)),
        "The 'kinds' entries must be among 'l2', 'l1', 'elastic_net' (the penalties the "
        "batched engine stacks). Got 'l3' instead.",
    ),
    (
        dict(strengths=[0.1, -1]),
        "The 'strengths' parameter must be a finite float in the range [0, inf). Got -1 instead.",
    ),
    (
        dict(placements=("inner",)),
        "The 'placements' entries must be 'all', 'hidden', 'output' or tuples of layer "
        "indices. Got 'inner' instead.",
    ),
    (
        dict(placements=((0, 5),)),
        "The 'placement' layer indices must be in [0, 2). Got [5] instead.",
    ),
    (
        dict(l1_ratios=(1.5,)),
        "The 'l1_ratios' entries must be floats in the range [0, 1]. Got 1.5 instead.",
    ),
    (
        dict(scoring="r2"),
        "The 'scoring' parameter 'r2' is for regression; this search is a classification. "
        "Use 'accuracy', 'balanced_accuracy' or 'neg_log_loss'.",
    ),
    (
        dict(max_memory="lots"),
        "The 'max_memory' parameter must be a positive size such as '2GB', '512MiB' or a "
        "number of bytes. Got 'lots' instead.",
    ),
    (dict(cv=1), "The 'folds' parameter must be an integer >= 2. Got 1 instead."),
    (
        dict(validation_fraction=1.0),
        "The 'validation_fraction' parameter must be a float in the range (0, 1) or None. "
        "Got 1.0 instead.",
    ),
    (
        dict(estimator=_estimator(early_stopping=True)),
        "The estimator's 'early_stopping' parameter must be False in a search: the folds "
        "already hold out validation rows. Got True instead.",
    ),
    (
        dict(estimator=_estimator(learning_rate=-1.0)),
        "The 'learning_rate' parameter must be a float in the range (0, inf). Got -1.0 instead.",
    ),
    (
        dict(random_state="seed"),
        "The 'random_state' parameter must be an integer in [0, 2**32 - 1], a numpy "
        "RandomState or None. Got 'seed' instead.",
    ),
    (dict(refine="yes"), "The 'refine' parameter must be True or False. Got 'yes' instead."),
    (
        dict(estimator="mlp"),
        "The 'estimator' parameter must be an MLPClassifier, an MLPRegressor or None. "
        "Got 'mlp' instead.",
    ),
]


@pytest.mark.parametrize("params, message", BAD)
def test_bad_parameters_raise_one_line(params, message):
    with pytest.raises(ShrinkageError) as info:
        _search(**params).fit(*_classification())
    assert str(info.value) == message


def test_bad_data_raises_one_line():
    X, y = _classification()
    with pytest.raises(ShrinkageError) as info:
        _search().fit(X, y[:-1])
    assert str(info.value) == (
        "The 'X' and 'y' parameters must have the same number of rows. Got 50 and 49 instead."
    )
    with pytest.raises(ShrinkageError) as info:
        _search().fit(X, np.zeros(50))
    assert (
        str(info.value)
        == "A classification search needs at least 2 classes in y; got one class, 0.0."
    )


def test_numeric_fast_path_standardizes_exactly_as_the_preprocessor():
    from shrinkage.data import Preprocessor
    from shrinkage.search._data import fold_features

    X, _ = _classification()
    X[:, 1] = 3.0  # a constant column is divided by 1
    folds = [(np.arange(0, 30), np.arange(30, 50)), (np.arange(20, 50), np.arange(0, 20))]
    fast = fold_features(X, folds, impute=False)
    for (train, _), block in zip(folds, fast, strict=True):
        slow = Preprocessor().fit(X[train]).transform(X)
        np.testing.assert_array_equal(block, slow)


# --- any network: the fused path, its fallbacks, the head -------------------------------------


class _Sequence(torch.nn.Module):
    """An LSTM classifier whose head width is a parameter (1 or 2 logits for binary)."""

    def __init__(self, n_out=1):
        super().__init__()
        self.rnn = torch.nn.LSTM(3, 4, batch_first=True)
        self.head = torch.nn.Linear(4, n_out)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


def _sequences(n=40):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 6, 3, generator=g)
    return X.numpy(), (X[:, :3, 0].sum(1) > 0).long().numpy()


def test_an_lstm_search_runs_fused_and_says_so(capsys):
    X, y = _sequences()
    search = _search(model_factory=_Sequence, verbose=1, refit=True).fit(X, y)
    assert search.chunking_["path"] == "fused"
    assert search.chunking_["path_reason"].startswith("every layer has a fused form (1 LSTM")
    assert "SearchCV: path fused: every layer has a fused form (1 LSTM, 1 Linear" in (
        capsys.readouterr().out
    )
    assert type(search.best_model_) is _Sequence
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_a_two_logit_head_searches_a_binary_target_like_one_logit():
    X, y = _sequences()
    two = _search(model_factory=lambda: _Sequence(2)).fit(X, y)
    assert two.chunking_["path"] == "fused"
    # two logits z: softmax(z)_1 = sigmoid(z_1 - z_0), so the two heads learn the same task
    assert 0.4 < float(np.max(two.cv_results_["mean_test_score"])) <= 1.0
    assert two.cv_results_["mean_train_score"].shape == (4,)


def test_a_head_the_search_cannot_use_is_one_line():
    X, y = _sequences()
    with pytest.raises(ShrinkageError) as err:
        _search(model_factory=lambda: _Sequence(3)).fit(X, y)
    assert str(err.value) == (
        "The 'model_factory' module must return outputs of shape (batch, 1) (one logit) or "
        "(batch, 2) (two logits) for a binary target. Got (batch, 3) instead."
    )


def test_a_module_that_fails_in_training_is_one_line_not_a_torch_error(monkeypatch):
    X, y = _sequences()
    setup = _search(model_factory=_Sequence).prepare(X, y)
    stack = setup.data.path.build(_Sequence, [0])

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB\nmore")

    stack.net.rnn.forward = out_of_memory
    monkeypatch.setattr(StackPath, "build", lambda self, *args: stack)
    with pytest.raises(ShrinkageError) as err:
        run_chunk(setup.data, setup.specs[:1])
    assert str(err.value) == (
        "The 'model_factory' module failed in the search (the fused path): RuntimeError: "
        "CUDA out of memory. Tried to allocate 2 GiB"
    )


def test_recurrent_stacks_are_chunked_to_32_candidates_on_a_cpu():
    X, y = _sequences()
    setup = _search(model_factory=_Sequence, strengths=list(np.logspace(-4, -1, 6))).prepare(X, y)
    assert setup.chunking["n_candidates"] == 36
    assert (setup.chunking["n_chunks"], setup.chunking["candidates_per_chunk"]) == (2, 18)


class _Scaled(_Sequence):
    """A raw Parameter next to an LSTM: neither fused nor torch.func; the loop runs it."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return super().forward(x) * self.scale


def test_what_nothing_else_runs_is_searched_one_candidate_after_the_other():
    X, y = _sequences()
    search = _search(model_factory=_Scaled, strengths=[1e-3]).fit(X, y)
    assert search.chunking_["path"] == "loop"
    assert "torch.func cannot run it" in search.chunking_["path_reason"]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_verbose_shows_each_phase_and_the_overall_share(capsys):
    X, y = _classification()
    _search(verbose=1, refine=True, refine_epochs=2).fit(X, y)
    out = capsys.readouterr().out  # not a terminal here: plain lines
    assert out.startswith("SearchCV: 4 configurations x 3 folds = 12 candidates")
    for phase in ("grid", "refine", "refit"):
        assert f"SearchCV: {phase} started" in out and f"SearchCV: {phase} done in" in out
    assert "overall 100%" in out and "left" in out
    assert out.splitlines()[-1].startswith("SearchCV: best {'penalty': 'l2'")
