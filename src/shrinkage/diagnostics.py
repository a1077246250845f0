"""Deprecated alias of :mod:`shrinkage.analysis` (weight_table; removed in 0.3)."""

from shrinkage._deprecated import forward

__getattr__ = forward(__name__, "shrinkage.analysis", "shrinkage.analysis._weights")
