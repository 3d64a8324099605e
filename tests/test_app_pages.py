"""Every page under Streamlit's AppTest: defaults, a config given in the URL, malformed URLs,
and a widget change. Pages come from pages/ (the ``app_page`` fixture), so new pages are
covered automatically.

Each run starts at the entry script, as the app does, and switches to the page: Streamlit's
pages/ support runs the page script through the same navigation as ``streamlit run``.
Assertions hold for any page built on the shared sidebar (``ui.config_sidebar``: widget keys
``<page>_<field>``, e.g. ``rnn_seq_len`` or ``lab_seq_len``) and only look at the fields whose
widgets the page shows: a page may pin the others. Pages listed in conftest's ``ON_DEMAND`` draw
their charts after a button press: on load they must offer that button instead.
"""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from explorer.config import SPECS, TRAIN_SPECS, check, max_batch

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 60
WIDGET_TYPES = ("slider", "select_slider", "number_input", "selectbox", "radio", "toggle", "checkbox",
                "text_input", "multiselect")
GOOD = {"seq_len": "40", "seed": "5", "init": "orthogonal"}
BAD = {"seq_len": "abc", "hidden": "99999", "init": "nonsense"}
UNKNOWN = "no_such_param"


def run_page(app_page, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "Overview.py"), default_timeout=TIMEOUT_S)
    if query:
        at.query_params.update(query)
    if not app_page.is_main:
        at.switch_page(app_page.script)
    return at.run()


def config_widgets(at: AppTest) -> dict[str, object]:
    """{field: widget} for the shared sidebar's widgets (keys ``<prefix>_<field>``) on this run."""
    found = {}
    for kind in WIDGET_TYPES:
        for widget in at.get(kind):
            _, _, field = (getattr(widget, "key", None) or "").partition("_")
            if field in SPECS or field in TRAIN_SPECS:
                found[field] = widget
    return found


def typed(field: str, raw: str):
    return check(field, raw, SPECS if field in SPECS else TRAIN_SPECS)


def assert_renders(at: AppTest, app_page, *, charts: bool | None = None) -> None:
    """No exception; a Plotly chart where one is due (on load, unless the page is on demand,
    whose action button must then be there)."""
    assert not at.exception, f"{app_page.script}: {[e.value for e in at.exception]}"
    if charts if charts is not None else app_page.charts_on_load:
        assert len(at.get("plotly_chart")) >= 1, f"{app_page.script}: no Plotly chart"
    if app_page.action_key and charts is None:
        assert at.button(key=app_page.action_key), f"{app_page.script}: no {app_page.action_key} button"


def warning_texts(at: AppTest) -> list[str]:
    return [str(w.value) for w in at.warning]


def test_defaults(app_page):
    at = run_page(app_page)
    assert_renders(at, app_page)
    assert not at.warning, warning_texts(at)
    # the URL is the state: every control is written to the query string, and agrees with it
    params = at.query_params
    for field, widget in config_widgets(at).items():
        assert field in params, f"{app_page.script}: {field} missing from the URL {dict(params)}"
        assert typed(field, params[field]) == widget.value, (field, params[field], widget.value)


def test_config_from_url(app_page):
    at = run_page(app_page, GOOD)
    assert_renders(at, app_page)
    widgets = config_widgets(at)
    if not widgets:  # a page without the experiment sidebar (Overview) ignores the query
        return
    mentioned = [w for w in warning_texts(at) if any(field in w for field in GOOD)]
    assert not mentioned, mentioned
    shown = [field for field in GOOD if field in widgets]
    assert shown, f"{app_page.script}: none of {list(GOOD)} has a widget"
    for field in shown:
        assert at.query_params.get(field) == GOOD[field], (field, dict(at.query_params))
        assert widgets[field].value == typed(field, GOOD[field]), (field, widgets[field].value)


def test_malformed_url_warns_and_falls_back(app_page):
    at = run_page(app_page, {**BAD, UNKNOWN: "1"})
    assert_renders(at, app_page)
    widgets = config_widgets(at)
    if not widgets:
        return
    texts = warning_texts(at)
    assert texts, f"{app_page.script}: no warning for {BAD}"
    for field in (f for f in BAD if f in widgets):
        assert any(field in t for t in texts), f"no warning names {field}: {texts}"
        value = at.query_params.get(field)
        assert value is not None and value != BAD[field], (field, dict(at.query_params))
        assert widgets[field].value == typed(field, value), (field, widgets[field].value, value)
    assert any(UNKNOWN in t for t in texts), f"no warning names the unknown parameter: {texts}"
    assert UNKNOWN not in at.query_params


