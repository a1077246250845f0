"""Optional compiled kernel for the fused LSTM (placeholder; filled in below)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

_MODULE: Any = None


def kernel(x: Tensor) -> Any:
    """The compiled module when enabled and ``x`` is a CPU float32 tensor, else None."""
    return None
