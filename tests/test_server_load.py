"""A server that holds a class, in a real browser against ``streamlit run``: a Training Lab run whose tab closes
stops within seconds; two visitors asking for new work at once both finish, the one served second told it is queued.
The server's own timing of each run (ui.runlog, EXPLORER_RUN_LOG) tells when a run ended."""
from __future__ import annotations

import json
import time

import pytest

from tests.conftest import run_streamlit
from tests.test_browser import DRAWN_CHART, IDLE, assert_healthy

pytestmark = pytest.mark.browser


@pytest.fixture
def logged_server(monkeypatch, tmp_path):
    """A fresh server that logs every page run to a file: (base URL, the log's path)."""
    log = tmp_path / "runs.jsonl"
    monkeypatch.setenv("EXPLORER_RUN_LOG", str(log))
    with run_streamlit("server-load") as base_url:
        yield base_url, log


def runs(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_a_training_run_whose_tab_closes_stops_within_seconds(logged_server, chromium):
    base_url, log = logged_server
    context = chromium.new_context()
    page = context.new_page()
    page.goto(f"{base_url}/Training_Lab?steps=4000&seed=41", timeout=90_000)
    page.locator(IDLE).wait_for(state="attached", timeout=90_000)
    page.get_by_role("button", name="▶ Train").click()
    # training, past its first records (the text changes at every record: match any step from 50 on, not one)
    page.wait_for_function("""() => { const m = document.body.innerText.match(/step (\\d+) \\/ 4000/);
                                      return m !== null && Number(m[1]) >= 50; }""", timeout=90_000)
    before = len([r for r in runs(log) if r["page"] == "Training Lab"])
    context.close()
    closed = time.time()
    deadline = closed + 30
    while time.time() < deadline:
        ended = [r for r in runs(log) if r["page"] == "Training Lab"][before:]
        if ended:
            break
        time.sleep(0.2)
    assert ended, "the run went on training for 30 s after its tab closed"
    # 4000 steps take about 40 s here; the run must end within a few seconds of the tab closing
    assert ended[0]["end"] - closed < 5.0, ended


def test_two_visitors_asking_for_new_work_at_once_both_finish_one_told_it_waits(logged_server, chromium):
    base_url, log = logged_server
    warm = chromium.new_context().new_page()  # the server's first run imports torch: not what is measured
    warm.goto(f"{base_url}/Simple_RNN?seq_len=20&hidden=4", timeout=90_000)
    warm.locator(DRAWN_CHART).first.wait_for(timeout=90_000)
    pages, seen = [], []
    # both ask for a few seconds of computing (n = 128, T = 200: few steps, a light page). Which one the server
    # takes first is not ours to choose, so the one that comes second, either of them, must be told it waits.
    for query in ("seq_len=200&hidden=128&seed=501", "seq_len=200&hidden=128&seed=502"):
        page = chromium.new_context().new_page()
        page.js_errors = []
        page.on("pageerror", lambda err, page=page: page.js_errors.append(str(err)))
        page.goto(f"{base_url}/Simple_RNN?{query}", wait_until="commit")
        pages.append(page)
    deadline = time.time() + 120
    while time.time() < deadline and not all(page.locator(DRAWN_CHART).count() for page in pages):
        if any(page.get_by_text("Queued: 1 ahead of you").count() for page in pages):
            seen.append(True)
            break
        time.sleep(0.1)
    for page in pages:
        page.locator(DRAWN_CHART).first.wait_for(timeout=60_000)
        page.locator(IDLE).wait_for(state="attached", timeout=60_000)
        assert_healthy(page, page.url)
    assert seen, "the second visitor was not told it was queued"
