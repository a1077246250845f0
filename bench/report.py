"""Time the plots and the HTML report for a 50-candidate search (target: under 5 seconds).

A synthetic results table with SearchCV's columns (50 configurations: 2 kinds x
placements x strengths, 5 folds, 2 layers) and a small fitted MLPClassifier on two moons
(with its unregularized twin for the histograms, and the 2-D points for the decision
boundary). Imports and model fits are outside the timing: what is timed is what
``shrinkage tune`` adds after the search, drawing every figure and writing the file.

    python bench/report.py [--repeats 5] [--out /tmp/bench-report.html] [--quick]

Writes the times to ``bench/results/report.json`` (``report-quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import make_moons  # noqa: E402

from shrinkage import report as R  # noqa: E402
from shrinkage.cli._workflows import fit_baseline  # noqa: E402
from shrinkage.estimators import MLPClassifier  # noqa: E402

N_CONFIGS = 50
FOLDS = 5


def synthetic_results(seed: int = 0) -> pd.DataFrame:
    """50 configurations: l2 on all / hidden / output and l1 on all / output, each at 10
    log-spaced strengths from 1e-6 to 1; scores peak at 1e-3."""
    rng = np.random.default_rng(seed)
    strengths = np.logspace(-6, 0, 10)
    combos = [("l2", "all"), ("l2", "hidden"), ("l2", "output"), ("l1", "all"), ("l1", "output")]
    rows = []
    for kind, placement in combos:
        for s in strengths:
            x = np.log10(s)
            folds = 0.9 - 0.01 * (x + 3) ** 2 + rng.normal(0, 0.01, FOLDS)
            row = {
                "param_kind": kind,
                "param_strength": s,
                "param_l1_ratio": np.nan,
                "param_placement": placement,
                "stage": "grid",
            }
            row.update({f"split{i}_test_score": v for i, v in enumerate(folds)})
            row.update(
                mean_test_score=folds.mean(),
                std_test_score=folds.std(),
                mean_train_score=min(1.0, 0.99 - 0.02 * (x + 6) ** 1.2 / 2),
                std_train_score=0.005,
                mean_fit_time=0.05,
                std_fit_time=0.0,
            )
            for layer in range(2):
                shrink = 1 / (1 + 30 * s)
                grow = 1.3 if placement == "output" and layer == 0 else 1.0
                row[f"weight_l2_layer{layer}"] = 6 * shrink * grow
                row[f"sparsity_layer{layer}"] = min(1.0, 20 * s) if kind == "l1" else 0.0
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame["rank_test_score"] = frame["mean_test_score"].rank(ascending=False, method="min")
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="a smoke run: one report")
    parser.add_argument("--json", default=None, help="default: bench/results/report.json")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
    if args.json is None:
        args.json = "bench/results/report-quick.json" if args.quick else "bench/results/report.json"
    torch.set_num_threads(1)

    frame = synthetic_results()
    assert len(frame) == N_CONFIGS
    X, y = make_moons(200, noise=0.25, random_state=0)
    chosen = MLPClassifier(
        (32,), strength=1e-3, epochs=60, early_stopping=True, random_state=0
    ).fit(X, y)
    baseline = fit_baseline(chosen, X, y)
    data = R.describe_data(X, y, source="make_moons(200, noise=0.25)", task="classification")

    out = args.out or Path(tempfile.mkdtemp()) / "report.html"
    times = []
    for _ in range(max(1, args.repeats)):
        start = time.perf_counter()
        R.build_report(
            None,
            out,
            results=frame,
            estimator=chosen,
            baseline=baseline,
            data=data,
            X=X,
            y=y,
            title="bench: 50 configurations",
        )
        times.append(time.perf_counter() - start)
    size = out.stat().st_size / 1e3
    print(
        f"report of {N_CONFIGS} configurations x {FOLDS} folds, 6 figures, {size:.0f} kB: "
        f"first {times[0]:.2f} s, median {statistics.median(times):.2f} s, "
        f"best {min(times):.2f} s over {len(times)} runs (target < 5 s) -> {out}"
    )
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as handle:
        payload = {"seconds": times, "median_s": statistics.median(times), "kilobytes": size}
        json.dump(payload, handle, indent=2)


if __name__ == "__main__":
    main()
