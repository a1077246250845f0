"""``shrinkage report RESULTS_DIR``: rebuild the HTML report of a finished search."""

from __future__ import annotations

from pathlib import Path

import click

from shrinkage.cli._common import OneLineCommand

__all__ = ["report"]


@click.command("report", cls=OneLineCommand)
@click.argument("results_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the report (default: RESULTS_DIR/report.html).",
)
@click.option("--title", default=None, help="The report's heading.")
def report(results_dir: Path, output: Path | None, title: str | None) -> None:
    """Rebuild report.html from RESULTS_DIR (what `shrinkage tune` wrote).

    Reads results.csv, the refit model in model/, and search.json and
    baseline.safetensors when present. The report is one self-contained HTML file:
    images embedded, no network needed to view it.

    \b
    Example:
      shrinkage report tuned/
      shrinkage report tuned/ -o /tmp/tuned.html
    """
    from shrinkage.cli._common import check_output_file
    from shrinkage.report import MANIFEST_FILE, REPORT_FILE, build_report, record_files

    target = results_dir / REPORT_FILE if output is None else output
    if output is not None or results_dir.is_dir():  # else build_report says what is wrong
        check_output_file(target, "--output" if output is not None else "RESULTS_DIR")
    path = build_report(results_dir, target, title=title)
    if output is None and (results_dir / MANIFEST_FILE).is_file():
        record_files(results_dir, [REPORT_FILE])
    click.echo(str(path))
