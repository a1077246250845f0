"""MLPClassifier / MLPRegressor: scikit-learn compatibility, parameters, learned attributes."""

import inspect

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import Lasso, Ridge
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from shrinkage import L1, ElasticNet, ShrinkageError, from_sklearn_alpha
from shrinkage.estimators import MLPClassifier, MLPRegressor, make_penalty

# Small and quick: the checks fit several hundred times. A learning rate of 0.01 lets five
# epochs pass the accuracy / R² thresholds of check_classifiers_train / check_regressors_train.
_CHECKED = [
    MLPClassifier(hidden_layer_sizes=(16,), epochs=5, learning_rate=0.01),
    MLPRegressor(hidden_layer_sizes=(16,), epochs=5, learning_rate=0.01),
]


@parametrize_with_checks(_CHECKED)
def test_sklearn_compatible(estimator, check):
    # No check is skipped or expected to fail.
    check(estimator)


def _regression(n=40, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = StandardScaler().fit_transform(rng.normal(size=(n, d)))
    y = X @ np.array([2.0, -1.0, 0.5, 0.0])[:d] + 0.3 * rng.normal(size=n) + 1.0
    return X, y


def _classification(n=60, seed=0, n_classes=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1], np.linspace(-1, 1, n_classes - 1))
    return X, y


# --------------------------------------------------------------------------- parameters

_BAD_PARAMS = [
    (
        {"hidden_layer_sizes": (0,)},
        "The 'hidden_layer_sizes' parameter must be a tuple of "
        "positive integers (() for a linear model). Got (0,) instead.",
    ),
    (
        {"activation": "swish"},
        "The 'activation' parameter must be one of 'relu', 'tanh', "
        "'logistic', 'sigmoid', 'gelu', 'identity'. Got 'swish' instead.",
    ),
    (
        {"penalty": "l3"},
        "The 'penalty' parameter must be one of l1, l2, elastic_net, "
        "group_lasso, exp_abs, l2sp, none or a Penalty. Got 'l3' instead.",
    ),
    (
        {"strength": -1.0},
        "The 'strength' parameter must be a finite float in the range [0, inf). Got -1.0 instead.",
    ),
    (
        {"strength": float("inf")},
        "The 'strength' parameter must be a finite float in the range [0, inf). Got inf instead.",
    ),
    (
        {"l1_ratio": 2},
        "The 'l1_ratio' parameter must be a float in the range [0, 1]. Got 2 instead.",
    ),
    (
        {"placement": "middle"},
        "The 'placement' parameter must be one of all, hidden, output "
        "or a list of layer indices. Got 'middle' instead.",
    ),
    ({"placement": [5]}, "The 'placement' layer indices must be in [0, 2). Got [5] instead."),
    (
        {"layer_penalties": {0: "bogus"}},
        "The 'layer_penalties[0]' parameter must be one of "
        "l1, l2, elastic_net, group_lasso, exp_abs, l2sp, none or a Penalty. Got 'bogus' instead.",
    ),
    (
        {"layer_penalties": {0: -2.0}},
        "The 'layer_penalties[0]' parameter must be a finite "
        "float in the range [0, inf). Got -2.0 instead.",
    ),
    (
        {"mode": "fast"},
        "The 'mode' parameter must be one of 'loss', 'gradient', 'decoupled', "
        "'proximal'. Got 'fast' instead.",
    ),
    (
        {"optimizer": "rmsprop"},
        "The 'optimizer' parameter must be one of 'adam', 'sgd'. Got 'rmsprop' instead.",
    ),
    (
        {"learning_rate": 0},
        "The 'learning_rate' parameter must be a float in the range (0, inf). Got 0 instead.",
    ),
    ({"epochs": 0}, "The 'epochs' parameter must be an integer >= 1. Got 0 instead."),
    ({"batch_size": 2.5}, "The 'batch_size' parameter must be an integer >= 1. Got 2.5 instead."),
    (
        {"validation_fraction": 0.9},
        "The 'validation_fraction' parameter must be a float in "
        "the range (0, 0.5]. Got 0.9 instead.",
    ),
    ({"impute": "yes"}, "The 'impute' parameter must be True or False. Got 'yes' instead."),
    (
        {"device": "tpu"},
        "The 'device' parameter must be a torch device of type 'cpu', 'cuda', 'mps' (e.g. "
        "'cuda:1'). Got 'tpu' instead.",
    ),
    (
        {"random_state": -1},
        "The 'random_state' parameter must be an integer in "
        "[0, 4294967295], a numpy RandomState or None. Got -1 instead.",
    ),
    ({"standardize": 1}, "The 'standardize' parameter must be True or False. Got 1 instead."),
    (
        {"init": "glorot"},
        "The 'init' parameter must be one of 'torch', 'glorot_uniform', 'he_uniform'. "
        "Got 'glorot' instead.",
    ),
    (
        {"learning_rate_schedule": "linear"},
        "The 'learning_rate_schedule' parameter must be one of 'constant', 'cosine'. "
        "Got 'linear' instead.",
    ),
    (
        {"penalty": "exp_abs", "mode": "proximal"},
        "mode='proximal' needs a closed-form "
        "proximal operator; ExpAbs(strength=0.0001) has none. Use mode='gradient' or "
        "'decoupled'.",
    ),
]


