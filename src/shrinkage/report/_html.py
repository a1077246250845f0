"""The HTML report: one self-contained file that shows what regularization did.

:func:`render_html` turns :class:`~shrinkage.report.ReportInputs` into a single HTML page:
every figure is a base64 PNG inside it, the CSS is inline, there is no script, and a
Content-Security-Policy forbids loading anything, so it opens offline, from an e-mail
attachment, on a phone (responsive layout, viewport meta). It states the data, the search
space, the chosen configuration, the convention of lambda, the over-fitting diagnosis, and
shows the figures of :mod:`shrinkage.analysis`. :func:`build_report` writes it.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from shrinkage._io import atomic_write
from shrinkage._names import placement_text
from shrinkage.analysis import (
    Diagnosis,
    activation_summary,
    as_results_frame,
    as_text,
    best_index,
    diagnose_history,
    diagnose_search,
    grid_edge,
    group_columns,
    one_standard_error_index,
)
from shrinkage.errors import ShrinkageError
from shrinkage.report._chosen import (
    _chosen,
    _search_label,
    _search_space,
    _settings,
    _thresholds,
)
from shrinkage.report._figures import _figures_html, _per_layer_html
from shrinkage.report._files import (
    REPORT_FILE,
    ReportInputs,
    load_report_inputs,
)
from shrinkage.report._markup import _CSP, _CSS, _KIND_TERMS, Html, _e, _num, _pairs, _table

_TOP_ROWS = 10
#: scorings whose ``1 - score`` is an error the diagnosis can read (rate or unexplained R²).
_ERROR_SCORINGS = ("accuracy", "balanced_accuracy", "r2")


# --------------------------------------------------------------------------- the sections


def _convention_html(chosen: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    kind = str(chosen.get("kind", "l2")).lower()
    strength = chosen.get("strength")
    lam = float(strength) if strength is not None and not pd.isna(strength) else None
    term = _KIND_TERMS.get(kind, f"λ·Ω(W) ({kind})")
    parts = [
        "<p>Strengths use the <b>Keras meaning</b>: the penalty is added, as written, to the "
        f"<b>mean</b> data loss: <code>J = mean loss + {_e(term)}</code>, summed over the "
        "weight matrices of the regularized layers (biases are not penalized). "
        "<code>L2(λ)</code> adds <code>λ·Σw²</code>, whose gradient is <code>2λ·w</code>.</p>"
    ]
    m = data.get("rows")
    rows = [
        ("Keras / shrinkage", "λ·Σw² added to the mean loss", "λ", _num(lam) if lam else "λ"),
        (
            "course (m examples)",
            "(λ_c / 2m)·Σw²",
            "λ_c = 2m·λ",
            _num(2 * m * lam) + f" (m = {m})" if lam and m else "–",
        ),
        ("torch weight_decay (SGD)", "gradient + wd·w", "wd = 2λ", _num(2 * lam) if lam else "–"),
        (
            "scikit-learn alpha (batch n)",
            "(α / 2n)·Σw²",
            "α = 2n·λ",
            "depends on the batch size n",
        ),
    ]
    parts.append(_table(rows, ("convention", "term", "equivalent", "for the chosen λ")))
    parts.append(
        '<p class="note">The L2 rows are exact equivalents for plain SGD; Adam with '
        "<code>weight_decay</code> differs (AdamW decouples the decay). For L1 the "
        "term is <code>λ·Σ|w|</code> with gradient <code>λ·sign(w)</code>.</p>"
    )
    return "".join(parts)


@dataclass(frozen=True)
class _Headline:
    """The report's verdict: a badge, its colour, and what to do, in one sentence."""

    badge: str
    css: str
    text: str


_BADGE_CSS = {"high variance": "variance", "high bias": "bias", "balanced": "balanced"}


def _badge(headline: _Headline) -> str:
    return f'<span class="badge {headline.css}">{_e(headline.badge)}</span>'


