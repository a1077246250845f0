"""Real processes for the concurrency and kill tests: run as ``python tests/_procs.py``.

Importing torch costs seconds, so one process (this one) imports shrinkage once, fits two
small models, then *forks* a fresh child for every trial: the children are real processes,
killed with SIGKILL or racing each other, and nothing in this process ever runs a
multi-threaded kernel (``OMP_NUM_THREADS=1``), so forking is safe. The summary of every
scenario is printed as one JSON object on stdout; the tests (``test_promise_atomic_swap``,
``test_promise_resume_identity``) and ``bench/model_swap.py`` assert on it.

Scenarios (all seeded):

* ``kill-save``: a child saves model A and B alternately into one directory in a loop and
  is SIGKILLed after a random delay; after every kill the directory must load, as A or B,
  and the next save must leave no leftovers.
* ``kill-save-steps``: a child kills itself (SIGKILL) right after each step of a save (the
  new weights written, model.json replaced, the clean-up), one step per trial.
* ``concurrent-save``: two children, released together, save A and B into one directory
  (new or existing; each write slowed by 20 ms so that the saves overlap); each succeeds or
  is refused in one line, and the directory then holds one whole model.
* ``reader-writer``: one child saves A and B alternately for ``--seconds`` while another
  loads in a loop: every load must give A or B.
* ``kill-resume``: a child runs a checkpointed search and is SIGKILLed after a random delay;
  a second child resumes it; the results must equal an uninterrupted search's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from shrinkage.errors import ShrinkageError  # noqa: E402
from shrinkage.estimators import MLPClassifier, load, save  # noqa: E402

X = np.random.default_rng(0).normal(size=(40, 3))
Y = (X[:, 0] + X[:, 1] > 0).astype(int)


def models() -> dict[str, MLPClassifier]:
    """Two different fitted models; ``name(estimator)`` tells which one a load returned."""
    return {
        name: MLPClassifier((6,), epochs=3, random_state=seed).fit(X, Y)
        for name, seed in (("A", 1), ("B", 2))
    }


def which(estimator: object, reference: dict[str, np.ndarray]) -> str | None:
    proba = estimator.predict_proba(X)
    for name, expected in reference.items():
        if np.array_equal(proba, expected):
            return name
    return None


def _child(work, *args) -> int:
    """Fork; the child runs ``work(*args)`` and exits with its return code (0, or 3 for a
    ShrinkageError, 4 for anything else), never returning here."""
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        code = work(*args) or 0
    except ShrinkageError as err:
        sys.stderr.write(f"ShrinkageError: {err}\n")
        code = 3
    except BaseException:  # noqa: BLE001 - report any failure to the parent
        traceback.print_exc()
        code = 4
    finally:
        sys.stderr.flush()
        os._exit(code)


def _wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.is_dir() else []


# --------------------------------------------------------------------------- scenarios


def kill_save(root: Path, trials: int, seed: int, fitted: dict) -> dict:
    rng = random.Random(seed)
    reference = {k: m.predict_proba(X) for k, m in fitted.items()}
    folder = root / "model"
    save(fitted["A"], folder)
    outcomes = []
    for _ in range(trials):
        ready_r, ready_w = os.pipe()

        def loop(ready_r: int = ready_r, ready_w: int = ready_w) -> int:
            os.close(ready_r)
            os.write(ready_w, b"x")
            i = 0
            while True:
                save(fitted["AB"[i % 2]], folder)
                i += 1

        pid = _child(loop)
        os.close(ready_w)
        os.read(ready_r, 1)
        os.close(ready_r)
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(pid, signal.SIGKILL)
        code = _wait(pid)
        try:
            loaded = which(load(folder), reference)
        except ShrinkageError as err:
            loaded = f"ShrinkageError: {err}"
        killed = code == -signal.SIGKILL
        outcomes.append({"killed": killed, "loaded": loaded, "files": _files(folder)})
    save(fitted["B"], folder)
    return {"trials": outcomes, "after_next_save": _files(folder)}


_STEPS = ("weights", "commit", "clean")


def kill_save_steps(root: Path, fitted: dict) -> dict:
    """The child kills itself right after a chosen step of a save of B over A."""
    from shrinkage.estimators import _persistence as persist

    reference = {k: m.predict_proba(X) for k, m in fitted.items()}
    outcomes = []
    for step in _STEPS:
        folder = root / f"steps-{step}"
        save(fitted["A"], folder)

        def doomed(step: str = step, folder: Path = folder) -> int:
            real_write, real_clean = persist.atomic_write, persist._clean

            def write(path, data):
                real_write(path, data)
                written = "commit" if path.name == "model.json" else "weights"
                if written == step:
                    os.kill(os.getpid(), signal.SIGKILL)

            def clean(*args, **kwargs):
                real_clean(*args, **kwargs)
                os.kill(os.getpid(), signal.SIGKILL)

            persist.atomic_write, persist._clean = write, clean
            save(fitted["B"], folder)
            return 0

        code = _wait(_child(doomed))
        try:
            loaded = which(load(folder), reference)
        except ShrinkageError as err:
            loaded = f"ShrinkageError: {err}"
        left = _files(folder)
        save(fitted["A"], folder)
        outcomes.append(
            {"step": step, "code": code, "loaded": loaded, "files": left, "after": _files(folder)}
        )
    return {"steps": outcomes}


def concurrent_save(root: Path, trials: int, seed: int, fitted: dict) -> dict:
    rng = random.Random(seed)
    reference = {k: m.predict_proba(X) for k, m in fitted.items()}
    outcomes = []
    for trial in range(trials):
        folder = root / f"race-{trial}"
        if rng.random() < 0.5:
            save(fitted["A"], folder)  # half the races replace a model, half create one
        go_r, go_w = os.pipe()
        err_r, err_w = os.pipe()

        def racer(
            name: str, go_r: int = go_r, go_w: int = go_w, err_w: int = err_w, folder=folder
        ) -> int:
            from shrinkage.estimators import _persistence as persist

            real_write = persist.atomic_write

            def slow_write(path, data):  # widens the race: both saves overlap
                time.sleep(0.02)
                real_write(path, data)

            persist.atomic_write = slow_write
            os.close(go_w)
            os.read(go_r, 1)
            os.dup2(err_w, 2)
            save(fitted[name], folder)
            return 0

        pids = [_child(racer, name) for name in "AB"]
        os.close(go_r)
        os.close(err_w)
        os.write(go_w, b"xx")
        os.close(go_w)
        codes = [_wait(pid) for pid in pids]
        with os.fdopen(err_r, "r") as handle:
            errors = handle.read()
        try:
            loaded = which(load(folder), reference)
        except ShrinkageError as err:
            loaded = f"ShrinkageError: {err}"
        outcomes.append(
            {"codes": codes, "stderr": errors, "loaded": loaded, "files": _files(folder)}
        )
    return {"trials": outcomes, "siblings": sorted(os.listdir(root))}


def reader_writer(root: Path, seconds: float, fitted: dict) -> dict:
    reference = {k: m.predict_proba(X) for k, m in fitted.items()}
    folder = root / "shared"
    save(fitted["A"], folder)
    out_r, out_w = os.pipe()
    deadline = time.monotonic() + seconds

    def writer() -> int:
        saves = 0
        while time.monotonic() < deadline:
            save(fitted["AB"[saves % 2]], folder)
            saves += 1
        os.write(out_w, (json.dumps({"saves": saves}) + "\n").encode())
        return 0

    def reader() -> int:
        counts: dict[str, int] = {"A": 0, "B": 0, "wrong": 0, "tamper": 0, "failed": 0}
        messages: list[str] = []
        while time.monotonic() < deadline:
            try:
                name = which(load(folder), reference)
                counts[name or "wrong"] += 1
            except Exception as err:  # noqa: BLE001 - every failure is counted
                kind = "tamper" if "checksum" in str(err) else "failed"
                counts[kind] += 1
                messages.append(f"{type(err).__name__}: {err}"[:300])
        counts["messages"] = messages[:5]  # type: ignore[assignment]
        os.write(out_w, (json.dumps({"loads": counts}) + "\n").encode())
        return 0

    pids = [_child(writer), _child(reader)]
    os.close(out_w)
    codes = [_wait(pid) for pid in pids]
    with os.fdopen(out_r) as handle:
        reports = [json.loads(line) for line in handle if line.strip()]
    summary: dict = {"codes": codes, "seconds": seconds}
    for report in reports:
        summary.update(report)
    return summary


def kill_resume(root: Path, trials: int, seed: int) -> dict:
    """SIGKILL a checkpointed search at a random moment, resume it in a fresh process."""
    import pandas as pd

    from shrinkage.search import SearchCV

    rng = random.Random(seed)
    estimator = MLPClassifier((4,), epochs=6, batch_size=8, learning_rate=0.05)
    settings = dict(strengths=[1e-4, 1e-3, 1e-2, 1e-1], placements=("all", "output"), cv=2)
    probe = SearchCV(estimator, random_state=0, **settings)
    per, shared = probe._bytes(probe.prepare(X, Y).data)
    memory = shared + 2 * per  # one configuration (2 folds) per chunk: 8 chunks

    def search(checkpoint: Path | None, resume: bool = False) -> SearchCV:
        return SearchCV(
            estimator,
            random_state=0,
            refit=False,
            max_memory=memory,
            checkpoint_dir=checkpoint,
            resume=resume,
            **settings,
        )

    times = ["mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"]
    started = time.monotonic()
    search(None).fit(X, Y).results_frame().drop(columns=times).to_csv(
        root / "expected.csv", index=False
    )
    duration = time.monotonic() - started
    expected = pd.read_csv(root / "expected.csv")
    outcomes = []
    for trial in range(trials):
        folder = root / f"resume-{trial}"
        # The child waits after finishing, so the kill always lands, at a random moment that
        # may also fall after the last chunk (a kill then must not change the results either).
        pid = _child(lambda folder=folder: search(folder).fit(X, Y) and time.sleep(3600))
        time.sleep(rng.uniform(0.0, 1.2 * duration))
        os.kill(pid, signal.SIGKILL)
        code = _wait(pid)
        finished = len(list(folder.glob("*.json"))) if folder.is_dir() else 0
        out = root / f"resume-{trial}.csv"

        def resume(folder: Path = folder, out: Path = out) -> int:
            result = search(folder, resume=True).fit(X, Y).results_frame()
            result.drop(columns=times).to_csv(out, index=False)
            return 0

        resumed = _wait(_child(resume))
        same = resumed == 0 and pd.read_csv(out).equals(expected)
        outcomes.append(
            {"code": code, "finished_chunks": finished, "resumed": resumed, "same": same}
        )
    return {"trials": outcomes, "n_chunks": 8, "search_s": round(duration, 3)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "scenarios",
        nargs="+",
        choices=["kill-save", "kill-save-steps", "concurrent-save", "reader-writer", "kill-resume"],
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--root", default=None)
    args = parser.parse_args(argv)
    root = Path(args.root or tempfile.mkdtemp(prefix="shrinkage-procs-"))
    root.mkdir(parents=True, exist_ok=True)
    fitted = models()
    report: dict = {}
    for scenario in args.scenarios:
        started = time.monotonic()
        where = root / scenario
        where.mkdir(exist_ok=True)
        if scenario == "kill-save":
            result = kill_save(where, args.trials, args.seed, fitted)
        elif scenario == "kill-save-steps":
            result = kill_save_steps(where, fitted)
        elif scenario == "concurrent-save":
            result = concurrent_save(where, args.trials, args.seed, fitted)
        elif scenario == "reader-writer":
            result = reader_writer(where, args.seconds, fitted)
        else:
            result = kill_resume(where, args.trials, args.seed)
        result["wall_s"] = round(time.monotonic() - started, 2)
        report[scenario] = result
    print(json.dumps(report))


if __name__ == "__main__":
    main()
