"""The classroom's page features under AppTest: A/B comparison, presentation mode, the image format, and the
link and commands that reproduce a picture."""
from __future__ import annotations

import json
import shlex

import pytest
from streamlit.testing.v1 import AppTest

from explorer import ExperimentConfig
from explorer.cli import build_parser
from explorer.config import SPECS, check
from tests.apptests import ROOT, figures, run





def heatmaps(at: AppTest) -> list[dict]:
    return [f for f in figures(at) if f["data"][0]["type"] == "heatmap" and "log10" in json.dumps(f["data"][0])]


@pytest.mark.parametrize("page,query", [("pages/2_Simple_RNN.py", {"b_init": "orthogonal", "b_gain": "1.2"}),
                                        ("pages/3_LSTM_and_GRU.py", {"cell": "lstm", "b_cell": "rnn"})])
def test_a_b_comparison_shares_a_colour_scale_and_one_lag_chart(page, query):
    at = run(page, query)
    assert not at.exception, [e.value for e in at.exception]
    note = [str(i.value) for i in at.info if "Comparing" in str(i.value)]
    assert note and all(k[2:] in note[0] for k in query if k.startswith("b_"))
    assert all(at.query_params[k] == v for k, v in query.items())  # B stays in the link
    pair = [f for f in heatmaps(at) if f["layout"]["title"]["text"].startswith(("A: ", "B: "))]
    assert len(pair) >= 2
    a, b = pair[0]["data"][0], pair[1]["data"][0]
    assert (a["zmin"], a["zmax"]) == (b["zmin"], b["zmax"]) and a["zmid"] == b["zmid"] == 0
    names = {t.get("name", "") for f in figures(at) for t in f["data"]}
    assert any(n.startswith("A: ") for n in names) and any(n.startswith("B: ") for n in names)


def test_a_bad_b_setting_warns_and_is_dropped():
    at = run("pages/2_Simple_RNN.py", {"b_gain": "banana"})
    assert not at.exception
    assert any(str(w.value).startswith("B: gain must be") for w in at.warning)
    assert "b_gain" not in at.query_params and not [i for i in at.info if "Comparing" in str(i.value)]


def test_presentation_mode_hides_the_controls_and_fits_the_charts():
    at = run("pages/2_Simple_RNN.py", {"present": "1"})
    assert not at.exception
    assert not [b for b in at.get("download_button") if "dl_" in (b.key or "") and "config" not in b.key]
    assert all(f["layout"]["height"] <= 430 for f in figures(at))
    assert all(f["layout"]["xaxis"]["tickfont"]["size"] >= 14 for f in figures(at))
    assert at.title and at.button(key="rnn_leave")  # a compact title bar, with the way out
    at.button(key="rnn_leave").click().run()
    assert at.query_params["present"] == "0" and not [b for b in at.button if b.key == "rnn_leave"]


def test_the_image_format_reaches_the_charts_camera():
    at = run("pages/2_Simple_RNN.py", {"image": "svg"})
    assert not at.exception
    configs = [json.loads(chart.proto.config) for chart in at.get("plotly_chart")]
    assert configs and all(c["toImageButtonOptions"]["format"] == "svg" for c in configs)


def test_the_reproduce_box_gives_the_same_config():
    query = {"init": "gaussian", "gain": "1.25", "seed": "7", "activation": "relu", "seq_len": "30", "hidden": "8"}
    at = run("pages/2_Simple_RNN.py", query)
    assert not at.exception
    codes = [c.value for c in at.code]
    link = next(c for c in codes if "seq_len=30" in c)
    assert all(f"{k}={v}" in link for k, v in query.items())
    command = next(c for c in codes if c.startswith("python -m explorer analyze"))
    args = build_parser().parse_args(shlex.split(command)[3:])
    from_command = ExperimentConfig(**{k: check(k, getattr(args, k)) for k in SPECS if getattr(args, k, None) is not None})
    snippet = next(c for c in codes if c.startswith("from explorer import"))
    namespace: dict = {}
    exec(snippet.split("\n")[0], namespace)  # the import line
    from_snippet = eval(snippet.split("\n")[1].split("analyze(", 1)[1].rsplit(")", 1)[0].split(", stride")[0], namespace)
    shown = ExperimentConfig(cell="rnn", **{k: check(k, v) for k, v in query.items()})
    assert from_command == shown and from_snippet == shown


