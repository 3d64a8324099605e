"""A visitor's path through the app in a real browser, not one page at a time: the sidebar between
pages, back and forward, a link opened in a fresh browser, downloads one after another.

Each step checks the URL, the sidebar's widgets and that no exception is shown.
"""
from __future__ import annotations

import contextlib
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.test_browser import EXCEPTION, LOAD_TIMEOUT_MS, NAV_LINK, assert_healthy, query, wait_for_app

pytestmark = pytest.mark.browser

SIDEBAR = "[data-testid='stSidebar']"
# shown on Simple RNN, LSTM and GRU, and (all but input_size) the Training Lab: they carry over
SHARED = {"seq_len": "77", "gain": "1.3", "seed": "5", "input_size": "3"}
START = {**SHARED, "residual": "true", "init": "gaussian"}  # residual: a Simple RNN setting alone


def widget(page, label: str):
    return page.locator(f"{SIDEBAR} input[aria-label='{label}']")


def sidebar_to(page, label: str) -> None:
    page.locator(NAV_LINK, has_text=label).first.click()
    page.wait_for_function(f"() => document.title.startsWith({label!r})", timeout=LOAD_TIMEOUT_MS)
    wait_for_app(page, charts=label != "Training Lab")


def check_page(page, title: str, expected: dict[str, str], widgets: dict[str, str]) -> dict[str, str]:
    """The page is ``title``, healthy, its URL holds ``expected`` and its widgets read ``widgets``."""
    where = f"{title} ({page.url})"
    assert page.title().startswith(title), where
    assert_healthy(page, where)
    params = query(page)
    for name, value in expected.items():
        assert params.get(name) == value, (name, params.get(name), where)
    for label, value in widgets.items():
        assert widget(page, label).input_value() == value, (label, widget(page, label).input_value(), where)
    return params


def test_sidebar_path_carries_shared_settings_and_keeps_each_pages_own(page, streamlit_server):
    start = f"{streamlit_server}/Simple_RNN?" + "&".join(f"{k}={v}" for k, v in START.items())
    page.goto(start, timeout=LOAD_TIMEOUT_MS)
    wait_for_app(page, charts=True)
    rnn_widgets = {"sequence length T": "77", "seed": "5", "input size d": "3", "W_hh initialisation": "gaussian"}
    first = check_page(page, "Simple RNN", {**START, "cell": "rnn"}, rnn_widgets)
    assert page.locator(f"{SIDEBAR} [data-testid='stCheckbox'] input").first.is_checked()  # residual

    sidebar_to(page, "LSTM and GRU")
    check_page(page, "LSTM and GRU", {**SHARED, "cell": "lstm", "init": "gaussian"},
               {"sequence length T": "77", "seed": "5", "input size d": "3"})
    # a setting of this page alone: the LSTM's stage, chosen in its selector
    widget(page, "LSTM stage (gates)").click()
    page.get_by_role("option", name="1 · input gate only").click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('gates') === 'input'",
                           timeout=LOAD_TIMEOUT_MS)
    wait_for_app(page, charts=True)
    lstm = check_page(page, "LSTM and GRU", {**SHARED, "gates": "input"}, {})
    assert lstm["gates"] == "input"

    sidebar_to(page, "Simple RNN")
    again = check_page(page, "Simple RNN", {**START, "cell": "rnn"}, rnn_widgets)
    assert again == first, "the Simple RNN page lost a setting on the way"

    sidebar_to(page, "Training Lab")
    lab_params = check_page(page, "Training Lab", {k: v for k, v in SHARED.items() if k != "input_size"},
                            {"sequence length T": "77", "seed": "5"})

    sidebar_to(page, "Simple RNN")
    assert check_page(page, "Simple RNN", START, rnn_widgets) == first
    rnn_url = page.url

    # back and forward replay the pages' own links
    for title, expected, widgets in (("Training Lab", lab_params, {"seed": "5"}),
                                     ("Simple RNN", first, rnn_widgets),
                                     ("LSTM and GRU", lstm, {"sequence length T": "77"})):
        travel(page, page.go_back, title)
        check_page(page, title, expected, widgets)
    for title, expected in (("Simple RNN", first), ("Training Lab", lab_params), ("Simple RNN", first)):
        travel(page, page.go_forward, title)
        check_page(page, title, expected, {})
    assert page.url == rnn_url


