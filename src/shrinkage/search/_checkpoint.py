"""A search that never loses work: finished chunks on disk, and resume.

A search runs its candidates chunk by chunk (:func:`shrinkage.search.run_chunk`).
:func:`run_chunks` is the loop over the chunks for every backend:

* each finished chunk's candidate rows are written at once to
  ``{checkpoint_dir}/{stage}-chunk-{i:05d}.json`` (atomically: a temporary file, then a
  rename), with the search's *fingerprint* (a digest of the values of the data, raw and
  preprocessed per fold, the targets, the folds, seeds, grid and training settings) and a
  SHA-256 checksum of its own rows; when the warm-start weights are kept (``refine``), they
  go first to ``{stage}-chunk-{i:05d}.safetensors`` (whose checksum the JSON records), so a
  JSON file always means a complete chunk;
* with ``resume=True``, a chunk whose file is there is read back instead of trained, after
  checking the fingerprint, the checksums, the rows' fields and the candidate indices; a
  file of another search, an edited file or one that is not a checkpoint is refused in one
  line, and never overwritten;
* the chunks left run locally, one after the other, or on a dask.distributed cluster
  (:mod:`shrinkage.search._distributed`), each written as soon as it finishes, in whatever order.

A chunk's rows are a function of the data and the candidates' specifications only, so a
resumed search ends with exactly the rows of an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shrinkage._io import atomic_write, read_bounded
from shrinkage.errors import ShrinkageError
from shrinkage.search._candidates import SearchData, run_chunk

__all__ = [
    "chunk_path",
    "states_path",
    "is_checkpoint_file",
    "read_chunk",
    "run_chunks",
    "fingerprint",
]

Rows = list[dict[str, Any]]
States = dict[int, dict[str, np.ndarray]]

#: The ``format`` field of a chunk file (and of its states file's safetensors metadata).
CHUNK_FORMAT = "shrinkage.checkpoint"
CHUNK_VERSION = 2
# A chunk's JSON holds one small row per candidate; its states, the candidates' weights.
_MAX_CHUNK_BYTES = 256 * 2**20
_MAX_STATES_BYTES = 16 * 2**30
# The fields of a row and their JSON types (layer fields are checked by pattern).
_ROW_FIELDS: dict[str, tuple[type, ...]] = {
    "candidate": (int,),
    "config": (int,),
    "fold": (int,),
    "stage": (str,),
    "test_score": (float, int),
    "train_score": (float, int),
    "fit_time": (float, int),
    "score_time": (float, int),
    "test_loss_score": (float, int),
    "diverged": (bool,),
    "reason": (str,),
    "epochs": (int,),
}
# Fields only some rows have (successive halving's rung).
_OPTIONAL_FIELDS: dict[str, tuple[type, ...]] = {"rung": (int,)}
_LAYER_FIELD = re.compile(r"(weight_l2|sparsity)_layer([0-9]{1,4})")


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
    data = save(flat, metadata={"format": CHUNK_FORMAT})
    _check_ours(path)
    atomic_write(path, data)
    return hashlib.sha256(data).hexdigest()


def _read_states(path: Path, specs: Sequence[Any], sha256: Any) -> list[dict[str, np.ndarray]]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    data = read_bounded(path, _MAX_STATES_BYTES, "The checkpoint file")
    if hashlib.sha256(data).hexdigest() != sha256:
        raise _unreadable(path, "it does not match the checksum its .json file records")
    try:
        flat = load(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise _unreadable(path, " ".join(str(err).split())) from None
    states: list[dict[str, np.ndarray]] = [{} for _ in specs]
    where = {spec.index: k for k, spec in enumerate(specs)}
    for key, array in flat.items():
        candidate, _, name = key.partition("/")
        k = where.get(int(candidate)) if candidate.isdigit() else None
        if k is None or not name or array.dtype.kind not in "biuf":
            raise _unreadable(path, f"its tensor {key!r:.60} is not a candidate's state")
        states[k][name] = array
    shapes = {tuple((n, a.shape) for n, a in sorted(state.items())) for state in states}
    if len(shapes) != 1:
        raise _unreadable(path, "its candidates do not all have the same tensors")
    return states


def _unreadable(path: Path, why: str) -> ShrinkageError:
    return ShrinkageError(
        f"The checkpoint file '{path}' cannot be used ({why}); remove it (and its .json or "
        ".safetensors file) to train that chunk again."
    )


def is_checkpoint_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a checkpoint file this module wrote, by the ``format`` field
    inside it (a chunk's JSON, or its states' safetensors metadata).

    Args:
        path: a file (a missing or unreadable one is not a checkpoint).

    Returns:
        True for a checkpoint file of ours.
    """
    path = Path(path)
    try:
        if path.suffix == ".json":
            data = read_bounded(path, _MAX_CHUNK_BYTES, "The checkpoint file")
            return json.loads(data).get("format") == CHUNK_FORMAT
        data = read_bounded(path, 2**20, "The checkpoint file", head=True)
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + min(size, 2**20)])
        return header.get("__metadata__", {}).get("format") == CHUNK_FORMAT
    except (ShrinkageError, ValueError, AttributeError, struct.error, RecursionError):
        return False