def _cv_headline(inputs: ReportInputs, cv: Diagnosis) -> _Headline:
    """The verdict from the cross-validated evidence: where the chosen λ sits in the grid,
    then the train / validation gap of its row."""
    frame = inputs.results
    row = inputs.chosen_row()
    strength = float(frame["param_strength"].iloc[row]) if "param_strength" in frame else None
    if strength is not None and not math.isfinite(strength):  # a per-layer configuration
        strength = None
    edge = grid_edge(frame, row)
    errors = f"train error {cv.train_error:.1%}, validation error {cv.val_error:.1%}"
    refine = " or rerun with --refine (SearchCV(refine=True)), which then searches past the edge"
    if edge == "upper" and strength is not None:
        return _Headline(
            "λ at the top of the grid",
            "bias",
            f"The best cross-validated λ, {strength:.3g}, is the largest the grid tried, so a "
            "stronger penalty may validate better still: extend the grid upward (shrinkage "
            f"tune --grid-max {10 * strength:g}, or larger strengths in SearchCV){refine}. "
            f"At λ = {strength:.3g}: {errors}.",
        )
    if edge == "lower" and strength is not None:
        return _Headline(
            "λ at the bottom of the grid",
            "bias",
            f"The best cross-validated λ, {strength:.3g}, is the smallest the grid tried, so "
            "a weaker penalty (or none) may validate as well or better: extend the grid "
            f"downward (shrinkage tune --grid-min {strength / 10:g}, or smaller strengths in "
            f"SearchCV){refine}. At λ = {strength:.3g}: {errors}.",
        )
    at = "" if strength is None else f" (λ = {strength:.3g})"
    if cv.verdict == "high variance":
        text = (
            f"The chosen λ{at} is the cross-validated optimum, and its validation error is "
            f"{100 * cv.gap:.1f} points above its train error ({errors}); stronger λ "
            "validated worse, so more data (or a smaller network) is the next step, not "
            "more λ."
        )
    elif cv.verdict == "high bias":
        text = (
            f"The chosen λ{at} is the cross-validated optimum, and its train error is high "
            f"({errors}); weaker λ validated worse, so λ is not what holds the fit back: the "
            "task's own noise or a network too small is."
        )
    else:
        text = (
            f"The chosen λ{at} is the cross-validated optimum, and its train and validation "
            f"errors are close ({errors}): keep it."
        )
    return _Headline(cv.verdict, _BADGE_CSS.get(cv.verdict, "balanced"), text)


def _diagnosis_html(inputs: ReportInputs) -> tuple[str, _Headline | None]:
    """The verdict (from the cross-validated evidence when there is a search) and the table
    of every train / validation comparison the report can make."""
    found: list[tuple[str, Diagnosis, str]] = [
        (where, d, f"{d.direction} λ") for where, d in inputs.diagnoses
    ]
    scoring = str(inputs.search_space.get("scoring") or "accuracy")
    notes, headline = [], None
    if inputs.results is not None and "mean_train_score" in inputs.results:
        if scoring in _ERROR_SCORINGS:
            try:
                cv = diagnose_search(inputs.results, inputs.chosen_row(), **_thresholds(inputs))
            except ShrinkageError as err:
                notes.append(f"Cross-validated scores not diagnosed: {err}")
            else:
                headline = _cv_headline(inputs, cv)
                direction = {
                    "upper": "extend the grid upward",
                    "lower": "extend the grid downward",
                }.get(grid_edge(inputs.results, inputs.chosen_row()) or "", "keep λ (CV optimum)")
                found.append((_search_label(inputs), cv, direction))
        else:
            notes.append(
                f"The search scored with {scoring}, which is not an error rate or R²; "
                "the cross-validated scores are not diagnosed."
            )
    history = getattr(inputs.estimator, "history_", None)
    if history and any(row.get("val_score") is not None for row in history):
        d = diagnose_history(history, **_thresholds(inputs))
        found.append(("refit model, last epoch (validation rows)", d, f"{d.direction} λ"))
    note_html = "".join(f'<p class="note">{_e(n)}</p>' for n in notes)
    if not found:
        return note_html + '<p class="note">No train and validation scores to diagnose.</p>', None
    if headline is None:  # no search: the chosen model's own comparison
        first = next((d for where, d, _ in found if where.startswith("chosen")), found[0][1])
        headline = _Headline(
            first.verdict,
            _BADGE_CSS.get(first.verdict, "balanced"),
            first.advice[0].upper() + first.advice[1:] + ".",
        )
    reference = found[-1][1]
    rows = [
        (where, f"{d.train_error:.2%}", f"{d.val_error:.2%}", f"{100 * d.gap:.1f}", d.verdict, way)
        for where, d, way in found
    ]
    text = (
        f"<p>{_badge(headline)} {_e(headline.text)}</p>"
        + _table(
            rows,
            ("measured on", "train error", "validation error", "gap (points)", "verdict", "λ"),
        )
        + '<p class="note">Error = 1 − score (accuracy or R²). The verdict of a row, checked '
        f"in this order: train error above the baseline error ({reference.baseline_error:.0%}) "
        f"by more than {reference.bias_threshold:.0%} ⇒ high bias; validation error above "
        f"train error by more than {reference.variance_threshold:.0%} ⇒ high variance; "
        "otherwise balanced (1% train vs 11% validation error is high variance). The "
        "headline reads the search: a λ inside the grid with the best cross-validated score "
        "is kept whatever its gap (the grid already tried more and less).</p>" + note_html
    )
    return text, headline


