"""Speed of the guided tour (issue 10), as ratios against the default Simple RNN page measured in the same run.

    python benchmarks/bench_tour.py

Targets: moving to a tour step takes at most the default page's first-run time (server side, AppTest), and a
revisit (cached) is under 0.5 s. A fresh AppTest per step is a fresh session on a warm server: the first visit
of a step computes (or trains) its result, the second finds it in the process-wide cache.
"""
from __future__ import annotations

import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer import backend  # noqa: E402

backend.configure()

from streamlit.testing.v1 import AppTest  # noqa: E402

from explorer.tour import STEPS  # noqa: E402


def visit(page: str, query: dict) -> float:
    at = AppTest.from_file(str(ROOT / "Overview.py"), default_timeout=300)
    at.query_params.update(query)
    at.switch_page(page)
    start = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - start
    assert not at.exception, [e.value for e in at.exception]
    return seconds


def main() -> None:
    visit("pages/2_Simple_RNN.py", {"seed": "1"})  # imports and warm-up, on another config
    default_page = visit("pages/2_Simple_RNN.py", {})
    print(f"[tour] default Simple RNN page, first run: {default_page:.2f} s (the budget of a first visit)")
    worst_first, worst_again = 0.0, 0.0
    for step in STEPS:
        first = visit("pages/1_Guided_Tour.py", {"step": str(step.number)})
        again = visit("pages/1_Guided_Tour.py", {"step": str(step.number)})
        worst_first, worst_again = max(worst_first, first / default_page), max(worst_again, again)
        print(f"[tour] step {step.number:2d} {step.title[:44]:44s} first {first:.2f} s ({first / default_page:.2f}x the "
              f"default page), revisit {again:.3f} s")
    print(f"[tour] worst first visit {worst_first:.2f}x the default page's first run (target <= 1), worst revisit "
          f"{worst_again:.3f} s (target < 0.5 s)")


if __name__ == "__main__":
    main()
