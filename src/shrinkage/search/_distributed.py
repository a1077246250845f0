"""The dask.distributed backend of the search: chunks of the batched stack on a cluster.

A search is a list of chunks, each a stack of candidates trained together
(:func:`shrinkage.search.run_chunk`, a function of the data and the candidates'
specifications only). This backend ships *chunks*, never single fits: the data is
scattered to every worker once, each chunk is one task, and the rows come back as the
chunks finish, in any order, so that each can be written to disk at once
(:mod:`shrinkage.search._checkpoint`).

A worker that dies mid-chunk loses only that chunk: the scheduler runs it again on another
worker (and ``retries`` more times if the chunk function itself raises). Results do not
depend on where a chunk runs, so the dask backend gives the local backend's ``cv_results_``
(the times aside) for the same ``random_state``, as long as each worker runs torch with the
same number of threads (``n_threads``; floating-point sums depend on it).

dask.distributed is an optional dependency: ``pip install shrinkage[distributed]``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

from shrinkage.errors import ShrinkageError

__all__ = ["INSTALL", "connect", "require_distributed", "run_on_worker", "submit_chunks"]

#: What to run when dask.distributed is missing.
INSTALL = "pip install shrinkage[distributed]"


def require_distributed() -> ModuleType:
    """Import ``dask.distributed``, or say how to install it.

    Returns:
        The ``distributed`` module.

    Raises:
        ShrinkageError: when dask.distributed is not installed, with the install command.
    """
    try:
        return importlib.import_module("distributed")
    except ImportError:
        raise ShrinkageError(
            "The dask backend needs dask.distributed, which is not installed; install it "
            f"with: {INSTALL}"
        ) from None


def connect(address: str) -> Any:
    """A ``dask.distributed.Client`` connected to the scheduler at ``address``.

    Args:
        address: the scheduler's address, e.g. ``tcp://10.0.0.5:8786``.

    Returns:
        The client (close it when done).

    Raises:
        ShrinkageError: dask.distributed missing, or no scheduler answering at ``address``.
    """
    distributed = require_distributed()
    if not isinstance(address, str) or not address.strip():
        raise ShrinkageError(
            f"The 'scheduler' address must be a string such as 'tcp://host:8786'. Got "
            f"{address!r} instead."
        )
    try:
        return distributed.Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as err:
        text = " ".join(str(err).split()) or type(err).__name__
        raise ShrinkageError(
            f"Could not connect to the dask scheduler at {address!r}: {text}."
        ) from None


def run_on_worker(
    function: Callable[..., Any],
    data: Any,
    specs: Sequence[Any],
    keep_states: bool,
    n_threads: int | None,
) -> Any:
    """The task a worker runs: one chunk, with torch pinned to ``n_threads`` threads.

    Args:
        function: the chunk function, ``(data, specs, keep_states=...) -> ChunkResult``.
        data: the search's data (scattered to the worker).
        specs: the chunk's candidates.
        keep_states: also return the final weights.
        n_threads: torch intra-op threads for this chunk (None: leave the worker's).

    Returns:
        What ``function`` returns.
    """
    if n_threads is not None:
        import torch

        torch.set_num_threads(int(n_threads))
    return function(data, specs, keep_states=keep_states)


def submit_chunks(
    client: Any,
    data: Any,
    chunks: Mapping[int, Sequence[Any]],
    function: Callable[..., Any],
    *,
    keep_states: bool = False,
    n_threads: int | None = None,
    retries: int = 2,
    on_result: Callable[[int, Any], Any] | None = None,
) -> dict[int, Any]:
    """Run ``chunks`` on the cluster behind ``client``; hand each result over as it finishes.

    The data is scattered once (to every worker); each chunk is one task. A chunk whose
    worker dies is rescheduled by dask on another worker; a chunk whose function raises is
    retried ``retries`` times, then its error is raised here. Chunks the cluster cancels
    because a dying worker took the last copy of the data with it are submitted again,
    with the data scattered afresh, up to ``retries`` times.

    Args:
        client: a connected ``dask.distributed.Client``.
        data: what every chunk needs (:class:`~shrinkage.search.SearchData`).
        chunks: the chunks to run, by chunk index.
        function: the chunk function (:func:`shrinkage.search.run_chunk`).
        keep_states: also return each candidate's final weights.
        n_threads: torch threads per chunk on the workers.
        retries: retries of a chunk whose function raised.
        on_result: ``on_result(index, result)`` as each chunk finishes (any order).

    Returns:
        The results by chunk index.

    Raises:
        ShrinkageError: dask.distributed missing, or no client given, or the data lost
            more than ``retries`` times.
    """
    distributed = require_distributed()
    if client is None:
        raise ShrinkageError(
            "The dask backend needs a client: pass client=dask.distributed.Client(...) "
            "(CLI: --scheduler ADDRESS)."
        )
    if not chunks:
        return {}
    results: dict[int, Any] = {}
    pending = dict(chunks)
    # Scattered data lives on the workers: a worker that dies can take the last copy with
    # it (the cluster then cancels the tasks that need it, "already forgotten"). Those
    # chunks are submitted again with the data scattered afresh, a bounded number of times.
    for _ in range(retries + 1):
        lost = _submit_round(
            client,
            distributed,
            data,
            pending,
            function,
            keep_states,
            n_threads,
            retries,
            results,
            on_result,
        )
        if not lost:
            return results
        pending = {index: chunks[index] for index in lost}
    raise ShrinkageError(
        f"The dask cluster lost the search data {retries + 1} times (workers died); "
        f"chunks {sorted(pending)} did not finish. Got retries={retries}."
    )


def _submit_round(
    client: Any,
    distributed: Any,
    data: Any,
    chunks: Mapping[int, Sequence[Any]],
    function: Callable[..., Any],
    keep_states: bool,
    n_threads: int | None,
    retries: int,
    results: dict[int, Any],
    on_result: Callable[[int, Any], Any] | None,
) -> list[int]:
    """Scatter ``data``, run ``chunks``, put what finishes in ``results``; return the
    indices of the chunks the cluster cancelled because their data was lost."""
    # A fresh key per call: with the default content hash, a later stage (a refinement, the
    # next rung) scattering the same data would get the same key, and releasing this
    # stage's future could cancel the next stage's tasks ("lost dependencies").
    shared = client.scatter(data, broadcast=True, hash=False)
    futures = {
        client.submit(
            run_on_worker,
            function,
            shared,
            list(specs),
            keep_states,
            n_threads,
            pure=False,
            retries=retries,
        ): index
        for index, specs in chunks.items()
    }
    lost: list[int] = []
    try:
        for future in distributed.as_completed(list(futures)):
            index = futures[future]
            if future.cancelled():
                lost.append(index)
                continue
            results[index] = future.result()
            if on_result is not None:
                on_result(index, results[index])
    finally:
        for future in futures:
            future.release()
        shared.release()
    return lost
