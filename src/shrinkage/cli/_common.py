"""Pieces every ``shrinkage`` subcommand shares: one-line errors, option types, progress,
atomic output files."""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from shrinkage._names import ACTIVATIONS, MODES, OPTIMIZERS, TASKS
from shrinkage.errors import ShrinkageError, check_strength

__all__ = [
    "Integer",
    "IntList",
    "Number",
    "OneLineCommand",
    "Strength",
    "TrainingProgress",
    "check_output_file",
    "console",
    "parse_number",
    "parse_numbers",
]


class OneLineCommand(click.Command):
    """A click command whose usage errors are one line (a ShrinkageError, exit code 2).

    ``shrinkage.cli.main`` prints a ShrinkageError as ``Error: <message>`` on stderr; a
    click usage error would otherwise print the usage block too.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse as click does, turning a usage error into a one-line ShrinkageError."""
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as err:
            message = " ".join(err.format_message().split()).rstrip(".")
            raise ShrinkageError(f"{message}; see 'shrinkage {self.name} --help'.") from None


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
    if isinstance(value, bool):
        pass
    elif isinstance(value, int) or (isinstance(value, float) and not integer):
        return value
    elif isinstance(value, str) and (_INTEGER if integer else _NUMBER).fullmatch(value):
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
    """Comma-separated non-negative integers, e.g. ``100,50``; ``none`` gives ``()``."""

    name = "ints"

    def __init__(self, argument: str, example: str, allow_words: tuple[str, ...] = ()) -> None:
        self.argument = argument
        self.example = example
        self.allow_words = allow_words

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
        if all(re.fullmatch(r"[0-9]+", part) for part in parts):
            return tuple(int(part) for part in parts)
        words = "".join(f"{w}, " for w in self.allow_words)
        raise ShrinkageError(
            f"The '--{self.argument}' option must be {words}comma-separated integers like "
            f"{self.example}, or none. Got {value!r} instead."
        )


def console(stderr: bool = False) -> Any:
    """A rich console; wide enough for the tables when the output is not a terminal."""
    from rich.console import Console

    probe = Console(stderr=stderr)
    return Console(
        stderr=stderr, width=None if probe.is_terminal else 120, highlight=False, soft_wrap=True
    )


class TrainingProgress:
    """A rich progress bar that appears only once work has taken longer than ``delay``.

    Use as a context manager; :meth:`callback` fits ``fit_model``'s ``progress`` argument.
    Drawn on stderr; nothing at all when ``enabled`` is false (``--quiet``).

    Args:
        total: the number of steps (epochs).
        description: the label of the bar.
        enabled: whether to show anything.
        delay: seconds of work before the bar is shown.
    """

    def __init__(self, total: int, description: str, enabled: bool, delay: float = 1.0) -> None:
        self.total = total
        self.description = description
        self.enabled = enabled
        self.delay = delay
        self._progress: Any = None
        self._task: Any = None
        self._done = 0
        self._start = time.perf_counter()

    def __enter__(self) -> TrainingProgress:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def set_description(self, description: str) -> None:
        """Change the label (e.g. when a second model starts)."""
        self.description = description
        if self._progress is not None:
            self._progress.update(self._task, description=description)

    def advance(self, steps: int = 1, status: str = "") -> None:
        """Count ``steps`` more steps done; ``status`` is shown after the bar."""
        self._done += steps
        if not self.enabled:
            return
        if self._progress is None:
            if time.perf_counter() - self._start < self.delay:
                return
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[status]}"),
                console=console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                self.description, total=self.total, completed=self._done, status=status
            )
            return
        self._progress.update(self._task, advance=steps, status=status)

    def callback(self, epoch: int, row: dict[str, Any]) -> None:
        """``fit_model``'s progress hook: one epoch done, the loss shown."""
        loss = row.get("total")
        status = f"loss {loss:.4g}" if isinstance(loss, float) and math.isfinite(loss) else ""
        self.advance(1, status)


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
        type=click.Choice(["auto", *TASKS]),
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
        type=IntList("hidden", "100,50"),
        default="100",
        show_default=True,
        help="Hidden layer widths; 'none' for a linear / logistic model.",
    ),
    click.option("--activation", type=click.Choice(ACTIVATIONS), default="relu", show_default=True),
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
    click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="adam", show_default=True),
    click.option("--momentum", type=Number(), default=0.9, show_default=True, help="SGD momentum."),
    click.option(
        "--mode",
        type=click.Choice(MODES),
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
