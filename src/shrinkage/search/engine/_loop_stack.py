"""The last resort: any module's candidates run one after the other, in one training loop.

:class:`LoopStack` serves what neither the fused stack nor ``torch.func`` can batch (an
``nn.LSTM`` next to a module without a fused form); each candidate still computes exactly
what it computes alone, and the optimizer step and the penalty update stay one for all K.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from shrinkage.search.engine._stack import (
    _WithBuffers,
    dropout_generator,
)


class LoopStack(_WithBuffers):
    """K copies of any ``nn.Module``, each candidate's forward run after the other's.

    The last resort for what neither the fused stack nor ``torch.func`` can batch: the
    forward pass of candidate ``k`` is ``functional_call(module, params_k + buffers_k,
    x_k[:n_k])`` on its ``n_k`` real rows only (padding is left out, so BatchNorm sees
    exactly the single model's batch), with the global RNG set to the candidate's own
    dropout stream (:func:`dropout_generator`) for the call. So each candidate computes
    exactly what it computes trained alone with ``fit_model(..., dropout_seed=...)``; the
    training loop, the optimizer step and the penalty update are still one for all K.

    Args:
        factory: ``() -> nn.Module``; every call must build the same architecture.
        seeds: one integer seed per candidate (initialization and dropout stream).
        device: where the stack lives.
    """

    uses_row_weights = True

    def __init__(
        self,
        factory: Callable[[], nn.Module],
        seeds: Sequence[int],
        device: str | torch.device = "cpu",
    ) -> None:
        drawn = self._draw_candidates(factory, seeds, device, allow_buffers=True)
        self.template = copy.deepcopy(drawn[int(seeds[0])]).to(device)
        self._rng = [dropout_generator(int(s), self.device).get_state() for s in seeds]
        self._runner = self.template
        self._make_leaves()

    def _on_keep(self, index: Tensor) -> None:
        self._make_leaves()
        self._keep_buffers(index)
        self._rng = [self._rng[int(i)] for i in index.tolist()]

    def random_state(self, k: int) -> Tensor:
        """Candidate ``k``'s dropout stream."""
        return self._rng[k].clone()

    def set_random_state(self, k: int, state: Tensor) -> None:
        """Continue candidate ``k``'s dropout stream from ``state``."""
        self._rng[k] = torch.as_tensor(state, dtype=torch.uint8).cpu().clone()

    def forward(self, x: Tensor, weight: Tensor | None = None) -> Tensor:
        """Outputs ``(K, B, *out)`` for inputs ``(K, B, *in)``; rows weighing 0 are padding
        (their outputs are 0)."""
        k, width = x.shape[:2]
        rows = [width] * k if weight is None else (weight > 0).sum(1).tolist()
        outs: list[Tensor | None] = []
        generator = _default_generator(self.device) if self.template.training else None
        for c in range(k):
            if rows[c] == 0:
                outs.append(None)
                continue
            values = {n: leaf[c] for n, leaf in zip(self.names, self._leaves)}
            values.update({n: b[c] for n, b in zip(self.buffer_names, self.buffers)})
            inputs = x[c, : rows[c]]
            if generator is None:
                outs.append(torch.func.functional_call(self.template, values, (inputs,)))
                continue
            saved = generator.get_state()
            generator.set_state(self._rng[c])
            try:
                outs.append(torch.func.functional_call(self.template, values, (inputs,)))
            finally:
                self._rng[c] = generator.get_state()
                generator.set_state(saved)
        like = next(o for o in outs if o is not None)
        full = []
        for out, n in zip(outs, rows):
            if out is None:
                full.append(like.new_zeros(width, *like.shape[1:]))
            elif n < width:
                full.append(torch.cat([out, out.new_zeros(width - n, *out.shape[1:])]))
            else:
                full.append(out)
        return torch.stack(full)


def _default_generator(device: torch.device) -> torch.Generator:
    """The global generator dropout draws from on ``device``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.default_generators[index]
    return torch.default_generator
