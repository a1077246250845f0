"""The estimators' saved form: their parameters and classes as plain JSON values.

A :class:`~shrinkage.Penalty` parameter is written with its registry serialization, tuples
as lists, NaN and inf as null; every function here has its inverse.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from shrinkage import penalties as P
from shrinkage._names import CLASSIFICATION
from shrinkage.data import Preprocessor
from shrinkage.errors import ShrinkageError
from shrinkage.models import MLP
from shrinkage.penalties import Penalty
from shrinkage.plan import Plan

# --------------------------------------------------------------------------- saved config (JSON)


def finite_or_none(value: Any) -> Any:
    """JSON has no NaN / inf: they are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def penalty_spec_to_json(spec: Any) -> Any:
    if isinstance(spec, Penalty):
        return {"penalty_object": P.serialize(spec)}
    if isinstance(spec, tuple):
        return list(spec)
    return spec


def penalty_spec_from_json(spec: Any) -> Any:
    if isinstance(spec, dict) and "penalty_object" in spec:
        return P.deserialize(spec["penalty_object"])
    if isinstance(spec, list):
        return tuple(spec)
    return spec


def params_to_json(params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    out["hidden_layer_sizes"] = [int(h) for h in np.atleast_1d(params["hidden_layer_sizes"])]
    out["penalty"] = penalty_spec_to_json(params["penalty"])
    placement = params["placement"]
    out["placement"] = placement if isinstance(placement, str) else [int(i) for i in placement]
    layers = params["layer_penalties"]
    out["layer_penalties"] = (
        None
        if layers is None
        else {str(int(k)): penalty_spec_to_json(v) for k, v in layers.items()}
    )
    state = params["random_state"]
    # A RandomState object cannot be written; the seed it gave is saved as "seed".
    out["random_state"] = state if state is None or isinstance(state, int) else None
    for key, value in out.items():
        out[key] = value.item() if isinstance(value, np.generic) else value
    return out


def params_from_json(params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    out["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    out["penalty"] = penalty_spec_from_json(params["penalty"])
    if isinstance(params["placement"], list):
        out["placement"] = tuple(params["placement"])
    layers = params["layer_penalties"]
    if layers is not None:
        out["layer_penalties"] = {int(k): penalty_spec_from_json(v) for k, v in layers.items()}
    return out


def classes_to_json(classes: np.ndarray) -> dict[str, Any]:
    values = classes.tolist()
    kind = classes.dtype.kind
    if kind == "O" and all(isinstance(v, str) for v in values):
        kind = "U"
    return {"values": values, "kind": kind}


def classes_from_json(entry: Any) -> np.ndarray:
    values, kind = entry["values"], entry["kind"]
    if kind == "U":
        return np.array(values, dtype=object)
    if kind in "biuf":
        return np.array(
            values, dtype={"b": bool, "i": np.int64, "u": np.uint64, "f": np.float64}[kind]
        )
    return np.array(values, dtype=object)


def to_config(self: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """An estimator's ``model.json`` content (JSON values) and its weights."""
    model: MLP = self.model_
    history = [{key: finite_or_none(value) for key, value in row.items()} for row in self.history_]
    last = history[-1] if history else {}
    feature_names = getattr(self, "feature_names_in_", None)
    config = {
        "task": self._task,
        "params": params_to_json(self.get_params(deep=False)),
        "architecture": {"sizes": list(model.sizes), "activation": model.activation_name},
        "plan": self.plan_.get_config(),
        "preprocessor": self.preprocessor_.to_config(),
        "classes": classes_to_json(self.classes_) if hasattr(self, "classes_") else None,
        "n_features_in": int(self.n_features_in_),
        "feature_names_in": None if feature_names is None else [str(n) for n in feature_names],
        "seed": int(self.seed_),
        "n_iter": int(self.n_iter_),
        "best_epoch": int(self.best_epoch_),
        "metrics": {
            "epochs": len(history),
            "train_score": last.get("train_score"),
            "val_score": last.get("val_score"),
            "data_loss": last.get("data_loss"),
            "penalty": last.get("penalty"),
        },
        "history": history,
    }
    return config, dict(model.state_dict())


def architecture(cls: type, config: dict[str, Any]) -> tuple[list[int], str, Any]:
    """The layer sizes and activation of a saved model, checked against its parameters."""
    architecture = config["architecture"]
    sizes = [int(s) for s in architecture["sizes"]]
    activation = str(architecture["activation"])
    estimator = cls(**params_from_json(config["params"]))
    settings = estimator._resolve_params()
    if len(sizes) < 2 or sizes[1:-1] != list(settings.hidden) or activation != settings.activation:
        raise ShrinkageError(
            f"the architecture {sizes} ({activation}) does not match the parameters "
            f"hidden_layer_sizes={settings.hidden}, activation={settings.activation!r}"
        )
    return sizes, activation, estimator


def expected_tensors(cls: type, config: dict[str, Any]) -> tuple[dict[str, tuple[int, ...]], str]:
    """The tensors a saved model's weights file must hold, and the architecture's text."""
    sizes, _, _ = architecture(cls, config)
    expected: dict[str, tuple[int, ...]] = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        expected[f"layers.{i}.weight"] = (n_out, n_in)
        expected[f"layers.{i}.bias"] = (n_out,)
    return expected, str(sizes)


def from_config(
    cls: type, config: dict[str, Any], tensors: dict[str, torch.Tensor], device: torch.device
) -> Any:
    """The fitted estimator from a saved model's JSON content and weights."""
    sizes, activation, estimator = architecture(cls, config)
    model = MLP(sizes[0], sizes[1:-1], sizes[-1], activation)
    model.load_state_dict(tensors)
    preprocessor = Preprocessor.from_config(config["preprocessor"])
    plan = Plan.from_config(config["plan"])
    plan.resolve(model)
    history = list(config["history"])
    n_features_in = int(config["n_features_in"])
    classes = None if config.get("classes") is None else classes_from_json(config["classes"])
    if preprocessor.n_features_out_ != sizes[0]:
        raise ShrinkageError(
            f"the preprocessor gives {preprocessor.n_features_out_} features but the network "
            f"takes {sizes[0]}"
        )
    columns = [str(name) for name in preprocessor.feature_names_in_]
    if n_features_in != len(columns):
        raise ShrinkageError(
            f"'n_features_in' is {n_features_in} but the preprocessor reads {len(columns)} columns"
        )
    names = config.get("feature_names_in")
    if names is not None and list(names) != columns:
        raise ShrinkageError(
            "'feature_names_in' does not list the columns the preprocessor reads, in its order"
        )
    estimator._check_saved_outputs(classes, sizes[-1])
    if classes is not None and cls._task == CLASSIFICATION:
        estimator.classes_ = classes
    estimator.model_ = model.to(device)
    estimator.preprocessor_ = preprocessor
    estimator.plan_ = plan
    estimator.history_ = history
    estimator.n_features_in_ = n_features_in
    if config.get("feature_names_in") is not None:
        estimator.feature_names_in_ = np.array(config["feature_names_in"], dtype=object)
    estimator.seed_ = int(config["seed"])
    estimator.n_iter_ = int(config["n_iter"])
    estimator.best_epoch_ = int(config["best_epoch"])
    estimator.layer_weights_ = estimator._layer_weights()
    return estimator