def _check_ours(path: Path) -> None:
    """Refuse to overwrite a file at ``path`` that is not a checkpoint file of ours."""
    if os.path.lexists(path) and not is_checkpoint_file(path):
        raise ShrinkageError(
            f"The checkpoint path '{path}' holds a file that is not a shrinkage checkpoint; "
            "it is left alone. Use another checkpoint directory or move the file."
        )


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
    if not os.path.lexists(path):
        return None
    payload = _parse_chunk(path)
    if payload.get("format") != CHUNK_FORMAT or payload.get("version") != CHUNK_VERSION:
        if payload.get("format") == CHUNK_FORMAT or "fingerprint" in payload:
            raise ShrinkageError(
                f"The checkpoint file '{path}' was written by another version of shrinkage; "
                "use another output directory or remove it."
            )
        raise _unreadable(path, "it is not a shrinkage checkpoint")
    if payload.get("fingerprint") != fingerprint:
        raise ShrinkageError(
            f"The checkpoint file '{path}' is from another search (its data, folds, seeds, "
            "grid or training settings differ); use another output directory or remove it."
        )
    rows = payload.get("rows")
    if _checksum(rows) != payload.get("checksum"):
        raise _unreadable(path, "its rows do not match its checksum: it was edited")
    _check_rows(path, rows)
    candidates = [row["candidate"] for row in rows]
    if candidates != [spec.index for spec in specs] or any(
        (row["config"], row["fold"], row["stage"]) != (spec.config, spec.fold, spec.stage)
        for row, spec in zip(rows, specs)
    ):
        raise ShrinkageError(
            f"The checkpoint file '{path}' holds candidates {candidates[:3]}... but this "
            "chunk has others (was max_memory changed?); resume with the same options."
        )
    states = None
    if keep_states:
        states_file = states_path(directory, stage, index)
        if states_file.is_file() and payload.get("states") is not None:
            states = _read_states(states_file, specs, payload["states"])
        elif require_states:
            return None
    return rows, states


def _parse_chunk(path: Path) -> dict[str, Any]:
    data = read_bounded(path, _MAX_CHUNK_BYTES, "The checkpoint file")
    try:
        payload = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise _unreadable(path, "it is not UTF-8 text") from None
    except RecursionError:
        raise _unreadable(path, "it is nested too deeply") from None
    except ValueError as err:
        raise _unreadable(path, f"it is not valid JSON: {' '.join(str(err).split())}") from None
    if not isinstance(payload, dict):
        raise _unreadable(path, "it is not a shrinkage checkpoint")
    return payload


