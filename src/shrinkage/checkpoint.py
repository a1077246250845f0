"""A search that never loses work: finished chunks on disk, resume, failed candidates marked.

A search runs its candidates chunk by chunk (:func:`shrinkage.search.run_chunk`).
:func:`run_chunks` is the loop over the chunks for every backend:

* each finished chunk's candidate rows are written at once to
  ``{checkpoint_dir}/{stage}-chunk-{i:05d}.json`` (atomically: a temporary file, then a
  rename), with the search's *fingerprint* (a digest of data, folds, seeds and grid); when
  the warm-start weights are kept (``refine``), they go first to
  ``{stage}-chunk-{i:05d}.safetensors``, so a JSON file always means a complete chunk;
* with ``resume=True``, a chunk whose file is there is read back instead of trained, after
  checking the fingerprint and the candidate indices; a file of another search is refused;
* the chunks left run locally, one after the other, or on a dask.distributed cluster
  (:mod:`shrinkage.distributed`), each written as soon as it finishes, in whatever order.

A chunk's rows are a function of the data and the candidates' specifications only, so a
resumed search ends with exactly the rows of an uninterrupted one.

:func:`mark_failures` adds ``status`` and ``failure`` to a ``cv_results_`` table: a
configuration whose training diverged (loss and weights non-finite) in any split is
``"failed"``, with the reason naming its strength and the learning rate; the others are
``"ok"``, or ``"pending"`` in a table written while the search still runs.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shrinkage.errors import ShrinkageError

__all__ = [
    "chunk_path",
    "mark_failures",
    "partial_results",
    "read_chunk",
    "run_chunks",
    "write_csv_atomically",
]

Rows = list[dict[str, Any]]
States = dict[int, dict[str, np.ndarray]]


def chunk_path(directory: str | os.PathLike, stage: str, index: int) -> Path:
    """Where chunk ``index`` of ``stage`` is written: ``{stage}-chunk-{index:05d}.json``."""
    return Path(directory) / f"{stage}-chunk-{index:05d}.json"


def _states_path(directory: str | os.PathLike, stage: str, index: int) -> Path:
    return Path(directory) / f"{stage}-chunk-{index:05d}.safetensors"


def _replace_atomically(path: Path, write: Callable[[str], None], suffix: str) -> None:
    """Write through ``write(tmp_name)`` into a temporary sibling, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv_atomically(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``frame`` as CSV (no index) to ``path`` through a temporary file and a rename.

    A reader never sees a half-written file: it sees the old one or the new one.

    Args:
        frame: the table.
        path: the CSV file.

    Returns:
        The path.
    """
    target = Path(path)
    _replace_atomically(target, lambda tmp: frame.to_csv(tmp, index=False), ".csv")
    return target


def _write_states(path: Path, specs: Sequence[Any], states: list[dict[str, np.ndarray]]) -> None:
    from safetensors.numpy import save_file

    flat = {
        f"{spec.index}/{name}": np.ascontiguousarray(array)
        for spec, state in zip(specs, states)
        for name, array in state.items()
    }
    _replace_atomically(path, lambda tmp: save_file(flat, tmp), ".safetensors")


def _read_states(path: Path, specs: Sequence[Any]) -> list[dict[str, np.ndarray]]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        flat = load_file(path)
    except (OSError, SafetensorError, ValueError) as err:
        raise ShrinkageError(
            f"The checkpoint file '{path}' cannot be read ({' '.join(str(err).split())}); "
            "remove it and its .json file to train that chunk again."
        ) from None
    states: list[dict[str, np.ndarray]] = [{} for _ in specs]
    where = {spec.index: k for k, spec in enumerate(specs)}
    for key, array in flat.items():
        candidate, _, name = key.partition("/")
        states[where[int(candidate)]][name] = array
    return states


def read_chunk(
    directory: str | os.PathLike,
    stage: str,
    index: int,
    specs: Sequence[Any],
    fingerprint: str,
    keep_states: bool = False,
) -> tuple[Rows, list[dict[str, np.ndarray]] | None] | None:
    """The rows (and states) of a finished chunk, or None when it has not finished.

    Args:
        directory: the checkpoint directory.
        stage: ``"grid"`` or ``"refine"``.
        index: the chunk's index in its stage.
        specs: the chunk's candidates (:class:`~shrinkage.search.CandidateSpec`).
        fingerprint: the running search's fingerprint.
        keep_states: also read the candidates' final weights (None if they were not kept,
            and then the chunk counts as not finished).

    Returns:
        ``(rows, states)`` or None.

    Raises:
        ShrinkageError: a file that is not valid JSON, that belongs to another search
            (another fingerprint), or whose candidates are not the chunk's.
    """
    path = chunk_path(directory, stage, index)
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        rows, found = payload["rows"], payload["fingerprint"]
        candidates = [int(row["candidate"]) for row in rows]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ShrinkageError(
            f"The checkpoint file '{path}' cannot be read ({type(err).__name__}); remove it "
            "to train that chunk again."
        ) from None
    if found != fingerprint:
        raise ShrinkageError(
            f"The checkpoint file '{path}' is from another search (its data, folds, seeds, "
            "grid or training settings differ); use another output directory or remove it."
        )
    if candidates != [spec.index for spec in specs]:
        raise ShrinkageError(
            f"The checkpoint file '{path}' holds candidates {candidates[:3]}... but this "
            "chunk has others (was max_memory changed?); resume with the same options."
        )
    states = None
    if keep_states:
        states_file = _states_path(directory, stage, index)
        if not states_file.is_file():
            return None
        states = _read_states(states_file, specs)
    return rows, states


def _write_chunk(
    directory: Path,
    stage: str,
    index: int,
    specs: Sequence[Any],
    result: Any,
    fingerprint: str,
) -> None:
    if result.states is not None:
        _write_states(_states_path(directory, stage, index), specs, result.states)
    payload = {"fingerprint": fingerprint, "stage": stage, "chunk": index, "rows": result.rows}
    # The JSON last: its presence is what marks the chunk finished.
    _replace_atomically(
        chunk_path(directory, stage, index),
        lambda tmp: Path(tmp).write_text(json.dumps(payload, allow_nan=True), encoding="utf-8"),
        ".json",
    )


def run_chunks(
    data: Any,
    chunks: Sequence[Sequence[Any]],
    *,
    stage: str,
    keep_states: bool = False,
    checkpoint: str | os.PathLike | None = None,
    fingerprint: str = "",
    resume: bool = False,
    backend: str = "local",
    client: Any = None,
    n_threads: int | None = None,
    retries: int = 2,
    progress: Callable[[int, int | None], None] | None = None,
    on_chunk: Callable[[Rows], None] | None = None,
    function: Callable[..., Any] | None = None,
) -> tuple[Rows, States]:
    """Run the chunks of one stage of a search, keeping every finished chunk on disk.

    Args:
        data: the :class:`~shrinkage.search.SearchData` every chunk shares.
        chunks: the candidates (:class:`~shrinkage.search.CandidateSpec`) of each chunk.
        stage: ``"grid"`` or ``"refine"`` (names the checkpoint files).
        keep_states: also return each candidate's final weights.
        checkpoint: the directory for the finished chunks, or None.
        fingerprint: the search's digest, written with each chunk and checked on resume.
        resume: read the chunks already in ``checkpoint`` instead of training them.
        backend: ``"local"`` (one chunk after the other, here) or ``"dask"``.
        client: the ``dask.distributed.Client`` of the ``"dask"`` backend.
        n_threads: torch threads on each dask worker (None: the worker's default).
        retries: how many times dask retries a chunk whose function raised.
        progress: ``progress(chunk, epoch)`` after each epoch (local) or with ``epoch=None``
            when a chunk finishes (dask); ``chunk`` is 0-based.
        on_chunk: called with all the rows finished so far (resumed ones included) after
            each chunk that finishes, and once after the resumed ones.
        function: the chunk function, ``(data, specs, keep_states=...) -> ChunkResult``
            (default :func:`shrinkage.search.run_chunk`).

    Returns:
        ``(rows, states)``: the rows of all chunks in chunk order, and the final weights by
        candidate index (empty unless ``keep_states``).

    Raises:
        ShrinkageError: an unknown backend, a dask backend without a client or without
            dask installed, or a checkpoint file of another search.
    """
    if backend not in ("local", "dask"):
        raise ShrinkageError(
            f"The 'backend' parameter must be 'local' or 'dask'. Got {backend!r} instead."
        )
    if function is None:
        from shrinkage.search import run_chunk

        function = run_chunk
    directory = None if checkpoint is None else Path(checkpoint)
    done: dict[int, tuple[Rows, list | None]] = {}
    if resume and directory is not None:
        for c, specs in enumerate(chunks):
            found = read_chunk(directory, stage, c, specs, fingerprint, keep_states)
            if found is not None:
                done[c] = found

    def finished(c: int, result: Any) -> None:
        if directory is not None:
            _write_chunk(directory, stage, c, chunks[c], result, fingerprint)
        done[c] = (result.rows, result.states)
        if on_chunk is not None:
            on_chunk([row for k in sorted(done) for row in done[k][0]])

    if done and on_chunk is not None:
        on_chunk([row for k in sorted(done) for row in done[k][0]])
    todo = [c for c in range(len(chunks)) if c not in done]
    if backend == "dask":
        from shrinkage.distributed import submit_chunks

        submit_chunks(
            client,
            data,
            {c: chunks[c] for c in todo},
            function,
            keep_states=keep_states,
            n_threads=n_threads,
            retries=retries,
            on_result=lambda c, result: (
                finished(c, result),
                progress(c, None) if progress is not None else None,
            ),
        )
    else:
        for c in todo:

            def report(epoch: int, c: int = c) -> None:
                if progress is not None:
                    progress(c, epoch)

            finished(c, function(data, chunks[c], keep_states=keep_states, progress=report))

    rows = [row for c in range(len(chunks)) for row in done[c][0]]
    states: States = {}
    for c in range(len(chunks)):
        kept = done[c][1]
        if kept is not None:
            for spec, state in zip(chunks[c], kept):
                states[spec.index] = state
    return rows, states


def mark_failures(
    results: dict[str, np.ndarray],
    learning_rate: float,
    done_splits: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Add ``status`` and ``failure`` columns to a ``cv_results_`` table, in place.

    A configuration with ``n_diverged > 0`` is ``"failed"``: its loss became NaN/inf (its
    weights are no longer finite) in that many splits, and ``failure`` says so with its
    strength and the learning rate; the search goes on with the others. A configuration
    with fewer finished splits than the table has (``done_splits``) is ``"pending"``;
    every other one is ``"ok"``, with an empty ``failure``.

    Args:
        results: the table (``param_strength``, ``n_diverged``, ``split{i}_test_score``).
        learning_rate: the learning rate every candidate trained with.
        done_splits: finished splits per configuration, or None (all finished).

    Returns:
        ``results``.
    """
    n_splits = sum(1 for key in results if key.startswith("split") and key.endswith("test_score"))
    diverged = np.asarray(results["n_diverged"])
    status, failure = [], []
    for i, strength in enumerate(results["param_strength"]):
        if diverged[i] > 0:
            status.append("failed")
            failure.append(
                f"diverged in {diverged[i]} of {n_splits} splits (loss became NaN/inf) with "
                f"strength={strength:g}, learning_rate={learning_rate:g}"
            )
        elif done_splits is not None and done_splits[i] < n_splits:
            status.append("pending")
            failure.append("")
        else:
            status.append("ok")
            failure.append("")
    results["status"] = np.array(status, dtype=object)
    results["failure"] = np.array(failure, dtype=object)
    return results


def partial_results(plan: Any, specs: Sequence[Any], rows: Rows) -> dict[str, np.ndarray]:
    """The ``cv_results_`` table of the candidates finished so far.

    Every configuration of ``specs`` has a row; the splits not finished yet are NaN and the
    configuration's ``status`` is ``"pending"`` (see :func:`mark_failures`).

    Args:
        plan: the search's :class:`~shrinkage.search.SearchPlan`.
        specs: every candidate of the stages run so far.
        rows: the finished candidates' rows.

    Returns:
        A dict of arrays with the keys of ``cv_results_``.
    """
    from shrinkage.search import _aggregate

    configs: dict[int, tuple] = {}
    stages: dict[int, str] = {}
    for spec in specs:
        ratio = spec.l1_ratio if spec.kind == "elastic_net" else math.nan
        configs.setdefault(spec.config, (spec.kind, ratio, spec.placement, spec.strength))
        stages.setdefault(spec.config, spec.stage)
    order = sorted(configs)
    n_splits = len(plan.data.folds)
    results = _aggregate(
        [configs[c] for c in order],
        [stages[c] for c in order],
        rows,
        n_splits,
        plan.n_layers,
        first=order[0],
    )
    done = np.zeros(len(order), dtype=np.int64)
    for row in rows:
        done[row["config"] - order[0]] += 1
    return mark_failures(results, plan.data.settings.learning_rate, done)
