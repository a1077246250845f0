"""The one exception type a user can cause, and the message conventions it follows."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["ShrinkageError", "check_device", "check_strength"]

#: Beyond this, float32 penalty math (2 * l2, step * l1 * sqrt(group size), ...) overflows to
#: inf, and inf * 0 at a zero weight is a NaN penalty or gradient.
MAX_STRENGTH = 1e30


class ShrinkageError(ValueError):
    """An error caused by the user's input: one line naming the argument and the value.

    The CLI turns it into that line on stderr and exit code 2; Python callers can catch it
    as a ``ValueError``.
    """


def check_strength(value: object, name: str = "strength") -> float:
    """Validate a penalty strength: a finite float in ``[0, inf)``.

    Args:
        value: what the user passed.
        name: the argument's name, used in the message.

    Returns:
        ``float(value)``.

    Raises:
        ShrinkageError: when ``value`` is not a finite non-negative number, or exceeds
            :data:`MAX_STRENGTH` (``1e30``), where float32 penalty math gives inf / NaN.
    """
    try:
        # Strings are refused as Keras and scikit-learn do: "0.1" is a typo, not a number.
        number = None if isinstance(value, str | bytes) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, RuntimeError):
        # OverflowError: an int beyond 1.8e308; RuntimeError: a tensor of several elements.
        number = None
    if isinstance(value, bool) or number is None or not number >= 0 or number == float("inf"):
        raise ShrinkageError(
            f"The '{name}' parameter must be a finite float in the range [0, inf). "
            f"Got {value!r} instead."
        )
    if number > MAX_STRENGTH:
        raise ShrinkageError(
            f"The '{name}' parameter must be at most 1e+30 (larger strengths overflow float32 "
            f"penalty math). Got {value!r} instead."
        )
    return number


def check_device(value: object) -> torch.device:
    """Validate a ``device`` argument: a torch device that exists on this machine.

    Args:
        value: what the user passed (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a device).

    Returns:
        ``torch.device(value)``.

    Raises:
        ShrinkageError: an unparsable device, or CUDA / MPS asked for where absent.
    """
    import torch  # here, not at the top: the CLI reads this module before torch is needed

    try:
        device = torch.device(value)  # type: ignore[arg-type]
    except (RuntimeError, TypeError, ValueError):
        raise ShrinkageError(
            f"The 'device' parameter must be a torch device such as 'cpu' or 'cuda'. "
            f"Got {value!r} instead."
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ShrinkageError(
            f"The 'device' parameter is {value!r} but CUDA is not available on this machine; "
            "use device='cpu'."
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ShrinkageError(
            f"The 'device' parameter is {value!r} but MPS is not available on this machine; "
            "use device='cpu'."
        )
    return device
