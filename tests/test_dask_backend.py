"""The dask.distributed backend: chunks on a real 2-process LocalCluster, same results.

Each worker process runs torch with 1 thread (``n_threads=1``), as the local search does
under tests/conftest.py, so floating-point sums run in the same order on both sides and
``cv_results_`` must match exactly, the times aside.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shrinkage.errors import ShrinkageError
from shrinkage.estimators import weights_path
from shrinkage.search import connect, run_chunk, run_chunks
from shrinkage.search._distributed import INSTALL, require_distributed

needs_dask = pytest.mark.skipif(
    find_spec("distributed") is None, reason=f"dask.distributed is not installed ({INSTALL})"
)

TIMES = ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time")
MISSING = (
    "The dask backend needs dask.distributed, which is not installed; install it with: "
    "pip install shrinkage[distributed]"
)


def _max_memory(per_chunk: int, classification_data, small_search) -> int:
    """A budget that puts ``per_chunk`` candidates in each chunk."""
    X, y = classification_data(seed=1)
    search = small_search(random_state=3)
    per, shared = search._bytes(search.prepare(X, y).data)
    return shared + per_chunk * per


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@needs_dask
def test_dask_backend_gives_the_local_cv_results(client, classification_data, small_search):
    X, y = classification_data(seed=1)
    memory = _max_memory(4, classification_data, small_search)  # 12 candidates: 3 chunks
    local = small_search(random_state=3, max_memory=memory).fit(X, y)
    remote = small_search(
        random_state=3, max_memory=memory, backend="dask", client=client, n_threads=1
    ).fit(X, y)
    assert local.chunking_["n_chunks"] == remote.chunking_["n_chunks"] == 3
    assert local.cv_results_.keys() == remote.cv_results_.keys()
    for key, expected in local.cv_results_.items():
        if key not in TIMES:
            np.testing.assert_array_equal(remote.cv_results_[key], expected, err_msg=key)
    assert remote.best_params_ == local.best_params_
    assert np.isfinite(remote.cv_results_["mean_test_score"]).all()


@needs_dask
def test_dask_backend_runs_a_fused_network_as_the_local_stack(client):
    import torch
    from torch import nn

    from shrinkage.estimators import MLPClassifier
    from shrinkage.search import SearchCV

    g = torch.Generator().manual_seed(0)
    X = torch.randn(36, 2, 10, generator=g).numpy()
    y = (X[:, 0, :3].sum(axis=1) > 0).astype(int)

    def search(**kw):
        return SearchCV(
            MLPClassifier(epochs=3, batch_size=8, learning_rate=0.02),
            strengths=[1e-3, 1e-1],
            cv=2,
            model_factory=lambda: nn.Sequential(
                nn.Conv1d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(24, 1)
            ),
            refit=False,
            random_state=0,
            **kw,
        ).fit(X, y)

    local = search()
    remote = search(backend="dask", client=client, n_threads=1)
    assert local.chunking_["path"] == remote.chunking_["path"] == "fused"
    for key, expected in local.cv_results_.items():
        if key not in TIMES:
            np.testing.assert_array_equal(remote.cv_results_[key], expected, err_msg=key)


@needs_dask
def test_dask_backend_halves_per_layer_configurations_as_the_local_stack(
    client, classification_data, small_search
):
    """Successive halving on the cluster: each rung's chunks continue from the training
    states shipped back and forth; the rungs are global, the results those of one stack."""
    X, y = classification_data(seed=1)
    memory = _max_memory(4, classification_data, small_search)
    options = dict(random_state=3, per_layer=True, n_candidates=9, cv=2)
    local = small_search(**options).fit(X, y)
    remote = small_search(
        **options, max_memory=memory, backend="dask", client=client, n_threads=1
    ).fit(X, y)
    assert local.chunking_["n_chunks"] == 1 and remote.chunking_["n_chunks"] == 5
    assert local.rungs_ == remote.rungs_ == [1, 3]
    for key, expected in local.cv_results_.items():
        if key in TIMES:
            continue
        if expected.dtype == object:
            assert list(remote.cv_results_[key]) == list(expected), key
        else:
            np.testing.assert_allclose(remote.cv_results_[key], expected, atol=1e-6, err_msg=key)
    assert remote.best_params_ == local.best_params_


def _die_once(data, specs, keep_states=False, progress=None, *, marker_dir):
    """run_chunk, except that the first attempt at chunk 0 kills its worker process."""
    marker = Path(marker_dir) / "killed"
    if specs[0].index == 0 and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return run_chunk(data, specs, keep_states=keep_states)


@needs_dask
def test_a_worker_that_dies_mid_chunk_loses_nothing(
    client, tmp_path, classification_data, small_search
):
    import cloudpickle

    # the workers cannot import this test module: ship the wrapper by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    X, y = classification_data(seed=1)
    plan = small_search(random_state=3).prepare(X, y)
    chunks = [plan.specs[i : i + 4] for i in range(0, len(plan.specs), 4)]
    finished: list = []
    rows, _ = run_chunks(
        plan.data,
        chunks,
        stage="grid",
        backend="dask",
        client=client,
        n_threads=1,
        retries=1,
        function=functools.partial(_die_once, marker_dir=str(tmp_path)),
        checkpoint=tmp_path / "chunks",
        fingerprint=plan.fingerprint,
        progress=lambda c, epoch: finished.append(c),
    )
    assert (tmp_path / "killed").exists()  # a worker really died running chunk 0
    assert int((tmp_path / "killed").read_text()) != os.getpid()
    assert sorted(finished) == [0, 1, 2]
    assert len(list((tmp_path / "chunks").glob("grid-chunk-*.json"))) == 3
    expected, _ = run_chunks(plan.data, chunks, stage="grid")
    assert [r["candidate"] for r in rows] == list(range(12))
    for got, want in zip(rows, expected):
        assert {k: v for k, v in got.items() if not k.endswith("_time")} == {
            k: v for k, v in want.items() if not k.endswith("_time")
        }


class _Done:
    """A finished (or cancelled) future of the fake cluster below."""

    def __init__(self, value, cancelled=False):
        self.value, self._cancelled = value, cancelled

    def cancelled(self):
        return self._cancelled

    def result(self):
        return self.value

    def release(self):
        pass


class _LosingClient:
    """A cluster whose dying workers take the scattered data with them ``losses`` times:
    the tasks of chunk 1 are cancelled ("already forgotten") that often."""

    def __init__(self, losses):
        self.losses, self.scatters = losses, 0

    def scatter(self, data, broadcast, hash):
        self.scatters += 1
        return _Done(data)

    def submit(self, task, function, shared, specs, keep_states, n_threads, pure, retries):
        if specs == [1] and self.losses:
            self.losses -= 1
            return _Done(None, cancelled=True)
        return _Done(task(function, shared.value, specs, keep_states, n_threads))


@pytest.mark.parametrize("losses, retries", [(1, 1), (2, 2), (2, 1)])
def test_chunks_whose_data_a_dying_worker_took_are_submitted_again(monkeypatch, losses, retries):
    from shrinkage.search import _distributed

    monkeypatch.setattr(
        _distributed, "require_distributed", lambda: type("D", (), {"as_completed": list})
    )
    client = _LosingClient(losses)
    chunks = {0: [0], 1: [1], 2: [2]}
    seen = []

    def function(data, specs, keep_states=False):
        return (data, specs[0])

    def submit():
        return _distributed.submit_chunks(
            client, "data", chunks, function, retries=retries, on_result=lambda i, r: seen.append(i)
        )

    if losses > retries:
        with pytest.raises(ShrinkageError) as caught:
            submit()
        assert str(caught.value) == (
            "The dask cluster lost the search data 2 times (workers died); chunks [1] did not "
            "finish. Got retries=1."
        )
        return
    assert submit() == {0: ("data", 0), 1: ("data", 1), 2: ("data", 2)}
    assert client.scatters == losses + 1  # the data scattered afresh for each new round
    assert sorted(seen) == [0, 1, 2] and seen.count(1) == 1


def test_missing_dask_gives_the_install_command(monkeypatch, classification_data, small_search):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now fails
    with pytest.raises(ShrinkageError) as caught:
        require_distributed()
    assert str(caught.value) == MISSING
    X, y = classification_data(seed=1)
    with pytest.raises(ShrinkageError) as caught:
        small_search(random_state=3, backend="dask", client=object()).fit(X, y)
    assert str(caught.value) == MISSING


def test_dask_backend_without_a_client_is_refused(classification_data, small_search):
    X, y = classification_data(seed=1)
    with pytest.raises(ShrinkageError) as caught:
        small_search(random_state=3, backend="dask").fit(X, y)
    assert str(caught.value) == (
        "The dask backend needs a client: pass client=dask.distributed.Client(...) "
        "(CLI: --scheduler ADDRESS)."
    )


@pytest.fixture()
def table(tmp_path, classification_data):
    X, y = classification_data(seed=1)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(y=y)
    frame.to_csv(tmp_path / "data.csv", index=False)
    return tmp_path / "data.csv"


TUNE = ["--strengths", "0.001,0.1", "--hidden", "5", "--epochs", "3", "--folds", "2"]
TUNE += ["--batch-size", "8", "--threads", "1", "--quiet"]


@needs_dask
def test_tune_with_a_scheduler_writes_the_local_results(client, table, tmp_path):
    from shrinkage.cli import main

    argv = ["tune", str(table), "--target", "y", *TUNE]
    main([*argv, "-o", str(tmp_path / "local")])
    main([*argv, "-o", str(tmp_path / "dask"), "--scheduler", client.scheduler.address])
    local = pd.read_csv(tmp_path / "local" / "results.csv")
    remote = pd.read_csv(tmp_path / "dask" / "results.csv")
    columns = [c for c in local.columns if c not in TIMES]
    pd.testing.assert_frame_equal(remote[columns], local[columns])
    assert weights_path(tmp_path / "dask" / "model").is_file()


def test_tune_with_a_scheduler_but_no_dask_says_how_to_install(
    table, tmp_path, monkeypatch, capsys
):
    from shrinkage.cli import main

    monkeypatch.setitem(sys.modules, "distributed", None)
    argv = ["tune", str(table), "--target", "y", *TUNE, "-o", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as info:
        main([*argv, "--scheduler", "tcp://127.0.0.1:1"])
    assert info.value.code == 2
    assert capsys.readouterr().err == f"Error: {MISSING}\n"
    assert not (tmp_path / "out").exists()


@needs_dask
@pytest.mark.parametrize("address", ["", "   ", None])
def test_connect_refuses_a_blank_address(address):
    with pytest.raises(ShrinkageError) as caught:
        connect(address)
    assert str(caught.value) == (
        "The 'scheduler' address must be a string such as 'tcp://host:8786'. Got "
        f"{address!r} instead."
    )
