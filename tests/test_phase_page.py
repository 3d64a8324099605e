"""The Phase Diagram page under AppTest: its default sweep, a config from the URL, a malformed one, the LSTM's
sweep, the page's bounds, a sweep JSON read back (AppTest cannot upload: the page's reader is tested directly),
and the link a clicked cell opens (AppTest cannot click a chart: the event's reading and the link are)."""
import json
import math
from types import SimpleNamespace
from urllib.parse import urlencode

import numpy as np
import pytest

import apptests
from explorer import sweep as sw
from explorer.config import ExperimentConfig, from_query

PAGE = "pages/6_Phase_Diagram.py"


def _map(at):
    figures = apptests.figures(at)
    assert len(figures) == 1, [f["layout"].get("title") for f in figures]
    return figures[0]


def _downloads(at) -> list[str]:
    return [str(b.proto.label) for b in at.get("download_button")]


def test_default_sweep_draws_measured_growth_and_theory_line():
    at = apptests.run(PAGE, {})
    assert not at.exception, [e.value for e in at.exception]
    assert not at.warning, [w.value for w in at.warning]
    fig = _map(at)
    heat, cells, line = fig["data"]
    assert heat["type"] == "heatmap" and line["name"] == "theory: χ = 1"
    z = apptests.array(heat["z"])
    assert z.shape == (11, 15)  # sigma_b rows, sigma_w columns: the page's default 15 x 11
    assert np.nanmin(z) < 0 < np.nanmax(z)  # order and chaos on one map
    assert len(apptests.array(cells["customdata"])) == 165
    x, y = apptests.array(line["x"]), apptests.array(line["y"])
    assert y[0] == 0.0 and x[0] > 1.0  # the input drive alone moves the edge of chaos right of sigma_w = 1
    assert np.all(np.diff(x) > 0) and np.all(np.diff(y) > 0) and y[-1] >= 0.5  # tanh's edge bends right
    assert any("CSV" in label for label in _downloads(at)) and any("JSON" in label for label in _downloads(at))
    assert at.query_params["init"] == "gaussian" and at.query_params["dtype"] == "float64"
    assert any("python -m explorer sweep" in str(c.value) for c in at.get("code"))


def test_config_from_the_url():
    at = apptests.run(PAGE, {"activation": "relu", "seed": "3", "input": "zeros"})
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    assert at.query_params["activation"] == "relu" and at.query_params["seed"] == "3"
    line = _map(at)["data"][2]
    assert apptests.array(line["x"]).tolist() == [math.sqrt(2.0)] * 2  # chi = sigma_w^2 / 2
    assert "relu" in _map(at)["layout"]["title"]["text"]


def test_malformed_url_warns_and_renders():
    at = apptests.run(PAGE, {"hidden": "abc", "activation": "<b>x</b>", "cell": "lstm'--", "no_such": "1"})
    assert not at.exception, [e.value for e in at.exception]
    texts = [str(w.value) for w in at.warning]
    assert any(t.startswith("hidden") for t in texts) and any(t.startswith("activation") for t in texts)
    assert any("no_such" in t for t in texts)
    assert len(apptests.figures(at)) == 1


def test_lstm_sweeps_forget_bias_and_length():
    at = apptests.run(PAGE, {"cell": "lstm"})
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    fig = _map(at)
    assert "∂c_T/∂c_0" in fig["layout"]["title"]["text"] and len(fig["data"]) == 2  # no theory line
    z = apptests.array(fig["data"][0]["z"])  # rows: T; columns: the forget bias
    assert z.shape == (10, 7) and np.all(np.diff(z[-1]) > 0)  # a larger b_f keeps more of c


def test_page_bounds_and_budget(monkeypatch):
    at = apptests.run(PAGE, {"hidden": "300", "seq_len": "500", "input": "zeros"})
    assert not at.exception
    texts = [str(w.value) for w in at.warning]
    assert any("n ≤ 128" in t for t in texts) and any("T ≤ 200" in t for t in texts), texts
    from ui import sweeps

    monkeypatch.setattr(sweeps, "budget", lambda: 0.0)  # nothing fits: the page says so and shows the command
    at = apptests.run(PAGE, {"seed": "11"})
    assert not at.exception and not apptests.figures(at)
    assert any("command line" in str(i.value) for i in at.info)


def _result():
    base = ExperimentConfig(hidden=8, seq_len=20, input="zeros", init="gaussian", dtype="float64")
    return sw.run_sweep(sw.Sweep(base, (sw.parse_axis("gain=0.5:1.5:3"), sw.parse_axis("bias_std=0:0.2:2"))),
                        workers=1, cache=False)


def test_uploaded_json_is_read_back_or_warned_about():
    from ui import sweeps

    result = _result()
    text = json.dumps(result.to_json(), allow_nan=False).encode()
    back, problem = sweeps.read_upload(text)
    assert problem is None and back.rows == result.rows
    data = sweeps.figure_data(back)
    assert data["z"].shape == (3, 2) and data["line"] is not None
    assert sweeps.read_upload(None) == (None, None)
    shuffled = result.to_json()
    shuffled["rows"][2]["gain"] = 1.25  # not the grid's value there
    for bad in (b"{", b"[1, 2]", json.dumps(shuffled).encode(), b"x" * (sw.MAX_UPLOAD_BYTES + 1)):
        got, problem = sweeps.read_upload(bad)
        assert got is None and problem.startswith("The uploaded file is not a sweep") and "\n" not in problem


def test_a_clicked_cell_links_its_full_config_to_its_page():
    from ui import sweeps

    result = _result()
    event = SimpleNamespace(selection=SimpleNamespace(points=[{"x": 1.0, "y": 0.2, "customdata": 3}]))
    assert sweeps.clicked(result, event) == 3
    assert sweeps.clicked(result, SimpleNamespace(selection=SimpleNamespace(points=[]))) is None
    assert sweeps.clicked(result, SimpleNamespace(selection=SimpleNamespace(points=[{"customdata": 99}]))) is None
    page, label, query = sweeps.link_for(result, 3)
    assert page == "pages/2_Simple_RNN.py" and "gain = 1.0" in label and "bias_std = 0.2" in label
    config, warnings = from_query(query)
    assert not warnings and config == result.sweep.configs()[3]
    assert config.gain == 1.0 and config.bias_std == "0.2" and config.init == "gaussian"
    # the link opens the Simple RNN page on that config
    at = apptests.run(page, {**query, "seq_len": "20", "hidden": "8"})
    assert not at.exception and not at.warning and at.query_params["bias_std"] == "0.2"
    lstm = sw.run_sweep(sw.Sweep(ExperimentConfig(cell="lstm", hidden=4, seq_len=10, dtype="float64"),
                                 (sw.parse_axis("forget_bias=0:1:2"),)), workers=1, cache=False)
    assert sweeps.link_for(lstm, 1)[0] == "pages/3_LSTM_and_GRU.py"
    assert sweeps.figure_data(lstm) is None  # one axis: the page says it draws two-axis sweeps
    assert urlencode(query)
