"""The compiled LSTM kernel's matrix products against MKL's batched GEMM, on the benchmark's shapes.

The fused LSTM of ``bench/search_networks.py`` (18 candidates, batches of 32, hidden 32,
8 inputs: ``D = H + In + 1 = 41`` columns of ``[h; x; 1]``, ``4H = 128`` gates, 20 steps)
runs three kinds of product per training step, all small:

* ``gates``: per step, ``(K, 32, 41) @ (K, 41, 128)``;
* ``recurrent``: per step backward, ``(K, 32, 128) @ (K, 128, 32)``;
* ``weights``: once per step of training, ``(K, 41, 640) @ (K, 640, 128)`` (the rows of
  all 20 time steps).

Each is timed as ``torch.bmm`` (MKL) and as the compiled kernel's register tile
(:func:`shrinkage.search.engine.enable_compiled_lstm`; needs a C++ compiler and ninja),
1 thread, beside a 512^3 ``torch.mm`` (the machine's sgemm rate); medians of interleaved
repetitions, GFLOP/s and % of sgemm.

Run::

    python bench/lstm_products.py
    python bench/lstm_products.py --quick
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from shrinkage.errors import ShrinkageError
from shrinkage.search.engine import _lstm_ext, enable_compiled_lstm

ROOT = Path(__file__).resolve().parents[1]
K, B, T, H, IN = 18, 32, 20, 32, 8
D, G = H + IN + 1, 4 * H


def operands() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``name -> (A, W)`` in the layouts the kernel uses (A may be a strided view)."""
    g = torch.Generator().manual_seed(0)
    hx = torch.randn(K, T + 1, B, D, generator=g)  # rows [h_{t-1}; x_t; 1]
    dp = torch.randn(K, T, B, G, generator=g)
    return {
        "gates": (hx[:, 3], torch.randn(K, D, G, generator=g)),
        "recurrent": (dp[:, 3], torch.randn(K, G, H, generator=g)),
        "weights": (hx[:, :T].reshape(K, T * B, D).transpose(1, 2), dp.reshape(K, T * B, G)),
    }


def _time(fn, n: int) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repetitions")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--json", default=None, help="default: bench/results/lstm_products.json")
    args = parser.parse_args(argv)
    reps = 3 if args.quick else args.reps
    torch.set_num_threads(1)
    try:
        enable_compiled_lstm(True)
    except ShrinkageError as err:
        print(f"Error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    kernel = _lstm_ext.kernel(torch.empty(1))
    assert kernel is not None
    big = torch.randn(512, 512)
    ops = operands()
    times: dict[str, list[float]] = {"sgemm": []}
    for name in ops:
        times[f"{name} mkl"], times[f"{name} tile"] = [], []
    for _ in range(reps):
        times["sgemm"].append(_time(lambda: torch.mm(big, big), 10))
        for name, (a, w) in ops.items():
            res = torch.empty(K, a.shape[1], w.shape[2])
            mkl = lambda a=a, w=w, res=res: torch.bmm(a, w, out=res)  # noqa: E731
            tile = lambda a=a, w=w, res=res: kernel.product(a, w, res)  # noqa: E731
            times[f"{name} mkl"].append(_time(mkl, 50))
            times[f"{name} tile"].append(_time(tile, 50))
    sgemm = 2 * 512**3 / statistics.median(times["sgemm"]) / 1e9
    out: dict = {
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": 1},
        "reps": reps,
        "sgemm_gflops": sgemm,
    }
    print(f"1 thread; sgemm 512^3: {sgemm:.1f} GFLOP/s (median of {reps})")
    for name, (a, w) in ops.items():
        flops = 2 * K * a.shape[1] * a.shape[2] * w.shape[2]
        row = {}
        for how in ("mkl", "tile"):
            seconds = statistics.median(times[f"{name} {how}"])
            row[how] = {"us": seconds * 1e6, "gflops": flops / seconds / 1e9}
        out[name] = row
        shape = f"({K}, {a.shape[1]}, {a.shape[2]}) @ ({K}, {w.shape[1]}, {w.shape[2]})"
        print(
            f"{name:10s} {shape:34s} MKL {row['mkl']['us']:7.1f} us "
            f"{row['mkl']['gflops']:5.1f} GFLOP/s ({100 * row['mkl']['gflops'] / sgemm:3.0f}%)"
            f"   tile {row['tile']['us']:7.1f} us {row['tile']['gflops']:5.1f} GFLOP/s "
            f"({100 * row['tile']['gflops'] / sgemm:3.0f}%)"
        )
    name = "lstm_products-quick.json" if args.quick else "lstm_products.json"
    path = Path(args.json) if args.json else ROOT / "bench" / "results" / name
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
