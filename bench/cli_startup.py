"""How fast the command line answers: whole-process wall time of ``shrinkage --help``,
``--version`` and a subcommand's ``--help`` (target: <= 0.5 s, median of 10), and when
``shrinkage fit`` prints its first line on a terminal.

Each command runs as a fresh process (``.venv/bin/shrinkage`` next to this Python, or
``python -m shrinkage.cli``), so the time includes the interpreter's start and every
import: what a user waits for. ``fit``'s first line is read from a pseudo-terminal (it
only prints that line on a terminal), and compared with the time torch's import starts
(an import hook writes a marker to the same terminal).

Run::

    python bench/cli_startup.py [--runs 10] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 0.5
COMMANDS = {
    "shrinkage --help": ["--help"],
    "shrinkage --version": ["--version"],
    "shrinkage fit --help": ["fit", "--help"],
    "shrinkage tune --help": ["tune", "--help"],
}
WATCH = (
    "import sys, time, importlib.abc\n"
    "class Watch(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path, target=None):\n"
    "        if name == 'torch':\n"
    "            sys.stderr.write('<torch>'); sys.stderr.flush()\n"
    "            sys.meta_path.remove(self)\n"
    "sys.meta_path.insert(0, Watch())\n"
    "from shrinkage.cli import main\n"
    "main(sys.argv[1:])\n"
)


def entry_point() -> list[str]:
    """The installed console script, else ``python -m shrinkage.cli``."""
    script = Path(sys.executable).with_name("shrinkage")
    if script.is_file():
        return [str(script)]
    found = shutil.which("shrinkage")
    return [found] if found else [sys.executable, "-m", "shrinkage.cli"]


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def first_line_of_fit(folder: Path) -> dict[str, float]:
    """Seconds until fit's first byte on a terminal, until torch's import starts, and in all."""
    import pty

    data = folder / "data.csv"
    rows = ["a,b,y"] + [f"{i % 7},{(3 * i) % 5},{i % 2}" for i in range(200)]
    data.write_text("\n".join(rows) + "\n")
    argv = ["fit", str(data), "--target", "y", "--epochs", "2", "-o", str(folder / "m")]
    master, slave = pty.openpty()
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", WATCH, *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    first = torch = None
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 300)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        now = time.perf_counter() - start
        if first is None:
            first = now
        seen += chunk
        if torch is None and b"<torch>" in seen:
            torch = now
    process.wait()
    total = time.perf_counter() - start
    os.close(master)
    return {"first_line_s": first or total, "torch_import_s": torch or total, "total_s": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per command (median)")
    parser.add_argument("--quick", action="store_true", help="3 runs, no fit timing")
    parser.add_argument(
        "--json", default=None, help="default: bench/results/cli_startup(-quick).json"
    )
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    if args.json is None:
        args.json = f"bench/results/cli_startup{'-quick' if args.quick else ''}.json"
    base = entry_point()
    wall(base + ["--version"])  # warm the file cache once
    results = {}
    for name, words in COMMANDS.items():
        times = [wall(base + words) for _ in range(runs)]
        results[name] = {"median_s": statistics.median(times), "min_s": min(times), "runs": runs}
        verdict = "ok" if results[name]["median_s"] <= TARGET_S else "MISSED"
        print(
            f"{name:24s} median {results[name]['median_s']:.3f} s, best {min(times):.3f} s "
            f"over {runs} runs (target <= {TARGET_S} s: {verdict})"
        )
    if not args.quick and sys.platform != "win32":
        with tempfile.TemporaryDirectory() as folder:
            fit = first_line_of_fit(Path(folder))
        results["shrinkage fit (first line on a terminal)"] = fit
        print(
            f"shrinkage fit: first line after {fit['first_line_s']:.2f} s; torch's import "
            f"starts at {fit['torch_import_s']:.2f} s; done (2 epochs) at {fit['total_s']:.2f} s"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} cores")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        payload = {"target_s": TARGET_S, "load_average": load, "results": results}
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