@pytest.mark.parametrize("params, message", _BAD_PARAMS)
def test_bad_parameters_are_refused_in_fit(params, message):
    X, y = _classification(n=10)
    estimator = MLPClassifier(**{"epochs": 1, **params})  # __init__ only stores
    with pytest.raises(ShrinkageError) as err:
        estimator.fit(X, y)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "params, message",
    [
        (
            {"alpha": 1e-4},
            "MLPClassifier() got an unexpected keyword argument 'alpha'. Its strength has the "
            "Keras meaning (strength·Σw² added to the mean loss); scikit-learn's alpha is "
            "penalty='l2', strength=alpha / (2 * batch_size): "
            "strength=sk.from_sklearn_alpha(alpha, batch_size).l2.",
        ),
        (
            {"max_iter": 10},
            "MLPClassifier() got an unexpected keyword argument 'max_iter'. Its name here is "
            "'epochs'.",
        ),
        (
            {"hidden_layers": (8,)},
            "MLPClassifier() got an unexpected keyword argument 'hidden_layers'. Did you mean "
            "'hidden_layer_sizes'?",
        ),
    ],
)
def test_unknown_keywords_say_what_they_are_called_here(params, message):
    with pytest.raises(TypeError) as err:  # what Python raises for an unknown keyword
        MLPClassifier(**params)
    assert str(err.value) == message and isinstance(err.value, ShrinkageError)
    with pytest.raises(ShrinkageError) as err:
        MLPRegressor().set_params(**params)
    assert str(err.value) == message.replace("MLPClassifier()", "MLPRegressor.set_params()")
    # The keyword check leaves the signature scikit-learn and help() read alone.
    assert list(inspect.signature(MLPClassifier).parameters)[:2] == [
        "hidden_layer_sizes",
        "activation",
    ]
    # The pointer is right: from_sklearn_alpha(alpha, n).l2 is alpha / (2n).
    assert from_sklearn_alpha(1e-4, 32).l2 == pytest.approx(1e-4 / 64)


def test_bad_data_messages():
    X, y = _classification(n=10)
    with pytest.raises(ShrinkageError) as err:
        MLPClassifier(epochs=1).fit(X, np.zeros(10))
    assert str(err.value) == "MLPClassifier needs at least 2 classes in y; got one class, 0.0."
    with pytest.raises(ShrinkageError) as err:
        MLPRegressor(epochs=1, early_stopping=True).fit(X[:1], y[:1])
    assert str(err.value) == (
        "early_stopping=True holds out validation_fraction=0.1 of the rows for validation, "
        "which leaves no training rows out of 1; add rows or turn early stopping off."
    )


