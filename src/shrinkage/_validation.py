"""Parameter checks shared by the estimators, the search and the engine.

Each check returns the value in its canonical type or raises a one-line
:class:`~shrinkage.errors.ShrinkageError` in scikit-learn's words: "The 'name' parameter
must be ... Got ... instead." NumPy scalars count as the Python numbers they hold; ``bool``
never counts as a number.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from shrinkage.errors import ShrinkageError, did_you_mean

__all__ = [
    "as_list",
    "check_bool",
    "check_choice",
    "check_float",
    "check_int",
    "check_random_state",
    "check_threads",
    "unique",
]

#: Seeds drawn for folds and candidates stay below this (torch and numpy both accept them).
SEED_HIGH = 2**31 - 1


def check_int(value: object, name: str, low: int) -> int:
    """An integer ``>= low`` (a NumPy integer too), as ``int``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ShrinkageError(
            f"The '{name}' parameter must be an integer >= {low}. Got {value!r} instead."
        )
    return int(value)


def check_threads(value: object, name: str = "n_threads") -> int:
    """A thread count: an integer in ``[1, os.cpu_count()]``.

    More threads than CPUs only wait for each other, and an absurd count (``100000``)
    exhausts memory in the OpenMP runtime before any work starts.

    Args:
        value: what the user passed.
        name: the parameter's name in the message (``"--threads"`` on the command line).

    Returns:
        ``int(value)``.

    Raises:
        ShrinkageError: anything else.
    """
    high = max(1, os.cpu_count() or 1)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= high:
        raise ShrinkageError(
            f"The '{name}' parameter must be an integer in [1, {high}] (the CPUs of this "
            f"machine). Got {value!r} instead."
        )
    return int(value)


def check_bool(value: object, name: str) -> bool:
    """``True`` or ``False`` (a NumPy bool too), as ``bool``."""
    if not isinstance(value, bool | np.bool_):
        raise ShrinkageError(
            f"The '{name}' parameter must be True or False. Got {value!r} instead."
        )
    return bool(value)


def check_float(
    value: object,
    name: str,
    low: float,
    high: float,
    shown: str,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    """A finite real number in ``[low, high]`` (``(low`` / ``high)`` when open), as ``float``.

    Args:
        value: what the user passed.
        name: the parameter's name in the message.
        low: the lower bound.
        high: the upper bound (``math.inf``: none).
        shown: the range as the message writes it, e.g. ``"(0, inf)"``.
        open_low: whether ``low`` itself is excluded.
        open_high: whether ``high`` itself is excluded.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    number = float(value) if ok else math.nan  # type: ignore[arg-type]
    above = number > low if open_low else number >= low
    below = number < high if open_high else number <= high
    if not (math.isfinite(number) and above and below):
        raise ShrinkageError(
            f"The '{name}' parameter must be a float in the range {shown}. Got {value!r} instead."
        )
    return number


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """One of ``choices`` (exact string match); the message suggests close names."""
    if not isinstance(value, str) or value not in choices:
        raise ShrinkageError(
            f"The '{name}' parameter must be one of {', '.join(map(repr, choices))}. "
            f"Got {value!r} instead.{did_you_mean(value, choices)}"
        )
    return value


def as_list(value: Any, name: str, kind: Any = str) -> list:
    """A non-empty list whose entries are ``kind`` (a lone string is a list of one)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable) or isinstance(value, bytes):
        raise ShrinkageError(f"The '{name}' parameter must be a list. Got {value!r} instead.")
    items = list(value)
    if not items:
        raise ShrinkageError(f"The '{name}' parameter must hold at least one value. Got [].")
    for item in items:
        if not isinstance(item, kind) or isinstance(item, bool):
            raise ShrinkageError(f"The '{name}' entries have the wrong type. Got {item!r} instead.")
    return items


def unique(items: list) -> list:
    """``items`` without repeats, first occurrences in order (works for unhashable items)."""
    out: list = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def check_random_state(value: Any) -> np.random.RandomState:
    """A NumPy ``RandomState`` from an int seed in ``[0, 2**32 - 1]``, a RandomState or None."""
    if value is None or isinstance(value, np.random.RandomState):
        return np.random.RandomState() if value is None else value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= value < 2**32:
        return np.random.RandomState(int(value))
    raise ShrinkageError(
        "The 'random_state' parameter must be an integer in [0, 2**32 - 1], a numpy "
        f"RandomState or None. Got {value!r} instead."
    )
