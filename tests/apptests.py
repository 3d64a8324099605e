"""Running a page under Streamlit's AppTest the way the app runs it: from the entry script, switched to the page,
with a small config (fast) merged under the test's own query."""
from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"seq_len": "30", "hidden": "8"}


def run(page: str, query: dict[str, str], timeout: int = 60) -> AppTest:
    at = AppTest.from_file(str(ROOT / "Overview.py"), default_timeout=timeout)
    at.query_params.update({**SMALL, **query})
    at.switch_page(page)
    return at.run()


def figures(at: AppTest) -> list[dict]:
    """Every Plotly figure the page drew, as its JSON."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
