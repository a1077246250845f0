"""The over-fitting case study of the demo, against its published table.

make_moons(100, noise=0.2, random_state=1): 30 rows train, 70 test; ``Dense(500, relu)``
with ``kernel_regularizer=l2(strength)`` then one sigmoid output; Adam 1e-3; 4000 full-batch
epochs; test accuracy averaged over 5 seeds, at each published strength. Two settings:

* ``keras``: the case study's own (raw inputs, glorot-uniform weights, zero biases):
  ``MLPClassifier(standardize=False, init="glorot_uniform")``. Target: within 0.015 of the
  published accuracy at every strength.
* ``defaults``: the estimators' defaults (inputs standardized on the training rows, torch's
  ``nn.Linear`` initialization), to show what they change.

Every (strength, seed) network is trained at once as one stack
(:func:`shrinkage.cli.demo.case_study`), the same weights as the estimator fitted alone.

Run::

    python bench/moons_case_study.py            # both settings, 70 networks
    python bench/moons_case_study.py --quick    # a smoke run: 300 epochs, 2 seeds
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from shrinkage.cli.demo import CASE_STUDY_STRENGTHS, EPOCHS, PUBLISHED, case_study

SETTINGS = {
    "keras": {"standardize": False, "init": "glorot_uniform"},
    "defaults": {"standardize": True, "init": "torch"},
}
TOLERANCE = 0.015


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 epochs, 2 seeds (smoke run)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--settings", choices=("both", *SETTINGS), default="both")
    parser.add_argument(
        "--json",
        default=None,
        help="where to write the figures (default bench/results/moons-case-study.json; "
        "-quick.json with --quick)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs = 2, 300
    if args.json is None:
        name = "moons-case-study-quick.json" if args.quick else "moons-case-study.json"
        args.json = str(Path(__file__).parent / "results" / name)
    torch.set_num_threads(args.threads)
    names = list(SETTINGS) if args.settings == "both" else [args.settings]
    report: dict = {
        "config": {"seeds": args.seeds, "epochs": args.epochs, "threads": args.threads},
        "published": {str(k): v for k, v in PUBLISHED.items()},
        "results": {},
    }
    means: dict[str, dict[float, float]] = {}
    for name in names:
        started = time.perf_counter()
        accuracies = case_study(
            CASE_STUDY_STRENGTHS, range(args.seeds), args.epochs, **SETTINGS[name]
        )
        seconds = time.perf_counter() - started
        means[name] = {s: sum(a) / len(a) for s, a in accuracies.items()}
        report["results"][name] = {
            "settings": SETTINGS[name],
            "seconds": seconds,
            "accuracies": {str(s): a for s, a in accuracies.items()},
            "mean": {str(s): m for s, m in means[name].items()},
        }
        print(f"{name}: {len(accuracies) * args.seeds} networks in one stack, {seconds:.1f} s")
    header = f"{'strength':>9}  {'published':>9}" + "".join(
        f"  {name + ' mean':>14}  {'|diff|':>6}" for name in names
    )
    print(header)
    print("-" * len(header))
    within = {name: True for name in names}
    for strength in CASE_STUDY_STRENGTHS:
        line = f"{'none' if strength == 0 else f'{strength:g}':>9}  {PUBLISHED[strength]:>9.3f}"
        for name in names:
            diff = abs(means[name][strength] - PUBLISHED[strength])
            within[name] &= diff <= TOLERANCE
            line += f"  {means[name][strength]:>14.3f}  {diff:>6.3f}"
        print(line)
    for name in names:
        best = max(CASE_STUDY_STRENGTHS, key=lambda s: (means[name][s], -s))
        print(
            f"{name}: best strength {best:g}; every strength within {TOLERANCE} of the "
            f"published table: {'yes' if within[name] else 'NO'}"
        )
        report["results"][name]["within_tolerance"] = within[name]
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
