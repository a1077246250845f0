"""Pure tensor functions: the math under every penalty, constraint and apply mode.

:mod:`shrinkage.functional.penalties` holds each penalty's value, (sub)gradient and
proximal operator, and the in-place list kernels both training engines call;
:mod:`shrinkage.functional.constraints` holds the constraints' projections. Tensor in,
tensor out; the classes in :mod:`shrinkage.penalties` and :mod:`shrinkage.constraints`
only hold hyperparameters and call these.
"""

from shrinkage.functional.constraints import (
    EPSILON,
    max_norm,
    min_max_norm,
    non_neg,
    unit_norm,
)
from shrinkage.functional.penalties import (
    elastic_net,
    elastic_net_add_grad_,
    elastic_net_decay_,
    elastic_net_grad,
    elastic_net_prox,
    elastic_net_prox_,
    exp_abs,
    exp_abs_grad,
    group_lasso,
    group_lasso_grad,
    group_lasso_prox,
    group_norms,
    l1,
    l1_grad,
    l1_prox,
    l2,
    l2_grad,
    l2_prox,
    l2sp,
    l2sp_grad,
    l2sp_prox,
    orthogonal,
    scratch_buffers,
    soft_threshold,
)

__all__ = [
    "EPSILON",
    "elastic_net",
    "elastic_net_add_grad_",
    "elastic_net_decay_",
    "elastic_net_grad",
    "elastic_net_prox",
    "elastic_net_prox_",
    "exp_abs",
    "exp_abs_grad",
    "group_lasso",
    "group_lasso_grad",
    "group_lasso_prox",
    "group_norms",
    "l1",
    "l1_grad",
    "l1_prox",
    "l2",
    "l2_grad",
    "l2_prox",
    "l2sp",
    "l2sp_grad",
    "l2sp_prox",
    "max_norm",
    "min_max_norm",
    "non_neg",
    "orthogonal",
    "scratch_buffers",
    "soft_threshold",
    "unit_norm",
]
