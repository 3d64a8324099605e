"""The costliest in-bounds configs a visitor can ask for, each page's first run on a cleared cache (server side,
AppTest, as the app runs it: the stride and any lowering from explorer.limits), as ratios to the largest simple
RNN's (T = 2000, n = 512) measured in the same run.

    python benchmarks/bench_worst_case.py            # about 3 minutes on 2 cores

Target (issue 11): every ratio within 1.5. The Training Lab's largest run (its float-op cap, EXPLORER_LAB_FLOPS) is
printed too: it trains only on a press of Train, live and stoppable, so it is reported beside the target, not in it.
"""
from __future__ import annotations

import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer import backend  # noqa: E402

backend.configure()

import streamlit as st  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from explorer import ExperimentConfig, TrainConfig, limits  # noqa: E402
from explorer.config import to_query  # noqa: E402
from explorer.registry import cell_type  # noqa: E402

PAGES = {"rnn": "pages/2_Simple_RNN.py", "gated": "pages/3_LSTM_and_GRU.py", "modern": "pages/4_Modern_Recurrences.py"}
E = ExperimentConfig
CASES = [
    ("largest simple RNN T=2000 n=512", E(hidden=512, seq_len=2000)),
    ("relu gain 3 T=2000 n=16", E(activation="relu", init="gaussian", gain=3.0, seq_len=2000, hidden=16)),
    ("tanh gain 1.2 T=400 n=128", E(init="gaussian", gain=1.2, seq_len=400, hidden=128)),
    ("tanh gain 1.5 T=2000 n=64", E(init="gaussian", gain=1.5, seq_len=2000, hidden=64)),
    ("orthogonal T=2000 n=512", E(init="orthogonal", seq_len=2000, hidden=512)),
    ("identity relu T=1000 n=256", E(activation="relu", init="identity", seq_len=1000, hidden=256)),
    ("float64 T=2000 n=512", E(dtype="float64", seq_len=2000, hidden=512)),
    ("float64 T=2000 n=512 lag=2000", E(dtype="float64", seq_len=2000, hidden=512, lag=2000)),
    ("layer norm T=2000 n=512", E(norm="layer", seq_len=2000, hidden=512)),
    ("batch norm B=256 T=2000 n=128", E(norm="batch", batch=256, seq_len=2000, hidden=128)),
    ("batch norm B=16 T=2000 n=512", E(norm="batch", batch=16, seq_len=2000, hidden=512)),
    ("residual T=2000 n=512 lag=2000", E(residual=True, seq_len=2000, hidden=512, lag=2000)),
    ("LSTM T=2000 n=256", E(cell="lstm", seq_len=2000, hidden=256)),
    ("LSTM float64 T=2000 n=256 lag=2000", E(cell="lstm", dtype="float64", seq_len=2000, hidden=256, lag=2000)),
    ("GRU T=2000 n=512", E(cell="gru", seq_len=2000, hidden=512)),
    ("GRU orthogonal T=2000 n=512", E(cell="gru", init="orthogonal", seq_len=2000, hidden=512)),
    ("LRU T=2000 n=256", E(cell="lru", seq_len=2000, hidden=256)),
    ("minGRU T=2000 n=512", E(cell="mingru", seq_len=2000, hidden=512)),
    ("minLSTM T=2000 n=512", E(cell="minlstm", seq_len=2000, hidden=512)),
]


def first_run(config: ExperimentConfig) -> tuple[float, str]:
    """Seconds of the page's first run on an empty cache, and what the page said it lowered (if anything)."""
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "Overview.py"), default_timeout=600)
    at.query_params.update(to_query(config))
    at.switch_page(PAGES[cell_type(config.cell).page])
    start = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - start
    assert not at.exception, [e.value for e in at.exception]
    lowered = [str(w.value) for w in at.warning if "EXPLORER_" in str(w.value)]
    return seconds, (" · lowered: " + at.query_params.get("seq_len", "") + " steps, lag "
                     + at.query_params.get("lag", "")) if lowered else ""


def main() -> None:
    first_run(E(seq_len=50, hidden=16))  # warm-up: imports, torch's first kernels
    base = None
    print(f"[worst] budget {limits.LIMITS.analysis_seconds:g} s (reference machine), lowered beyond "
          f"{limits.OVER_BUDGET:g}x; ratios to the first row")
    worst = 0.0
    for label, config in CASES:
        seconds, note = first_run(config)
        base = base or seconds
        planned = limits.plan(config)
        worst = max(worst, seconds / base)
        print(f"[worst] {label:36s} {seconds:6.2f} s  {seconds / base:4.2f}x  (stride {planned.stride}, "
              f"predicted {planned.seconds:.1f} s){note}", flush=True)
    from explorer.train import train

    default = TrainConfig()
    steps = int(default.steps * limits.LIMITS.lab_flops / default.flops())
    largest = default.replace(steps=steps)
    start = time.perf_counter()
    train(largest)
    seconds = time.perf_counter() - start
    print(f"[worst] largest Training Lab run ({largest.model.cell} n={largest.model.hidden}, {steps} steps, "
          f"{largest.flops():.2g} flops): {seconds:.1f} s = {seconds / base:.1f}x (live and stoppable; not a first run)")
    print(f"[worst] largest ratio of a page's first run: {worst:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
