"""Deprecated alias of :mod:`shrinkage.search.engine` (removed in 0.3)."""

from shrinkage._deprecated import forward

__getattr__ = forward(
    __name__,
    "shrinkage.search.engine",
    "shrinkage.search.engine._stack",
    "shrinkage.search.engine._optim",
    "shrinkage.search.engine._penalty",
    "shrinkage.search.engine._loop",
    "shrinkage.search.engine._memory",
)
