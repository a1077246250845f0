"""A search never loses work: finished chunks on disk, resume after a kill, failures marked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from shrinkage.errors import ShrinkageError
from shrinkage.estimators import MLPClassifier, weights_path
from shrinkage.search import SearchCV, chunk_path, mark_failures, read_chunk, run_chunk, run_chunks

# Timing columns differ between runs; every other column must be identical.
TIMES = ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time")


def _chunks(plan, size):
    return [plan.specs[i : i + size] for i in range(0, len(plan.specs), size)]


class Interrupted(Exception):
    pass


def _counting(calls, fail_at=None):
    """run_chunk, recording each chunk it trains; raises instead of training chunk fail_at."""

    def function(data, specs, keep_states=False, progress=None):
        if len(calls) == fail_at:
            raise Interrupted
        calls.append([s.index for s in specs])
        return run_chunk(data, specs, keep_states=keep_states, progress=progress)

    return function


@pytest.fixture(scope="module")
def plan(classification_data, small_search):
    X, y = classification_data(seed=0)
    return small_search().prepare(X, y)


def test_resume_skips_finished_chunks_and_gives_the_same_rows(plan, tmp_path):
    chunks = _chunks(plan, 4)  # 12 candidates: 3 chunks
    kwargs = dict(stage="grid", checkpoint=tmp_path, fingerprint=plan.fingerprint)
    reference, _ = run_chunks(plan.data, chunks, stage="grid")

    first: list = []
    with pytest.raises(Interrupted):
        run_chunks(plan.data, chunks, function=_counting(first, fail_at=2), **{**kwargs})
    assert first == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "grid-chunk-00000.json",
        "grid-chunk-00001.json",
    ]

    second: list = []
    seen: list = []
    rows, _ = run_chunks(
        plan.data, chunks, function=_counting(second), resume=True, on_chunk=seen.append, **kwargs
    )
    assert second == [[8, 9, 10, 11]]  # only the unfinished chunk trained again
    assert [len(r) for r in seen] == [8, 12]  # the resumed rows first, then each new chunk
    strip = [{k: v for k, v in r.items() if not k.endswith("_time")} for r in rows]
    expected = [{k: v for k, v in r.items() if not k.endswith("_time")} for r in reference]
    assert strip == expected


def test_without_resume_every_chunk_trains_again(plan, tmp_path):
    chunks = _chunks(plan, 6)
    run_chunks(plan.data, chunks, stage="grid", checkpoint=tmp_path, fingerprint=plan.fingerprint)
    calls: list = []
    run_chunks(
        plan.data,
        chunks,
        stage="grid",
        checkpoint=tmp_path,
        fingerprint=plan.fingerprint,
        function=_counting(calls),
    )
    assert len(calls) == 2


def test_resume_keeps_warm_start_weights(plan, tmp_path):
    chunks = _chunks(plan, 6)
    kwargs = dict(stage="refine", checkpoint=tmp_path, fingerprint=plan.fingerprint)
    _, states = run_chunks(plan.data, chunks, keep_states=True, **kwargs)
    calls: list = []
    _, again = run_chunks(
        plan.data, chunks, keep_states=True, resume=True, function=_counting(calls), **kwargs
    )
    assert calls == [] and sorted(again) == sorted(states) == list(range(12))
    for index, state in states.items():
        assert state.keys() == again[index].keys()
        for name in state:
            np.testing.assert_array_equal(again[index][name], state[name])


def test_checkpoint_of_another_search_is_refused(plan, tmp_path):
    chunks = _chunks(plan, 6)
    run_chunks(plan.data, chunks, stage="grid", checkpoint=tmp_path, fingerprint="other")
    with pytest.raises(ShrinkageError) as caught:
        run_chunks(
            plan.data,
            chunks,
            stage="grid",
            checkpoint=tmp_path,
            fingerprint=plan.fingerprint,
            resume=True,
        )
    assert str(caught.value) == (
        f"The checkpoint file '{chunk_path(tmp_path, 'grid', 0)}' is from another search (its "
        "data, folds, seeds, grid or training settings differ); use another output directory "
        "or remove it."
    )


def test_checkpoint_with_other_candidates_is_refused(plan, tmp_path):
    run_chunks(
        plan.data, _chunks(plan, 6), stage="grid", checkpoint=tmp_path, fingerprint=plan.fingerprint
    )
    with pytest.raises(ShrinkageError, match=r"holds candidates \[0, 1, 2\]\.\.\. but this chunk"):
        read_chunk(tmp_path, "grid", 0, _chunks(plan, 4)[0], plan.fingerprint)


def test_unreadable_checkpoint_is_refused(plan, tmp_path):
    chunk_path(tmp_path, "grid", 0).write_text("{not json")
    with pytest.raises(ShrinkageError) as caught:
        read_chunk(tmp_path, "grid", 0, plan.specs[:6], plan.fingerprint)
    assert str(caught.value) == (
        f"The checkpoint file '{chunk_path(tmp_path, 'grid', 0)}' cannot be used (it is not "
        "valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
        "(char 1)); remove it (and its .json or .safetensors file) to train that chunk again."
    )


def test_unknown_backend_is_refused(plan):
    with pytest.raises(ShrinkageError) as caught:
        run_chunks(plan.data, _chunks(plan, 6), stage="grid", backend="spark")
    assert str(caught.value) == (
        "The 'backend' parameter must be 'local' or 'dask'. Got 'spark' instead."
    )


# --- divergence -------------------------------------------------------------------------


def test_diverging_candidates_are_marked_failed_and_the_others_go_on(
    classification_data, small_search
):
    X, y = classification_data(seed=0)
    estimator = MLPClassifier(
        hidden_layer_sizes=(5,), epochs=3, batch_size=8, optimizer="sgd", learning_rate=0.5
    )
    search = small_search(estimator=estimator, strengths=[1e-3, 1e12], placements=("all",))
    search.fit(X, y)
    results = search.cv_results_
    assert list(results["status"]) == ["ok", "failed"]
    assert list(results["failure"]) == [
        "",
        "diverged in 2 of 2 splits (loss became NaN/inf) with strength=1e+12, learning_rate=0.5",
    ]
    assert np.isfinite(results["mean_test_score"][0]) and np.isnan(results["mean_test_score"][1])
    assert search.best_params_["strength"] == 1e-3


def test_mark_failures_pending_and_ok():
    results = {
        "param_strength": np.array([0.1, 1.0, 10.0]),
        "split0_test_score": np.array([0.5, np.nan, np.nan]),
        "split1_test_score": np.array([0.5, np.nan, 0.4]),
        "n_diverged": np.array([0, 0, 1]),
    }
    mark_failures(results, 0.01, done_splits=np.array([2, 0, 2]))
    assert list(results["status"]) == ["ok", "pending", "failed"]
    assert results["failure"][2] == (
        "diverged in 1 of 2 splits (loss became NaN/inf) with strength=10, learning_rate=0.01"
    )


# --- the CLI, killed mid-search ----------------------------------------------------------

STRENGTHS = "0.0001,0.0003,0.001,0.003,0.01,0.03,0.1,0.3"
TUNE = ["--hidden", "8", "--epochs", "60", "--batch-size", "8", "--folds", "2", "--quiet"]


@pytest.fixture()
def table(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    frame["y"] = (frame["a"] - frame["b"] > 0).astype(int)
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


def _one_config_per_chunk(table) -> str:
    """--max-memory for chunks of 2 candidates (one configuration x 2 folds): 8 chunks."""
    from shrinkage.data import load_dataset

    data = load_dataset(table, "y")
    estimator = MLPClassifier(hidden_layer_sizes=(8,), epochs=60, batch_size=8)
    search = SearchCV(estimator, strengths=[0.1], cv=2, random_state=0)
    per, shared = search._bytes(search.prepare(data.X, data.y).data)
    return str(shared + 2 * per)


def test_tune_killed_mid_search_resumes_to_the_same_results(table, tmp_path):
    from shrinkage.cli import main

    memory = ["--max-memory", _one_config_per_chunk(table)]
    argv = ["tune", str(table), "--target", "y", "--strengths", STRENGTHS, *TUNE, *memory]
    main([*argv, "-o", str(tmp_path / "uninterrupted")])
    expected = pd.read_csv(tmp_path / "uninterrupted" / "results.csv")

    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from shrinkage.cli import main; main(sys.argv[1:])"]
        + [*argv, "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    first = out / "results.csv"  # rewritten after each chunk, once its rows are on disk
    deadline = time.monotonic() + 120
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    process.stderr.close()
    finished = sorted(p.name for p in (out / "chunks").glob("*.json"))
    assert 1 <= len(finished) < 8 and not (out / "model").exists()
    # what was finished is already in results.csv; the rest is marked pending
    partial = pd.read_csv(out / "results.csv")
    ok = (partial["status"] == "ok").sum()
    assert len(partial) == 8 and 1 <= ok <= len(finished) <= ok + 1  # a chunk may end after
    assert set(partial["status"]) == {"ok", "pending"}
    kept = {name: (out / "chunks" / name).read_text() for name in finished}

    main([*argv, "-o", str(out), "--resume"])
    resumed = pd.read_csv(out / "results.csv")
    for name, text in kept.items():  # the finished chunks were read back, not trained again
        assert (out / "chunks" / name).read_text() == text
    columns = [c for c in expected.columns if c not in TIMES]
    pd.testing.assert_frame_equal(resumed[columns], expected[columns])
    assert set(resumed["status"]) == {"ok"}
    assert weights_path(out / "model").is_file()


def test_ctrl_c_says_how_to_resume_and_resume_says_what_it_reused(
    table, tmp_path, monkeypatch, capsys
):
    from shrinkage.cli import main
    from shrinkage.search import _checkpoint

    memory = ["--max-memory", _one_config_per_chunk(table)]
    loud = [a for a in TUNE if a != "--quiet"]
    argv = ["tune", str(table), "--target", "y", "--strengths", STRENGTHS, *loud, *memory]
    out = tmp_path / "out"
    calls = []

    def interrupted_at_the_third_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread
        return run_chunk(*args, **kwargs)

    monkeypatch.setattr(_checkpoint, "run_chunk", interrupted_at_the_third_chunk)
    with pytest.raises(SystemExit) as info:
        main([*argv, "-o", str(out)])
    assert info.value.code == 130
    err = capsys.readouterr().err
    assert (
        f"Interrupted. 2 of 8 grid chunks finished and are saved in {out / 'chunks'}/; "
        "continue with:" in " ".join(err.split())
    )
    command = err.strip().splitlines()[-1].strip()
    assert command.startswith("shrinkage tune ") and command.endswith(" --resume")
    assert f"-o {out}" in command and "--strengths " + STRENGTHS in command

    monkeypatch.setattr(_checkpoint, "run_chunk", run_chunk)
    main([*argv, "-o", str(out), "--resume"])
    printed = capsys.readouterr()
    assert f"Resumed: reused 2 of 8 grid chunks from {out / 'chunks'}/; trained 6." in (
        " ".join(printed.out.split())
    )
    # Not a terminal: plain progress lines, one per phase start and end at least.
    assert "tune: grid: reused 2 of 8 chunks" in printed.err
    for phase in ("grid", "refit", "baseline", "report"):
        assert f"tune: {phase} started" in printed.err and f"tune: {phase} done in" in printed.err
