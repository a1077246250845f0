"""Deprecated alias of :mod:`shrinkage.search` checkpoints (removed in 0.3)."""

from shrinkage._deprecated import forward

__getattr__ = forward(
    __name__, "shrinkage.search", "shrinkage.search._checkpoint", "shrinkage.search._results"
)
