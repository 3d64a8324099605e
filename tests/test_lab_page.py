"""The Training Lab under AppTest, and its figures: the gradient flow drawn live, both kinds of Stop,
links to runs the server has cached, the Riemannian singular-value axis, log-axis ticks.

Runs are tiny (T = 10, n = 8, 30 steps, batch 8). Streamlit's own Stop (the header's) is what the
browser's stop_script message does on the server, ``ScriptRunner.request_stop()``: the script gets a
StopException at its next Streamlit call, and every later call raises it too. The app's ■ Stop is a
click, i.e. a rerun request, which interrupts the script with a RerunException. Both are requested
here from inside the run, through the script's context, after a given number of records.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_requests import RerunData
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
from streamlit.testing.v1 import AppTest

from explorer import plots
from tests.apptests import array, figures, titled
from explorer import train as train_mod

ROOT = Path(__file__).resolve().parents[1]
LAB = "pages/5_Training_Lab.py"
QUICK = {"task": "adding", "cell": "rnn", "seq_len": "10", "hidden": "8", "steps": "30", "batch_size": "8",
         "record_every": "5"}


@pytest.fixture(autouse=True)
def empty_caches():
    """Every test starts from a server that has trained nothing (the caches are process-wide)."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def open_lab(query: dict[str, str]) -> AppTest:
    """A new session (a visitor) opening the lab at ``query``."""
    at = AppTest.from_file(str(ROOT / "Overview.py"), default_timeout=60)
    at.query_params.update(query)
    at.switch_page(LAB)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def press_train(at: AppTest) -> AppTest:
    at.button(key="lab_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def count_training(monkeypatch) -> list:
    """Each call of explorer.train.train (what the lab runs) appends its config."""
    calls, real = [], train_mod.train

    def counted(config, **kw):
        calls.append(config)
        return real(config, **kw)

    monkeypatch.setattr(train_mod, "train", counted)
    return calls


def stop_after(monkeypatch, records: int, how: str) -> None:
    """Request a Stop from inside the run once ``records`` records are drawn: "header" as Streamlit's
    own Stop does (request_stop), "button" as a click on ■ Stop does (a rerun of the same page)."""
    real = train_mod.train

    def stopping(config, *, progress=None, should_stop=None):
        seen = [0]

        def wrapped(partial):
            progress(partial)
            seen[0] += 1
            if seen[0] == records:
                ctx = get_script_run_ctx()
                if how == "header":
                    ctx.script_requests.request_stop()
                else:
                    ctx.script_requests.request_rerun(
                        RerunData(query_string=ctx.query_string, page_script_hash=ctx.page_script_hash))

        return real(config, progress=wrapped, should_stop=should_stop)

    monkeypatch.setattr(train_mod, "train", stopping)


# ---------------------------------------------------------------- live gradient flow

def test_gradient_flow_is_drawn_live(monkeypatch):
    """Stopped after the first record: the live charts left on screen include the gradient flow."""
    stop_after(monkeypatch, 1, "header")
    at = press_train(open_lab(QUICK))
    live = [f for f in figures(at) if f["data"] and f["data"][0]["type"] == "heatmap"]
    assert live, [f["layout"].get("title") for f in figures(at)]
    assert array(live[0]["data"][0]["y"]).tolist() == [5]  # the first record only: drawn while training


# ---------------------------------------------------------------- Stop: the app's and Streamlit's

STOPPED = re.compile(r"Stopped at step (\d+) of (\d+)")


def stopped_state(at: AppTest) -> tuple[int, int]:
    """(k, N) of the lab's stopped-run message; asserts the run so far is on screen, not cached."""
    messages = [t for t in texts(at.warning) if STOPPED.search(t)]
    assert len(messages) == 1, texts(at.warning)
    assert "not cached" in messages[0]
    assert titled(at, "Loss") and titled(at, "Gradient flow") and titled(at, "Singular values")
    assert not [t for t in texts(at.info) if "Press **Train**" in t]
    k, n = STOPPED.search(messages[0]).groups()
    return int(k), int(n)


def test_stop_button_keeps_the_steps_so_far(monkeypatch):
    stop_after(monkeypatch, 2, "button")
    at = press_train(open_lab(QUICK))  # the click's rerun runs inside this run
    # the Stop lands at the next Streamlit call, the third record's: all 15 steps trained are kept
    assert stopped_state(at) == (15, 30)


def test_streamlits_stop_keeps_the_steps_so_far_and_says_so(monkeypatch):
    stop_after(monkeypatch, 2, "header")
    at = press_train(open_lab(QUICK))
    # the script can draw nothing after Streamlit's Stop (every call raises StopException), so what it
    # leaves must read right as it is: the live charts of the run so far and a note, not a bare bar
    assert titled(at, "Loss") and titled(at, "Gradient flow")
    notes = [t for t in texts(at.caption) if "Streamlit's Stop" in t]
    assert notes and "keeps the steps so far" in notes[0], texts(at.caption)
    # the page's next run (any click) shows the same state as after ■ Stop
    at.run()
    assert not at.exception
    assert stopped_state(at) == (15, 30)
    monkeypatch.undo()
    calls = count_training(monkeypatch)
    at.run()  # and the stopped run is neither trained again nor cached
    assert calls == [] and stopped_state(at) == (15, 30)


def test_stopped_run_is_not_shown_for_another_config(monkeypatch):
    stop_after(monkeypatch, 2, "button")
    at = press_train(open_lab(QUICK))
    at.number_input(key="lab_seed").set_value(3).run()
    assert not [t for t in texts(at.warning) if STOPPED.search(t)]
    assert [t for t in texts(at.info) if "Press **Train**" in t]


# ---------------------------------------------------------------- links to runs the server has

def test_link_to_a_trained_config_shows_the_run(monkeypatch):
    press_train(open_lab(QUICK))
    calls = count_training(monkeypatch)
    other = open_lab(QUICK)  # another visitor follows the link
    assert calls == []  # from the cache, not trained again
    assert titled(other, "Loss") and titled(other, "Gradient flow")
    assert not [t for t in texts(other.info) if "Press **Train**" in t]
    assert other.button(key="lab_start")


def test_link_to_an_untrained_config_says_what_train_reproduces():
    at = open_lab({**QUICK, "seed": "7", "optimizer": "sgd"})
    assert not titled(at, "Loss")
    (prompt,) = [t for t in texts(at.info) if "Press **Train**" in t]
    for part in ("tanh RNN", "adding", "T=10", "seed 7", "30 steps", "batch 8", "sgd"):
        assert part in prompt, (part, prompt)
    assert "seeded" in prompt  # the run is a function of the config


def test_an_evicted_run_is_neither_claimed_nor_trained_again(monkeypatch):
    first = press_train(open_lab(QUICK))
    st.cache_data.clear()  # as max_entries would evict it; the index of finished runs still names it
    calls = count_training(monkeypatch)
    other = open_lab(QUICK)
    first.run()  # the session that trained it, rerun
    assert calls == []
    for at in (other, first):
        assert not titled(at, "Loss")
        assert [t for t in texts(at.info) if "Press **Train**" in t]


# ---------------------------------------------------------------- Riemannian singular values

def test_riemannian_run_states_its_largest_deviation_and_keeps_a_sane_axis():
    at = press_train(open_lab({**QUICK, "orthogonal_param": "cayley", "init": "orthogonal"}))
    (fig,) = titled(at, "Singular values")
    lo, hi = fig["layout"]["yaxis"]["range"]
    assert hi - lo >= 0.1 and lo < 1 < hi
    found = [re.search(r"max_i \|σ_i − 1\| = ([0-9.e+-]+)", t) for t in texts(at.markdown)]
    (value,) = [float(m.group(1)) for m in found if m]
    sv = np.array([array(trace["y"]) for trace in fig["data"] if trace.get("type", "scatter") == "scatter"])
    assert value == pytest.approx(np.abs(sv - 1).max(), rel=0.05) and 0 < value < 1e-4


def test_singular_value_axis_has_a_minimum_span():
    steps = np.arange(1, 11)
    rounding = 1 + 6e-6 * np.random.default_rng(0).standard_normal((10, 8))
    lo, hi = plots.singular_values_over_training(steps, rounding, title="").layout.yaxis.range
    assert hi - lo >= 0.1 and lo < 1 - 6e-5 and hi > 1 + 6e-5
    spread = np.linspace(0.2, 3.0, 8)[None, :] * np.ones((10, 1))
    lo, hi = plots.singular_values_over_training(steps, spread, title="").layout.yaxis.range
    assert lo <= 0.2 and hi >= 3.0 and hi - lo < 3.5  # wide data: its own range, padded
    assert plots.singular_values_over_training(steps, np.full((10, 8), np.nan), title="")  # no finite value


# ---------------------------------------------------------------- log axes

def labelled_decades(axis) -> float:
    """How many labels a log axis with a whole-decade dtick shows over its range."""
    assert axis.type == "log" and isinstance(axis.dtick, int) and axis.dtick >= 1, axis
    lo, hi = axis.range
    return math.floor(hi / axis.dtick) - math.ceil(lo / axis.dtick) + 1


@pytest.mark.parametrize("decades", [3, 5, 12])
def test_gradient_norm_axis_labels_whole_decades(decades):
    steps = np.arange(25, 3001, 25)
    norms = 10.0 ** np.linspace(1, 1 - decades, len(steps))
    fig = plots.series_figure({"run": (steps, norms), "other": (steps, norms * 2)},
                              title="Gradient norm before clipping", y="‖∇J‖₂", log_y=True)
    assert 2 <= labelled_decades(fig.layout.yaxis) <= 7


def test_loss_axis_labels_whole_decades_and_keeps_the_baseline_in_view():
    steps = np.arange(25, 3001, 25)
    loss = 0.17 * np.exp(-steps / 300)  # about 4 decades
    fig = plots.loss_figure({"run": (steps, loss, loss)}, 1 / 6, title="Loss")
    assert 2 <= labelled_decades(fig.layout.yaxis) <= 7
    lo, hi = fig.layout.yaxis.range
    (note,) = [a for a in fig.layout.annotations if a.text.startswith("baseline")]
    assert lo < note.y < hi and note.y == pytest.approx(math.log10(1 / 6))  # log axes place annotations in log10


def test_narrow_log_axis_keeps_few_readable_labels():
    steps = np.arange(25, 3001, 25)
    fig = plots.series_figure({"run": (steps, 3e-6 + 1e-6 * np.random.default_rng(1).random(len(steps)))},
                              title="Orthogonality error", y="error", log_y=True)
    axis = fig.layout.yaxis
    assert axis.type == "log" and (axis.nticks or 0) <= 6 and axis.tickformat.endswith("e")
