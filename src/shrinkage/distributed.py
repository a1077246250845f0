"""Deprecated alias of :mod:`shrinkage.search`'s dask backend (removed in 0.3)."""

from shrinkage._deprecated import forward

__getattr__ = forward(__name__, "shrinkage.search", "shrinkage.search._distributed")
