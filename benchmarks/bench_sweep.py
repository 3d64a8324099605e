"""Sweeps (explorer.sweep) on this machine: a 20 x 20 phase diagram, the scaling in workers, and Ray's overhead.

    python benchmarks/bench_sweep.py [--size 20] [--small 8] [--skip-ray] [--out benchmarks/results/bench_sweep.json]

1. The phase diagram: tanh, n = 256, T = 200, input zeros, float64, sigma_w = 0.5..2.5 x sigma_b = 0..0.5 (``--size``
   values each), the local executor with the default workers (the cores), no cache: seconds, against the cost
   model's prediction; and how often the measurement is within 0.03 decades per step of mean-field theory where
   |log10 chi| > 0.05.
2. Scaling: a ``--small`` x ``--small`` part of it on 1 and 2 workers (the pool's start included: spawned
   processes import torch), and the speed-up.
3. Ray: the start of a local Ray (num_cpus = 2), then 100 trivial tasks (after a warm-up round, so the workers
   exist): the overhead per task; and the small sweep under Ray against the local executor (same rows, checked).

Every run computes (no disk cache). Run it alone: other work on the cores shows in the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from explorer import backend  # noqa: E402

backend.configure()

from explorer import sweep as sw  # noqa: E402
from explorer.config import ExperimentConfig  # noqa: E402

BASE = ExperimentConfig(activation="tanh", hidden=256, seq_len=200, input="zeros", init="gaussian", dtype="float64")


def _numbers(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def timed(sweep: sw.Sweep, **kwargs) -> tuple[sw.SweepResult, float]:
    start = time.perf_counter()
    result = sw.run_sweep(sweep, cache=False, **kwargs)
    return result, time.perf_counter() - start


def agreement(result: sw.SweepResult) -> dict:
    rows = [r for r in result.rows if r[sw.RATE] is not None and r[sw.THEORY] is not None and abs(r[sw.THEORY]) > 0.05]
    gaps = sorted(((abs(r[sw.RATE] - r[sw.THEORY]), r) for r in rows), key=lambda g: -g[0])
    held = sum(g < 0.03 for g, _ in gaps)
    worst = [{"gain": r["gain"], "bias_std": r["bias_std"], "measured": round(r[sw.RATE], 4),
              "theory": round(r[sw.THEORY], 4), "gap": round(g, 4)} for g, r in gaps[:5]]
    return {"rows": len(rows), "within_0.03": held, "worst": worst}


def _trivial(x: int) -> int:
    return x + 1


def bench_ray(small: sw.Sweep, local: sw.SweepResult, local_seconds: float) -> dict:
    import logging

    import ray

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             runtime_env=sw._ray_runtime_env())
    started = time.perf_counter() - start
    try:
        task = ray.remote(num_cpus=1)(_trivial)
        ray.get([task.remote(i) for i in range(10)])  # the workers start
        start = time.perf_counter()
        assert ray.get([task.remote(i) for i in range(100)]) == list(range(1, 101))
        per_task = (time.perf_counter() - start) / 100
        result, seconds = timed(small, executor="ray")
    finally:
        ray.shutdown()
    assert _numbers(result.rows) == _numbers(local.rows), "Ray's rows differ from the local executor's"
    return {"ray_version": ray.__version__, "start_s": round(started, 2), "trivial_task_ms": round(1e3 * per_task, 3),
            "small_sweep_s": round(seconds, 2), "small_sweep_local_2_workers_s": round(local_seconds, 2),
            "overhead_per_row_ms": round(1e3 * (seconds - local_seconds) / small.size, 1), "rows_equal": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20)
    parser.add_argument("--small", type=int, default=8)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--out", default=None, help="write the numbers as JSON here")
    args = parser.parse_args()
    out = {"machine": {"cores": os.cpu_count(), "python": platform.python_version()}}

    axes = (sw.Axis("gain", 0.5, 2.5, args.size), sw.Axis("bias_std", 0.0, 0.5, args.size))
    big = sw.Sweep(BASE, axes)
    result, seconds = timed(big, executor="local")
    out["phase_diagram"] = {"rows": big.size, "n": BASE.hidden, "T": BASE.seq_len, "workers": sw.default_workers(),
                            "seconds": round(seconds, 1), "predicted_s": round(sw.predicted_seconds(big,
                                                                                                   sw.default_workers()), 1),
                            "row_seconds_sum": round(sum(r["seconds"] for r in result.rows), 1),
                            "agreement": agreement(result)}
    print(json.dumps(out["phase_diagram"]), flush=True)

    small = sw.Sweep(BASE, (sw.Axis("gain", 0.5, 2.5, args.small), sw.Axis("bias_std", 0.0, 0.5, args.small)))
    one, one_s = timed(small, executor="local", workers=1)
    two, two_s = timed(small, executor="local", workers=2)
    assert _numbers(one.rows) == _numbers(two.rows), "1 and 2 workers differ"
    out["scaling"] = {"rows": small.size, "workers_1_s": round(one_s, 2), "workers_2_s": round(two_s, 2),
                      "speedup": round(one_s / two_s, 2), "rows_equal": True}
    print(json.dumps(out["scaling"]), flush=True)

    if not args.skip_ray:
        try:
            out["ray"] = bench_ray(small, one, two_s)
        except ImportError:
            out["ray"] = "ray is not installed (pip install -r requirements-dev.txt)"
        print(json.dumps(out["ray"]), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(out, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
