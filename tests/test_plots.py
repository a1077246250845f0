"""shrinkage.plots: each plot function on tiny data, checked through the artists it draws."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.figure import Figure

from shrinkage import analysis as plots
from shrinkage.errors import ShrinkageError
from shrinkage.models import MLP


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def results(kind: str = "l2", placements=("all", "output"), strengths=(0.001, 0.01, 0.1)):
    """A SearchCV-shaped results table: 2 splits, 2 layers; the score peaks at 0.01."""
    rows = []
    for placement in placements:
        for s in strengths:
            mean = 0.9 - 0.05 * abs(math.log10(s) + 2) if s > 0 else 0.8
            rows.append(
                {
                    "param_kind": kind,
                    "param_strength": s,
                    "param_l1_ratio": 0.5 if kind == "elastic_net" else math.nan,
                    "param_placement": placement,
                    "stage": "grid",
                    "split0_test_score": mean - 0.01,
                    "split1_test_score": mean + 0.01,
                    "mean_test_score": mean,
                    "std_test_score": 0.01,
                    "mean_train_score": 0.99 - s,
                    "weight_l2_layer0": 2.0 / (1 + 10 * s),
                    "weight_l2_layer1": 1.0 / (1 + 10 * s),
                    "sparsity_layer0": min(1.0, 5 * s),
                    "sparsity_layer1": min(1.0, 2 * s),
                }
            )
    frame = pd.DataFrame(rows)
    frame["rank_test_score"] = frame["mean_test_score"].rank(ascending=False, method="min")
    return frame


def labels(ax: Axes) -> list[str]:
    return [line.get_label() for line in ax.get_lines()]


# --------------------------------------------------------------------------- validation curve


def test_validation_curve_draws_one_cv_and_train_line_per_placement():
    frame = results()
    ax = plots.plot_validation_curve(frame)
    assert isinstance(ax, Axes)
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "penalty strength λ"
    assert labels(ax)[:4] == ["all CV", "all train", "output CV", "output train"]
    cv = ax.get_lines()[0]
    np.testing.assert_allclose(cv.get_xdata(), [0.001, 0.01, 0.1])
    np.testing.assert_allclose(cv.get_ydata(), frame["mean_test_score"][:3])
    # One ±std band per CV line.
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2
    # The chosen star sits on the best row (ties: the larger strength, placement output).
    star = next(line for line in ax.get_lines() if line.get_label().startswith("chosen"))
    assert star.get_marker() == "*"
    assert star.get_label() == "chosen: λ=0.01"
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (0.01, pytest.approx(0.9))
    # The one-SE rule picks the strongest within 0.01 / sqrt(2): still 0.01 here.
    one_se = next(line for line in ax.get_lines() if line.get_label().startswith("one-SE"))
    assert one_se.get_xdata()[0] == 0.01
    assert ax.get_legend() is not None


def test_validation_curve_marks_zero_strength_refinement_and_a_given_choice():
    frame = results(placements=("all",), strengths=(0.0, 0.01, 0.1))
    refine = frame.iloc[[1]].assign(stage="refine", param_strength=0.02, mean_test_score=0.88)
    frame = pd.concat([frame, refine], ignore_index=True)
    fig, ax = plt.subplots()
    assert plots.plot_validation_curve(frame, ax, train=False, chosen=2) is ax
    assert labels(ax) == ["refined CV", "λ = 0 (CV)", "CV", "chosen: λ=0.1", "one-SE: λ=0.02"]
    zero = ax.get_lines()[1]
    assert zero.get_ydata()[0] == pytest.approx(0.8)  # a horizontal line at the λ=0 score
    refined = ax.get_lines()[0]
    assert refined.get_marker() == "x" and refined.get_linestyle() == "None"


def test_validation_curve_legend_stays_short_with_many_groups():
    frame = pd.concat([results(kind=k, placements=("all", "hidden")) for k in ("l1", "l2")])
    ax = plots.plot_validation_curve(frame.reset_index(drop=True))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:5] == [
        "l1 · all CV",
        "l1 · hidden CV",
        "l2 · all CV",
        "l2 · hidden CV",
        "train (dashed, group colour)",
    ]
    assert sum(line.get_linestyle() == "--" for line in ax.get_lines()) == 5  # 4 curves + key


def test_validation_curve_needs_strengths():
    with pytest.raises(ShrinkageError) as err:
        plots.plot_validation_curve(pd.DataFrame({"mean_test_score": [0.5]}))
    assert str(err.value) == "The search results lack the column 'param_strength'."


# --------------------------------------------------------------------------- regularization path


def test_regularization_path_draws_each_layer_norm():
    ax = plots.plot_regularization_path(results(), placement="all")
    assert labels(ax) == ["layer 0 ‖W‖₂", "layer 1 ‖W‖₂"]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [2 / 1.01, 2 / 1.1, 1.0])
    assert ax.get_title() == "Regularization path (l2 on all)"
    assert len(ax.figure.axes) == 1  # no sparsity axis for L2


def test_regularization_path_adds_sparsity_for_l1():
    ax = plots.plot_regularization_path(results(kind="l1"))
    twin = [a for a in ax.figure.axes if a is not ax]
    assert len(twin) == 1
    assert labels(twin[0]) == ["layer 0 zeros", "layer 1 zeros"]
    np.testing.assert_allclose(twin[0].get_lines()[0].get_ydata(), [0.005, 0.05, 0.5])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "layer 0 ‖W‖₂",
        "layer 1 ‖W‖₂",
        "layer 0 zeros",
        "layer 1 zeros",
    ]


def test_regularization_path_refuses_an_unsearched_placement():
    with pytest.raises(ShrinkageError) as err:
        plots.plot_regularization_path(results(), placement="hidden")
    assert (
        str(err.value)
        == "The 'placement' parameter must be one of all, output. Got 'hidden' instead."
    )


# --------------------------------------------------------------------------- placement study


def test_placement_study_plot_one_style_per_placement():
    table = pd.DataFrame(
        {
            "strength": [0.0, 0.0, 0.1, 0.1, 0.1, 0.1],
            "placement": ["none", "none", "all", "all", "output", "output"],
            "layer": [0, 1, 0, 1, 0, 1],
            "weight_l2": [3.0, 2.0, 1.0, 1.0, 4.0, 0.5],
        }
    )
    ax = plots.plot_placement_study(table)
    assert labels(ax) == [
        "layer 0, λ = 0",
        "layer 0, penalty on all",
        "layer 0, penalty on output",
        "layer 1, λ = 0",
        "layer 1, penalty on all",
        "layer 1, penalty on output",
    ]
    styles = {line.get_label(): line.get_linestyle() for line in ax.get_lines()}
    assert styles["layer 0, penalty on all"] == "-"
    assert styles["layer 0, penalty on output"] == "--"
    assert styles["layer 0, λ = 0"] == ":"
    with pytest.raises(ShrinkageError) as err:
        plots.plot_placement_study(table.drop(columns="layer"))
    assert str(err.value) == "The placement table lacks the column(s) layer."


# --------------------------------------------------------------------------- histograms


def test_weight_histograms_one_panel_per_layer_with_the_baseline_behind():
    chosen, baseline = MLP(3, (5,), 2), MLP(3, (5,), 2)
    axes = plots.plot_weight_histograms(chosen, baseline, bins=10)
    assert len(axes) == 2
    assert [a.get_title() for a in axes] == ["layers.0.weight (5, 3)", "layers.1.weight (2, 5)"]
    first = axes[0]
    # histtype step / stepfilled: one patch per model, counts summing to the weights.
    assert len(first.patches) == 2
    assert [t.get_text() for t in first.get_legend().get_texts()] == ["unregularized", "chosen"]
    assert first.get_legend() is not None and axes[1].get_legend() is None


def test_weight_histograms_into_given_axes_and_bad_shapes():
    fig, axes = plt.subplots(1, 2)
    got = plots.plot_weight_histograms([np.zeros((4, 2)), np.ones((1, 4))], ax=axes)
    assert list(got) == list(axes)
    assert len(axes[0].patches) == 1
    with pytest.raises(ShrinkageError) as err:
        plots.plot_weight_histograms([np.zeros((4, 2))], ax=axes)
    assert (
        str(err.value)
        == "The 'ax' parameter of plot_weight_histograms must hold 1 axes. Got 2 instead."
    )
    with pytest.raises(ShrinkageError) as err:
        plots.plot_weight_histograms([np.zeros((4, 2))], [np.zeros((2, 2))])
    assert str(err.value) == (
        "The 'baseline' weights must have the chosen model's layer shapes [(4, 2)]. "
        "Got [(2, 2)] instead."
    )


# --------------------------------------------------------------------------- learning curves

HISTORY = [
    {
        "epoch": e,
        "data_loss": 1.0 / e,
        "penalty": 0.0 if e == 1 else 0.01,
        "total": 1.0 / e + 0.01,
        "train_score": 0.5 + 0.1 * e,
        "val_loss": 1.2 / e,
        "val_score": 0.5 + 0.05 * e,
    }
    for e in range(1, 5)
]


def test_learning_curves_separate_loss_terms_and_scores():
    loss_ax, score_ax = plots.plot_learning_curves(HISTORY)
    assert labels(loss_ax) == [
        "train data loss",
        "validation data loss",
        "penalty λ·Ω(W)",
        "total",
    ]
    assert loss_ax.get_yscale() == "log"
    penalty = loss_ax.get_lines()[2].get_ydata()
    assert np.isnan(penalty[0]) and penalty[1] == 0.01  # a 0 penalty is left off the log axis
    assert labels(score_ax) == ["train score", "validation score"]
    np.testing.assert_allclose(score_ax.get_lines()[1].get_ydata(), [0.55, 0.6, 0.65, 0.7])
    np.testing.assert_allclose(score_ax.get_lines()[0].get_xdata(), [1, 2, 3, 4])


def test_learning_curves_of_an_estimator_without_validation():
    est = type(
        "Est", (), {"history_": [{**r, "val_loss": None, "val_score": None} for r in HISTORY]}
    )()
    fig = Figure()
    axes = plots.plot_learning_curves(est, fig.subplots(1, 2))
    assert labels(axes[0]) == ["train data loss", "penalty λ·Ω(W)", "total"]
    assert labels(axes[1]) == ["train score"]
    with pytest.raises(ShrinkageError) as err:
        plots.plot_learning_curves([])
    assert str(err.value) == "The 'history' parameter is empty: there is no epoch to plot."


# --------------------------------------------------------------------------- decision boundary


class Threshold:
    """P(class 1) = sigmoid(10 x0): the boundary is the line x0 = 0."""

    classes_ = np.array(["a", "b"])

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-10 * np.asarray(X, dtype=float)[:, 0]))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return self.classes_[(self.predict_proba(X)[:, 1] > 0.5).astype(int)]


def test_decision_boundary_draws_regions_contour_and_points():
    X = np.array([[-1.0, 0.0], [1.0, 1.0], [0.5, -1.0]])
    y = np.array(["a", "b", "b"])
    ax = plots.plot_decision_boundary(Threshold(), X, y, resolution=20)
    # one set of points per class, each with its own marker, named in the legend
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(points) == 2
    np.testing.assert_allclose(points[0].get_offsets(), X[:1])
    np.testing.assert_allclose(points[1].get_offsets(), X[1:])
    shapes = [len(c.get_paths()[0].vertices) for c in points]
    assert shapes[0] != shapes[1]  # a circle and a triangle
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["class a", "class b"]
    # contourf regions + the 0.5 contour: the boundary's vertices lie on x0 = 0.
    boundary = ax.collections[1] if len(ax.collections) > 2 else None
    assert boundary is not None
    vertices = np.concatenate([p.vertices for p in boundary.get_paths() if len(p.vertices)])
    assert np.abs(vertices[:, 0]).max() < 0.1
    assert ax.get_title() == "Decision boundary"
    assert len(ax.figure.axes) == 2  # the colour bar of P(class 1)


def test_decision_boundary_for_a_regressor_on_a_frame_and_bad_width():
    class Linear:
        def predict(self, X):
            return np.asarray(X)[:, 0] + np.asarray(X)[:, 1]

    frame = pd.DataFrame({"u": [0.0, 1.0, 2.0], "v": [1.0, 0.0, 1.0]})
    ax = plots.plot_decision_boundary(Linear(), frame, resolution=10)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("u", "v")
    with pytest.raises(ShrinkageError) as err:
        plots.plot_decision_boundary(Linear(), np.zeros((4, 3)))
    assert str(err.value) == (
        "The 'X' parameter must have exactly 2 feature columns for a decision boundary. "
        "Got shape (4, 3) instead."
    )
