"""Deprecated alias of :mod:`shrinkage.estimators` (save, load; removed in 0.3)."""

from shrinkage._deprecated import forward

__getattr__ = forward(__name__, "shrinkage.estimators", "shrinkage.estimators._persistence")
