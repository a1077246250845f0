"""``shrinkage tune``: cross-validate the penalty strength, kind and placement on a table.

Every configuration is trained on every fold at once on the batched engine
(:class:`~shrinkage.search.SearchCV`); the best one is refit on all rows.

Writes, in ``OUT_DIR``:

* ``results.csv`` — one row per configuration, the columns of ``SearchCV.cv_results_``
  (written atomically after every finished chunk: configurations not finished yet have
  status ``pending``);
* ``model/`` — the refit estimator (:func:`shrinkage.estimators.save`);
* ``chunks/`` — each finished chunk's candidate rows (JSON), kept so an interrupted search
  keeps its work: run the same command again with ``--resume`` and only the unfinished
  chunks train;
* ``tune.json`` — the files above, as written: ``OUT_DIR`` must be new, empty or a results
  directory with this file, and only the files it lists are ever replaced or deleted.

``--per-layer --candidates N`` searches a strength per layer (0: that layer unpenalized):
the single-λ grid's configurations plus drawn ones, N in all, with successive halving
inside the stack (``--no-halving`` trains all N to the end); the chunk files are then
``rung{j}-chunk-*.json`` (and the last finished rung's training states, to resume).

``--scheduler ADDRESS`` runs the chunks on a dask.distributed cluster
(``pip install shrinkage[distributed]``).

Progress (:class:`shrinkage._progress.ProgressBoard`): an overall bar with the time
remaining over the phases grid, refine, refit, baseline and report; plain lines when
stderr is not a terminal. Ctrl-C prints how many chunks are saved and the command that
continues with ``--resume``; ``--resume`` says how many chunks it reused.

Bad input (a missing file or column, a bad option) prints one line and exits with code 2
before anything is written.
"""

from __future__ import annotations

import math
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from shrinkage._io import write_csv
from shrinkage._progress import ProgressBoard
from shrinkage.cli._common import (
    ESTIMATOR_OPTIONS,
    Integer,
    Number,
    OneLineCommand,
    Status,
    console,
    data_options,
    parse_numbers,
    training_options,
)
from shrinkage.errors import ShrinkageError

__all__ = ["tune"]

_floats = parse_numbers


