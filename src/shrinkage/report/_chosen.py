"""What the report says was searched and chosen: the configuration, the search space, the
settings that matter, read from the results, the estimator and the search's metadata.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from shrinkage._names import placement_text
from shrinkage.analysis import (
    grid_rows,
)
from shrinkage.report._files import (
    ReportInputs,
)
from shrinkage.report._markup import _num


def _chosen(inputs: ReportInputs) -> dict[str, Any]:
    """The chosen configuration: the chosen results row, or the estimator's parameters.

    The estimator wins when it is not the row's configuration (the demo shows its own
    regularized network next to a search): the cards must describe the model the figures
    show. The row's CV scores are kept only when they are that model's.
    """
    from_model = _estimator_config(inputs.estimator)
    if inputs.results is None:
        return from_model
    row = inputs.results.iloc[inputs.chosen_row()]
    out = {
        k.removeprefix("param_"): row[k]
        for k in inputs.results.columns
        if str(k).startswith("param_") and not _is_missing(row[k])
    }
    if from_model and not _same_config(from_model, out):
        return from_model
    for key in ("mean_test_score", "std_test_score", "mean_train_score"):
        if key in row:
            out[key] = row[key]
    return out


def _is_missing(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _estimator_config(estimator: Any) -> dict[str, Any]:
    params = _estimator_params(estimator)
    if not params:
        return {}
    layers = estimator.get_params(deep=False).get("layer_penalties")
    if layers:  # every layer named: the per-layer text is the configuration
        return {"layer_penalties": _layers_text(layers, params.get("penalty"))}
    if isinstance(params.get("penalty"), str):
        params["kind"] = params["penalty"]
    if params.get("kind") != "elastic_net":
        params.pop("l1_ratio", None)
    return {k: params[k] for k in ("kind", "strength", "placement", "l1_ratio") if k in params}


def _layers_text(layers: Mapping[int, Any], default: Any) -> str:
    """``layer_penalties`` as ``--layer-penalties`` text (what ``cv_results_`` writes)."""
    from shrinkage import penalties as P
    from shrinkage.estimators import format_layer_penalties

    pairs = []
    for _, spec in sorted(layers.items()):
        if isinstance(spec, P.L2):
            pairs.append(("l2", spec.l2))
        elif isinstance(spec, P.L1):
            pairs.append(("l1", spec.l1))
        elif isinstance(spec, P.ElasticNet):
            pairs.append(("elastic_net", spec.l1 + spec.l2))
        elif isinstance(spec, tuple | list) and len(spec) == 2:
            pairs.append((str(spec[0]), float(spec[1])))
        elif isinstance(spec, int | float):
            pairs.append((str(default), float(spec)))
        else:
            pairs.append(("l2", 0.0) if spec is None else (repr(spec), 1.0))
    return format_layer_penalties(pairs)


def _same_layers(left: str, right: str) -> bool:
    from shrinkage.estimators import parse_layer_penalties

    a, b = parse_layer_penalties(str(left)), parse_layer_penalties(str(right))
    if a.keys() != b.keys():
        return False
    for i, x in a.items():
        y = b[i]
        if (x is None) != (y is None):
            return False
        if x is not None and (x[0] != y[0] or not math.isclose(x[1], y[1], rel_tol=1e-6)):
            return False
    return True


def _same_config(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if "layer_penalties" in a or "layer_penalties" in b:
        if "layer_penalties" not in a or "layer_penalties" not in b:
            return False
        return _same_layers(a["layer_penalties"], b["layer_penalties"])
    for key in ("kind", "strength", "placement", "l1_ratio"):
        if key not in a or key not in b:
            continue
        left, right = a[key], b[key]
        if key in ("strength", "l1_ratio"):
            if not math.isclose(float(left), float(right), rel_tol=1e-9, abs_tol=1e-12):
                return False
        elif placement_text(left) != placement_text(right):
            return False
    return True


def _estimator_params(estimator: Any) -> dict[str, Any]:
    if estimator is None or not hasattr(estimator, "get_params"):
        return {}
    return {
        k: v
        for k, v in estimator.get_params(deep=False).items()
        if isinstance(v, str | int | float | bool | tuple | list | type(None))
    }


def _search_space(inputs: ReportInputs) -> dict[str, Any]:
    """What was searched, read from the results, completed by the saved settings."""
    given = dict(inputs.search_space)
    space: dict[str, Any] = {}
    frame = inputs.results
    if frame is not None:
        grid = frame[grid_rows(frame)]
        refined = len(frame) - len(grid)
        space["configurations"] = f"{len(grid)}" + (f" + {refined} refined" if refined else "")
        for column in ("param_strength", "param_kind", "param_placement", "param_l1_ratio"):
            if column in grid:
                values = grid[column].dropna().unique().tolist()
                if column == "param_strength":
                    values = sorted(float(v) for v in values)
                if values:
                    space[column.removeprefix("param_")] = values
        splits = [c for c in frame.columns if re.fullmatch(r"split\d+_test_score", str(c))]
        if splits:
            space["folds"] = len(splits)
            space["models trained"] = len(frame) * len(splits)
        if "mean_fit_time" in frame and splits:
            total = float(frame["mean_fit_time"].sum()) * len(splits)
            space["training time"] = (
                f"{total:.3g} s for {len(frame) * len(splits)} models trained in stacks "
                f"({total / (len(frame) * len(splits)):.2g} s per model: a stack's time shared "
                "among its candidates)"
            )
    # The saved settings say what the results cannot (scoring, choice rule); the lists the
    # results already show are not repeated.
    for key, plural in (
        ("strength", "strengths"),
        ("kind", "kinds"),
        ("placement", "placements"),
        ("l1_ratio", "l1_ratios"),
    ):
        value = given.pop(plural, None)
        if key not in space and value is not None:
            space[key] = value
    if "elastic_net" not in [str(k) for k in space.get("kind", [])]:
        space.pop("l1_ratio", None)
    n_splits = given.pop("n_splits", None)
    cv = given.pop("cv", None)
    if "folds" not in space and (n_splits or cv) is not None:
        space["folds"] = n_splits or cv
    if "one_standard_error" in given:
        one_se = bool(given.pop("one_standard_error"))
        space["choice rule"] = (
            "largest strength within one standard error of the best"
            if one_se
            else "best mean CV score"
        )
    if "refine" in given:
        refine, points = bool(given.pop("refine")), given.pop("refine_points", None)
        epochs = given.pop("refine_epochs", None)
        if refine:
            space["refine"] = f"{points} points around the best" + (
                f", {epochs} more epochs" if epochs else ""
            )
        else:
            space["refine"] = "no"
    given.pop("refine_points", None)
    given.pop("refine_epochs", None)
    space.update(given)
    return space


def _search_label(inputs: ReportInputs) -> str:
    """The search row's label: "chosen…" when it is the shown model, else what it is."""
    row = inputs.results.iloc[inputs.chosen_row()]
    config = {k.removeprefix("param_"): row[k] for k in row.index if str(k).startswith("param_")}
    shown = _estimator_config(inputs.estimator)
    if not shown or _same_config(shown, config):
        return "chosen configuration, cross-validated"
    return (
        f"the search's choice ({config.get('kind', '')} λ={_num(config.get('strength'))} on "
        f"{config.get('placement', '')}), cross-validated"
    )


