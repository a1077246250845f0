"""Pieces every ``shrinkage`` subcommand shares: one-line errors, option types, progress,
atomic output files."""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from shrinkage._names import (
    ACTIVATIONS,
    INITS,
    LEARNING_RATE_SCHEDULES,
    MODES,
    OPTIMIZERS,
    TASKS,
)
from shrinkage.errors import ShrinkageError, check_strength, did_you_mean

__all__ = [
    "ESTIMATOR_OPTIONS",
    "Choice",
    "Integer",
    "IntList",
    "Number",
    "OneLineCommand",
    "Status",
    "Strength",
    "check_output_file",
    "console",
    "parse_number",
    "parse_numbers",
    "plural",
]


class OneLineCommand(click.Command):
    """A click command whose usage errors are one line (a ShrinkageError, exit code 2).

    ``shrinkage.cli.main`` prints a ShrinkageError as ``Error: <message>`` on stderr; a
    click usage error would otherwise print the usage block too. A library error that names
    a parameter the command sets from an option (``The 'hidden_layer_sizes' parameter``)
    names the option instead (``The '--hidden' option``).

    Args:
        *args: click's.
        params_from: library parameter name -> the command's parameter name
            (``{"hidden_layer_sizes": "hidden"}``), for the names that differ.
        **kwargs: click's.
    """

    def __init__(self, *args: Any, params_from: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.params_from = dict(params_from or {})

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a ShrinkageError's parameter names become option names."""
        try:
            return super().invoke(ctx)
        except ShrinkageError as err:
            err.args = (self.option_message(str(err)),)
            raise

    def option_message(self, message: str) -> str:
        """``message`` with ``The 'param' parameter`` written as ``The '--option' option``."""
        flags = {p.name: max(p.opts, key=len) for p in self.params if isinstance(p, click.Option)}
        names = {**{name: name for name in flags}, **self.params_from}

        def option(match: re.Match) -> str:
            flag = flags.get(names.get(match.group(1), ""))
            if flag is None:
                return match.group(0)
            return f"The '{flag}' {'option' if match.group(2) == 'parameter' else 'entries'}"

        return re.sub(r"The '(\w+)' (parameter|entries)", option, message)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse as click does, turning a usage error into a one-line ShrinkageError."""
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except ShrinkageError as err:  # an option type's check (Strength, IntList)
            err.args = (self.option_message(str(err)),)
            raise
        except click.UsageError as err:
            message = " ".join(err.format_message().split()).rstrip(".")
            hint = getattr(err, "suggestion", "")
            raise ShrinkageError(f"{message}; see 'shrinkage {self.name} --help'.{hint}") from None


class Choice(click.Choice):
    """``click.Choice`` whose error ends with the close names (``Did you mean 'relu'?``)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The choice, or click's error with :func:`~shrinkage.errors.did_you_mean` attached."""
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as err:
            err.suggestion = did_you_mean(value, [str(c) for c in self.choices])  # type: ignore[attr-defined]
            raise


#: Estimator parameters that ``fit`` and ``tune`` set from options of another name.
ESTIMATOR_OPTIONS = {"hidden_layer_sizes": "hidden", "random_state": "seed"}


# A number as a user types one, in ASCII only: Python's float() also takes "1_000", "１２"
# (full-width digits), "infinity" and surrounding blanks, none of which a CLI should guess at.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")


def parse_number(value: Any, option: str, integer: bool = False) -> float | int:
    """The number written in ``value`` (digits, ``.``, an exponent; ASCII only), or a
    one-line ShrinkageError naming ``option`` and the text received.

    Args:
        value: the text (a number passes through unchanged).
        option: the option's name in the message, e.g. ``"--lr"``.
        integer: accept whole numbers only.

    Returns:
        The ``float`` (or ``int``).
    """
    if not isinstance(value, bool):  # a bool is an int to Python, never a number to a user
        if isinstance(value, int) or (isinstance(value, float) and not integer):
            return value
        if isinstance(value, str) and (_INTEGER if integer else _NUMBER).fullmatch(value):
            number = int(value) if integer else float(value)
            if integer or math.isfinite(number):
                return number
    kind = "an integer" if integer else "a number"
    raise ShrinkageError(f"The '{option}' option must be {kind}. Got {value!r} instead.")


def parse_numbers(text: str | None, option: str) -> list[float] | None:
    """Comma-separated numbers (``1e-4,1e-3``); an empty entry (``1e-3,,1e-2``) is refused."""
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",")]
    if not all(part and _NUMBER.fullmatch(part) for part in parts):
        raise ShrinkageError(
            f"The '{option}' option must be comma-separated numbers like 1e-4,1e-3. "
            f"Got {text!r} instead."
        )
    values = [float(part) for part in parts]
    if not all(math.isfinite(v) for v in values):
        raise ShrinkageError(f"The '{option}' option must hold finite numbers. Got {text!r}.")
    return values


