"""The one exception type a user can cause, and the message conventions it follows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = [
    "ShrinkageError",
    "TrainingDiverged",
    "check_device",
    "check_strength",
    "did_you_mean",
    "one_line",
]

#: Beyond this, float32 penalty math (2 * l2, step * l1 * sqrt(group size), ...) overflows to
#: inf, and inf * 0 at a zero weight is a NaN penalty or gradient.
MAX_STRENGTH = 1e30


#: The longest message a ShrinkageError keeps; longer ones lose their middle (a value read
#: from a tampered file can be megabytes long, and the message must stay one readable line).
MAX_MESSAGE = 600


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` as one line of at most ``limit`` characters.

    Control characters (a newline in a path, a tab, an escape sequence) are written as
    their escapes (``\\n``), so they can neither split the line nor drive the terminal; a
    longer text keeps its start and its end (where the hint is) around ``" … "``.

    Args:
        text: the message.
        limit: the most characters kept.

    Returns:
        The line.

    Example:
        >>> one_line("The data file 'a\\nb.csv' does not exist.")
        "The data file 'a\\\\nb.csv' does not exist."
    """
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(text) > limit:
        head = (limit * 2) // 3
        text = f"{text[:head]} … {text[len(text) - (limit - head - 3) :]}"
    return text


class ShrinkageError(ValueError):
    """An error caused by the user's input: one line naming the argument and the value.

    The CLI turns it into that line on stderr and exit code 2; Python callers can catch it
    as a ``ValueError``. The message is made one line whatever it quotes (see
    :func:`one_line`).
    """

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (one_line(args[0]),)
        super().__init__(*args)


class TrainingDiverged(ShrinkageError):
    """Training blew up: the loss became NaN / infinite, or rose far above where it started.

    Raised by :func:`shrinkage.training.fit_model` (so by every estimator's ``fit``); the
    message names the epoch, the loss and the settings to lower. The CLI adds its options'
    names, and saves nothing.
    """


def did_you_mean(
    name: object, choices: Iterable[object] | Mapping[str, str], limit: int = 3
) -> str:
    """The end of a "no such name" message: ``" Did you mean 'y'?"``, or ``""``.

    Names that equal ``name`` but for case come first, then the close ones: a similarity
    ratio (:class:`difflib.SequenceMatcher`, ``2·M / (len(a) + len(b))`` with ``M`` the
    matching characters, in lower case) of at least 0.7 and within 0.1 of the closest
    name's; at most ``limit`` in all. Every name error of the library
    (columns, plan selectors, penalty names, choices) ends with it.

    Args:
        name: what the user wrote.
        choices: the names that exist, or a mapping from each name (alias) that exists to
            the name to suggest for it (its canonical name).
        limit: the most names to suggest.

    Returns:
        ``" Did you mean 'a'?"`` / ``" Did you mean 'a' or 'b'?"``, or ``""`` when nothing is
        close (or ``name`` is itself a choice).

    Example:
        >>> did_you_mean("Y", ["x1", "x2", "y"])
        " Did you mean 'y'?"
        >>> did_you_mean("elasticnet", ["l1", "l2", "elastic_net"])
        " Did you mean 'elastic_net'?"
        >>> did_you_mean("weigth", ["0.weight", "0.bias", "2.weight"])
        " Did you mean '0.weight' or '2.weight'?"
        >>> did_you_mean("zzz", ["l1", "l2"])
        ''
    """
    import difflib

    text = str(name)
    shown = {str(k): str(v) for k, v in choices.items()} if isinstance(choices, Mapping) else {}
    names = list(shown) or list(dict.fromkeys(str(c) for c in choices))
    if text in names:
        return ""
    found = [c for c in names if c.lower() == text.lower()]
    lowered: dict[str, list[str]] = {}
    for c in names:
        lowered.setdefault(c.lower(), []).append(c)
    ratios = {low: difflib.SequenceMatcher(None, text.lower(), low).ratio() for low in lowered}
    best = max(ratios.values(), default=0.0)
    for low in sorted(ratios, key=lambda k: -ratios[k]):
        if ratios[low] >= max(0.7, best - 0.1):
            found += [c for c in lowered[low] if c not in found]
    found = list(dict.fromkeys(shown.get(c, c) for c in found))[:limit]
    if not found:
        return ""
    quoted = [repr(c) for c in found]
    words = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f" Did you mean {words}?"


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


#: The device types a model can train on here ("meta" tensors hold no data).
_DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_device(value: object) -> torch.device:
    """Validate a ``device`` argument: a torch device that exists on this machine.

    Args:
        value: what the user passed (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a device).

    Returns:
        ``torch.device(value)``.

    Raises:
        ShrinkageError: an unparsable device, a device that cannot train (``meta`` holds no
            data, and other backends are not supported), or CUDA / MPS asked for where
            absent.
    """
    import torch  # here, not at the top: the CLI reads this module before torch is needed

    try:
        device = torch.device(value)  # type: ignore[arg-type]
    except (RuntimeError, TypeError, ValueError):
        device = None
    if device is None or device.type not in _DEVICE_TYPES:
        raise ShrinkageError(
            f"The 'device' parameter must be a torch device of type "
            f"{', '.join(map(repr, _DEVICE_TYPES))} (e.g. 'cuda:1'). Got {value!r} instead."
        )
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
