"""A 200-candidate search: the local batched engine against a 2-worker dask LocalCluster.

The grid is 40 strengths x 5 folds = 200 candidates: an MLP (64 hidden units) trained for
``--epochs`` epochs on ``make_classification`` data (``--rows`` x 20 features), Adam,
batch 32, run five ways, round-robin (``--repeats`` rounds, the best time of each kept, so
that load from other processes on a shared machine hits every variant alike):

* the local backend, one stack of all 200 candidates, torch with 1 thread, then 2;
* the local backend cut into the dask run's 4 chunks, run one after the other (the cost of
  chunking alone, without shipping);
* ``backend="dask"`` on a ``LocalCluster(n_workers=2, threads_per_worker=1,
  processes=True)``, torch pinned to 1 thread per worker, with 2 chunks (one per worker)
  and with 4.

The cluster's start (process spawn, imports) is timed apart and not counted. The largest
relative difference of each run's ``cv_results_`` from the first one's is printed (times
aside): a candidate's floating-point sums depend on the size of the stack it trains in
(and on torch's thread count), so a different chunking moves the last bits; the same
chunking and thread count give identical results (what tests/test_dask_backend.py checks).

Run::

    python bench/dask_search.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time

import numpy as np
import torch
from sklearn.datasets import make_classification

from shrinkage.estimators import MLPClassifier
from shrinkage.search import SearchCV

TIMES = ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time")


def make_search(epochs: int, **kw) -> SearchCV:
    estimator = MLPClassifier(hidden_layer_sizes=(64,), epochs=epochs, batch_size=32)
    return SearchCV(
        estimator,
        strengths=np.logspace(-6, 0, 40),
        cv=5,
        random_state=0,
        refit=False,
        **kw,
    )


def budget_for(chunks: int, X: np.ndarray, y: np.ndarray, epochs: int) -> int:
    """A max_memory that splits the 200 candidates into ``chunks`` equal chunks."""
    search = make_search(epochs)
    per, shared = search._bytes(search.prepare(X, y).data)
    return shared + (200 // chunks) * per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 300 rows, 5 epochs, 1 round"
    )
    parser.add_argument("--json", default=None, help="default: bench/results/dask_search.json")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.epochs, args.repeats = 300, 5, 1
    if args.json is None:
        quick = "-quick" if args.quick else ""
        args.json = f"bench/results/dask_search{quick}.json"

    from distributed import Client, LocalCluster

    X, y = make_classification(args.rows, 20, n_informative=10, random_state=0)
    two, four = budget_for(2, X, y, args.epochs), budget_for(4, X, y, args.epochs)

    started = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    client.run(lambda: __import__("shrinkage.search"))  # the workers' imports, once
    startup_s = time.perf_counter() - started

    def local(threads: int, memory: int | str = "1GB") -> SearchCV:
        torch.set_num_threads(threads)
        return make_search(args.epochs, max_memory=memory).fit(X, y)

    def remote(memory: int) -> SearchCV:
        search = make_search(
            args.epochs, max_memory=memory, backend="dask", client=client, n_threads=1
        )
        return search.fit(X, y)

    variants = {
        "local, 1 torch thread": lambda: local(1),
        "local, 2 torch threads": lambda: local(2),
        "local, 1 thread, 4 chunks": lambda: local(1, four),
        "dask, 2 workers x 1 thread": lambda: remote(two),
        "dask, 2 workers x 1 thread ": lambda: remote(four),
    }
    local(1, "1GB")  # warm-up: the first fit pays imports and allocator growth
    remote(two)
    best = dict.fromkeys(variants, float("inf"))
    results: dict[str, SearchCV] = {}
    # Round-robin, so that load from other processes hits every variant alike.
    for _ in range(args.repeats):
        for name, run in variants.items():
            begun = time.perf_counter()
            results[name] = run()
            best[name] = min(best[name], time.perf_counter() - begun)
    client.close()
    cluster.close()

    reference = results["local, 1 torch thread"]

    def largest_difference(other: SearchCV) -> float:
        worst = 0.0
        for key, value in reference.cv_results_.items():
            if key in TIMES:
                continue
            got = other.cv_results_[key]
            if value.dtype.kind != "f":
                assert list(got) == list(value), key
                continue
            assert np.array_equal(np.isnan(got), np.isnan(value)), key
            scale = np.maximum(np.abs(value), 1e-12)
            worst = max(worst, float(np.nanmax(np.abs(got - value) / scale, initial=0.0)))
        return worst

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}")
    print(
        f"search: 200 candidates (40 strengths x 5 folds), MLP(64), {args.rows} rows x 20, "
        f"{args.epochs} epochs; best of {args.repeats}, round-robin"
    )
    base = best["local, 1 torch thread"]
    print(f"{'backend':<30}{'chunks':>7}{'wall s':>9}{'vs local':>10}{'max rel diff':>14}")
    for name in variants:
        search = results[name]
        print(
            f"{name.strip():<30}{search.chunking_['n_chunks']:>7}{best[name]:>9.2f}"
            f"{best[name] / base:>9.2f}x{largest_difference(search):>14.1e}"
        )
    print(f"cluster start (not counted above): {startup_s:.2f} s")
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as handle:
        payload = {
            "rows": args.rows,
            "epochs": args.epochs,
            "repeats": args.repeats,
            "best_seconds": {
                f"{name.strip()}, {results[name].chunking_['n_chunks']} chunks": best[name]
                for name in variants
            },
            "cluster_start_s": startup_s,
        }
        json.dump(payload, handle, indent=2)


if __name__ == "__main__":
    main()
