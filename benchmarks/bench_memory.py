"""The server's memory under changing configs: 50 warm-up page runs, then 200 more, each a config no run before
asked for (pages, cells, T, n, seeds, normalisations), all in one process as a server's sessions share it (AppTest,
one session per run). Prints the resident set size (RSS, from /proc) after the warm-up and its growth after, with
the shared caches' bytes (ui.gate's ledger) beside it.

    python benchmarks/bench_memory.py        # about 4 minutes on 2 cores

Target (issue 11): RSS growth after the warm-up under 150 MB. The caches are bounded by EXPLORER_CACHE_MB (default
256); the warm-up's configs are large enough to fill them, so what grows after is what leaks.
"""
from __future__ import annotations

import pathlib
import random
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer import backend  # noqa: E402

backend.configure()

from streamlit.testing.v1 import AppTest  # noqa: E402

from explorer import ExperimentConfig, limits  # noqa: E402
from explorer.config import to_query  # noqa: E402
from explorer.registry import CELL_TYPES, cell_type  # noqa: E402

PAGES = {"rnn": "pages/2_Simple_RNN.py", "gated": "pages/3_LSTM_and_GRU.py", "modern": "pages/4_Modern_Recurrences.py"}
WARM_UP, RUNS = 50, 200


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def configs(count: int, seed: int = 0) -> list[ExperimentConfig]:
    """``count`` different configs, sized like a class's clicks: mostly small, some at T = 2000."""
    rng, seen, out = random.Random(seed), set(), []
    while len(out) < count:
        cell = rng.choice(list(CELL_TYPES))
        T = rng.choice([50, 100, 200, 400, 1000, 2000])
        n = rng.choice([8, 16, 32, 64, 128] + ([256] if T <= 400 else []))
        n = min(n, cell_type(cell).max_hidden)
        extra = {}
        if cell == "rnn":
            extra = rng.choice([{}, {"norm": "layer"}, {"residual": True}, {"init": "orthogonal"},
                                {"activation": "relu", "init": "gaussian", "gain": 1.5}])
        config = ExperimentConfig(cell=cell, seq_len=T, hidden=n, seed=rng.randrange(10**6), **extra)
        if config not in seen:
            seen.add(config)
            out.append(config)
    return out


def visit(config: ExperimentConfig) -> None:
    at = AppTest.from_file(str(ROOT / "Overview.py"), default_timeout=300)
    at.query_params.update(to_query(config))
    at.switch_page(PAGES[cell_type(config.cell).page])
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def main() -> None:
    import ui.results as results

    plan = configs(WARM_UP + RUNS)
    start = time.perf_counter()
    print(f"[memory] RSS at start {rss_mb():.0f} MB; caches bounded at {limits.LIMITS.cache_mb} MB", flush=True)
    for config in plan[:WARM_UP]:
        visit(config)
    after_warm_up = rss_mb()
    print(f"[memory] after {WARM_UP} warm-up runs: RSS {after_warm_up:.0f} MB, caches "
          f"{results.LEDGER.total() / 2**20:.0f} MB in {len(results.LEDGER)} entries", flush=True)
    peak = after_warm_up
    for k, config in enumerate(plan[WARM_UP:], 1):
        visit(config)
        peak = max(peak, rss_mb())
        if k % 50 == 0:
            print(f"[memory] run {k}: RSS {rss_mb():.0f} MB (peak {peak:.0f}), caches "
                  f"{results.LEDGER.total() / 2**20:.0f} MB in {len(results.LEDGER)} entries", flush=True)
    growth = rss_mb() - after_warm_up
    print(f"[memory] growth after warm-up: {growth:+.0f} MB at the end, {peak - after_warm_up:+.0f} MB at the peak "
          f"(target < 150 MB); {WARM_UP + RUNS} runs in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
