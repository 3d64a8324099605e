"""The classroom in a real browser: presentation mode on a projector's screen, the tour's buttons and arrow keys,
and the shared link that reproduces a picture in another browser."""
from __future__ import annotations

import contextlib

import pytest

from explorer.tour import STEPS
from tests.test_browser import LOAD_TIMEOUT_MS, assert_healthy, query, wait_for_app

pytestmark = pytest.mark.browser

FIRST_CHART = "[data-testid='stPlotlyChart']"
CHART_PAGES = ("Simple_RNN", "LSTM_and_GRU", "Modern_Recurrences")


def assert_first_chart_fits(page, where: str) -> None:
    """The first chart lies wholly inside the viewport, with tick labels of at least 14 px."""
    viewport = page.viewport_size
    box = page.locator(FIRST_CHART).first.bounding_box()
    assert box is not None, where
    assert box["x"] >= 0 and box["y"] >= 0, (where, box)
    assert box["x"] + box["width"] <= viewport["width"] and box["y"] + box["height"] <= viewport["height"], (where, box)
    size = page.locator(FIRST_CHART).first.locator("g.xaxislayer-above text").first.evaluate(
        "e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 14, (where, size)


@contextlib.contextmanager
def screen(chromium, width: int, height: int):
    """A page in a fresh browser context of this size, collecting uncaught JavaScript errors."""
    context = chromium.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.js_errors = []
        page.on("pageerror", lambda err: page.js_errors.append(str(err)))
        yield page
    finally:
        context.close()


@pytest.mark.parametrize("width,height", [(1024, 768), (1280, 720)])
def test_presentation_mode_puts_the_first_chart_on_the_screen(chromium, streamlit_server, width, height):
    with screen(chromium, width, height) as page:
        for slug in CHART_PAGES:
            page.goto(f"{streamlit_server}/{slug}?present=1", timeout=LOAD_TIMEOUT_MS)
            wait_for_app(page, charts=True)
            assert_healthy(page, slug)
            assert not page.locator("[data-testid='stSidebar']").is_visible(), f"{slug}: the sidebar shows"
            assert_first_chart_fits(page, f"{slug} at {width}x{height}")


def test_every_tour_step_fits_a_projector(chromium, streamlit_server, artifacts):
    with screen(chromium, 1024, 768) as page:
        page.goto(f"{streamlit_server}/Guided_Tour?step=1&present=1", timeout=LOAD_TIMEOUT_MS)
        for step in STEPS:  # as a teacher presents: the → key moves on, without reloading the page
            if step.number > 1:
                page.locator("body").press("ArrowRight")
                page.wait_for_function(f"() => new URLSearchParams(location.search).get('step') === '{step.number}'",
                                       timeout=LOAD_TIMEOUT_MS)
            wait_for_app(page, charts=True)
            assert_healthy(page, f"tour step {step.number}")
            assert query(page)["step"] == str(step.number)
            assert page.locator("[data-testid='stAlertContentSuccess']").count() == 1, f"step {step.number}: claim fails"
            assert_first_chart_fits(page, f"tour step {step.number}")
            if step.number in (3, 11):
                page.screenshot(path=str(artifacts / f"tour_step_{step.number}_1024x768.png"))


def test_the_tours_buttons_and_arrow_keys_move_through_the_lecture(page, streamlit_server):
    page.goto(f"{streamlit_server}/Guided_Tour?step=3", timeout=LOAD_TIMEOUT_MS)
    wait_for_app(page, charts=True)

    def at(number: int) -> None:
        page.wait_for_function(f"() => new URLSearchParams(location.search).get('step') === '{number}'",
                               timeout=LOAD_TIMEOUT_MS)
        wait_for_app(page, charts=True)
        assert_healthy(page, f"step {number}")
        assert page.locator("[data-testid='stMain'] h1").first.inner_text().startswith(f"Tour · {number}.")

    page.get_by_role("button", name="next ▶").click()
    at(4)
    page.locator("body").press("ArrowRight")
    at(5)
    page.get_by_role("button", name="◀ back").click()
    at(4)
    page.locator("body").press("ArrowLeft")
    at(3)
    page.go_back()  # the browser's history replays the steps too
    page.wait_for_timeout(1500)
    wait_for_app(page, charts=True)
    assert_healthy(page, "back")
    assert query(page)["step"] in ("3", "4")


def test_a_copied_link_gives_a_fresh_browser_the_same_charts(chromium, streamlit_server):
    """The link in the Share box (page, config, seed, view, B) reproduces the chart data exactly elsewhere."""
    contexts = [chromium.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
    try:
        one, two = (context.new_page() for context in contexts)
        one.goto(f"{streamlit_server}/Simple_RNN?seq_len=40&hidden=12&seed=3&init=gaussian&gain=1.1&b_init=orthogonal",
                 timeout=LOAD_TIMEOUT_MS)
        wait_for_app(one, charts=True)
        one.locator("[data-testid='stSidebar'] [data-testid='stPopover'] button").first.click()
        link = one.locator("[data-testid='stPopoverBody'] [data-testid='stCode'] code").first.inner_text().strip()
        assert link.startswith(streamlit_server) and "b_init=orthogonal" in link and "seed=3" in link
        two.goto(link, timeout=LOAD_TIMEOUT_MS)
        wait_for_app(two, charts=True)
        data = "() => [...document.querySelectorAll('.js-plotly-plot')].map(p => JSON.stringify(p.data))"
        assert one.evaluate(data) == two.evaluate(data) and len(one.evaluate(data)) >= 8
        assert query(two) == query(one)
    finally:
        for context in contexts:
            context.close()
