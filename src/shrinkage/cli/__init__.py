"""The ``shrinkage`` command: a click group whose subcommands live one per module.

Subcommands are imported lazily, and each command imports torch, scikit-learn and pandas
only inside its function, so ``shrinkage --help`` and ``--version`` answer at once
(``bench/cli_startup.py``). Each command owns its own module (``cli/fit.py``,
``cli/tune.py``, ...; tested in ``tests/test_cli.py`` and ``tests/test_cli_tune.py``). The
multi-step jobs behind ``demo`` and ``tune`` (search, baseline, report) are in
``cli/_workflows.py``; the modules here are not an import API.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from shrinkage._version import __version__
from shrinkage.errors import ShrinkageError, did_you_mean

__all__ = ["main", "cli"]

# name -> "module:attribute"; each attribute is a click.Command.
_COMMANDS = {
    "demo": "shrinkage.cli.demo:demo",
    "fit": "shrinkage.cli.fit:fit",
    "predict": "shrinkage.cli.predict:predict",
    "inspect": "shrinkage.cli.inspect:inspect_cmd",
    "tune": "shrinkage.cli.tune:tune",
    "report": "shrinkage.cli.report:report",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in _COMMANDS if _available(name)]

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """click's lookup; an unknown command's error names the close ones."""
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as err:
            hint = did_you_mean(args[0], self.list_commands(ctx)) if args else ""
            if not hint:
                raise
            raise click.UsageError(f"{err.message}{hint}", ctx) from None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = _COMMANDS.get(name)
        if target is None or not _available(name):
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


def _available(name: str) -> bool:
    module = _COMMANDS[name].split(":")[0]
    return importlib.util.find_spec(module) is not None


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shrinkage")
def cli() -> None:
    """Weight regularization for PyTorch networks, from a CSV file.

    \b
    Example:
      shrinkage demo
      shrinkage fit data.csv --target y --l2 0.01 -o model/
    """


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a user error prints one line on stderr and exits with code 2."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        # The words as typed, for messages that repeat the command (tune's --resume hint).
        cli.main(args=args, prog_name="shrinkage", standalone_mode=False, obj={"argv": args})
    except ShrinkageError as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(2 if err.exit_code == 2 else err.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
