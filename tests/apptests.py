"""Running a page under Streamlit's AppTest the way the app runs it: from the entry script, switched to the page,
with a small config (fast) merged under the test's own query."""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"seq_len": "30", "hidden": "8"}


def run(page: str, query: dict[str, str], timeout: int = 60) -> AppTest:
    at = AppTest.from_file(str(ROOT / "Overview.py"), default_timeout=timeout)
    at.query_params.update({**SMALL, **query})
    at.switch_page(page)
    return at.run()


def timed_run(page: str, query: dict[str, str]) -> float:
    """Seconds of one server-side run of ``page`` at exactly ``query`` (a new session; nothing merged in): the
    benchmarks' measure of a page's script."""
    at = AppTest.from_file(str(ROOT / "Overview.py"), default_timeout=300)
    at.query_params.update(query)
    at.switch_page(page)
    start = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - start
    assert not at.exception, [e.value for e in at.exception]
    return seconds


def figures(at: AppTest) -> list[dict]:
    """Every Plotly figure the page drew, as its JSON."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def titled(at: AppTest, start: str) -> list[dict]:
    """The figures whose title starts with ``start``."""
    return [f for f in figures(at) if f["layout"].get("title", {}).get("text", "").startswith(start)]


def array(value) -> np.ndarray:
    """A Plotly JSON array: a list, or numpy's typed-array encoding {dtype, bdata, shape}."""
    if isinstance(value, dict):
        out = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return out.reshape([int(k) for k in value["shape"].split(",")]) if "shape" in value else out
    return np.asarray(value, dtype=float)
