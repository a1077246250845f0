"""Promise: no silently wrong result. ``--resume`` continues only the very same search;
training that exploded is marked failed (search) or refused (fit); labels that cannot be
told apart as numbers are refused.

* The search's fingerprint hashes the *values* of the data (raw, and preprocessed per fold),
  the targets, the folds and the settings: a table of the same shape with one column
  negated, two swapped or the target flipped is another search, and resuming it is refused.
* Every chunk file carries a checksum of its own rows: an edited chunk is refused.
* A search SIGKILLed at a random moment and resumed in a fresh process ends with exactly
  the results of an uninterrupted one (20 seeded trials in real processes, through the
  session fixture ``forked``).
* A candidate whose loss ends over 1000 times its start (or NaN/inf) is ``failed`` with the
  reason; ``fit`` refuses to save such a model (exit 2, pointing at ``--lr`` / ``--strength``).
* Integer targets beyond int64 are refused instead of collapsing in float64.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _hostile import check_refused, run_cli, snapshot

from shrinkage.estimators import MLPClassifier
from shrinkage.search import SearchCV, chunk_path


def test_a_search_killed_at_a_random_moment_resumes_to_the_same_results(forked):
    trials = forked["kill-resume"]["trials"]
    assert len(trials) == 20
    assert all(t["code"] == -9 for t in trials)
    assert [t for t in trials if not (t["resumed"] == 0 and t["same"])] == []
    n = forked["kill-resume"]["n_chunks"]
    assert sum(0 < t["finished_chunks"] < n for t in trials) >= 5  # killed mid-search


# --------------------------------------------------------------------------- the fingerprint


def _table(seed=0, n=40):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)}
    )
    frame["y"] = (frame["a"] - frame["b"] > 0).astype(int)
    return frame


def _negate(frame):
    return frame.assign(a=-frame["a"])


def _swap(frame):
    return frame.assign(a=frame["b"], b=frame["a"])


def _flip(frame):
    return frame.assign(y=1 - frame["y"])


def _one_value(frame):
    changed = frame.copy()
    changed.loc[7, "c"] += 1e-6
    return changed


def _scaled(frame):
    return frame.assign(c=2 * frame["c"])  # standardized away: only the raw hash sees it


CHANGES = [
    ("negate-a-column", _negate),
    ("swap-two-columns", _swap),
    ("flip-target", _flip),
    ("one-value", _one_value),
    ("scale-a-column", _scaled),
]


def _fingerprint(frame):
    search = SearchCV(
        MLPClassifier((3,), epochs=1),
        strengths=[0.1],
        cv=2,
        random_state=0,
    )
    return search.prepare(frame[["a", "b", "c"]], frame["y"]).fingerprint


@pytest.mark.parametrize("change", [c[1] for c in CHANGES], ids=[c[0] for c in CHANGES])
def test_the_fingerprint_changes_with_any_value(change):
    frame = _table()
    assert _fingerprint(frame) == _fingerprint(_table())
    assert _fingerprint(change(frame)) != _fingerprint(frame)


# --------------------------------------------------------------------------- tune --resume

_TUNE = [
    "tune",
    "data.csv",
    "--target",
    "y",
    "--hidden",
    "3",
    "--epochs",
    "2",
    "--folds",
    "2",
    "--strengths",
    "0.001,0.01,0.1",
    "--max-memory",
    "1",
    "--quiet",
]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A finished `tune` run (one configuration per chunk), to copy and resume."""
    import os

    root = tmp_path_factory.mktemp("tuned")
    _table().to_csv(root / "data.csv", index=False)
    here = os.getcwd()
    os.chdir(root)
    try:
        from shrinkage.cli import main

        main(_with_memory(root))
    except SystemExit as exit_:
        assert exit_.code == 0
    finally:
        os.chdir(here)
    return root


def _with_memory(root):
    """--max-memory for one configuration (2 folds) per chunk."""
    from shrinkage.data import load_dataset

    data = load_dataset(root / "data.csv", "y")
    search = SearchCV(MLPClassifier((3,), epochs=2), strengths=[0.1], cv=2, random_state=0)
    per, shared = search._bytes(search.prepare(data.X, data.y).data)
    argv = list(_TUNE)
    argv[argv.index("--max-memory") + 1] = str(shared + 2 * per)
    return [*argv, "-o", "out"]