@pytest.mark.parametrize(
    "params, expected",
    [
        (
            {"penalty": "l2", "strength": 0.01},
            [("layers.0.weight", "L2(l2=0.01)"), ("layers.1.weight", "L2(l2=0.01)")],
        ),
        ({"penalty": "l1", "placement": "hidden"}, [("layers.0.weight", "L1(l1=0.0001)")]),
        ({"penalty": "l2", "placement": "output"}, [("layers.1.weight", "L2(l2=0.0001)")]),
        (
            {"penalty": "elastic_net", "strength": 0.01, "l1_ratio": 0.25},
            [
                ("layers.0.weight", "ElasticNet(l1=0.0025, l2=0.0075)"),
                ("layers.1.weight", "ElasticNet(l1=0.0025, l2=0.0075)"),
            ],
        ),
        (
            {"penalty": "l2", "layer_penalties": {0: ("l1", 0.5), 1: None}},
            [("layers.0.weight", "L1(l1=0.5)")],
        ),
        (
            {"penalty": "l2", "strength": 0.1, "layer_penalties": {1: 0.2}},
            [("layers.0.weight", "L2(l2=0.1)"), ("layers.1.weight", "L2(l2=0.2)")],
        ),
        (
            {"penalty": "none", "layer_penalties": {1: {"penalty": "group_lasso", "strength": 1}}},
            [("layers.1.weight", "GroupLasso(strength=1.0, groups='rows')")],
        ),
        ({"penalty": L1(0.3), "placement": [0]}, [("layers.0.weight", "L1(l1=0.3)")]),
    ],
)
def test_plan_from_parameters(params, expected):
    X, y = _classification(n=12)
    clf = MLPClassifier(hidden_layer_sizes=(4,), epochs=1, random_state=0, **params).fit(X, y)
    assert [(str(r.select), repr(r.penalty)) for r in clf.plan_.rules] == expected


def test_make_penalty_maps_elastic_net_ratio():
    assert make_penalty("elastic_net", 0.02, 0.75) == ElasticNet(l1=0.015, l2=0.005)
    assert make_penalty("none", 0.5) is None


# --------------------------------------------------------------------------- learned state


def test_history_matches_the_final_weights():
    X, y = _classification()
    clf = MLPClassifier((8,), strength=0.01, epochs=6, batch_size=16, random_state=0).fit(X, y)
    assert len(clf.history_) == 6 == clf.n_iter_
    assert [row["epoch"] for row in clf.history_] == list(range(1, 7))
    last = clf.history_[-1]
    penalty = 0.01 * sum(
        float((w["weight"].astype(np.float64) ** 2).sum()) for w in clf.layer_weights_
    )
    assert last["penalty"] == pytest.approx(penalty, rel=1e-5)
    assert last["total"] == pytest.approx(last["data_loss"] + last["penalty"])
    assert 0 <= last["train_score"] <= 1 and last["val_score"] is None


def test_layer_weights_rows_are_neurons():
    X, y = _classification()
    clf = MLPClassifier((5, 3), epochs=3, random_state=0).fit(X, y)
    shapes = [(w["weight"].shape, w["bias"].shape) for w in clf.layer_weights_]
    assert shapes == [((5, 3), (5,)), ((3, 5), (3,)), ((1, 3), (1,))]
    for w, layer in zip(clf.layer_weights_, clf.model_.layers):
        np.testing.assert_array_equal(w["weight"], layer.weight.detach().numpy())
    # Neuron j of hidden layer 0 is relu(W[j] · x_std + b[j]) on the standardized inputs.
    x_std = clf.preprocessor_.transform(X)
    first = clf.layer_weights_[0]
    manual = np.maximum(x_std @ first["weight"].T + first["bias"], 0)
    np.testing.assert_allclose(clf.transform_hidden(X, layer=0), manual, rtol=1e-5, atol=1e-6)
    second = clf.layer_weights_[1]
    manual2 = np.maximum(manual @ second["weight"].T + second["bias"], 0)
    np.testing.assert_allclose(clf.transform_hidden(X, layer=1), manual2, rtol=1e-5, atol=1e-6)
    with pytest.raises(ShrinkageError) as err:
        clf.transform_hidden(X, layer=2)
    assert str(err.value) == (
        "The 'layer' parameter must be in [0, 2) for a network with 2 hidden layers. Got 2 instead."
    )