class Number(click.ParamType):
    """A float option, parsed strictly (see :func:`parse_number`)."""

    name = "float"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        """The float, or a one-line ShrinkageError naming the option and the text."""
        return float(parse_number(value, _option_name(param)))


class Integer(click.ParamType):
    """An integer option, parsed strictly (see :func:`parse_number`)."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """The int, or a one-line ShrinkageError naming the option and the text."""
        return int(parse_number(value, _option_name(param), integer=True))


def _option_name(param: click.Parameter | None) -> str:
    if param is None:
        return "value"
    opts = getattr(param, "opts", None) or [param.name or "value"]
    return max(opts, key=len)


class Strength(click.ParamType):
    """A penalty strength on the command line: a finite float ``>= 0``."""

    name = "strength"

    def __init__(self, argument: str) -> None:
        self.argument = argument

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        """The float, or a one-line ShrinkageError naming the option and the text received."""
        number = value
        if isinstance(value, str) and _NUMBER.fullmatch(value):
            number = float(value)
        return check_strength(number, self.argument)


class IntList(click.ParamType):
    """Comma-separated integers ``>= low``, e.g. ``100,50``; ``none`` gives ``()``."""

    name = "ints"

    def __init__(
        self, argument: str, example: str, allow_words: tuple[str, ...] = (), low: int = 0
    ) -> None:
        self.argument = argument
        self.example = example
        self.allow_words = allow_words
        self.low = low

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, ...] | str:
        """A tuple of ints, one of ``allow_words``, or a one-line ShrinkageError."""
        if isinstance(value, tuple):
            return value
        text = str(value).strip()
        if text.lower() in self.allow_words:
            return text.lower()
        if text.lower() in ("none", "", "()"):
            return ()
        parts = [part.strip() for part in text.split(",")]
        if all(re.fullmatch(r"[0-9]+", part) and int(part) >= self.low for part in parts):
            return tuple(int(part) for part in parts)
        words = "".join(f"{w}, " for w in self.allow_words)
        kind = "integers" if self.low <= 0 else f"integers >= {self.low}"
        raise ShrinkageError(
            f"The '--{self.argument}' option must be {words}comma-separated {kind} like "
            f"{self.example}, or none. Got {value!r} instead.{did_you_mean(text, self.allow_words)}"
        )


class Status:
    """One line on a terminal's stderr saying what the command is doing, erased when done.

    Printed at once, before the slow imports (torch, scikit-learn, pandas: seconds), so a
    command answers in well under a second; replaced by :meth:`update`, erased by
    :meth:`clear` or on leaving the ``with`` block. Nothing is written when stderr is not a
    terminal (logs keep only what lasts) or when ``enabled`` is false (``--quiet``). Plain
    escape codes: importing rich for it would cost a tenth of a second.

    Args:
        text: the first line, e.g. ``"Reading data.csv …"``.
        enabled: whether to show anything.
    """

    def __init__(self, text: str, enabled: bool = True) -> None:
        stream = sys.stderr
        self.enabled = enabled and stream.isatty()
        self.stream = stream
        self.shown = False
        self.update(text)

    def update(self, text: str) -> None:
        """Replace the line with ``text``."""
        if self.enabled:
            width = shutil.get_terminal_size().columns
            self.stream.write("\r\x1b[K" + text[: max(10, width - 1)])
            self.stream.flush()
            self.shown = True

    def clear(self) -> None:
        """Erase the line (before other output)."""
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False

    def __enter__(self) -> Status:
        return self

    def __exit__(self, *exc: object) -> None:
        self.clear()


def console(stderr: bool = False) -> Any:
    """A rich console; wide enough for the tables when the output is not a terminal."""
    from rich.console import Console

    probe = Console(stderr=stderr)
    return Console(
        stderr=stderr, width=None if probe.is_terminal else 120, highlight=False, soft_wrap=True
    )


def plural(count: int, word: str) -> str:
    """``"1 epoch"``, ``"2 epochs"``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def check_output_file(
    path: str | os.PathLike, option: str = "--output", inputs: tuple[str, ...] = ()
) -> Path:
    """Check, before any work, that an output file can be written at ``path``.

    :func:`shrinkage._io.check_output_file` (a new path or a writable regular file, not one
    of ``inputs``, in a folder that accepts files), and not inside a saved model's directory
    (whose files belong to the model).

    Args:
        path: the output file.
        option: the option that named it.
        inputs: the files and model directories the command reads.

    Raises:
        ShrinkageError: one line naming the option, the path and the problem.
    """
    from shrinkage._io import check_output_file as check_file
    from shrinkage.estimators import is_model_dir

    target = Path(os.fspath(path))
    folder = Path(os.path.realpath(target.absolute().parent))
    for above in (folder, *folder.parents):
        if is_model_dir(above):
            raise ShrinkageError(
                f"The '{option}' path '{target}' is inside the model directory '{above}', whose "
                "files belong to the model; write it somewhere else."
            )
    return check_file(target, option, inputs=[p for p in inputs if os.path.isfile(p)])


