"""The app in a real browser: Debian's Chromium (Playwright) against ``streamlit run serve.py`` (the README's command).

The first test starts its own server and deep-links into a page as that server's very first
request: Streamlit's pages/ auto-discovery must already be the navigation then. Screenshots
land in test-artifacts/ (git-ignored).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

pytestmark = pytest.mark.browser

APP = "[data-testid='stApp']"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
MAIN = "[data-testid='stMain']"
CHART = "[data-testid='stPlotlyChart']"
DRAWN_CHART = "[data-testid='stPlotlyChart'] .js-plotly-plot .main-svg"
EXCEPTION = "[data-testid='stException']"
WARNING = "[data-testid='stAlertContentWarning']"
NAV_LINK = "[data-testid='stSidebarNav'] [data-testid='stSidebarNavLink']"
LOAD_TIMEOUT_MS = 90_000  # a cold server imports torch and runs the first analysis on 2 cores


def wait_for_app(page, *, charts: bool) -> None:
    """Wait until the script has run to the end (a heading drawn, then the app idle) and, when
    ``charts``, until Plotly has drawn the first chart."""
    page.locator(f"{MAIN} h1").first.wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    page.locator(IDLE).wait_for(state="attached", timeout=LOAD_TIMEOUT_MS)
    if charts:
        page.locator(DRAWN_CHART).first.wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    page.locator(IDLE).wait_for(state="attached", timeout=LOAD_TIMEOUT_MS)


def query(page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query).items()}


def assert_healthy(page, where: str) -> None:
    exceptions = page.locator(EXCEPTION)
    assert exceptions.count() == 0, f"{where}: exception shown: {exceptions.first.inner_text()[:2000]}"
    assert not page.js_errors, f"{where}: uncaught JavaScript errors: {page.js_errors}"


def nav_labels(page) -> list[str]:
    more = page.locator("[data-testid='stSidebarNavViewButton']")
    if more.count() and more.first.inner_text().strip().startswith("View") and "more" in more.first.inner_text():
        more.first.click()
    return [text.strip() for text in page.locator(NAV_LINK).all_inner_texts()]


def screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside stMain and the sidebar, not the document, so the
    viewport is stretched to the taller of the two (capped) for the shot, then restored."""
    height = page.evaluate("""() => Math.max(...[...document.querySelectorAll(
        "[data-testid='stMain'], [data-testid='stSidebarContent']")].map(e => e.scrollHeight), 0)""")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": int(min(max(height, size["height"]), 12_000))})
    page.wait_for_timeout(700)  # charts are width="stretch": let Plotly relayout
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)


def test_first_load_after_server_start_is_a_deep_link(page, fresh_streamlit_server, expected_nav_labels,
                                                      simple_rnn_page, artifacts):
    """The very first request to a fresh server: a deep link to Simple RNN with a config."""
    url = f"{fresh_streamlit_server}/{simple_rnn_page.url_path}?seq_len=60&seed=3&init=orthogonal"
    page.goto(url, timeout=LOAD_TIMEOUT_MS)
    wait_for_app(page, charts=True)
    screenshot(page, artifacts / "first_load_simple_rnn.png")

    assert_healthy(page, url)
    assert nav_labels(page) == expected_nav_labels
    active = page.locator(f"{NAV_LINK}[aria-current='page']")
    assert active.count() == 1 and active.inner_text().strip() == "Simple RNN"
    assert (active.get_attribute("href") or "").rstrip("/").endswith(f"/{simple_rnn_page.url_path}")
    assert "Simple RNN" in page.locator(f"{MAIN} h1").first.inner_text()
    assert "Simple RNN" in page.title()

    assert urlsplit(page.url).path.rstrip("/") == f"/{simple_rnn_page.url_path}"
    params = query(page)
    assert (params.get("seq_len"), params.get("seed"), params.get("init")) == ("60", "3", "orthogonal"), page.url
    assert page.locator("[data-testid='stSidebar'] input[aria-label='seed']").input_value() == "3"
    assert page.locator(WARNING).count() == 0, page.locator(WARNING).first.inner_text()
    assert page.locator(CHART).count() >= 1


def test_page_renders(page, streamlit_server, app_page, expected_nav_labels, artifacts):
    """Every page: no exception, the nav, and a Plotly chart (for an on-demand page, after its
    button, with a quick config from the URL)."""
    url = f"{streamlit_server}/{app_page.url_path}"
    if app_page.quick_query:
        url += "?" + urlencode(app_page.quick_query)
    page.goto(url, timeout=LOAD_TIMEOUT_MS)
    wait_for_app(page, charts=app_page.charts_on_load)
    assert_healthy(page, app_page.script)
    assert nav_labels(page) == expected_nav_labels
    assert page.locator(f"{NAV_LINK}[aria-current='page']").inner_text().strip() == app_page.label
    assert page.locator(WARNING).count() == 0, page.locator(WARNING).first.inner_text()
    if app_page.action_key:
        page.locator(f".st-key-{app_page.action_key} button").click()
        wait_for_app(page, charts=True)
        assert_healthy(page, f"{app_page.script} after {app_page.action_key}")
    if not app_page.is_main:
        assert page.locator(CHART).count() >= 1, f"{app_page.script}: no Plotly chart"
    screenshot(page, artifacts / f"page_{app_page.slug}.png")
    assert_fits(page, app_page.script)


