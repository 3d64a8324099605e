"""The analysis on the backend's device (CUDA where present) against the same analysis on the CPU of the same
machine, measured in the same run: the default and the largest config of each cell, at the app's stride.

    python benchmarks/bench_device.py            # EXPLORER_DEVICE picks the device (default: cuda when present)

Prints each config's seconds on both and the ratio CPU / device (above 1: the device is faster). Both runs are
checked to give the same spectral map (1e-4 in log10, float32) before their times are trusted.
"""
from __future__ import annotations

import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer import backend  # noqa: E402

backend.configure()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from explorer import ExperimentConfig, analyze  # noqa: E402
from explorer.analysis import auto_stride  # noqa: E402

CONFIGS = {
    "rnn default": ExperimentConfig(),
    "lstm default": ExperimentConfig(cell="lstm"),
    "gru default": ExperimentConfig(cell="gru"),
    "rnn T=2000 n=512": ExperimentConfig(seq_len=2000, hidden=512),
    "rnn gain 1.2 T=400 n=128": ExperimentConfig(init="gaussian", gain=1.2, seq_len=400, hidden=128),
    "lstm T=2000 n=256": ExperimentConfig(cell="lstm", seq_len=2000, hidden=256),
    "gru T=2000 n=512": ExperimentConfig(cell="gru", seq_len=2000, hidden=512),
    "lru T=2000 n=256": ExperimentConfig(cell="lru", seq_len=2000, hidden=256),
    "mingru T=2000 n=512": ExperimentConfig(cell="mingru", seq_len=2000, hidden=512),
}


def timed(config: ExperimentConfig, device: str):
    analyze(config.replace(seq_len=min(config.seq_len, 50)), device=device)  # warm-up: kernels, libraries
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = analyze(config, stride=auto_stride(config), device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def main() -> None:
    device = backend.device().type
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"[device] {device} ({name}); torch {torch.__version__}; CPU threads {torch.get_num_threads()}")
    for label, config in CONFIGS.items():
        cpu_s, on_cpu = timed(config, "cpu")
        dev_s, on_dev = timed(config, device)
        a, b = on_cpu.pairs.log10_spectral["state"], on_dev.pairs.log10_spectral["state"]
        finite = np.isfinite(a) & np.isfinite(b)
        worst = float(np.max(np.abs(a[finite] - b[finite]), initial=0.0))
        same = np.array_equal(np.isfinite(a), np.isfinite(b)) and worst <= 1e-4
        print(f"[device] {label:26s} stride {auto_stride(config):2d}: cpu {cpu_s:6.2f} s, {device} {dev_s:6.2f} s, "
              f"ratio {cpu_s / dev_s:5.2f}x; maps agree: {same} (largest difference {worst:.1e})")


if __name__ == "__main__":
    main()
