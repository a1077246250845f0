"""Deprecated alias of :mod:`shrinkage.regularizer` (removed in 0.3)."""

from shrinkage._deprecated import forward

__getattr__ = forward(__name__, "shrinkage.regularizer")