PROJECTOR = {"width": 1024, "height": 768}


def assert_fits(page, where: str) -> None:
    """On a projector's 1024 px, sidebar open: no metric cut to an ellipsis ("889.6 st…" was) and no display
    equation wider than its column."""
    size = page.viewport_size
    page.set_viewport_size(PROJECTOR)
    page.wait_for_timeout(500)
    try:
        cut = page.evaluate("""() => [...document.querySelectorAll(
            "[data-testid='stMetricValue'], [data-testid='stMetricValue'] div, [data-testid='stMetricLabel'] p, "
            + "[data-testid='stMetricLabel'] [data-testid='stMarkdownContainer']")]
            .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)""")
        assert not cut, f"{where}: metrics cut at {PROJECTOR['width']} px: {cut}"
        wide = page.evaluate("""() => [...document.querySelectorAll('.katex-display')]
            .filter(e => e.scrollWidth > e.clientWidth + 3).map(e => e.innerText.slice(0, 60))""")
        assert not wide, f"{where}: equations wider than their column at {PROJECTOR['width']} px: {wide}"
    finally:
        page.set_viewport_size(size)


def test_malformed_url_warns_and_still_renders(page, streamlit_server, simple_rnn_page, artifacts):
    page.goto(f"{streamlit_server}/{simple_rnn_page.url_path}?seq_len=abc&hidden=99999", timeout=LOAD_TIMEOUT_MS)
    wait_for_app(page, charts=True)
    assert_healthy(page, page.url)
    warnings = " ".join(page.locator(WARNING).all_inner_texts())
    assert "seq_len" in warnings and "abc" in warnings, warnings
    assert "hidden" in warnings and "99999" in warnings, warnings
    assert page.locator(CHART).count() >= 1
    params = query(page)
    assert params.get("seq_len") not in (None, "abc") and params.get("hidden") not in (None, "99999"), page.url
    screenshot(page, artifacts / "malformed_url_simple_rnn.png")


def test_widget_change_updates_url(page, streamlit_server, simple_rnn_page):
    page.goto(f"{streamlit_server}/{simple_rnn_page.url_path}?seq_len=40&seed=3", timeout=LOAD_TIMEOUT_MS)
    wait_for_app(page, charts=True)
    seed = page.locator("[data-testid='stSidebar'] input[aria-label='seed']")
    assert seed.input_value() == "3"
    seed.fill("11")
    seed.press("Enter")
    page.wait_for_function("() => new URLSearchParams(window.location.search).get('seed') === '11'",
                           timeout=LOAD_TIMEOUT_MS)
    wait_for_app(page, charts=True)
    assert_healthy(page, page.url)
    assert re.search(r"[?&]seed=11(&|$)", page.url), page.url
    assert query(page).get("seq_len") == "40", page.url  # the rest of the config stays in the link
    assert seed.input_value() == "11"


def test_downloads_give_the_charts_data(page, streamlit_server, tmp_path):
    """A download made on click (the gates' NPZ: large files are not built on every rerun) and
    one sent with the page (the lag curves' CSV), each read back."""
    import numpy as np

    page.goto(f"{streamlit_server}/LSTM_and_GRU?seq_len=30&hidden=8&gates=input,output", timeout=LOAD_TIMEOUT_MS)
    wait_for_app(page, charts=True)
    files = {}
    for label in ("gates (NPZ)", "curves (CSV)"):
        with page.expect_download(timeout=LOAD_TIMEOUT_MS) as download:
            page.get_by_role("button", name=f"⬇ {label}").click()
        files[label] = tmp_path / download.value.suggested_filename
        download.value.save_as(files[label])
        wait_for_app(page, charts=True)
    assert_healthy(page, page.url)
    gates = np.load(files["gates (NPZ)"])
    assert sorted(gates.files) == ["config", "f", "g", "i", "o"] and gates["i"].shape == (30, 8)
    assert (gates["f"] == 1.0).all() and ((gates["i"] > 0) & (gates["i"] < 1)).all()  # stage 2: no forget gate
    config, header, *rows = files["curves (CSV)"].read_text().splitlines()
    assert config.startswith("# config: ") and json.loads(config[len("# config: "):])["gates"] == "input,output"
    assert header.split(",")[:3] == ["lag", "gated", "rnn"] and len(rows) == 31