#: Human headers of the results' columns.
_HEADERS = {
    "param_strength": "λ",
    "param_kind": "penalty",
    "param_placement": "placement",
    "param_l1_ratio": "l1 ratio",
    "param_layer_penalties": "layer penalties",
    "rung_epochs": "epochs",
    "stage": "stage",
    "mean_test_score": "CV score",
    "std_test_score": "± std",
    "mean_train_score": "train score",
    "mean_fit_time": "fit time (s)*",
}


def _top_table(inputs: ReportInputs) -> str:
    """The best configurations by mean CV score, the chosen one highlighted (and first
    among rows tied with it)."""
    frame = inputs.results
    chosen, best = inputs.chosen_row(), best_index(frame)
    one_se = one_standard_error_index(frame)
    key = -frame["mean_test_score"].astype(float).fillna(-math.inf)
    if "rank_test_score" in frame and "rung" in frame:  # halving: the final ranking first
        key = frame["rank_test_score"].astype(float).fillna(math.inf)
    # Ties: the chosen row first, then the larger strength (the simpler model), as the search.
    strength = (
        frame["param_strength"].astype(float).fillna(0.0) if "param_strength" in frame else 0.0
    )
    order = frame.assign(
        _score=key, _chosen=frame.index != chosen, _strength=-strength
    ).sort_values(["_score", "_chosen", "_strength"], kind="stable")
    shown = list(order.index[:_TOP_ROWS])
    if chosen not in shown:  # the one-SE choice may rank lower; always show it
        shown.append(chosen)
    params = [c for c in ("param_strength", "param_kind", "param_placement") if c in frame]
    if "param_layer_penalties" in frame:  # a per-layer search: the layers say it all
        params = ["param_layer_penalties", *(["rung_epochs"] if "rung_epochs" in frame else [])]
    params += [c for c in group_columns(frame) if c not in params]
    if "stage" in frame and as_text(frame["stage"]).nunique() > 1:
        params.append("stage")
    scores = [
        c
        for c in ("mean_test_score", "std_test_score", "mean_train_score", "mean_fit_time")
        if c in frame
    ]
    rows, highlight = [], -1
    for position, index in enumerate(shown):
        row = frame.loc[index]
        tags = "".join(
            f'<span class="tag {css}">{text}</span>'
            for text, css, hit in (
                ("chosen", "chosen", index == chosen),
                ("best", "", index == best),
                ("one-SE", "", index == one_se),
            )
            if hit
        )
        if index == chosen:
            highlight = position
        cells = [row[c] for c in params]
        cells = [placement_text(c) if isinstance(c, tuple | list) else c for c in cells]
        rows.append(
            [*cells, *[float(row[c]) for c in scores], Html(f'<span class="tags">{tags}</span>')]
        )
    header = [_HEADERS.get(c, c.removeprefix("param_").replace("_", " ")) for c in params]
    header += [_HEADERS[c] for c in scores] + [""]
    note = ""
    if "mean_fit_time" in scores:
        note = (
            '<p class="note">* The candidates of a chunk train together as one stacked '
            "network, so a row's fit time is its chunk's training time shared out among the "
            "chunk's candidates, not what one model alone would take.</p>"
        )
    return _table(rows, header, highlight=highlight) + note


