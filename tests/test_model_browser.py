"""Your own model in a real browser: a visitor uploads a shipped example through the page's file widget and sees
its maps, then compares it with the untrained model. (A link naming an upload that a session does not hold, and each
bad file, are AppTest's: tests/test_model_pages.py.)"""
from __future__ import annotations

from pathlib import Path

import pytest

from explorer.weights import EXAMPLES, digest
from tests.test_browser import DRAWN_CHART, LOAD_TIMEOUT_MS, assert_healthy, query, wait_for_app

pytestmark = pytest.mark.browser


def test_upload_a_shipped_example_and_see_its_maps(page, streamlit_server, artifacts):
    example = EXAMPLES["lstm_adding"].path
    page.goto(f"{streamlit_server}/LSTM_and_GRU?seq_len=50", timeout=LOAD_TIMEOUT_MS)
    wait_for_app(page, charts=True)
    page.get_by_text("Your own model: analyse trained weights").click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(example))
    page.get_by_text("Analysing file sha256").wait_for(timeout=LOAD_TIMEOUT_MS)
    wait_for_app(page, charts=True)
    assert_healthy(page, page.url)
    assert query(page)["weights"] == digest(Path(example).read_bytes())
    assert query(page)["hidden"] == "32" and query(page)["cell"] == "lstm"
    assert page.locator(DRAWN_CHART).count() >= 4
    page.get_by_role("button", name="Compare with the untrained model (A/B)").click()
    page.get_by_text("B: log10 ‖∂z_s/∂z_t‖₂").first.wait_for(timeout=LOAD_TIMEOUT_MS)
    wait_for_app(page, charts=True)
    assert_healthy(page, page.url)
    assert page.url.endswith("b_weights=") or "b_weights=&" in page.url
    page.screenshot(path=str(artifacts / "own_model_ab.png"))
