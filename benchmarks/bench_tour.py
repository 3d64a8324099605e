"""Speed of the guided tour (issue 10), as ratios against the default Simple RNN page measured in the same run.

    python benchmarks/bench_tour.py

Targets: moving to the next tour step takes at most the default page's first-run time (server side, AppTest), and
a revisit (cached) is under 0.5 s. "next": one session walks the tour with the next button, after the time a
reader spends on a step (here: until the step computed ahead is ready). Also reported: a cold first visit of each
step in a fresh session (nothing computed ahead) and a revisit (the process-wide cache).
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
from tests.apptests import timed_run as visit  # noqa: E402




def forget_everything() -> None:
    """A fresh server: no step computed ahead (waiting for any still on its way) and nothing cached."""
    import streamlit as st

    import ui.tour

    for ahead in list(ui.tour._AHEAD.values()):
        if hasattr(ahead, "join"):
            ahead.join()
    ui.tour._AHEAD.clear()
    st.cache_data.clear()


def main() -> None:
    visit("pages/2_Simple_RNN.py", {"seed": "1"})  # imports and warm-up, on another config
    default_page = visit("pages/2_Simple_RNN.py", {})
    print(f"[tour] default Simple RNN page, first run: {default_page:.2f} s (the budget of a first visit)")
    import ui.tour

    forget_everything()
    walk = AppTest.from_file(str(ROOT / "Overview.py"), default_timeout=300)
    walk.query_params.update({"step": "1"})
    walk.switch_page("pages/1_Guided_Tour.py")
    walk.run()
    worst_next = 0.0
    for number in range(2, len(STEPS) + 1):
        ahead = ui.tour._AHEAD.get(number)
        if hasattr(ahead, "join"):
            ahead.join()  # the reader reads; the next step computes meanwhile
        start = time.perf_counter()
        walk.button(key="tour_next").click().run()
        seconds = time.perf_counter() - start
        assert not walk.exception and walk.query_params["step"] == str(number), walk.exception
        worst_next = max(worst_next, seconds / default_page)
        print(f"[tour] next to step {number:2d}: {seconds:.2f} s ({seconds / default_page:.2f}x the default page)")
    print(f"[tour] worst move to the next step {worst_next:.2f}x the default page's first run (target <= 1)")
    worst_first, worst_again = 0.0, 0.0
    for step in STEPS:
        forget_everything()
        first = visit("pages/1_Guided_Tour.py", {"step": str(step.number)})
        again = visit("pages/1_Guided_Tour.py", {"step": str(step.number)})
        worst_first, worst_again = max(worst_first, first / default_page), max(worst_again, again)
        print(f"[tour] step {step.number:2d} {step.title[:44]:44s} first {first:.2f} s ({first / default_page:.2f}x the "
              f"default page), revisit {again:.3f} s")
    print(f"[tour] worst cold first visit {worst_first:.2f}x the default page's first run (nothing computed ahead), "
          f"worst revisit {worst_again:.3f} s (target < 0.5 s)")


if __name__ == "__main__":
    main()
