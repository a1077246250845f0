"""A saved model under fire: a reader beside a writer, kills mid-save, racing saves.

Runs the real-process scenarios of ``tests/_procs.py`` (one process imports torch once and
forks a child per trial) and prints their figures:

* reader/writer: one process saves model A and B alternately into one directory for
  ``--seconds`` (20 by default) while another loads it in a loop; every load must be A or B
  (0 failed loads, 0 false "checksum" alarms). Saves and loads per second are shown.
* kill-save: a process saving in a loop is SIGKILLed after a random delay, ``--trials``
  times (seeded): every directory must load afterwards, and the next save must clean up.
* concurrent-save: two processes released together save into one directory, ``--trials``
  times (each write slowed by 20 ms, so that the saves overlap): each succeeds or is
  refused in one line; the directory holds one whole model.
* kill-resume: a checkpointed search is SIGKILLed at a random moment and resumed in a fresh
  process, ``--trials`` times: the results must equal an uninterrupted search's.

Run::

    python bench/model_swap.py                 # 20 s reader/writer, 20 trials each
    python bench/model_swap.py --quick         # 3 s, 5 trials: a smoke run

and the figures go to ``bench/results/model_swap.json`` as well.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROCS = HERE.parent / "tests" / "_procs.py"


def summarize(report: dict) -> dict:
    """The figures of each scenario."""
    out: dict = {}
    rw = report["reader-writer"]
    loads = rw["loads"]
    total = loads["A"] + loads["B"] + loads["wrong"] + loads["tamper"] + loads["failed"]
    out["reader_writer"] = {
        "seconds": rw["seconds"],
        "saves": rw["saves"],
        "loads": total,
        "loads_old_or_new": loads["A"] + loads["B"],
        "failed_loads": loads["failed"] + loads["wrong"],
        "false_tamper_alarms": loads["tamper"],
        "saves_per_s": round(rw["saves"] / rw["seconds"], 1),
        "loads_per_s": round(total / rw["seconds"], 1),
    }
    kills = report["kill-save"]["trials"]
    out["kill_save"] = {
        "trials": len(kills),
        "killed": sum(t["killed"] for t in kills),
        "loadable_after": sum(t["loaded"] in ("A", "B") for t in kills),
        "leftovers_after_next_save": [
            f for f in report["kill-save"]["after_next_save"] if f.startswith(".")
        ],
    }
    races = report["concurrent-save"]["trials"]
    out["concurrent_save"] = {
        "trials": len(races),
        "both_saved": sum(t["codes"] == [0, 0] for t in races),
        "one_refused_in_one_line": sum(sorted(t["codes"]) == [0, 3] for t in races),
        "other_outcomes": sum(sorted(t["codes"]) not in ([0, 0], [0, 3]) for t in races),
        "loadable_after": sum(t["loaded"] in ("A", "B") for t in races),
    }
    resumes = report["kill-resume"]["trials"]
    out["kill_resume"] = {
        "trials": len(resumes),
        "killed_mid_search": sum(
            0 < t["finished_chunks"] < report["kill-resume"]["n_chunks"] for t in resumes
        ),
        "identical_after_resume": sum(t["same"] for t in resumes),
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="3 s and 5 trials")
    parser.add_argument("--json", default=None, help="default: results/model_swap(-quick).json")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.trials = 3.0, 5
    if args.json is None:
        args.json = str(HERE / "results" / f"model_swap{'-quick' if args.quick else ''}.json")
    scenarios = ["reader-writer", "kill-save", "concurrent-save", "kill-resume"]
    with tempfile.TemporaryDirectory() as root:
        command = [sys.executable, str(PROCS), *scenarios, "--root", root]
        command += ["--seconds", str(args.seconds), "--trials", str(args.trials)]
        command += ["--seed", str(args.seed)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return 1
    figures = summarize(json.loads(done.stdout))
    command = f"python bench/model_swap.py --seconds {args.seconds:g} --trials {args.trials}"
    result = {
        "command": command,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        **figures,
    }
    for name, values in figures.items():
        print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"({command}; written to {args.json})")
    bad = (
        figures["reader_writer"]["failed_loads"]
        + figures["reader_writer"]["false_tamper_alarms"]
        + figures["concurrent_save"]["other_outcomes"]
        + (figures["kill_save"]["trials"] - figures["kill_save"]["loadable_after"])
        + (figures["kill_resume"]["trials"] - figures["kill_resume"]["identical_after_resume"])
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
