"""Memory: how many candidates a stack can hold within a budget."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from typing import Any

from shrinkage.errors import ShrinkageError

#: Rows per forward pass when predicting: bounds the activations kept at once.
PREDICT_ROWS = 4096
#: What one prediction block may allocate, all candidates together. Larger blocks are
#: slower on a CPU, not faster: their tensors leave the caches and glibc maps them fresh
#: (page faults) on every pass (``bench/predict_block.py``).
PREDICT_BYTES = 8 * 2**20
#: ... but at least this many rows per candidate: below it a pass spends more in its
#: per-call work (a recurrent layer's time loop) than the smaller block saves.
PREDICT_MIN_ROWS = 64


def predict_rows(k: int, row_bytes: int | None) -> int:
    """Rows per candidate in one prediction block: ``clip(PREDICT_BYTES // (k * row_bytes),
    PREDICT_MIN_ROWS, PREDICT_ROWS)``, or ``PREDICT_ROWS`` when ``row_bytes`` is unknown.

    Args:
        k: candidates in the stack.
        row_bytes: bytes one candidate's forward allocates per row (the activations).

    Returns:
        Rows per candidate per forward pass.

    Example:
        >>> predict_rows(50, 260)
        645
        >>> predict_rows(18, 14_000)
        64
    """
    if not row_bytes or row_bytes <= 0:
        return PREDICT_ROWS
    fits = PREDICT_BYTES // (max(1, k) * row_bytes)
    return int(min(PREDICT_ROWS, max(PREDICT_MIN_ROWS, fits)))


def estimate_bytes(
    n_params: int,
    widths: Sequence[int],
    k: int,
    batch_size: int,
    n_rows: int,
    predict_rows: int = PREDICT_ROWS,
    autograd: bool = False,
    element_size: int = 4,
    activation_bytes: int | None = None,
) -> int:
    """Peak bytes a stack of ``k`` candidates needs while training and predicting.

    Per candidate: parameters, gradients, two optimizer buffers and the starting weights a
    diverged candidate is measured against (``5 * n_params``), the penalty's temporaries
    (``2 * n_params``), the activations of a minibatch
    (``3 * batch * sum(widths)``, twice that with autograd; or twice the measured
    ``activation_bytes``) and of a prediction block (``2 * min(n_rows, predict_rows) *
    max(widths)``, or the measured bytes per row times half the block), and an epoch's
    padded minibatch indices and weights (``12 * n_rows`` bytes). The data itself is
    counted by the caller.

    Args:
        n_params: parameters of one candidate.
        widths: every layer's width, input included.
        k: candidates.
        batch_size: rows per minibatch.
        n_rows: training rows per candidate.
        predict_rows: rows per prediction block.
        autograd: whether the autograd path runs (it keeps more activations).
        element_size: bytes per float.
        activation_bytes: what autograd keeps for one training minibatch of one candidate
            (:func:`saved_bytes`), when measured.

    Returns:
        Bytes.
    """
    if activation_bytes is None:
        acts = element_size * 3 * batch_size * sum(widths) * (2 if autograd else 1)
        pred = element_size * 2 * min(n_rows, predict_rows) * max(widths)
    else:
        # the saved tensors, and as much again in temporaries and gradients
        acts = 2 * activation_bytes
        pred = activation_bytes * min(n_rows, predict_rows) // (2 * batch_size)
    per = element_size * 7 * n_params + acts + pred + 12 * n_rows
    return int(k * per)


def saved_bytes(stack: Any, x: Any) -> int:
    """Bytes autograd keeps for the backward pass of one training forward of ``stack`` on
    inputs ``x`` ``(K, B, ...)``, besides the parameters, and the outputs' bytes.

    Args:
        stack: an autograd stack (fused, ``torch.func`` or loop).
        x: inputs ``(K, B, *features)``.

    Returns:
        Bytes (each storage counted once).
    """
    import torch

    sizes: dict[int, int] = {}
    params = stack.flat.untyped_storage().data_ptr()

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() != params:
            sizes[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = stack.forward(x)
    return sum(sizes.values()) + out.numel() * out.element_size()


_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
}


def parse_memory(value: int | float | str) -> int:
    """Bytes from ``2GB``, ``"512 MiB"``, ``1.5e9`` or an integer.

    Decimal units (kB, MB, GB, TB: powers of 1000) and binary ones (KiB, MiB, GiB, TiB).

    Args:
        value: a positive number of bytes, or a number with a unit.

    Returns:
        The number of bytes.

    Raises:
        ShrinkageError: anything that is not a positive size.

    Example:
        >>> parse_memory("2GB")
        2000000000
    """
    number: float | None = None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", value)
        if match and match.group(2).lower() in _UNITS:
            number = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if number is None or not 1 <= number < math.inf:
        raise ShrinkageError(
            "The 'max_memory' parameter must be a positive size such as '2GB', '512MiB' or a "
            f"number of bytes. Got {value!r} instead."
        )
    return int(number)


def chunk_layout(
    n_candidates: int, per_candidate: int, shared: int, max_memory: int
) -> tuple[int, int]:
    """How many chunks, and how many candidates each, fit ``max_memory``.

    Args:
        n_candidates: candidates to train.
        per_candidate: bytes one candidate needs (:func:`estimate_bytes`).
        shared: bytes every chunk needs whatever its size (the data).
        max_memory: the budget in bytes.

    Returns:
        ``(n_chunks, candidates_per_chunk)``, balanced (the last chunk may be smaller).

    Raises:
        ShrinkageError: when not even one candidate fits.
    """
    room = max_memory - shared
    if room < per_candidate:
        raise ShrinkageError(
            f"The 'max_memory' parameter is too small: the data needs {shared} bytes and one "
            f"candidate {per_candidate} more. Got max_memory={max_memory} instead."
        )
    most = max(1, room // per_candidate)
    n_chunks = math.ceil(n_candidates / most)
    return n_chunks, math.ceil(n_candidates / n_chunks)
