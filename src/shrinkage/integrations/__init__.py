"""Integrations with training frameworks and loggers, each behind an optional extra.

* ``shrinkage.integrations.lightning``: ``ShrinkageCallback`` for a ``lightning.pytorch``
  ``Trainer`` (``pip install shrinkage[lightning]``).
* ``shrinkage.integrations.skorch``: the ``Shrinkage`` callback and ``RegularizedNet*``
  classes for skorch nets (``pip install shrinkage[skorch]``).
* ``shrinkage.integrations.tensorboard``: ``log_weights`` to a ``SummaryWriter``
  (``pip install shrinkage[tensorboard]``).

Importing one of them without its package raises :class:`MissingDependency` (a
:class:`~shrinkage.errors.ShrinkageError` that is also an ``ImportError``) naming the
install command. :func:`weight_stats`, what every integration logs, needs nothing extra.
"""

from shrinkage.integrations._common import MissingDependency, weight_stats

__all__ = ["MissingDependency", "weight_stats"]