def test_random_state_makes_fits_reproducible():
    X, y = _classification()
    a = MLPClassifier((8,), epochs=3, random_state=7).fit(X, y)
    b = MLPClassifier((8,), epochs=3, random_state=7).fit(X, y)
    c = MLPClassifier((8,), epochs=3, random_state=8).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.seed_ == 7
    assert not np.array_equal(a.layer_weights_[0]["weight"], c.layer_weights_[0]["weight"])


def test_multiclass_and_string_labels():
    X, codes = _classification(n_classes=3)
    labels = np.array(["low", "mid", "top"])[codes]
    clf = MLPClassifier((8,), epochs=20, learning_rate=0.01, random_state=0).fit(X, labels)
    assert clf.classes_.tolist() == ["low", "mid", "top"]
    assert clf.model_.sizes[-1] == 3
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(clf.predict(X)) <= set(clf.classes_)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-10)


def test_binary_uses_one_logit():
    X, y = _classification()
    clf = MLPClassifier((4,), epochs=2, random_state=0).fit(X, y)
    assert clf.model_.sizes == [3, 4, 1]
    proba = clf.predict_proba(X)
    logit = clf.model_(torch.from_numpy(clf.preprocessor_.transform(X)))[:, 0].detach().double()
    np.testing.assert_allclose(proba[:, 1], torch.sigmoid(logit).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(proba[:, 1] > 0.5).astype(int)])


def test_dataframe_with_categories_and_training_rows_only():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "size": rng.normal(50, 10, size=40),
            "color": rng.choice(["red", "green", "blue"], size=40),
        }
    )
    y = (frame["size"] > 50).astype(int).to_numpy()
    clf = MLPClassifier(
        (4,), epochs=3, early_stopping=True, validation_fraction=0.25, random_state=0
    ).fit(frame, y)
    assert clf.preprocessor_.feature_names_out_ == [
        "size",
        "color=blue",
        "color=green",
        "color=red",
    ]
    assert clf.feature_names_in_.tolist() == ["size", "color"]
    # 10 of 40 rows are held out for validation: the scaler saw the other 30 only.
    assert clf.preprocessor_.to_config()["n_samples_seen"] == 30
    assert clf.history_[-1]["val_score"] is not None
    assert clf.predict(frame).shape == (40,)


def test_early_stopping_stops_and_keeps_the_best_epoch():
    X, y = _classification(n=80)
    clf = MLPClassifier(
        (8,), epochs=200, early_stopping=True, patience=3, learning_rate=0.05, random_state=0
    ).fit(X, y)
    assert clf.n_iter_ < 200
    scores = [row["val_score"] for row in clf.history_]
    assert clf.best_epoch_ == 1 + scores.index(max(scores))
    assert clf.n_iter_ == clf.best_epoch_ + 3


def test_divergence_names_strength_and_learning_rate():
    X, y = _regression()
    with pytest.raises(ShrinkageError) as err:
        MLPRegressor(
            (),
            strength=10.0,
            optimizer="sgd",
            learning_rate=1e20,
            epochs=5,
            batch_size=40,
            random_state=0,
        ).fit(X, y)
    assert str(err.value) == (
        "Training diverged at epoch 1 (loss=inf) with strength=10.0, learning_rate=1e+20; "
        "lower the learning rate or the strength."
    )


def test_failed_fit_keeps_the_previous_model():
    X, y = _regression()
    reg = MLPRegressor((4,), epochs=2, random_state=0).fit(X, y)
    before = reg.predict(X)
    reg.set_params(optimizer="sgd", learning_rate=1e20, strength=10.0)
    with pytest.raises(ShrinkageError):
        reg.fit(X * 3, y)
    np.testing.assert_array_equal(reg.predict(X), before)


# --------------------------------------------------------------------------- linear models


def test_linear_l2_is_ridge_with_alpha_n_times_strength():
    # (1/n)||y - Xw - b||^2 + s||w||^2 has the minimizer of ||y - Xw - b||^2 + (n s)||w||^2.
    X, y = _regression()
    strength = 0.05
    reg = MLPRegressor(
        (),
        penalty="l2",
        strength=strength,
        optimizer="sgd",
        learning_rate=0.1,
        epochs=300,
        batch_size=len(y),
        random_state=0,
    ).fit(X, y)
    ridge = Ridge(alpha=len(y) * strength).fit(X, y)
    np.testing.assert_allclose(reg.layer_weights_[0]["weight"][0], ridge.coef_, atol=1e-4)
    np.testing.assert_allclose(reg.layer_weights_[0]["bias"][0], ridge.intercept_, atol=1e-4)


