"""Scoring a stack: how the rows per prediction block change its time.

A search scores every candidate on its training and validation rows, in blocks of rows
(:func:`shrinkage.search.engine.predict_stack`). The block is sized by bytes:
:func:`~shrinkage.search.engine.predict_rows` gives ``PREDICT_BYTES // (K * row_bytes)``
rows per candidate, ``row_bytes`` being what one candidate's forward keeps per row
(measured once per search), and at least ``PREDICT_MIN_ROWS``. This script times one
scoring pass of five stacks at budgets from 2 MiB to 64 MiB (without the floor), at the
rule's own block ("rule") and at the former fixed 4096 rows per candidate:

* ``mlp50-32``: 50 MLPs 20-32-32-1 on 1,000 rows;
* ``mlp50-64``: 50 MLPs 20-64-64-1 on 5,000 rows;
* ``mlp250``: 250 MLPs 64-32-32-32-10 on 1,200 rows;
* ``cnn``: the fused stack of 18 ``examples/cnn_digits.make_cnn`` on 916 digits;
* ``lstm``: the fused stack of 18 ``examples/lstm_sequence.Classifier`` on 300 sequences.

Each stack runs in its own process (glibc's thresholds for handing memory back to the
kernel move with a process's history), 1 thread, every budget once per repetition in
turn; medians of 7 repetitions.

Run::

    python bench/predict_block.py            # about 30 s
    python bench/predict_block.py --quick    # two stacks, 2 repetitions
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGETS_MIB = [2, 4, 8, 16, 32, 64]
CASES = ["mlp50-32", "mlp50-64", "mlp250", "cnn", "lstm"]


def _stack(case: str):  # noqa: ANN202 - (stack, X, index, row_bytes)
    import torch

    from shrinkage.search.engine import StackedMLP

    if case.startswith("mlp"):
        k, n, sizes = {
            "mlp50-32": (50, 1000, (20, 32, 32, 1)),
            "mlp50-64": (50, 5000, (20, 64, 64, 1)),
            "mlp250": (250, 1200, (64, 32, 32, 32, 10)),
        }[case]
        g = torch.Generator().manual_seed(0)
        X = torch.randn(n, sizes[0], generator=g)
        index = torch.randint(0, n, (k, n), generator=g)
        return StackedMLP(k, sizes), X, index, 4 * sum(sizes[1:])
    sys.path.insert(0, str(ROOT / "bench"))
    import search_networks

    from shrinkage.search.engine import FusedStack

    task = search_networks.Task(case, 10, "cpu")
    specs = task.specs(18)
    data = task.setup.data
    stack = FusedStack(task.factory, [s.seed for s in specs], "cpu")
    index = torch.arange(len(data.y)).repeat(len(specs), 1)
    return stack, data.X, index, data.row_bytes


def _measure(case: str, reps: int) -> dict:
    import torch

    from shrinkage.search.engine import predict_rows, predict_stack
    from shrinkage.search.engine._memory import PREDICT_ROWS

    torch.set_num_threads(1)
    stack, X, index, row_bytes = _stack(case)
    k = index.shape[0]
    blocks = {
        f"{m} MiB": max(1, min(PREDICT_ROWS, m * 2**20 // (k * row_bytes))) for m in BUDGETS_MIB
    }
    blocks["rule"] = predict_rows(k, row_bytes)
    blocks[f"{PREDICT_ROWS} rows (before)"] = PREDICT_ROWS
    times: dict[str, list[float]] = {name: [] for name in blocks}
    predict_stack(stack, X, index, 64)  # warm-up
    for _ in range(reps):
        for name, block in blocks.items():
            started = time.perf_counter()
            predict_stack(stack, X, index, block)
            times[name].append(time.perf_counter() - started)
    return {
        "k": k,
        "rows": int(index.shape[1]),
        "row_bytes": int(row_bytes),
        "blocks": blocks,
        "ms": {name: 1e3 * statistics.median(v) for name, v in times.items()},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two stacks, 2 repetitions")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--json", default=None, help="default: bench/results/predict_block.json")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)  # one child process
    args = parser.parse_args(argv)
    reps = 2 if args.quick else args.reps
    if args.case:
        print(json.dumps(_measure(args.case, reps)))
        return {}
    cases = CASES[:1] + CASES[3:4] if args.quick else CASES
    out: dict = {"machine": {"platform": platform.platform(), "threads": 1}, "reps": reps}
    for case in cases:
        child = [sys.executable, __file__, "--case", case, "--reps", str(reps)]
        result = json.loads(
            subprocess.run(child, check=True, capture_output=True, text=True).stdout
        )
        out[case] = result
        best = min(result["ms"], key=result["ms"].get)
        cells = "  ".join(
            f"{name} ({result['blocks'][name]}): {ms:.1f}" for name, ms in result["ms"].items()
        )
        print(
            f"{case:9s} K={result['k']:3d} row_bytes={result['row_bytes']:6d}  {cells}"
            f"  best: {best}"
        )
    path = (
        Path(args.json)
        if args.json
        else ROOT
        / "bench"
        / "results"
        / ("predict_block-quick.json" if args.quick else "predict_block.json")
    )
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
