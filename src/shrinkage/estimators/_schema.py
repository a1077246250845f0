"""The one schema of ``model.json``, with bounds, and the small validator that applies it.

A saved model's JSON is checked here, field by field, before anything is built from it:
types are exact (``true`` is not the integer 1, ``5.0`` is not a layer width, ``"541"`` is
not a list of sizes), every number and list has bounds, and the fields that must agree
(``n_features_in`` and ``feature_names_in``, ``classes`` and their uniqueness, the epoch
counters and the history) are compared. The sub-configurations that have their own
parsers (``params`` through the estimator, ``plan`` through :class:`~shrinkage.plan.Plan`,
``preprocessor`` through :class:`~shrinkage.data.Preprocessor`) are only bounded in size
here; their parsers refuse the rest.

Each refusal is a :class:`SchemaError` naming the field (``'architecture.sizes[1]'``), what
it must be, and the value received (cut short).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shrinkage._names import ACTIVATIONS, TASKS
from shrinkage.training import HISTORY_KEYS

__all__ = ["MAX_PARAMETERS", "MODEL_SCHEMA", "SchemaError", "validate"]

#: The widest layer and the most layers a saved MLP may have.
MAX_WIDTH = 2**20
MAX_LAYERS = 64
#: The most weights and biases a saved MLP may have (4 GiB of float32).
MAX_PARAMETERS = 2**30
#: The most classes, features, history rows and characters of a name.
MAX_CLASSES = 100_000
MAX_FEATURES = MAX_WIDTH
MAX_EPOCHS = 10**7
MAX_TEXT = 2**20
#: The most values (list items and mapping entries, all levels) of a sub-configuration.
MAX_ITEMS = 1_000_000

_SHA256 = re.compile(r"[0-9a-f]{64}")


class SchemaError(ValueError):
    """A field of ``model.json`` that does not fit the schema."""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(where: str, what: str, value: Any) -> SchemaError:
    return SchemaError(f"'{where}' must be {what}; got {_shown(value)}")


Check = Callable[[Any, str], None]


def integer(low: int, high: int) -> Check:
    """An integer (not a bool, not a float) in ``[low, high]``."""

    def check(value: Any, where: str) -> None:
        if type(value) is not int or not low <= value <= high:
            raise _fail(where, f"an integer in [{low}, {high}]", value)

    return check


def number(nullable: bool = False) -> Check:
    """A finite number (int or float, not a bool), or null when ``nullable``."""

    def check(value: Any, where: str) -> None:
        if value is None and nullable:
            return
        if type(value) not in (int, float):
            raise _fail(where, "a number" + (" or null" if nullable else ""), value)

    return check


def text(max_length: int = MAX_TEXT, pattern: re.Pattern | None = None) -> Check:
    """A string of at most ``max_length`` characters (matching ``pattern``)."""

    def check(value: Any, where: str) -> None:
        if not isinstance(value, str) or len(value) > max_length:
            raise _fail(where, f"a string of at most {max_length} characters", value)
        if pattern is not None and not pattern.fullmatch(value):
            raise _fail(where, f"a string matching {pattern.pattern!r}", value)

    return check


def one_of(*choices: Any) -> Check:
    """One of ``choices`` (same type: ``true`` is not ``1``)."""

    def check(value: Any, where: str) -> None:
        if not any(type(value) is type(c) and value == c for c in choices):
            raise _fail(where, f"one of {', '.join(map(repr, choices))}", value)

    return check


def optional(inner: Check) -> Check:
    """null, or what ``inner`` accepts."""

    def check(value: Any, where: str) -> None:
        if value is not None:
            inner(value, where)

    return check


def array(item: Check, low: int, high: int, unique: bool = False) -> Check:
    """A list of ``low`` to ``high`` items, each checked by ``item``."""

    def check(value: Any, where: str) -> None:
        if not isinstance(value, list) or not low <= len(value) <= high:
            raise _fail(where, f"a list of {low} to {high} items", value)
        for i, entry in enumerate(value):
            item(entry, f"{where}[{i}]")
        if unique:
            seen: set = set()
            for i, entry in enumerate(value):
                key = (type(entry), entry)
                if key in seen:
                    raise _fail(f"{where}[{i}]", "distinct from the items before it", entry)
                seen.add(key)

    return check


def obj(fields: Mapping[str, Check], optional_fields: Sequence[str] = ()) -> Check:
    """A mapping with exactly ``fields`` (those in ``optional_fields`` may be absent)."""

    def check(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise _fail(where, "an object", value)
        extra = [key for key in value if key not in fields]
        if extra:
            raise _fail(f"{where}.{extra[0]}" if where else extra[0], "absent (unknown)", "…")
        for key, inner in fields.items():
            name = f"{where}.{key}" if where else key
            if key not in value:
                if key in optional_fields:
                    continue
                raise SchemaError(f"'{name}' is missing")
            inner(value[key], name)

    return check


def bounded(max_items: int = MAX_ITEMS) -> Check:
    """Any JSON object of at most ``max_items`` values in all (its own parser checks it)."""

    def check(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise _fail(where, "an object", value)
        count, stack = 0, [value]
        while stack:
            node = stack.pop()
            if isinstance(node, dict | list):
                children = node.values() if isinstance(node, dict) else node
                count += len(children)
                if count > max_items:
                    raise _fail(where, f"an object of at most {max_items} values", "…")
                stack.extend(children)

    return check


def _label(value: Any, where: str) -> None:
    if type(value) not in (str, int, float, bool) or (
        isinstance(value, str) and len(value) > MAX_TEXT
    ):
        raise _fail(where, "a class label (a string, a number or a bool)", value)


_SCORES = ("train_score", "val_score", "data_loss", "penalty")

#: The schema of ``model.json`` (format versions 1 and 2).
MODEL_SCHEMA = obj(
    {
        "format": one_of("shrinkage.model"),
        "format_version": one_of(1, 2),
        "shrinkage_version": text(100),
        "torch_version": text(100),
        "created": text(100),
        "estimator": text(100),
        "task": one_of(*TASKS),
        "params": bounded(10_000),
        "architecture": obj(
            {
                "sizes": array(integer(1, MAX_WIDTH), 2, MAX_LAYERS + 1),
                "activation": one_of(*ACTIVATIONS),
            }
        ),
        "plan": bounded(),
        "preprocessor": bounded(),
        "classes": optional(
            obj(
                {
                    "values": array(_label, 2, MAX_CLASSES, unique=True),
                    "kind": one_of("b", "i", "u", "f", "U", "O"),
                }
            )
        ),
        "n_features_in": integer(1, MAX_FEATURES),
        "feature_names_in": optional(array(text(), 1, MAX_FEATURES, unique=True)),
        "seed": integer(0, 2**63 - 1),
        "n_iter": integer(0, MAX_EPOCHS),
        "best_epoch": integer(0, MAX_EPOCHS),
        "metrics": obj(
            {"epochs": integer(0, MAX_EPOCHS), **{k: number(nullable=True) for k in _SCORES}}
        ),
        "history": array(
            obj(
                {
                    "epoch": integer(1, MAX_EPOCHS),
                    **{k: number(nullable=True) for k in HISTORY_KEYS if k != "epoch"},
                }
            ),
            0,
            MAX_EPOCHS,
        ),
        "target": optional(text()),
        "weights": obj(
            {
                "file": text(100),
                "sha256": text(64, _SHA256),
                "bytes": integer(0, 8 * MAX_PARAMETERS),
                "tensors": bounded(10_000),
            },
            optional_fields=("bytes",),
        ),
    },
    optional_fields=("shrinkage_version", "torch_version", "created", "target"),
)


def validate(meta: Any) -> None:
    """Check a parsed ``model.json`` against :data:`MODEL_SCHEMA` and its cross-field rules.

    Args:
        meta: the parsed JSON.

    Raises:
        SchemaError: the first field that does not fit, named.
    """
    MODEL_SCHEMA(meta, "")
    sizes = meta["architecture"]["sizes"]
    n_parameters = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    if n_parameters > MAX_PARAMETERS:
        raise _fail("architecture.sizes", f"a network of at most {MAX_PARAMETERS} weights", sizes)
    names = meta["feature_names_in"]
    if names is not None and len(names) != meta["n_features_in"]:
        raise _fail(
            "feature_names_in", f"a list of n_features_in={meta['n_features_in']} names", names
        )
    history = meta["history"]
    if meta["metrics"]["epochs"] != len(history):
        raise _fail("metrics.epochs", f"the length of 'history' ({len(history)})", meta["metrics"])
    last = history[-1]["epoch"] if history else 0
    if meta["n_iter"] > len(history):
        raise _fail("n_iter", f"at most the {len(history)} epochs of 'history'", meta["n_iter"])
    if meta["best_epoch"] > last:
        raise _fail(
            "best_epoch", f"at most the last epoch of 'history' ({last})", meta["best_epoch"]
        )
    epochs = [row["epoch"] for row in history]
    if any(b <= a for a, b in zip(epochs, epochs[1:])):
        raise _fail("history", "rows in increasing epoch order", epochs[:5])
    classes = meta["classes"]
    if classes is not None and meta["task"] == "regression":
        raise _fail("classes", "null for a regression", classes)
    if classes is not None:
        kinds = _LABEL_TYPES[classes["kind"]]
        for i, value in enumerate(classes["values"]):
            if type(value) not in kinds:
                raise _fail(f"classes.values[{i}]", f"of kind {classes['kind']!r}", value)


#: The JSON types of the class labels of each NumPy kind (``O``: mixed labels, as text).
_LABEL_TYPES = {
    "b": (bool,),
    "i": (int,),
    "u": (int,),
    "f": (int, float),
    "U": (str,),
    "O": (str, int, float, bool),
}