def _thresholds(inputs: ReportInputs) -> dict[str, float]:
    """A ``baseline_error`` saved with the data (the task's Bayes / human error)."""
    value = inputs.data.get("baseline_error")
    return {"baseline_error": float(value)} if isinstance(value, int | float) else {}


_SETTINGS = (
    ("hidden_layer_sizes", "hidden layers"),
    ("activation", "activation"),
    ("optimizer", "optimizer"),
    ("learning_rate", "learning rate"),
    ("momentum", "momentum"),
    ("epochs", "epochs"),
    ("batch_size", "batch size"),
    ("mode", "penalty applied as"),
    ("early_stopping", "early stopping"),
    ("validation_fraction", "validation fraction"),
    ("patience", "patience"),
    ("impute", "impute missing values"),
    ("device", "device"),
)


def _settings(inputs: ReportInputs) -> dict[str, Any]:
    """The settings that shaped the chosen model, in words; the seed is the search's."""
    params = _estimator_params(inputs.estimator)
    if not params:
        return {}
    out: dict[str, Any] = {}
    for key, label in _SETTINGS:
        if key not in params:
            continue
        value = params[key]
        if key == "momentum" and params.get("optimizer") != "sgd":
            continue
        if key in ("validation_fraction", "patience") and not params.get("early_stopping"):
            continue
        if key == "impute" and not value:
            continue
        if key == "hidden_layer_sizes":
            value = " → ".join(str(n) for n in value) or "none (a linear model)"
        out[label] = "yes" if value is True else "no" if value is False else value
    seed = inputs.search_space.get("random_state")
    if inputs.results is not None and isinstance(seed, int):
        out["seed"] = (
            f"{seed} (the search's random_state: the folds, every candidate and the refit "
            "draw their seeds from it)"
        )
    elif params.get("random_state") is not None:
        out["seed"] = params["random_state"]
    return out
