"""K candidates of any module fused into one wider network, and the choice of a stack's path.

:class:`FusedStack` builds each candidate's module from the factory, lays the parameters
out as every stack does (``(K, *shape)`` views of one flat buffer), deep-copies the module
and replaces each layer that owns parameters by its fused form
(:mod:`~shrinkage.search.engine._fused_layers`, ``_fused_conv``, ``_fused_rnn``,
``_fused_attention``). The user's own ``forward`` then runs on the copy, unchanged, with
the K minibatches folded into the batch dimension.

:func:`choose_path` picks how a factory's candidates train: fused, else ``torch.func``
(:class:`~shrinkage.search.engine._stack.StackedModule`), else one after the other
(:class:`~shrinkage.search.engine._loop_stack.LoopStack`), and says why.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from shrinkage._names import CLASSIFICATION
from shrinkage.errors import ShrinkageError
from shrinkage.search.engine import _fused_attention, _fused_conv, _fused_rnn  # noqa: F401
from shrinkage.search.engine._fused_layers import Unsupported, _Fused, fuse_tree
from shrinkage.search.engine._loop_stack import LoopStack
from shrinkage.search.engine._lstm_ext import is_compiled_lstm
from shrinkage.search.engine._stack import (
    StackedModule,
    _Stack,
    _WithBuffers,
    dropout_generator,
)

#: the paths of a factory's stack, fastest first
PATHS = ("fused", "torch.func", "loop")

#: candidates per chunk at most when fused recurrent layers train on a CPU (see StackPath)
RECURRENT_CHUNK = 32


class FusedStack(_WithBuffers):
    """K candidates of ``factory()`` as one network whose layers compute all K at once.

    Candidate ``k`` starts from ``factory()`` built after ``torch.manual_seed(seeds[k])``
    (the contract of every stack), keeps its own buffers (BatchNorm running statistics) and
    its own dropout stream (:func:`~shrinkage.search.engine._stack.dropout_generator`), and
    sees only its own rows: padded rows (weight 0 in ``forward(x, weight)``) are left out of
    BatchNorm's statistics and of the dropout streams. So candidate ``k`` trained in the
    stack computes what the module computes trained alone by
    :func:`~shrinkage.training.fit_model` with the same seed, rows, penalty and
    ``dropout_seed``, up to float rounding (``tests/test_fused.py``).

    What the layout cannot see is user code that mixes the rows of a batch (``x.mean(0)``,
    a hard-coded batch size): :meth:`check` compares the fused network with every
    candidate's own module, and :func:`choose_path` falls back when they differ.

    Args:
        factory: ``() -> nn.Module``; every call must build the same architecture.
        seeds: one integer seed per candidate.
        device: where the stack lives.
        channels_last: fused convolutions return channels-last tensors (free, and faster
            for the next convolution and pooling); False gives contiguous ones, for user
            code that calls ``.view`` on a convolution's output.

    Raises:
        Unsupported: a module that holds parameters or buffers and has no fused form.
        ShrinkageError: a factory that does not return a module, or builds different
            architectures.
    """

    uses_row_weights = True

    def __init__(
        self,
        factory: Callable[[], nn.Module],
        seeds: Sequence[int],
        device: str | torch.device = "cpu",
        *,
        channels_last: bool = True,
    ) -> None:
        drawn = self._draw_candidates(factory, seeds, device, allow_buffers=True)
        self._seeds = [int(s) for s in seeds]
        self.dropout_generators = [dropout_generator(s, self.device) for s in self._seeds]
        self.channels_last = channels_last
        self._make_leaves()
        template = copy.deepcopy(drawn[self._seeds[0]]).to(device)
        self._param_ids = {id(p): i for i, (_, p) in enumerate(template.named_parameters())}
        self._buffer_ids = {id(b): i for i, (_, b) in enumerate(template.named_buffers())}
        self.n_rows = 0  # K * B of the current forward: the size of the folded dimension
        self.width = 0  # B
        self.dim_hint: int | None = None  # set by a module that knows its layout
        self._weight: Tensor | None = None
        self._cache: dict[str, object] = {}
        self._calls: dict[object, int] = {}
        self._scratch: dict[tuple, Tensor] = {}
        self.net = self._runner = fuse_tree(template, self)
        self.net.train()
        self._param_ids, self._buffer_ids = {}, {}  # the replaced modules are gone
        kinds = Counter(m.kind for m in self.net.modules() if isinstance(m, _Fused))
        #: the fused layers by kind, e.g. ``{"Conv2d": 2, "Linear": 2}``
        self.fused_layers = dict(kinds)

    # ----------------------------------------------------------------- for the layers

    def param_index(self, p: Tensor) -> int:
        """Position in :attr:`tensors` of a template parameter."""
        return self._param_ids[id(p)]

    def buffer_index(self, b: Tensor) -> int:
        """Position in :attr:`buffers` of a template buffer."""
        return self._buffer_ids[id(b)]

    def batch_dim(self, x: Tensor, trailing: int = 0) -> int:
        """Where the folded batch is in ``x`` (not among its last ``trailing`` dims).

        The enclosing module's hint (a sequence-first transformer says 1); else dim 0 or
        the first other dim of size ``K * B``; else dim 0 when its size is a multiple of K
        (a batch reshaped to ``(K * B * T, ...)`` stays candidate-major).

        Raises:
            Unsupported: no dimension can hold the folded batch.
        """
        n, dims = self.n_rows, x.dim() - trailing
        hint = self.dim_hint
        if hint is not None and hint < dims and x.shape[hint] == n:
            return hint
        for d in range(dims):
            if x.shape[d] == n:
                return d
        if dims and x.shape[0] % self.k == 0:
            return 0
        raise Unsupported(
            f"no dimension of a tensor of shape {tuple(x.shape)} holds the {self.k} "
            f"candidates' batches of {self.width} rows"
        )

    def rows(self) -> list[int] | None:
        """Real rows per candidate in this forward (None: every row is real)."""
        if "rows" not in self._cache:
            w = self._weight
            counts = None if w is None else (w > 0).sum(1).tolist()
            if counts is not None and all(c == self.width for c in counts):
                counts = None
            self._cache["rows"] = counts
        return self._cache["rows"]  # type: ignore[return-value]

    def row_mask(self) -> Tensor | None:
        """``(K, B)`` 1.0 for a real row, 0.0 for padding (None: every row is real)."""
        if "mask" not in self._cache:
            w = self._weight
            real = None if w is None or self.rows() is None else (w > 0).to(w.dtype)
            self._cache["mask"] = real
        return self._cache["mask"]  # type: ignore[return-value]

    def active(self) -> Tensor | None:
        """``(K,)`` 1.0 for a candidate with a batch at this step (None: all have one)."""
        rows = self.rows()
        if rows is None or min(rows) > 0:
            return None
        return torch.tensor([float(r > 0) for r in rows], device=self.device)

    def scratch(self, owner: Hashable) -> Callable[[str, tuple[int, ...]], Tensor]:
        """``(name, shape) -> buffer`` for one call of a layer in this forward.

        A layer's big per-step tensors live in buffers reused from one step (or prediction
        block) to the next: fresh multi-MB tensors cost more in page faults than the
        arithmetic they hold. A buffer stays valid until the same layer's same call in the
        next forward, i.e. through this step's backward pass; a layer called twice in one
        forward gets two sets. What a layer returns is never a scratch buffer or a view of
        one (the user's code may keep it, or change it in place).
        """
        call = self._calls[owner] = self._calls.get(owner, -1) + 1

        def get(name: str, shape: tuple[int, ...]) -> Tensor:
            key = (owner, call, name)
            buf = self._scratch.get(key)
            size = math.prod(shape)
            if buf is None or buf.numel() < size:
                buf = self._scratch[key] = torch.empty(size, device=self.device)
            # an epoch's last, smaller minibatch takes the front of the buffer: replacing
            # it would map its pages afresh twice an epoch (page faults cost more than the
            # step's arithmetic on these sizes)
            return buf[:size].view(shape)

        return get

    # ----------------------------------------------------------------- the stack API

    def _on_keep(self, index: Tensor) -> None:
        """After candidates left the stack (``_Stack.keep``): new leaves on the new flat
        buffers, and the kept candidates' buffers and dropout streams."""
        self._make_leaves()
        self._keep_buffers(index)
        self._scratch.clear()  # sized for the old K
        kept = index.tolist()
        self._seeds = [self._seeds[i] for i in kept]
        self.dropout_generators = [self.dropout_generators[i] for i in kept]

    def random_state(self, k: int) -> Tensor:
        """Candidate ``k``'s dropout stream."""
        return self.dropout_generators[k].get_state()

    def set_random_state(self, k: int, state: Tensor) -> None:
        """Continue candidate ``k``'s dropout stream from ``state``."""
        self.dropout_generators[k].set_state(torch.as_tensor(state, dtype=torch.uint8).cpu())

    def forward(self, x: Tensor, weight: Tensor | None = None) -> Tensor:
        """Outputs ``(K, B, *out)`` for inputs ``(K, B, *in)`` (differentiable).

        ``weight`` ``(K, B)``: the step's row weights; a row of weight 0 is padding.
        """
        k, width = x.shape[:2]
        if k != self.k:
            raise ShrinkageError(f"The stack holds {self.k} candidates; got inputs for {k}.")
        self.n_rows, self.width = k * width, width
        self._weight, self._cache, self._calls = weight, {}, {}
        out = self.net(x.reshape(k * width, *x.shape[2:]))
        if not isinstance(out, Tensor) or out.dim() == 0 or out.shape[0] != k * width:
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise Unsupported(
                f"the module's output {shape} does not keep the batch in its first dimension"
            )
        return out.reshape(k, width, *out.shape[1:])

    @torch.no_grad()
    def check(self, x: Tensor, rtol: float = 1e-4, atol: float = 1e-4) -> float:
        """``max_k |fused(x)[k] - module_k(x[k])|`` in evaluation mode.

        Raises:
            Unsupported: the fused network does not compute each candidate's own function
                (user code that mixes rows of the batch, a hard-coded batch size).
        """
        fused = self.predict(x)
        worst = 0.0
        for k in range(self.k):
            alone = self.module(k).eval()(x[k])
            if not isinstance(alone, Tensor) or alone.shape != fused[k].shape:
                raise Unsupported("the fused output's shape differs from the module's own")
            err = (fused[k] - alone).abs()
            if not bool((err <= atol + rtol * alone.abs()).all()):
                raise Unsupported(
                    f"the fused network differs from the candidates' own modules by "
                    f"{float(err.max()):.3g} (its forward mixes the rows of a batch?)"
                )
            worst = max(worst, float(err.max()))
        return worst


# --------------------------------------------------------------------------- the path


@dataclass(frozen=True)
class StackPath:
    """How a factory's candidates train, and why.

    Attributes:
        name: ``"fused"``, ``"torch.func"`` or ``"loop"`` (:data:`PATHS`).
        reason: one line: what was fused, or why the faster paths could not run.
        channels_last: the fused convolutions' output layout (:class:`FusedStack`).
        max_candidates: the most candidates a chunk should hold, or None (no limit but
            memory): on a CPU, fused recurrent layers keep every step's gates for the
            backward pass, and past about 32 candidates those leave the cache (measured:
            per candidate, a stack of 128 LSTMs costs 1.4x one of 32; ``bench/
            search_networks.py``).
    """

    name: str
    reason: str
    channels_last: bool = True
    max_candidates: int | None = None

    def build(
        self,
        factory: Callable[[], nn.Module],
        seeds: Sequence[int],
        device: str | torch.device = "cpu",
    ) -> _Stack:
        """The stack of this path for ``seeds``."""
        if self.name == "fused":
            return FusedStack(factory, seeds, device, channels_last=self.channels_last)
        if self.name == "torch.func":
            return StackedModule(factory, seeds, device)
        return LoopStack(factory, seeds, device)


def _summary(err: BaseException) -> str:
    """One line of an exception: ``Type: first line of the message`` (<= 160 chars)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, ShrinkageError):
        return text[:160]
    line = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return line if len(line) <= 160 else line[:157] + "..."


def _probe_inputs(X: Tensor, k: int, rows: int) -> Tensor:
    """``(k, rows, *features)``: a different slice of ``X`` for each candidate (rolled)."""
    n = len(X)
    index = torch.stack([(torch.arange(rows) + c * rows) % n for c in range(k)])
    return X.index_select(0, index.view(-1).to(X.device)).view(k, rows, *X.shape[1:])


def _train_step(stack: _Stack, x: Tensor) -> Tensor:
    """One training-mode forward and backward (on a throwaway probe stack)."""
    with torch.enable_grad():
        out = stack.forward(x)  # type: ignore[attr-defined]
        out.float().sum().backward()
    stack.flat_grad.zero_()
    return out.detach()


def choose_path(
    factory: Callable[[], nn.Module],
    X: Tensor,
    *,
    task: str,
    n_outputs: int,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> StackPath:
    """The fastest path that computes each candidate of ``factory`` faithfully.

    On a probe stack of two candidates (seeds 0 and 1) and a few rows of ``X``: the fused
    stack if every layer has a fused form and :meth:`FusedStack.check` passes; else
    ``torch.func`` if a forward and backward run under ``vmap``; else the loop. Then the
    output shape is checked against the task.

    Args:
        factory: ``() -> nn.Module``.
        X: the input rows ``(n, *features)`` (a few are used).
        task: ``"classification"`` or ``"regression"``.
        n_outputs: the outputs the task needs (one logit for a binary target).
        batch_size: rows per probe candidate (at most; the training batch size).
        device: where the probe runs.

    Returns:
        The :class:`StackPath`.

    Raises:
        ShrinkageError: a factory whose module cannot run on ``X`` at all (one line with
            the error), or whose output shape the task cannot use (naming the shape).
    """
    x = _probe_inputs(X, 2, max(1, min(batch_size, len(X), 8)))
    tried: list[str] = []
    for channels_last in (True, False):
        try:
            stack = FusedStack(factory, [0, 1], device, channels_last=channels_last)
            stack.check(x)
            out = _train_step(stack, x)
        except Unsupported as err:
            tried.append(f"no fused form: {_summary(err)}")
            break
        except ShrinkageError:
            raise
        except Exception as err:  # noqa: BLE001 - a torch error in the user's forward
            if channels_last:
                continue  # e.g. .view() on a channels-last convolution output
            tried.append(f"the fused forward fails: {_summary(err)}")
            break
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(stack.fused_layers.items()))
        if not channels_last:
            kinds += "; contiguous convolution outputs"
        if "LSTM" in stack.fused_layers:
            kinds += "; LSTM cell " + ("compiled" if is_compiled_lstm() else "eager")
        recurrent = {"LSTM", "GRU"} & set(stack.fused_layers)
        most = RECURRENT_CHUNK if recurrent and torch.device(device).type == "cpu" else None
        reason = f"every layer has a fused form ({kinds})"
        path = StackPath("fused", reason, channels_last, most)
        return _checked(path, out, task, n_outputs)
    try:
        out = _train_step(StackedModule(factory, [0, 1], device), x)
        return _checked(StackPath("torch.func", tried[0]), out, task, n_outputs)
    except ShrinkageError as err:
        if "buffers" not in str(err) and not isinstance(err, Unsupported):
            raise
        tried.append(f"torch.func cannot stack it: {_summary(err)}")
    except Exception as err:  # noqa: BLE001 - torch.func has no batching rule, ...
        tried.append(f"torch.func cannot run it: {_summary(err)}")
    try:
        out = _train_step(LoopStack(factory, [0, 1], device), x)
    except ShrinkageError:
        raise
    except Exception as err:  # noqa: BLE001
        raise ShrinkageError(
            f"The 'model_factory' module fails on a batch of shape {tuple(x.shape[1:])}: "
            f"{_summary(err)}"
        ) from None
    return _checked(StackPath("loop", "; ".join(tried)), out, task, n_outputs)


def _checked(path: StackPath, out: Tensor, task: str, n_outputs: int) -> StackPath:
    """``path``, once the probe output ``(K, B, *shape)`` fits the task."""
    shape = tuple(out.shape[2:])
    binary = task == CLASSIFICATION and n_outputs == 1
    if shape == (n_outputs,) or (binary and shape == (2,)):
        return path
    if binary:
        expected = "(batch, 1) (one logit) or (batch, 2) (two logits) for a binary target"
    elif task == CLASSIFICATION:
        expected = f"(batch, {n_outputs}) (one logit per class)"
    else:
        expected = "(batch, 1) for a regression target"
    got = ", ".join(["batch", *map(str, shape)])
    raise ShrinkageError(
        f"The 'model_factory' module must return outputs of shape {expected}. Got ({got}) instead."
    )