def travel(page, move, title: str) -> None:
    """Back or forward until ``title`` shows. Streamlit's sidebar link records the page's address (bare,
    or with the last page's query) before the script writes its own query, so a visit leaves two or,
    when the two race, three entries: each shows the same page, whole and with its own config (checked
    here), and another step goes on."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(3):
        move()
        with contextlib.suppress(PlaywrightTimeout):  # the bare entry keeps the title: a short wait, then on
            page.wait_for_function("t => document.title.startsWith(t)", arg=title, timeout=4000)
        wait_for_app(page, charts=False)
        assert_healthy(page, page.url)
        if page.title().startswith(title):
            wait_for_app(page, charts=title != "Training Lab")
            return
        assert query(page), f"a history entry without a config: {page.url}"
    raise AssertionError(f"three steps did not reach {title}: at {page.title()} ({page.url})")


def test_a_link_opened_in_a_fresh_browser_reproduces_the_page(chromium, streamlit_server):
    """The URL a visitor copies after moving around gives another browser the same config and charts."""
    contexts = [chromium.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
    try:
        one, two = (context.new_page() for context in contexts)
        for pg in (one, two):
            pg.js_errors = []
            pg.on("pageerror", lambda err, pg=pg: pg.js_errors.append(str(err)))
        one.goto(f"{streamlit_server}/LSTM_and_GRU?seq_len=33&hidden=12&cell=gru&seed=9", timeout=LOAD_TIMEOUT_MS)
        wait_for_app(one, charts=True)
        sidebar_to(one, "Simple RNN")
        link = one.url
        two.goto(link, timeout=LOAD_TIMEOUT_MS)
        wait_for_app(two, charts=True)
        for pg in (one, two):
            assert_healthy(pg, pg.url)
        assert query(two) == query(one) and query(one)["seq_len"] == "33" and query(one)["seed"] == "9"
        data = ("() => [...document.querySelectorAll('.js-plotly-plot')].map(p => JSON.stringify(p.data))")
        assert one.evaluate(data) == two.evaluate(data)
    finally:
        for context in contexts:
            context.close()


def test_no_widget_is_built_with_an_empty_range(page, streamlit_server):
    """T = 1 leaves one lag: the lag is shown, disabled, and moving between pages does not crash."""
    page.goto(f"{streamlit_server}/Simple_RNN?seq_len=1&lag=1", timeout=LOAD_TIMEOUT_MS)
    wait_for_app(page, charts=True)
    assert_healthy(page, page.url)
    assert widget(page, "lag k").is_disabled() and widget(page, "lag k").input_value() == "1"
    sidebar_to(page, "LSTM and GRU")
    sidebar_to(page, "Simple RNN")
    assert_healthy(page, page.url)
    assert page.locator(EXCEPTION).count() == 0
    assert parse_qs(urlsplit(page.url).query)["seq_len"] == ["1"]


RUNS_OBSERVER = """() => {
    window.__scriptRuns = 0;
    const app = document.querySelector("[data-testid='stApp']");
    new MutationObserver(() => {
        if (app.getAttribute('data-test-script-state') === 'running') window.__scriptRuns += 1;
    }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""


def test_downloads_one_after_another_all_arrive_named_and_carrying_the_config(page, streamlit_server, tmp_path):
    """Made-on-click NPZ files and CSVs, one after another and after a widget change: every file
    arrives and parses, is named by page, quantity and settings, and carries its config. A download
    click never reruns the script (a rerun gives each made-on-click file a new id, and a click still
    holding the old one got "Deferred file ... not found")."""
    import json

    import numpy as np

    page.goto(f"{streamlit_server}/LSTM_and_GRU?seq_len=30&hidden=8&seed=4", timeout=LOAD_TIMEOUT_MS)
    wait_for_app(page, charts=True)
    page.evaluate(RUNS_OBSERVER)

    def download(label: str, expected_name: str):
        with page.expect_download(timeout=LOAD_TIMEOUT_MS) as info:
            page.get_by_role("button", name=f"⬇ {label}").first.click()
        assert info.value.suggested_filename == expected_name, info.value.suggested_filename
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}_{expected_name}"
        info.value.save_as(path)
        page.wait_for_timeout(300)  # as a visitor would: Chromium itself drops a second download in the same instant
        return path

    def config_of_csv(path) -> dict:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# config: "), first
        return json.loads(first[len("# config: "):])

    stem = "lstm_T30_n8_seed4"
    for _ in range(2):  # the same buttons twice
        gates = np.load(download("gates (NPZ)", f"{stem}_gates.npz"))
        assert gates["i"].shape == (30, 8) and json.loads(str(gates["config"]))["seed"] == 4
        assert config_of_csv(download("curves (CSV)", f"{stem}_lag_curves.csv"))["seed"] == 4
        maps = np.load(download("maps (NPZ)", f"{stem}_maps.npz"))
        assert maps["log10_spectral_state"].shape == (31, 31) and json.loads(str(maps["config"]))["hidden"] == 8
        c = np.load(download("c, all units (NPZ)", f"{stem}_c.npz"))
        assert c["c"].shape == (31, 8)
    assert page.evaluate("window.__scriptRuns") == 0, "a download click reran the script"

    seed = widget(page, "seed")
    seed.fill("6")
    seed.press("Enter")
    page.wait_for_function("() => new URLSearchParams(location.search).get('seed') === '6'", timeout=LOAD_TIMEOUT_MS)
    wait_for_app(page, charts=True)
    stem = "lstm_T30_n8_seed6"
    h = np.load(download("h, all units (NPZ)", f"{stem}_h.npz"))
    assert h["h"].shape == (31, 8) and json.loads(str(h["config"]))["seed"] == 6
    assert config_of_csv(download("saturation (CSV)", f"{stem}_saturation.csv"))["seed"] == 6
    settings = json.loads(download("config (JSON)", f"{stem}_config.json").read_text())
    assert settings["seed"] == 6 and settings["cell"] == "lstm"
    assert_healthy(page, page.url)


def test_a_charts_png_export_is_named_by_page_quantity_and_settings(page, streamlit_server, tmp_path):
    """Plotly's own "Download plot as a PNG" (the chart's mode bar) gives a file named like the data files,
    at twice the on-screen size (projector-friendly), a real PNG."""
    import struct

    page.goto(f"{streamlit_server}/Simple_RNN?seq_len=40&seed=2", timeout=LOAD_TIMEOUT_MS)
    wait_for_app(page, charts=True)
    chart = page.locator("[data-testid='stPlotlyChart']").nth(2)  # the lag curve: three legend entries
    chart.scroll_into_view_if_needed()
    chart.hover()
    with page.expect_download(timeout=LOAD_TIMEOUT_MS) as info:
        chart.locator(".modebar-btn[data-title^='Download plot']").click()
    assert info.value.suggested_filename == "rnn_T40_n64_seed2_lag.png"
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    shown = chart.locator(".js-plotly-plot").bounding_box()
    assert abs(width - 2 * shown["width"]) <= 4 and abs(height - 2 * shown["height"]) <= 4, (width, height, shown)