def test_on_demand_page_draws_charts_after_its_button(on_demand_page):
    at = run_page(on_demand_page, on_demand_page.quick_query)
    assert_renders(at, on_demand_page)
    assert not at.warning, warning_texts(at)
    at.button(key=on_demand_page.action_key).click().run()
    assert_renders(at, on_demand_page, charts=True)
    for field, value in on_demand_page.quick_query.items():
        assert at.query_params.get(field) == value, (field, dict(at.query_params))


def test_on_demand_table_names_real_pages(stale_on_demand_labels):
    assert not stale_on_demand_labels, "conftest.ON_DEMAND names pages that pages/ lacks"


def test_simple_rnn_widget_change_reruns_and_updates_url(simple_rnn_page):
    at = run_page(simple_rnn_page, {"seed": "3"})
    assert_renders(at, simple_rnn_page)
    at.number_input(key="rnn_seed").set_value(7).run()
    assert_renders(at, simple_rnn_page)
    assert at.query_params["seed"] == "7"
    assert at.number_input(key="rnn_seed").value == 7
    # a sequence shorter than the lag: the lag slider and the URL follow
    at.slider(key="rnn_seq_len").set_value(20).run()
    assert_renders(at, simple_rnn_page)
    assert at.query_params["seq_len"] == "20" and at.query_params["seed"] == "7"
    assert int(at.query_params["lag"]) <= 20 and at.slider(key="rnn_lag").value <= 20


def test_batch_widget_is_bounded_by_the_size_it_runs_at(simple_rnn_page):
    """Batch norm runs every sequence of its batch: at T=2000, n=512 the batch widget stops at 16
    (explorer.config.max_batch), and a larger value from the URL is brought down to it with a warning."""
    at = run_page(simple_rnn_page, {"norm": "batch", "seq_len": "2000", "hidden": "512", "batch": "200",
                                    "input": "zeros"})
    assert not at.exception, [e.value for e in at.exception]
    widget = at.number_input(key="rnn_batch")
    ran = int(at.query_params["seq_len"])  # this deployment's budget may lower T (explorer.limits), never below
    assert widget.value == 16 and widget.max == max_batch(ran, 512) >= 16 and widget.min == 2
    assert any(w.startswith("batch must be in [2, 16]") for w in warning_texts(at)), warning_texts(at)


def test_a_narrowed_field_hidden_for_the_cell_is_left_alone():
    from ui.state import _pin

    assert _pin({"hidden": 8}, {"init": "gaussian"}, {"activation": ("tanh", "relu")}) == {"hidden": 8,
                                                                                        "init": "gaussian"}
    assert _pin({"activation": "sigmoid"}, {}, {"activation": ("tanh", "relu")}) == {"activation": "tanh"}


def test_a_choice_another_page_does_not_offer_leaves_this_pages_own():
    """GRU chosen on LSTM and GRU, a visit to Modern Recurrences (cell lru, which the first page does not
    offer), then back through the sidebar (Streamlit drops the query): the page shows its GRU again, not its
    default. A setting both pages share (seq_len, changed on the second) still carries over."""
    at = AppTest.from_file(str(ROOT / "Overview.py"), default_timeout=TIMEOUT_S)
    at.query_params.update({"cell": "gru", "seq_len": "30", "hidden": "8"})
    at.switch_page("pages/3_LSTM_and_GRU.py")
    at.run()
    assert at.selectbox(key="gated_cell").value == "gru"
    for page in ("pages/4_Modern_Recurrences.py", "pages/3_LSTM_and_GRU.py"):
        at.query_params.clear()
        at.switch_page(page)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if page.startswith("pages/4"):
            assert at.selectbox(key="modern_cell").value == "lru"
            at.slider(key="modern_seq_len").set_value(24).run()
    assert at.selectbox(key="gated_cell").value == "gru"
    assert at.query_params["cell"] == "gru" and at.query_params["seq_len"] == "24"
    assert not at.warning, warning_texts(at)


def test_a_number_widget_shows_the_value_the_link_gave():
    """A shared link's r_max = 0.99999 (a memory of 1e5 steps) read "1" in its widget ("%.4g"): every float
    widget shows its value to eight digits, from its Spec (the learning rate in e-notation)."""
    at = AppTest.from_file(str(ROOT / "Overview.py"), default_timeout=TIMEOUT_S)
    at.query_params.update({"r_max": "0.99999", "r_min": "0.5", "seq_len": "30", "hidden": "8"})
    at.switch_page("pages/4_Modern_Recurrences.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = {w.key: w.proto.format % w.value for w in at.number_input if w.proto.format}
    assert shown["modern_r_max"] == "0.99999" and shown["modern_r_min"] == "0.5", shown
    assert SPECS["gain"].number_format % 1.2 == "1.2" and TRAIN_SPECS["lr"].number_format % 3e-4 == "3.00e-04"
