"""The batched engine: K candidate networks stacked along a leading dimension, trained as one.

A cross-validated search trains the same architecture many times: one copy per
(strength, kind, placement, fold). Trained one after another, a small network spends its
time in Python and kernel launches, not in arithmetic. Here the K copies become *one*
network whose every parameter has a leading candidate dimension, ``(K, *shape)``:

* the forward pass of an :class:`StackedMLP` is one ``torch.baddbmm`` per layer, and its
  backward pass is written out by hand (three batched matrix products per layer, no
  autograd graph);
* any ``nn.Module`` from a factory is *fused* (:class:`FusedStack`): each layer with
  parameters is replaced by one that computes all K candidates at once (batched GEMMs for
  Linear, im2col + batched GEMM for Conv1d/2d, a shared time loop with batched gate
  products for LSTM/GRU, per-candidate norms, tables, dropout streams and attention
  projections; horizontal fusion, as in HFTA) and the user's own forward runs on it.
  Where a module has no fused form, :class:`StackedModule` runs it with
  ``torch.func.functional_call`` under ``torch.vmap``; where even that cannot run
  (``nn.LSTM`` next to an unsupported module), :class:`LoopStack` runs the candidates one
  after the other. :func:`choose_path` picks the path and says why;
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
that derives more per-candidate state from the flat buffers (views, scratch buffers, autograd
leaves) refreshes it in ``_on_keep``. ``state(k)``/``load_state(k, state)`` export and
restore one candidate's whole training state, so a run can continue in another stack or
process (chunked halving, resume, dask).

Files: ``_stack.py`` (the stacked parameters, the MLP, ``torch.func`` and loop stacks),
``_loop_stack.py`` (one candidate after the other), ``_fused.py`` (the fused stack and the
path choice) with its layers in ``_fused_layers.py``
(Linear, Embedding, norms, dropout), ``_fused_conv.py``, ``_fused_rnn.py`` (LSTM, GRU;
``_lstm_ext.py``, an optional compiled LSTM kernel) and ``_fused_attention.py``, ``_optim.py``
(:class:`StackedOptimizer`), ``_penalty.py`` (:class:`StackPenalty`, per-candidate
strengths), ``_loop.py`` (:class:`StackTrainer`, :func:`train_stack`,
:func:`predict_stack`, the minibatches),
``_memory.py`` (how many candidates fit a memory budget, rows per prediction block).
"""

from shrinkage._names import KINDS
from shrinkage.search.engine._fused import PATHS, FusedStack, StackPath, choose_path
from shrinkage.search.engine._loop import StackTrainer, predict_stack, train_stack
from shrinkage.search.engine._loop_stack import LoopStack
from shrinkage.search.engine._lstm_ext import enable_compiled_lstm, is_compiled_lstm
from shrinkage.search.engine._memory import (
    chunk_layout,
    estimate_bytes,
    parse_memory,
    predict_rows,
)
from shrinkage.search.engine._optim import StackedOptimizer
from shrinkage.search.engine._penalty import StackPenalty, layer_strengths, per_layer_strengths
from shrinkage.search.engine._settings import TrainSettings, check_elementwise_optimizer
from shrinkage.search.engine._stack import StackedMLP, StackedModule

__all__ = [
    "KINDS",
    "PATHS",
    "FusedStack",
    "LoopStack",
    "StackPath",
    "StackPenalty",
    "StackedMLP",
    "StackedModule",
    "StackedOptimizer",
    "StackTrainer",
    "TrainSettings",
    "check_elementwise_optimizer",
    "choose_path",
    "chunk_layout",
    "enable_compiled_lstm",
    "estimate_bytes",
    "is_compiled_lstm",
    "layer_strengths",
    "parse_memory",
    "per_layer_strengths",
    "predict_rows",
    "predict_stack",
    "train_stack",
]