PAGE_FILES = {"rnn": "pages/2_Simple_RNN.py", "gated": "pages/3_LSTM_and_GRU.py", "modern": "pages/4_Modern_Recurrences.py",
              "lab": "pages/5_Training_Lab.py"}


@pytest.mark.parametrize("name", list(__import__("explorer.presets", fromlist=["PRESETS"]).PRESETS))
def test_every_preset_renders_on_its_page_and_the_link_becomes_its_full_config(name):
    from explorer.config import to_query
    from explorer.presets import PRESETS, config_of

    preset = PRESETS[name]
    at = AppTest.from_file(str(ROOT / "Overview.py"), default_timeout=120)
    at.query_params.update({"preset": name})
    at.switch_page(PAGE_FILES[preset.page])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(preset.claim in str(i.value) for i in at.info), "the preset states its claim"
    assert "preset" not in at.query_params
    expected = to_query(config_of(preset))
    assert {k: at.query_params[k] for k in expected} == expected


def test_an_unknown_or_foreign_preset_warns_and_keeps_the_link():
    at = run("pages/2_Simple_RNN.py", {"preset": "gru"})  # the LSTM and GRU page's
    assert not at.exception and any("preset must be one of" in str(w.value) for w in at.warning)
    assert at.query_params["cell"] == "rnn" and at.query_params["seq_len"] == "30"


@pytest.mark.parametrize("number", range(1, 15))
def test_every_tour_step_renders_with_its_claim_holding(number):
    from explorer.tour import STEPS

    at = AppTest.from_file(str(ROOT / "Overview.py"), default_timeout=120)
    at.query_params.update({"step": str(number)})
    at.switch_page("pages/1_Guided_Tour.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    step = STEPS[number - 1]
    assert at.title[0].value == f"Tour · {number}. {step.title}"
    assert len(at.success) == 1 and step.claim in str(at.success[0].value) and not at.error
    assert len(at.get("plotly_chart")) == len(step.charts)
    assert at.query_params["step"] == str(number)


def test_a_bad_tour_step_warns_and_starts_at_one():
    at = AppTest.from_file(str(ROOT / "Overview.py"), default_timeout=120)
    at.query_params.update({"step": "99"})
    at.switch_page("pages/1_Guided_Tour.py")
    at.run()
    assert not at.exception and any("step must be an integer in [1, 14]" in str(w.value) for w in at.warning)
    assert at.query_params["step"] == "1"


def test_the_next_tour_step_is_computed_ahead_and_a_failure_falls_back(monkeypatch):
    import explorer.tour
    import ui.tour

    monkeypatch.setattr(ui.tour, "_AHEAD", {})
    calls = []

    def compute(step):
        calls.append(step.number)
        if step.number == 3:
            raise RuntimeError("simulated failure")
        return ("ahead", step.number)

    monkeypatch.setattr(explorer.tour, "compute", compute)
    ui.tour.compute_ahead(1)
    ui.tour.compute_ahead(1)  # once per step, however many sessions read step 1
    assert ui.tour.result_of(2, explorer.tour.STEPS[1].config) == ("ahead", 2) and calls == [2]
    ui.tour.compute_ahead(2)
    monkeypatch.setattr("ui.results.analysis", lambda config: (("computed", config), None))
    step3 = explorer.tour.STEPS[2]
    assert ui.tour.result_of(3, step3.config) == ("computed", step3.config)  # the visit computes it itself
    ui.tour.compute_ahead(len(explorer.tour.STEPS))  # the last step has no next
    assert calls == [2, 3] and 3 not in ui.tour._AHEAD
