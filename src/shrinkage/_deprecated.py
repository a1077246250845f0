"""Short alias modules for moved modules, kept for one release (optax's habit).

``shrinkage/apply.py`` moved to ``shrinkage/regularizer.py``; the old module is two lines
that forward every attribute (private ones too) to the new home and warn once, at import,
with a :class:`DeprecationWarning` naming the new import path.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["forward"]

#: The release in which the alias modules are removed.
REMOVED_IN = "0.3"


def forward(old: str, *new: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for the alias module ``old`` that looks names up in ``new``.

    Args:
        old: the alias module's name (``__name__``).
        *new: the modules that now hold its contents, searched in order; the first is the
            public one the warning names.

    Returns:
        The ``__getattr__`` function to assign in the alias module.
    """
    warnings.warn(
        f"{old} is deprecated and will be removed in shrinkage {REMOVED_IN}; import from "
        f"{new[0]} instead.",
        DeprecationWarning,
        stacklevel=3,
    )
    modules = [importlib.import_module(name) for name in new]

    def __getattr__(name: str) -> Any:
        for module in modules:
            try:
                return getattr(module, name)
            except AttributeError:
                continue
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    return __getattr__