def test_linear_l1_proximal_is_lasso_with_alpha_half_strength():
    # Dividing by 2: (1/2n)||y - Xw - b||^2 + (s/2)|w|_1, sklearn's Lasso with alpha = s / 2.
    X, y = _regression()
    strength = 0.05
    reg = MLPRegressor(
        (),
        penalty="l1",
        strength=strength,
        mode="proximal",
        optimizer="sgd",
        momentum=0.0,
        learning_rate=0.1,
        epochs=300,
        batch_size=len(y),
        random_state=0,
    ).fit(X, y)
    lasso = Lasso(alpha=strength / 2).fit(X, y)
    weight = reg.layer_weights_[0]["weight"][0]
    np.testing.assert_allclose(weight, lasso.coef_, atol=1e-4)
    assert weight[3] == 0.0 and lasso.coef_[3] == 0.0  # an exact zero, as lasso's


@pytest.mark.parametrize(
    ("init", "bound"),
    [
        ("glorot_uniform", lambda fan_in, fan_out: (6 / (fan_in + fan_out)) ** 0.5),
        ("he_uniform", lambda fan_in, fan_out: (6 / fan_in) ** 0.5),
    ],
)
def test_keras_initializations_draw_uniform_weights_and_zero_biases(init, bound):
    X, y = _classification(n=20)
    clf = MLPClassifier((300,), init=init, epochs=1, learning_rate=1e-12, random_state=3)
    clf.fit(X, y)
    for layer in clf.model_.layers:
        limit = bound(layer.in_features, layer.out_features)
        weight = layer.weight.detach()
        assert float(weight.abs().max()) <= limit
        if weight.numel() >= 300:  # the spread fills the interval
            assert float(weight.abs().max()) > 0.95 * limit
            assert abs(float(weight.std()) - limit / 3**0.5) < 0.05 * limit
        assert float(layer.bias.detach().abs().max()) < 1e-9  # zero, moved by lr 1e-12 only
    default = MLPClassifier((300,), epochs=1, learning_rate=1e-12, random_state=3).fit(X, y)
    assert float(default.model_.layers[0].bias.detach().abs().max()) > 0.1  # torch: U(+-1/sqrt(3))