@pytest.fixture
def copy(tuned, tmp_path, monkeypatch):
    shutil.copytree(tuned, tmp_path / "run")
    monkeypatch.chdir(tmp_path / "run")
    return tmp_path / "run"


@pytest.mark.parametrize("change", [c[1] for c in CHANGES], ids=[c[0] for c in CHANGES])
def test_resume_with_other_data_of_the_same_shape_is_refused(copy, capsys, change):
    change(pd.read_csv("data.csv")).to_csv("data.csv", index=False)
    before = snapshot(copy / "out")
    code, out, err = run_cli([*_with_memory(copy), "--resume"], capsys)
    check_refused(code, out, err, "is from another search (its data, folds, seeds, grid")
    assert snapshot(copy / "out") == before


def test_resume_with_the_same_data_reads_every_chunk_back(copy, capsys):
    chunks = {p.name: p.read_bytes() for p in (copy / "out" / "chunks").iterdir()}
    results = pd.read_csv("out/results.csv")
    code, _, err = run_cli([*_with_memory(copy), "--resume"], capsys)
    assert code == 0, err
    assert {p.name: p.read_bytes() for p in (copy / "out" / "chunks").iterdir()} == chunks
    times = [c for c in results.columns if c.endswith("_time")]
    pd.testing.assert_frame_equal(
        pd.read_csv("out/results.csv").drop(columns=times), results.drop(columns=times)
    )


def _edit_score(path: Path) -> None:
    payload = json.loads(path.read_text())
    payload["rows"][0]["test_score"] = 1.0
    path.write_text(json.dumps(payload))


def test_an_edited_chunk_is_refused(copy, capsys):
    _edit_score(chunk_path(copy / "out" / "chunks", "grid", 1))
    code, out, err = run_cli([*_with_memory(copy), "--resume"], capsys)
    check_refused(code, out, err, "its rows do not match its checksum: it was edited")


# --------------------------------------------------------------------------- divergence


def test_an_exploding_candidate_is_marked_failed_with_its_reason(place, capsys):
    argv = [
        "tune",
        "data.csv",
        "--target",
        "y",
        "--optimizer",
        "sgd",
        "--lr",
        "0.3",
        "--strengths",
        "0.001,10",
        "--hidden",
        "8",
        "--epochs",
        "20",
        "--folds",
        "2",
        "-q",
        "-o",
        "out",
    ]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    results = pd.read_csv("out/results.csv")
    assert list(results["status"]) == ["ok", "failed"]
    failure = results["failure"][1]
    assert failure.startswith("diverged in 2 of 2 splits (")
    assert "times its start" in failure or "NaN/inf" in failure
    assert np.isnan(results["mean_test_score"][1]) and results["rank_test_score"][1] == 2


def test_fit_refuses_to_save_a_model_whose_loss_exploded(place, capsys):
    argv = ["fit", "houses.csv", "--target", "price", "--lr", "1e5", "--epochs", "5", "-o", "m"]
    code, out, err = run_cli(argv, capsys)
    check_refused(code, out, err, "Training diverged at epoch")
    assert "(--lr, --strength); nothing was saved." in err
    assert not Path("m").exists()


# --------------------------------------------------------------------------- big integers

_BIG = [
    ("uint64", [2**63 + i for i in range(30)], "9223372036854775808"),
    ("python-ints", [10**30 + i for i in range(30)], "1000000000000000000000000000000"),
    ("negative", [-(2**63) - 1 - i for i in range(30)], "-9223372036854775809"),
]


@pytest.mark.parametrize(("values", "shown"), [c[1:] for c in _BIG], ids=[c[0] for c in _BIG])
@pytest.mark.parametrize("task", [[], ["--task", "classification"], ["--task", "regression"]])
def test_integer_targets_beyond_int64_are_refused(place, capsys, values, shown, task):
    rows = "\n".join(f"{i % 7},{v}" for i, v in enumerate(values))
    Path("big.csv").write_text(f"a,y\n{rows}\n")
    code, out, err = run_cli(
        ["fit", "big.csv", "--target", "y", "--epochs", "1", *task, "-o", "m"], capsys
    )
    check_refused(code, out, err, f"has an integer beyond the int64 range in row 1 (got {shown})")
    assert not Path("m").exists()
