"""The report's figures: each drawn into a pyplot-free Figure and embedded as a PNG."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

from shrinkage.analysis import (
    as_text,
    is_per_layer,
    layer_indices,
    layer_weights,
    placement_table,
)
from shrinkage.errors import ShrinkageError
from shrinkage.report._files import (
    ReportInputs,
    is_plane,
)
from shrinkage.report._markup import _e, _table

_DPI = 100


#: fixed margins in inches instead of a layout engine: constrained or tight layout measures
#: every tick label and would take most of the report's time budget.
_MARGINS = {"left": 0.75, "right": 0.2, "bottom": 0.55, "top": 0.35, "wspace": 0.3}


def _figure_html(
    draw: Callable[[Any], Any],
    figsize: tuple[float, float],
    caption: str,
    alt: str,
    **margins: float,
) -> str:
    """Draw into a pyplot-free Figure and embed it as a base64 PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=_DPI)
    inches = {**_MARGINS, **margins}
    width, height = figsize
    fig.subplots_adjust(
        left=inches["left"] / width,
        right=1 - inches["right"] / width,
        bottom=inches["bottom"] / height,
        top=1 - inches["top"] / height,
        wspace=inches["wspace"],
    )
    try:
        draw(fig)
    except ShrinkageError as err:
        return f'<p class="note">{_e(caption)}: not drawn ({_e(err)})</p>'
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{encoded}" alt="{_e(alt)}" '
        f'width="{round(figsize[0] * _DPI)}" height="{round(figsize[1] * _DPI)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _one_strength(frame: Any) -> bool:
    """Results whose configurations are one strength each, all trained to the end: the
    curves against λ apply (not per-layer strengths, not halving's unequal epochs)."""
    return "param_strength" in frame and "rung" not in frame and not is_per_layer(frame)


def _figures_html(inputs: ReportInputs) -> str:
    from shrinkage import analysis

    parts = []
    frame = inputs.results
    if frame is not None and _one_strength(frame):
        parts.append(
            _figure_html(
                lambda fig: analysis.plot_validation_curve(
                    frame, fig.add_subplot(), chosen=inputs.chosen_row()
                ),
                (7.5, 4.4),
                "Validation curve: mean train (dashed) and cross-validated (solid, ±1 std band) "
                "score against λ. Star: the chosen configuration; open circle: the strongest "
                "λ within one standard error of the best.",
                "validation curve",
            )
        )
        if layer_indices(frame):
            parts.append(
                _figure_html(
                    lambda fig: analysis.plot_regularization_path(frame, fig.add_subplot()),
                    (7.5, 4.2),
                    "Regularization path: each layer's weight L2 norm (and, for L1, its "
                    "fraction of zero weights) against λ, for the chosen kind and placement.",
                    "regularization path",
                    right=0.8,
                )
            )
        if (
            "param_placement" in frame
            and as_text(frame["param_placement"]).nunique() > 1
            and layer_indices(frame)
        ):
            parts.append(
                _figure_html(
                    lambda fig: analysis.plot_placement_study(
                        placement_table(frame), fig.add_subplot()
                    ),
                    (7.5, 4.4),
                    "Placement: per-layer weight norms when the penalty is on all layers, "
                    "the hidden layers only, or the output layer only. Penalizing only the "
                    "output layer lets the weight move into the hidden layer.",
                    "placement study",
                )
            )
    if inputs.estimator is not None:
        n_layers = len(layer_weights(inputs.estimator))
        width = min(max(3.6 * n_layers, 7.0), 10.0)
        parts.append(
            _figure_html(
                lambda fig: analysis.plot_weight_histograms(
                    inputs.estimator,
                    inputs.baseline,
                    fig.subplots(1, n_layers, squeeze=False)[0],
                ),
                (width, 3.0),
                "Weights per layer: the chosen model (red outline)"
                + (" over the unregularized fit (grey)." if inputs.baseline is not None else "."),
                "weight histograms",
                left=0.6,
                top=0.3,
                wspace=0.25,
            )
        )
        if getattr(inputs.estimator, "history_", None):
            parts.append(
                _figure_html(
                    lambda fig: analysis.plot_learning_curves(inputs.estimator, fig.subplots(1, 2)),
                    (8.5, 3.4),
                    "Learning curves of the refit model: the data loss and the penalty "
                    "λ·Ω(W) apart (left); train score, and validation score when the fit held "
                    "rows out (right).",
                    "learning curves",
                    wspace=0.28,
                )
            )
        if is_plane(inputs.X):
            pair = hasattr(inputs.baseline, "predict")
            models = [inputs.baseline, inputs.estimator] if pair else [inputs.estimator]
            names = ["unregularized", "chosen"] if pair else ["chosen"]

            def boundaries(fig: Any) -> None:
                axes = fig.subplots(1, len(models), squeeze=False)[0]
                for axis, model, name in zip(axes, models, names):
                    analysis.plot_decision_boundary(model, inputs.X, inputs.y, axis)
                    axis.set_title(f"Decision boundary: {name}")

            parts.append(
                _figure_html(
                    boundaries,
                    (10.0, 4.2) if pair else (6.0, 4.6),
                    (
                        "Decision boundaries of the unregularized and the chosen model on "
                        "the data rows: the penalty smooths the boundary."
                        if pair
                        else "Decision boundary of the chosen model on the data rows."
                    ),
                    "decision boundary",
                    right=0.1,
                    wspace=0.35,
                )
            )
    return "".join(parts) or '<p class="note">Nothing to draw.</p>'


def _per_layer_html(inputs: ReportInputs) -> str:
    """The per-layer choice: the top configurations' strengths, and each rung's survivors.

    Empty unless the results come from a per-layer search or successive halving.
    """
    from shrinkage import analysis

    frame = inputs.results
    if frame is None:
        return ""
    per_layer, halving = is_per_layer(frame), "rung" in frame
    parts = []
    if per_layer:
        n_top = min(20, len(frame))
        parts.append(
            _figure_html(
                lambda fig: analysis.plot_layer_strengths(frame, fig.add_subplot(), top=n_top),
                (7.5, 4.4),
                f"The {n_top} best configurations by mean CV score"
                + (" among those trained to the end" if halving else "")
                + ": each line is one configuration, its strength on every layer (log axis; "
                "'none': that layer is not penalized), coloured by its CV score. Red: the "
                "chosen one.",
                "per-layer strengths",
                left=0.95,
                right=0.3,
            )
        )
    if halving:
        parts.append(
            _figure_html(
                lambda fig: analysis.plot_rungs(frame, fig.add_subplot()),
                (7.5, 4.4),
                "Successive halving: every configuration's fold-mean validation score at each "
                "rung it reached (grey: dropped there; blue: trained to the end; red: chosen). "
                "Below each rung: epochs, configurations trained → kept.",
                "successive halving rungs",
                bottom=0.8,
            )
        )
        table = analysis.rung_table(frame)
        rows = [
            [int(r.rung), int(r.epochs), int(r.trained), int(r.kept), r.best, r.median]
            for r in table.itertuples()
        ]
        parts.append(
            "<h3>Rungs</h3>"
            + _table(rows, ("rung", "epochs", "trained", "kept", "best score", "median score"))
            + '<p class="note">At each rung the drawn configurations are ranked by fold-mean '
            "validation score (ties: validation loss); the best ⌈n / η⌉ train on, the "
            "others leave the stack; the single-λ grid's configurations are kept unless "
            "keep_grid=False. The choice is made among the last rung's.</p>"
        )
    return "".join(parts)