# The data argument and target options of `fit` and `tune`, in --help order.
_DATA_OPTIONS = [
    click.argument("data", metavar="DATA"),
    click.option("--target", "-t", required=True, help="Name of the column to predict."),
    click.option(
        "--task",
        type=Choice(["auto", *TASKS]),
        default="auto",
        show_default=True,
        help="Override the detected task.",
    ),
]


def data_options(command: Callable) -> Callable:
    """Add ``DATA``, ``--target`` and ``--task`` to a command."""
    for option in reversed(_DATA_OPTIONS):
        command = option(command)
    return command


# The network and optimizer options of `fit` and `tune`, in --help order.
_TRAINING_OPTIONS = [
    click.option(
        "--hidden",
        type=IntList("hidden", "100,50", low=1),
        default="100",
        show_default=True,
        help="Hidden layer widths; 'none' for a linear / logistic model.",
    ),
    click.option("--activation", type=Choice(ACTIVATIONS), default="relu", show_default=True),
    click.option("--epochs", type=Integer(), default=200, show_default=True),
    click.option("--batch-size", type=Integer(), default=32, show_default=True),
    click.option(
        "--lr",
        "learning_rate",
        type=Number(),
        default=1e-3,
        show_default=True,
        help="Learning rate.",
    ),
    click.option(
        "--lr-schedule",
        "learning_rate_schedule",
        type=Choice(LEARNING_RATE_SCHEDULES),
        default="constant",
        show_default=True,
        help="Learning rate over the epochs (cosine: down to 0 at the last epoch).",
    ),
    click.option("--optimizer", type=Choice(OPTIMIZERS), default="adam", show_default=True),
    click.option("--momentum", type=Number(), default=0.9, show_default=True, help="SGD momentum."),
    click.option(
        "--weight-init",
        "init",
        type=Choice(INITS),
        default="torch",
        show_default=True,
        help="Initial weights: torch's nn.Linear default, or Keras's Dense "
        "(glorot_uniform, zero biases).",
    ),
    click.option(
        "--standardize/--no-standardize",
        default=True,
        show_default=True,
        help="Scale numeric columns to mean 0, standard deviation 1 (training rows' "
        "statistics); --no-standardize keeps their units, as Keras does.",
    ),
    click.option(
        "--mode",
        type=Choice(MODES),
        default="gradient",
        show_default=True,
        help="How the penalty is applied (proximal: exact zeros for L1).",
    ),
]


def training_options(command: Callable) -> Callable:
    """Add the shared network / optimizer options (``--hidden`` … ``--mode``) to a command."""
    for option in reversed(_TRAINING_OPTIONS):
        command = option(command)
    return command