def test_standardize_false_trains_on_the_columns_as_they_are():
    X, y = _regression()
    X = X * np.array([1.0, 10.0, 100.0, 0.1]) + 5.0
    raw = MLPRegressor((), standardize=False, epochs=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(raw.preprocessor_.transform(X), X.astype(np.float32))
    scaled = MLPRegressor((), epochs=2, random_state=0).fit(X, y)
    assert abs(scaled.preprocessor_.transform(X).std(0) - 1).max() < 1e-5


def test_coef_and_intercept_are_the_linear_model_in_raw_units():
    """With standardization, a numeric column and a categorical one: predictions are
    X @ coef_ + intercept_ on the raw values (one-hot columns for the category)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "size": rng.normal(50, 20, 60),
            "color": rng.choice(["red", "blue"], 60),
            "age": rng.normal(3, 0.1, 60),
        }
    )
    y = 0.1 * frame["size"] + (frame["color"] == "red") * 2 - 30 * frame["age"] + 90
    reg = MLPRegressor((), penalty="none", epochs=20, learning_rate=0.05, random_state=0)
    reg.fit(frame, y)
    assert reg.preprocessor_.feature_names_out_ == ["size", "age", "color=blue", "color=red"]
    design = np.column_stack(
        [frame["size"], frame["age"], frame["color"] == "blue", frame["color"] == "red"]
    ).astype(float)
    assert reg.coef_.shape == (4,) and isinstance(reg.intercept_, float)
    np.testing.assert_allclose(design @ reg.coef_ + reg.intercept_, reg.predict(frame), rtol=1e-5)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_a_linear_classifier_has_sklearn_shaped_coef(n_classes):
    X, y = _classification(n_classes=n_classes)
    X = X * 7.0 + 2.0
    clf = MLPClassifier((), epochs=5, random_state=0).fit(X, y)
    rows = 1 if n_classes == 2 else n_classes
    assert clf.coef_.shape == (rows, 3) and clf.intercept_.shape == (rows,)
    logits = X @ clf.coef_.T + clf.intercept_
    expected = clf._outputs(X).double().numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_coef_is_absent_for_a_network_with_hidden_layers():
    X, y = _classification()
    clf = MLPClassifier((4,), epochs=1, random_state=0).fit(X, y)
    assert not hasattr(clf, "coef_") and not hasattr(clf, "intercept_")
    with pytest.raises(AttributeError, match=r"hidden_layer_sizes=\(\) \(a linear model\)"):
        clf.coef_  # noqa: B018


def test_a_cosine_schedule_anneals_the_learning_rate_over_the_epochs(monkeypatch):
    X, y = _regression()
    seen = []
    reg = MLPRegressor((), learning_rate_schedule="cosine", epochs=4, random_state=0)
    original = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    reg.fit(X, y)
    per_epoch = sorted(set(seen), reverse=True)
    np.testing.assert_allclose(per_epoch, [1e-3, 1e-3 * 0.8535534, 5e-4, 1e-3 * 0.1464466])


# --------------------------------------------------------------------------- warm start


def test_warm_start_continues_from_the_weights():
    X, y = _classification()
    clf = MLPClassifier((8,), epochs=3, random_state=0, warm_start=True).fit(X, y)
    first = clf.layer_weights_[0]["weight"].copy()
    loss_before = clf.history_[-1]["data_loss"]
    clf.fit(X, y)
    assert [row["epoch"] for row in clf.history_] == [1, 2, 3, 4, 5, 6]
    assert clf.history_[3]["data_loss"] < loss_before * 1.2
    assert not np.array_equal(first, clf.layer_weights_[0]["weight"])
    with pytest.raises(ShrinkageError) as err:
        clf.set_params(hidden_layer_sizes=(4,)).fit(X, y)
    assert str(err.value) == (
        "warm_start=True keeps the trained network, whose layer sizes are [3, 8, 1] (relu); "
        "the parameters and data now ask for [3, 4, 1] (relu). Use warm_start=False to start "
        "over."
    )


def test_l2sp_warm_start_pulls_toward_the_starting_weights():
    X, y = _classification()
    y_shifted = 1 - y  # a different task: free weights move far
    results = {}
    for penalty, strength in (("none", 0.0), ("l2sp", 10.0)):
        clf = MLPClassifier((8,), epochs=3, random_state=0, warm_start=True).fit(X, y)
        start = [w["weight"].copy() for w in clf.layer_weights_]
        clf.set_params(penalty=penalty, strength=strength, epochs=20, learning_rate=0.01)
        clf.fit(X, y_shifted)
        moved = sum(
            float(((w["weight"] - s) ** 2).sum()) for w, s in zip(clf.layer_weights_, start)
        )
        results[penalty] = moved
        if penalty == "l2sp":
            assert clf.history_[-1]["penalty"] == pytest.approx(strength * moved, rel=1e-3)
    assert results["l2sp"] < 0.1 * results["none"]


def test_verbose_shows_the_epochs_with_loss_and_time_left(capsys):
    X, y = _regression()
    MLPRegressor(hidden_layer_sizes=(4,), epochs=20, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()  # not a terminal: a line per tenth
    assert lines[0] == "MLPRegressor: train started (20 epochs)"
    assert lines[-1].startswith("MLPRegressor: train done in 0:0")
    epochs = [line for line in lines if " epochs · loss " in line]
    assert len(epochs) >= 10 and epochs[-1].startswith("MLPRegressor: train 20/20 epochs")
    assert all("overall" in line and "elapsed" in line for line in epochs)
    MLPRegressor(hidden_layer_sizes=(4,), epochs=3).fit(X, y)
    assert capsys.readouterr().out == ""
