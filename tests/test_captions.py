"""The words on a page name only what the page draws: for each cell and each normalisation (AppTest),
and the chart details the text refers to (axes, hover, the colour scale a teacher can lock)."""
from __future__ import annotations


import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explorer import plots
from tests.apptests import figures, run
from explorer.text import CAPTIONS, caption, ordinal




def words(at: AppTest) -> str:
    """Everything the page says in prose (Markdown, captions, alerts)."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [str(a.value) for a in (*at.info, *at.warning)]
    return "\n".join(parts)



def trace_names(at: AppTest) -> set[str]:
    return {trace.get("name", "") for fig in figures(at) for trace in fig["data"]}


@pytest.mark.parametrize("norm", ["none", "layer", "batch"])
@pytest.mark.parametrize("residual", ["false", "true"])
def test_simple_rnn_words_match_the_drawing(norm, residual):
    at = run("pages/2_Simple_RNN.py", {"norm": norm, "residual": residual})
    assert not at.exception, [e.value for e in at.exception]
    text, names = words(at), trace_names(at)
    bound_drawn = any(name.startswith("bound") for name in names)
    assert bound_drawn == (norm == "none")
    assert ("dashed bound" in text) == bound_drawn, text
    assert ("No bound is drawn" in text) == (not bound_drawn)
    assert any("\\le" in latex.value for latex in at.latex) == bound_drawn  # the bound's equation with its line
    assert ("residual connection" in text) == (residual == "true")
    assert ("Layer norm" in text) == (norm == "layer") and ("Batch norm divides" in text) == (norm == "batch")
    assert "th step" not in text or "every 1th" not in text
    if residual == "true":  # the lecture's point, beside the single step's norm
        assert "I + \\mathrm{diag}(g')" in text and "log10 ‖J_k‖₂" in names


@pytest.mark.parametrize("query,cell", [({"cell": "gru"}, "gru"), ({"cell": "lstm", "gates": "input"}, "lstm"),
                                        ({"cell": "lstm"}, "lstm")])
def test_gated_page_words_match_the_cell(query, cell):
    at = run("pages/3_LSTM_and_GRU.py", query)
    assert not at.exception, [e.value for e in at.exception]
    text = words(at)
    keys = {getattr(w, "key", None) for kind in ("selectbox", "text_input") for w in at.get(kind)}
    if cell == "gru":
        assert "forget" not in text.lower() and "LSTM" not in text, text
        assert "gated_gates" not in keys and "gated_forget_bias" not in keys  # LSTM-only controls hidden
        assert "update gate" in text or "z_t" in text
    else:
        assert "gated_gates" in keys and "gated_forget_bias" in keys
        assert "carousel" in text
    assert "saturated" in text  # the gate chart says how saturated the gates are, 0 included


def test_every_caption_condition_is_reachable_and_named_charts_exist():
    charts = {c.chart for c in CAPTIONS}
    view = {"cell": "rnn", "norm": "none", "residual": False, "gates": "input,forget,output", "bound": True,
            "bound_base": "x", "saturated": "none", "theory_note": "x"}
    for chart in charts - {"gated_lag", "gates", "intro"}:
        assert caption(chart, view)
    with pytest.raises(KeyError):
        caption("no such chart", view)


def test_contributions_axes_say_what_they_plot():
    fig = plots.contributions_figure(np.array([-3.0, -2.0, -1.0, 0.0]), title="t")
    assert fig.layout.yaxis.title.text == "log10 ‖C_t‖_F"
    assert fig.layout.yaxis2.title.text.startswith("share") and fig.layout.yaxis2.tickformat == ".0%"
    assert fig.data[1].y[0] == pytest.approx(1.0)  # all of the sum comes from steps >= 1


def test_heatmap_blank_cells_have_no_hover_and_the_scale_can_be_locked():
    grid = np.arange(4)
    values = np.full((4, 4), np.nan)
    values[np.triu_indices(4)] = [0, -1, -2, -3, 0, -1, -2, 0, -1, 0]
    auto = plots.jacobian_heatmap(grid, values, title="t")
    assert auto.data[0].hoverongaps is False and (auto.data[0].zmin, auto.data[0].zmax) == (-3, 3)
    locked = plots.jacobian_heatmap(grid, values, title="t", limit=20.0)
    assert (locked.data[0].zmin, locked.data[0].zmid, locked.data[0].zmax) == (-20, 0, 20)


def test_a_locked_colour_scale_travels_in_the_url_and_reaches_the_maps():
    at = run("pages/2_Simple_RNN.py", {"scale": "10"})
    assert not at.exception and at.query_params["scale"] == "10"
    maps = [f for f in figures(at) if f["data"][0]["type"] == "heatmap"]
    assert maps and all((f["data"][0]["zmin"], f["data"][0]["zmax"]) == (-10, 10) for f in maps)
    bad = run("pages/2_Simple_RNN.py", {"scale": "7"})
    assert any("scale must be one of" in str(w.value) for w in bad.warning)
    assert bad.query_params["scale"] == "auto"


def test_analysis_time_on_a_cache_hit_is_this_visits_wait():
    first = run("pages/2_Simple_RNN.py", {"seed": "123"})
    again = run("pages/2_Simple_RNN.py", {"seed": "123"})
    shown = [m.value for m in again.metric if m.label == "analysis time"]
    assert shown == ["cached"], shown
    assert [m.value for m in first.metric if m.label == "analysis time"][0].endswith(" s")


@pytest.mark.parametrize("k,text", [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"),
                                    (13, "13th"), (21, "21st"), (22, "22nd"), (103, "103rd"), (111, "111th")])
def test_ordinals(k, text):
    assert ordinal(k) == text