#: The weight table's columns: key, header, how a value is shown.
_WEIGHT_COLUMNS = (
    ("name", "weight", str),
    ("shape", "shape", lambda v: " × ".join(str(n) for n in v)),
    ("penalty", "penalty", lambda v: "–" if v is None else str(v)),
    ("penalty_value", "penalty term", lambda v: "–" if v is None else float(v)),
    ("l1_norm", "L1 norm", float),
    ("l2_norm", "L2 norm", float),
    ("max_abs", "max |w|", float),
    ("zero_fraction", "zeros", lambda v: f"{v:.1%}"),
    ("small_fraction", "|w| < 0.001", lambda v: f"{v:.1%}"),
)


def _weights_html(inputs: ReportInputs) -> str:
    if inputs.estimator is None:
        return ""
    from shrinkage.analysis import weight_table

    table = weight_table(inputs.estimator)
    if not table:
        return ""
    columns = [c for c in _WEIGHT_COLUMNS if c[0] in table[0]]
    rows = [
        [show(row[key]) for key, _, show in columns] + [f"{row['dead_units']} / {row['units']}"]
        for row in table
    ]
    header = [title for _, title, _ in columns] + ["dead units"]
    return (
        "<h3>Weights of the chosen model</h3>"
        + _table(rows, header)
        + '<p class="note">Penalty term: what the weight adds to the loss (λ·Ω(W)). Dead '
        "units: rows of the matrix that are entirely zero (units that receive no input).</p>"
    )


def _activations_html(inputs: ReportInputs) -> str:
    summary = inputs.activations
    if inputs.estimator is not None and inputs.X is not None:
        try:
            summary = activation_summary(inputs.estimator, inputs.X)
        except ShrinkageError:
            pass  # a linear model has no hidden layer
    if not summary:
        return ""
    rows = [
        [
            f"hidden layer {row['layer']}",
            int(row["units"]),
            int(row["rows"]),
            float(row["mean_activation"]),
            f"{row['fraction_active']:.1%}",
            f"{row['dead_units']} ({row['fraction_dead']:.0%})",
        ]
        for row in summary
    ]
    header = ("layer", "units", "rows", "mean activation", "active", "dead units")
    return (
        "<h3>Hidden activations on the data rows</h3>"
        + _table(rows, header)
        + '<p class="note">A dead unit outputs 0 for every row (a ReLU that never fires: no '
        "gradient reaches its weights).</p>"
    )


#: The estimator settings worth stating (what the cards above do not say), in order.
def _summary_html(inputs: ReportInputs, chosen: Mapping[str, Any], headline: Any) -> str:
    cards = []
    for key, label in (
        ("kind", "penalty"),
        ("strength", "strength λ"),
        ("placement", "placement"),
        ("l1_ratio", "l1_ratio"),
        ("layer_penalties", "per-layer penalties"),
    ):
        if key in chosen:
            cards.append((label, _num(chosen[key]) if key != "kind" else chosen[key]))
    if "mean_test_score" in chosen:
        std = chosen.get("std_test_score")
        cv = _num(chosen["mean_test_score"])
        cards.append(("CV score", cv + (f" ± {_num(std, 2)}" if std is not None else "")))
    if "mean_train_score" in chosen:
        cards.append(("train score", _num(chosen["mean_train_score"])))
    if headline is not None:
        cards.append(("verdict", headline.badge))
    html_cards = "".join(
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div></div>'
        for label, value in cards
    )
    return f'<div class="cards">{html_cards}</div>'