def _names(text: str, option: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise ShrinkageError(
            f"The '{option}' option must be comma-separated names with none empty. "
            f"Got {text!r} instead."
        )
    return names


def _placements(text: str) -> list[str | tuple[int, ...]]:
    """``all,hidden,output`` and layer lists written with ``+``: ``0+2``."""
    out: list[str | tuple[int, ...]] = []
    for name in _names(text, "--placements"):
        if name.replace("+", "").isdigit():
            out.append(tuple(int(i) for i in name.split("+")))
        else:
            out.append(name)
    return out


def _table(search: Any, top: int) -> Any:
    from rich.table import Table

    frame = search.results_frame()
    # Tied rows: the chosen one first, then the larger strength (the search's tie-break).
    frame = frame.assign(_other=frame.index != search.best_index_).sort_values(
        ["rank_test_score", "_other", "param_strength"], ascending=[True, True, False]
    )
    stages = frame["stage"].nunique() > 1
    per_layer = "param_layer_penalties" in frame
    rungs = "rung_epochs" in frame
    title = f"Top {min(top, len(frame))} of {len(frame)} configurations ({search.scoring_})"
    table = Table(title=title)
    params = ("layers",) if per_layer else ("kind", "strength", "placement")
    names = ("rank", *(("stage",) if stages else ()), *(("epochs",) if rungs else ()), *params)
    for name in names:
        table.add_column(name, justify="right" if name in ("rank", "strength") else "left")
    table.add_column("validation", justify="right")
    table.add_column("train", justify="right")
    for index, row in frame.head(top).iterrows():
        kind = row["param_kind"]
        if kind == "elastic_net":
            kind = f"elastic_net (l1_ratio {row['param_l1_ratio']:g})"
        cells = [str(row["rank_test_score"])]
        if stages:
            cells.append(row["stage"])
        if rungs:
            cells.append(str(row["rung_epochs"]))
        if per_layer:
            cells.append(str(row["param_layer_penalties"]))
        else:
            cells += [kind, f"{row['param_strength']:.3g}", str(row["param_placement"])]
        mean, std = row["mean_test_score"], row["std_test_score"]
        cells.append("diverged" if math.isnan(mean) else f"{mean:.4f} ± {std:.4f}")
        cells.append(
            "" if math.isnan(row["mean_train_score"]) else f"{row['mean_train_score']:.4f}"
        )
        style = "bold green" if index == search.best_index_ else None
        table.add_row(*cells, style=style)
    return table


@click.command(
    "tune",
    cls=OneLineCommand,
    params_from={
        **ESTIMATOR_OPTIONS,
        "cv": "folds",
        "n_threads": "threads",
        "one_standard_error": "one_se",
        "n_candidates": "candidates",
    },
    epilog="""\b
Examples:
  shrinkage tune data.csv --target y -o tuned/
  shrinkage tune data.csv --target y --kinds l2,l1 --placements all,hidden,output \\
      --grid-min 1e-5 --grid-max 0.1 --per-decade 3 --folds 5 --one-se -o tuned/
  shrinkage tune data.csv --target y --strengths 1e-4,1e-3,1e-2 --placements all,0+1 -o tuned/
  shrinkage tune data.csv --target y --per-layer --candidates 243 -o tuned/
""",
)
@data_options
@click.option(
    "--kinds", default="l2", show_default=True, help="Penalty kinds: l2, l1, elastic_net."
)
@click.option("--l1-ratios", default="0.5", show_default=True, help="Elastic net L1 shares.")
@click.option("--strengths", default=None, help="Comma-separated strengths (Keras meaning).")
@click.option("--grid-min", type=Number(), default=1e-6, show_default=True, help="Log grid start.")
@click.option("--grid-max", type=Number(), default=1.0, show_default=True, help="Log grid end.")
@click.option(
    "--per-decade", type=Integer(), default=2, show_default=True, help="Grid values / decade."
)
@click.option(
    "--placements",
    default="all",
    show_default=True,
    help="Where the penalty goes: all, hidden, output, or layer lists like 0+2.",
)
@click.option(
    "--folds", type=Integer(), default=5, show_default=True, help="Cross-validation folds."
)
@click.option("--validation-fraction", type=Number(), default=None, help="One holdout instead.")
@click.option("--scoring", default=None, help="Default: accuracy, or r2 for regression.")
@training_options
@click.option("--one-se", is_flag=True, help="Largest strength within one standard error.")
@click.option("--refine", is_flag=True, help="Then a finer grid around the best strength.")
@click.option("--max-memory", default="1GB", show_default=True, help="Budget of one chunk.")
@click.option("--seed", type=Integer(), default=0, show_default=True, help="Random seed.")
@click.option("--impute", is_flag=True, help="Fill missing features (median / most frequent).")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cuda.")
@click.option("--threads", type=Integer(), default=None, help="torch threads (default: torch's).")
@click.option("--top", type=Integer(), default=10, show_default=True, help="Rows of the table.")
@click.option("--output", "-o", "out_dir", required=True, metavar="OUT_DIR", help="Where to write.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no table.")
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Run the chunks on this dask.distributed scheduler (tcp://host:8786).",
)
@click.option("--resume", is_flag=True, help="Keep the chunks already finished in OUT_DIR/chunks.")
@click.option(
    "--per-layer",
    is_flag=True,
    help="A strength per layer (0: none), sampled; the single-λ grid is always included.",
)
@click.option(
    "--candidates",
    type=Integer(),
    default=243,
    show_default=True,
    help="Configurations of --per-layer (grid ones included).",
)
@click.option(
    "--zero-probability",
    type=Number(),
    default=0.25,
    show_default=True,
    help="--per-layer: chance that a layer is left unpenalized.",
)
@click.option(
    "--sampler",
    type=click.Choice(["sobol", "lhs"]),
    default="sobol",
    show_default=True,
    help="--per-layer: scrambled Sobol or Latin hypercube.",
)
@click.option(
    "--halving/--no-halving",
    default=None,
    help="Successive halving inside the stack (default: on with --per-layer).",
)
@click.option(
    "--halving-factor", type=Integer(), default=3, show_default=True, help="Halving's eta."
)
@click.option(
    "--min-epochs", type=Integer(), default=None, help="Epochs of the first rung (default 1)."
)
@click.option(
    "--keep-grid/--drop-grid",
    default=True,
    show_default=True,
    help="--per-layer halving: the single-λ grid's configurations train to the end.",
)
def tune(
    data: str,
    target: str,
    task: str,
    kinds: str,
    l1_ratios: str,
    strengths: str | None,
    grid_min: float,
    grid_max: float,
    per_decade: int,
    placements: str,
    folds: int,
    validation_fraction: float | None,
    scoring: str | None,
    hidden: tuple[int, ...],
    activation: str,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    learning_rate_schedule: str,
    optimizer: str,
    momentum: float,
    init: str,
    standardize: bool,
    mode: str,
    one_se: bool,
    refine: bool,
    max_memory: str,
    seed: int,
    impute: bool,
    device: str,
    threads: int | None,
    top: int,
    out_dir: str,
    quiet: bool,
    scheduler: str | None,
    resume: bool,
    per_layer: bool,
    candidates: int,
    zero_probability: float,
    sampler: str,
    halving: bool | None,
    halving_factor: int,
    min_epochs: int | None,
    keep_grid: bool,
) -> None:
    """Cross-validate penalty strength, kind and placement on DATA; refit the best.

    Every (strength, kind, placement) is trained on every fold at once (stacked networks).
    Writes OUT_DIR/results.csv (one row per configuration), OUT_DIR/model/ (the best
    configuration refit on all rows) and OUT_DIR/chunks/ (each finished chunk's rows).
    OUT_DIR must be new, empty, or a directory an earlier `tune` wrote (tune.json).
    """
    options = dict(locals())  # every option, as click passed them
    status = Status(f"Reading {data} (loading torch, scikit-learn and pandas) …", not quiet)
    with status:
        search, dataset, y, plan, out = _setup(options)
        if scheduler is not None:
            from shrinkage.search import connect

            status.update(f"Connecting to {scheduler} …")
            search.set_params(backend="dask", client=connect(scheduler))

    import pandas as pd

    from shrinkage.estimators import save
    from shrinkage.report import (
        BASELINE_FILE,
        CHUNKS_DIR,
        METADATA_FILE,
        MODEL_DIR,
        REPORT_FILE,
        RESULTS_FILE,
        claim_results_dir,
        record_files,
    )

    claim_results_dir(out)
    names = [RESULTS_FILE, MODEL_DIR, CHUNKS_DIR, METADATA_FILE, BASELINE_FILE, REPORT_FILE]
    record_files(out, names)  # before they are written: the list covers every file we write
    if not resume:
        _remove_chunks(out)  # a fresh search: old chunk rows would mix with the new ones

    def write_partial(results: dict) -> None:
        frame = pd.DataFrame({k: v for k, v in results.items() if k != "params"})
        write_csv(frame, out / RESULTS_FILE)
        _record_chunks(out)

    chunking = plan.chunking
    if not quiet:
        console(stderr=True).print(
            f"{len(plan.configs)} configurations x {len(plan.data.folds)} folds = "
            f"{chunking['n_candidates']} candidates in {chunking['n_chunks']} chunk(s) of "
            f"<= {chunking['candidates_per_chunk']} (~{chunking['bytes_per_chunk'] / 1e6:.1f} "
            "MB each)"
            + (
                f"; successive halving (eta {halving_factor}) at epochs "
                f"{', '.join(map(str, plan.rungs))}"
                if plan.rungs is not None
                else ""
            )
        )
    board = ProgressBoard("tune", display="off" if quiet else "auto")
    for stage, steps in search.phases(plan).items():
        board.add(stage, steps, _PHASES.get(stage, _PHASES["rung"]))
    board.add("baseline", epochs, _PHASES["baseline"])
    board.add("report", None, _PHASES["report"])
    try:
        search.fit(
            dataset.X,
            y,
            progress=board.search_callback(f"{out / CHUNKS_DIR}/"),
            on_chunk=write_partial,
        )
        _record_chunks(out)
        write_csv(search.results_frame(), out / RESULTS_FILE)
        save(search.best_estimator_, out / MODEL_DIR, target=target)
        from shrinkage.cli._workflows import write_tune_report
        from shrinkage.report import describe_data

        report_path = write_tune_report(
            out,
            search,
            dataset.X,
            dataset.y,
            data=describe_data(
                dataset.X,
                dataset.y,
                source=data,
                target=target,
                task=dataset.task,
                preprocessing="numeric columns standardized, categorical one-hot "
                "(fitted per fold on its training rows)",
            ),
            title=report_title(data, target),
            board=board,
        )
    except KeyboardInterrupt:
        board.close()
        _record_chunks(out)
        if not quiet:
            _interrupted(out, plan.chunking["n_chunks"], search.refine)
        raise SystemExit(130) from None
    finally:
        board.close()
        if search.client is not None:
            search.client.close()

    if not quiet:
        console().print(_table(search, top))
        for stage, (n_reused, n_chunks) in board.reused.items():
            console().print(
                f"Resumed: reused {n_reused} of {n_chunks} {stage} chunks from "
                f"{out / CHUNKS_DIR}/; trained {n_chunks - n_reused}."
            )
        best = search.best_params_
        wrote = f"wrote {out / RESULTS_FILE}, {out / MODEL_DIR}/ and {report_path}"
        score = f"{search.scoring_} {search.best_score_:.4f}"
        if "layer_penalties" in best:
            results = search.cv_results_
            text = results["param_layer_penalties"][search.best_index_]
            ratio = results["param_l1_ratio"][search.best_index_]
            ratio_option = "" if math.isnan(ratio) else f" --l1-ratio {ratio:g}"
            console().print(
                f"Best: per-layer {text} ({score}); the same penalties by hand: "
                f"shrinkage fit ... --layer-penalties {text}{ratio_option}; {wrote}"
            )
        else:
            ratio = f", l1_ratio={best['l1_ratio']:g}" if "l1_ratio" in best else ""
            console().print(
                f"Best: {best['penalty']} strength={best['strength']:.4g}{ratio}, placement="
                f"{best['placement']} ({score}); {wrote}"
            )


#: What each phase of ``tune`` does, beside its line or bar.
_PHASES = {
    "grid": "every configuration on every fold, stacked",
    "refine": "a finer grid around the best",
    "rung": "successive halving: what is still in, trained to this rung",
    "refit": "the best configuration on all rows",
    "baseline": "the same network unregularized, for the report",
    "report": "figures and report.html",
}


def _chunk_files(out: Path) -> list[str]:
    """The checkpoint files in ``out/chunks`` that say they are ours (relative paths)."""
    from shrinkage.report import CHUNKS_DIR
    from shrinkage.search import is_checkpoint_file

    folder = out / CHUNKS_DIR
    if not folder.is_dir():
        return []
    return [
        f"{CHUNKS_DIR}/{path.name}"
        for path in sorted(folder.glob("*-chunk-*.*"))
        if path.suffix in (".json", ".safetensors") and is_checkpoint_file(path)
    ]


def _record_chunks(out: Path) -> None:
    from shrinkage.report import record_files

    record_files(out, _chunk_files(out))


def _remove_chunks(out: Path) -> None:
    """Delete the chunk files of an earlier search in ``out``: those ``tune.json`` lists and
    those that identify themselves as checkpoints; nothing else."""
    from shrinkage.report import CHUNKS_DIR, forget_files, owned_files

    pattern = re.compile(
        rf"{CHUNKS_DIR}/(grid|refine|rung[0-9]+)-chunk-[0-9]{{5}}\.(json|safetensors)"
    )
    listed = [name for name in owned_files(out) if pattern.fullmatch(name)]
    stale = sorted(set(listed) | set(_chunk_files(out)))
    for name in stale:
        (out / name).unlink(missing_ok=True)
    forget_files(out, stale)


def report_title(data: str, target: str) -> str:
    """The report's heading from the data file's name: ``breast_cancer.csv: predicting y``."""
    return f"{Path(data).name}: predicting {target}"


def _setup(o: dict[str, Any]) -> tuple[Any, Any, Any, Any, Path]:
    """Every check, the data and the search's plan, before anything is written.

    Args:
        o: the command's options, by name.

    Returns:
        ``(search, dataset, y, setup, out)``: the unfitted search, the loaded table, the
        target values, :meth:`~shrinkage.search.SearchCV.prepare`'s plan and the results
        directory.
    """
    import numpy as np
    import pandas as pd

    from shrinkage._validation import check_threads
    from shrinkage.data import CLASSIFICATION, load_dataset
    from shrinkage.estimators import MLPClassifier, MLPRegressor, check_output_dir
    from shrinkage.report import MODEL_DIR, check_results_dir
    from shrinkage.search import SearchCV, default_strengths

    grid = _floats(o["strengths"], "--strengths")
    if grid is None:
        grid = list(default_strengths(o["grid_min"], o["grid_max"], o["per_decade"]))
    if o["threads"] is not None:
        check_threads(o["threads"], "--threads")
    if o["top"] < 1:
        raise ShrinkageError(
            f"The '--top' option must be an integer >= 1. Got {o['top']!r} instead."
        )
    out = check_results_dir(o["out_dir"])
    check_output_dir(out / MODEL_DIR)

    task = None if o["task"] == "auto" else o["task"]
    dataset = load_dataset(o["data"], o["target"], task=task, impute=o["impute"])
    if dataset.task == CLASSIFICATION:
        y = dataset.y.to_numpy()
        cls: Any = MLPClassifier
    else:
        y = pd.to_numeric(dataset.y).to_numpy(dtype=np.float64)
        cls = MLPRegressor
    names = (
        "activation",
        "mode",
        "optimizer",
        "learning_rate",
        "learning_rate_schedule",
        "momentum",
        "init",
        "standardize",
        "epochs",
    )
    estimator = cls(
        hidden_layer_sizes=o["hidden"],
        batch_size=o["batch_size"],
        impute=o["impute"],
        device=o["device"],
        **{name: o[name] for name in names},
    )
    search = SearchCV(
        estimator,
        strengths=grid,
        kinds=_names(o["kinds"], "--kinds"),
        l1_ratios=_floats(o["l1_ratios"], "--l1-ratios"),
        placements=_placements(o["placements"]),
        cv=o["folds"],
        validation_fraction=o["validation_fraction"],
        scoring=o["scoring"],
        one_standard_error=o["one_se"],
        refine=o["refine"],
        max_memory=o["max_memory"],
        random_state=o["seed"],
        device=o["device"],
        n_threads=o["threads"],
        checkpoint_dir=out / "chunks",
        resume=o["resume"],
        per_layer=o["per_layer"],
        n_candidates=o["candidates"],
        zero_probability=o["zero_probability"],
        sampler=o["sampler"],
        halving=o["halving"],
        halving_factor=o["halving_factor"],
        min_epochs=o["min_epochs"],
        keep_grid=o["keep_grid"],
    )
    setup = search.prepare(dataset.X, y)  # every check, before anything is written
    return search, dataset, y, setup, out


def _interrupted(out: Path, n_chunks: int, refine: bool) -> None:
    """After Ctrl-C: what is saved, and the command that continues from it."""
    saved = len(list((out / "chunks").glob("grid-chunk-*.json")))
    root = click.get_current_context().find_root().obj
    words = list(root.get("argv", [])) if isinstance(root, dict) else sys.argv[1:]
    if "--resume" not in words:
        words.append("--resume")
    where = f"{out / 'chunks'}/"
    if saved >= n_chunks:
        done = f"All {n_chunks} grid chunks are saved in {where}"
        if refine:
            done += " (and the refine chunks that finished)"
    elif saved:
        done = f"{saved} of {n_chunks} grid chunks finished and are saved in {where}"
    else:
        done = f"No grid chunk had finished (each is saved in {where} when it does)"
    console(stderr=True).print(
        f"Interrupted. {done}; continue with:\n  {shlex.join(['shrinkage', *words])}"
    )
