"""A search that never loses work: finished chunks on disk, and resume.

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
  (:mod:`shrinkage.search._distributed`), each written as soon as it finishes, in whatever order.

A chunk's rows are a function of the data and the candidates' specifications only, so a
resumed search ends with exactly the rows of an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shrinkage._io import atomic_write
from shrinkage.errors import ShrinkageError
from shrinkage.search._candidates import SearchData, run_chunk

__all__ = [
    "chunk_path",
    "states_path",
    "read_chunk",
    "run_chunks",
    "fingerprint",
]

Rows = list[dict[str, Any]]
States = dict[int, dict[str, np.ndarray]]


def chunk_path(directory: str | os.PathLike, stage: str, index: int) -> Path:
    """Where chunk ``index`` of ``stage`` is written: ``{stage}-chunk-{index:05d}.json``."""
    return Path(directory) / f"{stage}-chunk-{index:05d}.json"


def states_path(directory: str | os.PathLike, stage: str, index: int) -> Path:
    """Where chunk ``index``'s kept weights (or training states) go: ``….safetensors``."""
    return Path(directory) / f"{stage}-chunk-{index:05d}.safetensors"


def _write_states(path: Path, specs: Sequence[Any], states: list[dict[str, np.ndarray]]) -> None:
    from safetensors.numpy import save

    flat = {
        f"{spec.index}/{name}": np.ascontiguousarray(array)
        for spec, state in zip(specs, states)
        for name, array in state.items()
    }
    atomic_write(path, save(flat))


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
    require_states: bool = True,
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
        require_states: with ``keep_states``, whether a chunk without its weights file
            counts as not finished (False: its rows are returned without states; successive
            halving deletes a rung's states once the next rung has finished).

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
        states_file = states_path(directory, stage, index)
        if states_file.is_file():
            states = _read_states(states_file, specs)
        elif require_states:
            return None
    return rows, states


def _write_chunk(
    directory: Path,
    stage: str,
    index: int,
    specs: Sequence[Any],
    result: Any,
    fingerprint: str,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if result.states is not None:
        _write_states(states_path(directory, stage, index), specs, result.states)
    payload = {"fingerprint": fingerprint, "stage": stage, "chunk": index, "rows": result.rows}
    # The JSON last: its presence is what marks the chunk finished.
    atomic_write(chunk_path(directory, stage, index), json.dumps(payload, allow_nan=True))


def run_chunks(
    data: Any,
    chunks: Sequence[Sequence[Any]],
    *,
    stage: str,
    keep_states: bool = False,
    require_states: bool = True,
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
    on_reused: Callable[[list[int]], None] | None = None,
) -> tuple[Rows, States]:
    """Run the chunks of one stage of a search, keeping every finished chunk on disk.

    Args:
        data: the :class:`~shrinkage.search.SearchData` every chunk shares.
        chunks: the candidates (:class:`~shrinkage.search.CandidateSpec`) of each chunk.
        stage: ``"grid"`` or ``"refine"`` (names the checkpoint files).
        keep_states: also return each candidate's final weights.
        require_states: on resume, retrain a finished chunk whose weights file is missing
            (False: take its rows without states, see :func:`read_chunk`).
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
        on_reused: called once, before any training, with the (0-based) indices of the
            chunks read back from ``checkpoint`` (``resume``), when there are any.

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
        function = run_chunk
    directory = None if checkpoint is None else Path(checkpoint)
    done: dict[int, tuple[Rows, list | None]] = {}
    if resume and directory is not None:
        for c, specs in enumerate(chunks):
            found = read_chunk(directory, stage, c, specs, fingerprint, keep_states, require_states)
            if found is not None:
                done[c] = found

    def finished(c: int, result: Any) -> None:
        if directory is not None:
            _write_chunk(directory, stage, c, chunks[c], result, fingerprint)
        done[c] = (result.rows, result.states)
        if on_chunk is not None:
            on_chunk([row for k in sorted(done) for row in done[k][0]])

    if done and on_reused is not None:
        on_reused(sorted(done))
    if done and on_chunk is not None:
        on_chunk([row for k in sorted(done) for row in done[k][0]])
    todo = [c for c in range(len(chunks)) if c not in done]
    if backend == "dask":
        from shrinkage.search._distributed import submit_chunks

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


def fingerprint(data: SearchData, configs: list[tuple], seeds: list[int]) -> str:
    """A digest of what determines a chunk's rows, so a resumed search can check it."""
    digest = hashlib.sha256()
    digest.update(json.dumps([repr(c) for c in configs]).encode())
    digest.update(json.dumps(seeds).encode())
    digest.update(repr(data.settings).encode())
    digest.update(repr((data.hidden, data.activation, data.scoring, tuple(data.X.shape))).encode())
    for train, test in data.folds:
        digest.update(train.tobytes())
        digest.update(test.tobytes())
    return digest.hexdigest()
