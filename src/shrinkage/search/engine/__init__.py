"""The batched engine: K candidate networks stacked along a leading dimension, trained as one.

A cross-validated search trains the same architecture many times: one copy per
(strength, kind, placement, fold). Trained one after another, a small network spends its
time in Python and kernel launches, not in arithmetic. Here the K copies become *one*
network whose every parameter has a leading candidate dimension, ``(K, *shape)``:

* the forward pass of an :class:`StackedMLP` is one ``torch.baddbmm`` per layer, and its
  backward pass is written out by hand (three batched matrix products per layer, no
  autograd graph); :class:`StackedModule` stacks any ``nn.Module`` from a factory and runs
  it with ``torch.func.functional_call`` under ``torch.vmap`` (autograd backward);
* each candidate has its own training rows (its fold), its own minibatch order and its
  own initialization (both from its integer seed, :func:`shrinkage.models.generators`);
* regularization is two ``(K, L)`` tensors, the L1 and the L2 strength of each candidate
  on each of its ``L`` penalizable weights: a kind (l1, l2, elastic net with a ratio) and a
  placement (which layers) are just different rows, see :func:`layer_strengths`;
* the loss of the stack is the **sum** of the K candidates' mean losses, so each
  candidate's gradient is exactly its own (averaging would scale them by 1/K);
* the optimizers (:class:`StackedOptimizer`: Adam, SGD with momentum) are elementwise,
  so applied to the stacked tensors they are exactly K independent optimizers. Anything
  that couples candidates (global-norm gradient clipping, L-BFGS's line search on the
  summed loss) is refused by :func:`check_elementwise_optimizer`.

Rows and batch counts differ between candidates (folds differ by a row): each step's
minibatches are padded to a common width, each real row weighs ``1 / (rows in that
candidate's batch)`` and a padded row weighs 0, so each candidate's loss is the mean over
*its* rows; a candidate with no batch at a step (its epoch has fewer batches) is not
updated at all — weights, Adam moments and step count stay as they were.

The result equals K single models trained by :func:`shrinkage.training.fit_model` with
the same seeds, rows and penalties (up to float rounding; ``tests/test_engine.py``).

Training can stop, continue and shrink (:class:`StackTrainer`): ``run(epochs)`` continues
from where it stopped (weights, optimizer state, epoch count, minibatch generators), and
``keep(indices)`` removes candidates for real: every parameter, gradient, optimizer buffer
and strength moves to new flat buffers holding only the kept rows, so each later step costs
what the smaller stack costs, and no survivor's trajectory changes
(``tests/test_engine_halving.py``). It works through the flat tensor-major layout of
:class:`_Stack` (``_Stack.take``/``_Stack.keep``), so it serves every stack; a subclass
that derives more per-candidate state from the flat buffers (views, workspaces, autograd
leaves) refreshes it in ``_on_keep``. ``state(k)``/``load_state(k, state)`` export and
restore one candidate's whole training state, so a run can continue in another stack or
process (chunked halving, resume, dask).

Files: ``_stack.py`` (the stacked parameters and forward/backward), ``_optim.py``
(:class:`StackedOptimizer`), ``_penalty.py`` (:class:`StackPenalty`, per-candidate
strengths), ``_loop.py`` (:class:`StackTrainer`, :func:`train_stack`,
:func:`predict_stack`, the minibatches),
``_memory.py`` (how many candidates fit a memory budget).
"""

from shrinkage._names import KINDS
from shrinkage.search.engine._loop import StackTrainer, predict_stack, train_stack
from shrinkage.search.engine._memory import chunk_layout, estimate_bytes, parse_memory
from shrinkage.search.engine._optim import StackedOptimizer
from shrinkage.search.engine._penalty import StackPenalty, layer_strengths, per_layer_strengths
from shrinkage.search.engine._settings import TrainSettings, check_elementwise_optimizer
from shrinkage.search.engine._stack import StackedMLP, StackedModule

__all__ = [
    "KINDS",
    "StackPenalty",
    "StackedMLP",
    "StackedModule",
    "StackedOptimizer",
    "StackTrainer",
    "TrainSettings",
    "check_elementwise_optimizer",
    "chunk_layout",
    "estimate_bytes",
    "layer_strengths",
    "parse_memory",
    "per_layer_strengths",
    "predict_stack",
    "train_stack",
]