def _checksum(rows: Any) -> str:
    """SHA-256 of the rows as canonical JSON (floats written as Python writes them)."""
    try:
        text = json.dumps(rows, sort_keys=True, allow_nan=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return ""
    return hashlib.sha256(text.encode()).hexdigest()


def _check_rows(path: Path, rows: Any) -> None:
    """Every row has the fields :func:`run_chunk` writes, of their types, and the same layers."""
    if not isinstance(rows, list) or not rows:
        raise _unreadable(path, "its 'rows' are not a list of candidates")
    layers = None
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise _unreadable(path, f"row {i} is not an object")
        for name, kinds in _ROW_FIELDS.items():
            value = row.get(name)
            if type(value) not in kinds or (
                isinstance(value, int) and not isinstance(value, bool) and value < 0
            ):
                raise _unreadable(path, f"row {i} has {name}={value!r:.40}")
        for name, kinds in _OPTIONAL_FIELDS.items():
            if name in row and (type(row[name]) not in kinds or row[name] < 0):
                raise _unreadable(path, f"row {i} has {name}={row[name]!r:.40}")
        extra = {k for k in row if k not in _ROW_FIELDS and k not in _OPTIONAL_FIELDS}
        found = [_LAYER_FIELD.fullmatch(k) for k in extra]
        if not all(found) or any(type(row[k]) not in (float, int) for k in extra):
            raise _unreadable(path, f"row {i} has unknown or non-numeric fields")
        if layers is None:
            layers = extra
        if (
            extra != layers
            or len(extra) % 2
            or any(
                f"{kind}_layer{j}" not in extra
                for j in range(len(extra) // 2)
                for kind in ("weight_l2", "sparsity")
            )
        ):
            raise _unreadable(path, f"row {i} does not have the layers of the other rows")
        if not math.isfinite(row["fit_time"]):
            raise _unreadable(path, f"row {i} is not a finished candidate")


def _write_chunk(
    directory: Path,
    stage: str,
    index: int,
    specs: Sequence[Any],
    result: Any,
    fingerprint: str,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = chunk_path(directory, stage, index)
    _check_ours(path)
    states = None
    if result.states is not None:
        states = _write_states(states_path(directory, stage, index), specs, result.states)
    payload = {
        "format": CHUNK_FORMAT,
        "version": CHUNK_VERSION,
        "fingerprint": fingerprint,
        "stage": stage,
        "chunk": index,
        "checksum": _checksum(result.rows),
        "states": states,
        "rows": result.rows,
    }
    # The JSON last: its presence is what marks the chunk finished.
    atomic_write(path, json.dumps(payload, allow_nan=True))


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


def fingerprint(
    data: SearchData, configs: list[tuple], seeds: list[int], X: Any = None, y: Any = None
) -> str:
    """A digest of what determines a chunk's rows, so a resumed search can check it.

    It covers the grid, the seeds, the training settings, the folds, the *values* of the
    preprocessed data (one copy per fold, so the preprocessing too) and of the encoded
    targets, and, when given, the values, names and types of the raw ``X`` and ``y``: two
    tables of the same shape that differ in one value (a column negated, two swapped, the
    target flipped) have different fingerprints.

    Args:
        data: the search's :class:`~shrinkage.search.SearchData`.
        configs: the configurations.
        seeds: the folds' seeds.
        X: the raw features as the search received them.
        y: the raw targets.

    Returns:
        A hex SHA-256 digest.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([repr(c) for c in configs]).encode())
    digest.update(json.dumps(seeds).encode())
    digest.update(repr(data.settings).encode())
    digest.update(repr((data.hidden, data.activation, data.scoring, tuple(data.X.shape))).encode())
    digest.update(repr((data.per_fold, data.factory is not None)).encode())
    digest.update(
        repr((data.init, data.standardize, data.settings.learning_rate_schedule)).encode()
    )
    for train, test in data.folds:
        digest.update(np.ascontiguousarray(train, dtype=np.int64).data)
        digest.update(b"|")
        digest.update(np.ascontiguousarray(test, dtype=np.int64).data)
    for tensor in (data.X, data.y):
        values = tensor.detach().cpu().contiguous().numpy()
        digest.update(repr((values.dtype.str, values.shape)).encode())
        digest.update(values.data)
    for raw in (X, y):
        if raw is not None:
            _hash_values(digest, raw)
    return digest.hexdigest()


def _hash_values(digest: Any, values: Any) -> None:
    """Feed a table's or an array's column names, types and values to ``digest``."""
    if isinstance(values, pd.DataFrame):
        digest.update(repr([(str(c), str(t)) for c, t in values.dtypes.items()]).encode())
        hashed = pd.util.hash_pandas_object(values, index=False).to_numpy()
        digest.update(np.ascontiguousarray(hashed).data)
        return
    array = np.asarray(values)
    digest.update(repr((array.dtype.str, array.shape)).encode())
    if array.dtype.kind in "biufc":
        digest.update(np.ascontiguousarray(array).data)
    else:
        flat = pd.Series(array.reshape(-1).astype(object)).map(repr)
        digest.update(np.ascontiguousarray(pd.util.hash_pandas_object(flat, index=False)).data)
