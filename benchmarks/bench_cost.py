"""Calibrate the cost model of explorer/cost.py on this machine: time analyses that each stress one kind of work,
fit the seconds per unit of every feature (non-negative least squares on relative error), and print the fit,
the coefficients to paste into ``COEFFICIENTS``, and each config's predicted / measured ratio.

    python benchmarks/bench_cost.py            # about 5 minutes on 2 cores
    python benchmarks/bench_cost.py --check    # no fit: the current coefficients' ratios only

A model is good enough when every ratio lies within about 0.67-1.5: the app's strides then keep every config's
first run within 1.5x of the largest simple RNN's (benchmarks/bench_worst_case.py measures that end to end).
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer import backend  # noqa: E402

backend.configure()

import numpy as np  # noqa: E402

from explorer import ExperimentConfig, analyze  # noqa: E402
from explorer.cost import COEFFICIENTS, features  # noqa: E402


def design() -> list[tuple[str, ExperimentConfig, int]]:
    """(label, config, stride): each family moves one feature while the others stay small."""
    E = ExperimentConfig
    rows = []
    for n, T, stride in ((16, 400, 1), (16, 2000, 4), (64, 100, 1), (64, 400, 2), (128, 400, 4), (256, 1000, 40),
                         (512, 2000, 134), (512, 500, 34), (4, 1000, 2)):
        rows.append((f"rnn n={n} T={T} /{stride}", E(hidden=n, seq_len=T), stride))
    for n, T, stride in ((64, 400, 4), (256, 1000, 60), (512, 1000, 67)):
        rows.append((f"rnn float64 n={n} T={T} /{stride}", E(hidden=n, seq_len=T, dtype="float64"), stride))
    for n, T, stride in ((64, 200, 2), (128, 200, 4), (256, 400, 27), (512, 1000, 100)):
        rows.append((f"rnn orthogonal n={n} T={T} /{stride}", E(hidden=n, seq_len=T, init="orthogonal"), stride))
    for gain, n, T, stride in ((1.2, 128, 400, 2), (0.9, 128, 400, 2), (1.5, 64, 400, 1), (1.2, 256, 1000, 40)):
        rows.append((f"rnn gaussian {gain} n={n} T={T} /{stride}", E(hidden=n, seq_len=T, init="gaussian", gain=gain),
                     stride))
    for n, lag in ((256, 1000), (512, 600)):
        rows.append((f"rnn lag {lag} n={n}", E(hidden=n, seq_len=1000, lag=lag), 67))
    for n, T, stride in ((64, 100, 1), (64, 400, 4), (256, 2000, 134), (128, 1000, 30)):
        rows.append((f"lstm n={n} T={T} /{stride}", E(cell="lstm", hidden=n, seq_len=T), stride))
    for n, T, stride in ((64, 100, 1), (128, 400, 4), (512, 2000, 134), (256, 1000, 40)):
        rows.append((f"gru n={n} T={T} /{stride}", E(cell="gru", hidden=n, seq_len=T), stride))
    for cell, n, T in (("lru", 256, 2000), ("mingru", 512, 2000), ("minlstm", 128, 1000)):
        rows.append((f"{cell} n={n} T={T}", E(cell=cell, hidden=n, seq_len=T), 1))
    rows.append(("rnn batch norm n=128 T=400 B=256", E(hidden=128, seq_len=400, norm="batch", batch=256), 8))
    rows.append(("rnn layer norm n=256 T=1000", E(hidden=256, seq_len=1000, norm="layer"), 40))
    return rows


def nnls(A: np.ndarray, b: np.ndarray, sweeps: int = 5000) -> np.ndarray:
    """min ||A x - b|| over x >= 0 by cyclic coordinate descent (columns scaled to unit norm first)."""
    scale = np.linalg.norm(A, axis=0)
    scale[scale == 0] = 1.0
    A = A / scale
    x = np.maximum(np.linalg.lstsq(A, b, rcond=None)[0], 0.0)
    residual = b - A @ x
    for _ in range(sweeps):
        for j in range(A.shape[1]):
            new = max(0.0, x[j] + A[:, j] @ residual)
            residual -= A[:, j] * (new - x[j])
            x[j] = new
    return x / scale


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="no fit: ratios of the current coefficients")
    args = parser.parse_args()
    analyze(ExperimentConfig(seq_len=50, hidden=32))  # warm-up
    names = [k for k in COEFFICIENTS if not k.startswith("lyapunov")]  # timed alone: see explorer/cost.py
    rows, measured = [], []
    for label, config, stride in design():
        start = time.perf_counter()
        analyze(config, stride=stride)
        seconds = time.perf_counter() - start
        x = features(config, stride, exponents=0)  # the fit leaves the Lyapunov terms out (timed alone)
        rows.append([x[k] for k in names])
        measured.append(seconds)
        now = sum(COEFFICIENTS[k] * x[k] for k in names)
        print(f"[cost] {label:38s} {seconds:6.2f} s measured, {now:6.2f} s predicted now ({now / seconds:.2f}x)",
              flush=True)
    A, t = np.array(rows), np.array(measured)
    if not args.check:
        fitted = dict(zip(names, nnls(A / t[:, None], np.ones(len(t)))))
        print("[cost] fitted COEFFICIENTS (seconds per unit):")
        for name, value in fitted.items():
            print(f'    "{name}": {value:.3g},' + (f"  # 1 / {1 / value:.3g}" if value > 0 else ""))
    else:
        fitted = COEFFICIENTS
    ratios = A @ np.array([fitted[k] for k in names]) / t
    for (label, _, _), ratio in zip(design(), ratios):
        print(f"[cost] {label:38s} predicted / measured {ratio:.2f}")
    print(f"[cost] ratios from {ratios.min():.2f} to {ratios.max():.2f} (target: within 0.67-1.5)")


if __name__ == "__main__":
    main()