def render_html(inputs: ReportInputs) -> str:
    """The report as an HTML string (see :func:`build_report`)."""
    chosen = _chosen(inputs) if (inputs.results is not None or inputs.estimator) else {}
    diagnosis_text, headline = _diagnosis_html(inputs)
    data = dict(inputs.data)
    if not data and inputs.estimator is not None:
        n_in = getattr(inputs.estimator, "n_features_in_", None)
        if n_in is not None:
            data["features"] = int(n_in)
    settings = _settings(inputs)
    # Pictures before prose: the verdict and the figures come right after the choice.
    sections = [
        ("Chosen configuration", _summary_html(inputs, chosen, headline)),
        ("Diagnosis", diagnosis_text),
        ("Figures", _figures_html(inputs)),
        *(
            [("Per-layer strengths and successive halving", per_layer)]
            if (per_layer := _per_layer_html(inputs))
            else []
        ),
        (
            "Data",
            _pairs(data) if data else '<p class="note">No description of the data was saved.</p>',
        ),
        (
            "Search space",
            _pairs(_search_space(inputs))
            if (inputs.results is not None or inputs.search_space)
            else '<p class="note">No search: a single fit.</p>',
        ),
        ("The convention of λ", _convention_html(chosen, data)),
    ]
    details = _weights_html(inputs) + _activations_html(inputs)
    if settings:
        details += "<h3>Estimator settings</h3>" + _pairs(settings)
    if details:
        sections.append(("The chosen model", details))
    if inputs.results is not None:
        sections.append(("Best configurations by CV score", _top_table(inputs)))
    from shrinkage._version import __version__

    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    body = "".join(f"<section><h2>{_e(t)}</h2>{content}</section>" for t, content in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>{_e(inputs.title)}</title><style>{_CSS}</style></head>"
        f"<body><main><header><h1>{_e(inputs.title)}</h1>"
        f"<p>What weight regularization did · generated {stamp}</p></header>"
        f"{body}<footer>shrinkage {_e(__version__)} · one self-contained file: "
        "no scripts, no network</footer></main></body></html>\n"
    )


def build_report(
    source: Any = None,
    path: str | os.PathLike | None = None,
    *,
    results: Any = None,
    estimator: Any = None,
    baseline: Any = None,
    data: Mapping[str, Any] | None = None,
    search_space: Mapping[str, Any] | None = None,
    X: Any = None,
    y: Any = None,
    title: str | None = None,
) -> Path:
    """Write the self-contained HTML report and return its path.

    Args:
        source: a results directory (``results.csv``, ``model/``, ``search.json``,
            ``baseline.safetensors``), a fitted search (``cv_results_``,
            ``best_estimator_``), a fitted estimator, or ``None`` (keywords only).
        path: where to write (default: ``report.html`` in the results directory;
            required for other sources).
        results: search results (a ``cv_results_`` dict or a DataFrame); overrides.
        estimator: the chosen estimator; overrides.
        baseline: the unregularized fit (histograms); overrides.
        data: the data description (:func:`describe_data`); overrides.
        search_space: what was searched; merged over what the results show.
        X: rows for the decision boundary (2 features) and the activations.
        y: their targets.
        title: the heading.

    Returns:
        The path of the report, written atomically.

    Raises:
        ShrinkageError: no ``path`` for a source that is not a directory, or a directory
            without ``results.csv``.
    """
    if isinstance(source, str | os.PathLike):
        inputs = load_report_inputs(source)
        path = Path(source) / REPORT_FILE if path is None else path
    elif source is None:
        inputs = ReportInputs()
    elif hasattr(source, "cv_results_"):
        index = getattr(source, "best_index_", None)
        inputs = ReportInputs(
            results=as_results_frame(source),
            estimator=getattr(source, "best_estimator_", None),
            chosen_index=None if index is None else int(index),
        )
    elif hasattr(source, "predict"):
        inputs = ReportInputs(estimator=source)
    else:
        raise ShrinkageError(
            "The 'source' parameter must be a results directory, a fitted search or a fitted "
            f"estimator. Got {type(source).__name__} instead."
        )
    if path is None:
        raise ShrinkageError("The 'path' parameter is required unless 'source' is a directory.")
    if results is not None:
        inputs.results = as_results_frame(results)
    for name, value in (("estimator", estimator), ("baseline", baseline), ("X", X), ("y", y)):
        if value is not None:
            setattr(inputs, name, value)
    if data is not None:
        inputs.data = dict(data)
    if search_space is not None:
        inputs.search_space = {**inputs.search_space, **dict(search_space)}
    if title:
        inputs.title = str(title)
    if inputs.results is None and inputs.estimator is None:
        raise ShrinkageError("There is nothing to report: give search results or an estimator.")
    return atomic_write(path, render_html(inputs))
