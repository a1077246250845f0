"""Deprecated alias of :mod:`shrinkage.analysis` (removed in 0.3)."""

from shrinkage._deprecated import forward

__getattr__ = forward(
    __name__,
    "shrinkage.analysis",
    "shrinkage.analysis._diagnosis",
    "shrinkage.analysis._results",
    "shrinkage.analysis._activations",
    "shrinkage.search._placement",
)
