"""The classroom's presets: each config is valid, on its page's cells and exact through the URL, and each
claim holds on the numbers computed from it (the three named in the issue checked on the numbers directly)."""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from explorer.analysis import Analysis, analyze, auto_stride
from explorer.config import ExperimentConfig, TrainConfig, check, flat, from_query, to_query
from explorer.presets import PRESETS, Measurement, Preset, compare_of, config_of, on_page, preset
from explorer.registry import cell_type
from explorer.train import train

REQUIRED = ("vanishing", "exploding", "edge_of_chaos", "orthogonal_linear", "irnn", "residual", "layer_norm",
            "lstm_input_gate_only", "lstm_no_forget_gate", "lstm_forget_bias_1", "chrono", "gru",
            "adding_tanh_vs_lstm")
ANALYSED = [name for name, p in PRESETS.items() if p.page != "lab"]
LAB = [name for name, p in PRESETS.items() if p.page == "lab"]


@functools.lru_cache(maxsize=None)
def analysis(name: str) -> Analysis:
    """The preset's analysis as a page computes it (at the app's stride), once per test session."""
    config = config_of(name)
    return analyze(config, stride=auto_stride(config))


def upper(result: Analysis) -> np.ndarray:
    values = result.pairs.log10_spectral["state"]
    return values[np.triu_indices(values.shape[0], 1)]


def test_the_issues_presets_exist_in_lecture_order_with_the_lab_last():
    assert set(REQUIRED) <= set(PRESETS)
    assert LAB == ["adding_tanh_vs_lstm"] and list(PRESETS)[-1] == "adding_tanh_vs_lstm"
    order = list(PRESETS)
    assert order.index("vanishing") < order.index("residual") < order.index("orthogonal_linear") \
        < order.index("lstm_input_gate_only") < order.index("lstm_no_forget_gate") < order.index("lstm_forget_bias_1") \
        < order.index("gru")
    assert [p.name for p in on_page("rnn") + on_page("gated") + on_page("modern") + on_page("lab")] \
        == [n for page in ("rnn", "gated", "modern", "lab") for n, p in PRESETS.items() if p.page == page]


@pytest.mark.parametrize("name", list(PRESETS))
def test_config_is_valid_on_its_page_and_exact_through_the_url(name):
    p = PRESETS[name]
    config = config_of(p)
    assert p.name == name and p.label and p.claim and any(ch.isdigit() for ch in p.claim)
    assert isinstance(config, TrainConfig if p.page == "lab" else ExperimentConfig)
    model = config.model if isinstance(config, TrainConfig) else config
    if p.page != "lab":
        assert cell_type(model.cell).page == p.page
    values = flat(config)
    for field, value in p.changes.items():  # every change took, none was fixed up by the rules between fields
        assert values[field] == check(field, value), field
    # the page rewrites the URL as the full config: that link gives the same config, without a word
    again, warnings = from_query(to_query(config), train=p.page == "lab")
    assert again == config and warnings == []
    assert config_of(name) == config  # by name too


def test_the_lab_preset_compares_the_tanh_rnn_with_an_lstm_of_the_same_run():
    p = PRESETS["adding_tanh_vs_lstm"]
    tanh, lstm = config_of(p), compare_of(p)
    assert tanh.model.cell == "rnn" and tanh.model.activation == "tanh" and tanh.model.init == "pytorch"
    assert tanh.task == "adding" and lstm.model.cell == "lstm"
    differ = {k for k, v in flat(lstm).items() if flat(tanh)[k] != v}
    assert differ == {"cell"}
    assert all(compare_of(n) is None for n in ANALYSED)


@pytest.mark.parametrize("name", ANALYSED)
def test_each_claim_holds_on_its_analysis(name):
    m = PRESETS[name].check(analysis(name))
    assert isinstance(m, Measurement) and isinstance(m.value, float) and m.text
    assert math.isfinite(m.value)
    assert m.holds, f"{name}: {PRESETS[name].claim} -- measured {m.text}"


def test_the_issues_three_numbers_directly():
    vanishing, exploding, orthogonal = (analysis(n) for n in ("vanishing", "exploding", "orthogonal_linear"))
    assert vanishing.lag_curve()[1][-1] < -5  # log10 ||dh_T/dh_0||_2
    assert exploding.lag_curve()[1][-1] > 5
    assert exploding.config.dtype == "float64" and exploding.overflow_step is None
    assert np.all(np.abs(upper(orthogonal)) < 1e-4)  # every pair
    # in float64 the products of an orthogonal W_h are orthogonal to rounding alone
    exact = analyze(config_of("orthogonal_linear").replace(dtype="float64"))
    assert np.all(np.abs(upper(exact)) < 1e-12)


def test_checks_fail_where_their_claim_does_not_hold():
    """A check reads the numbers, it does not just say yes: each fails on a contrasting preset's analysis."""
    assert not PRESETS["vanishing"].check(analysis("exploding")).holds
    assert not PRESETS["exploding"].check(analysis("vanishing")).holds
    assert not PRESETS["orthogonal_linear"].check(analysis("edge_of_chaos")).holds
    assert not PRESETS["residual"].check(analysis("vanishing")).holds
    assert not PRESETS["lstm_input_gate_only"].check(analysis("lstm_forget_bias_1")).holds
    assert not PRESETS["chrono"].check(analysis("lstm_forget_bias_1")).holds


def test_the_lab_claim_holds_on_its_runs():
    """The preset's own two runs (1000 steps each, about 5 s each on 2 cores), recorded once at the end
    instead of every 50 steps: recording reads the weights only, so the training and the final eval MSE
    are the preset's exactly."""
    p = PRESETS["adding_tanh_vs_lstm"]
    tanh, lstm = (c.replace(record_every=c.steps) for c in (config_of(p), compare_of(p)))
    m = p.check(train(tanh), train(lstm))
    assert m.holds, m.text
    assert m.value < 1 / 60  # the LSTM's final eval MSE


def test_unknown_names_and_bad_tables_are_refused():
    with pytest.raises(ValueError, match="preset must be one of vanishing"):
        preset("nope")
    with pytest.raises(ValueError, match="page"):
        Preset("x", "x", "lstm", {}, "claim 1", lambda r: Measurement(0.0, "", True))
    with pytest.raises(ValueError, match="compares"):
        Preset("x", "x", "lab", {}, "claim 1", lambda r: Measurement(0.0, "", True))
    bad = Preset("x", "x", "rnn", {"steps": 10}, "claim 1", lambda r: Measurement(0.0, "", True))
    with pytest.raises(ValueError, match="not a field"):
        config_of(bad)
    clash = Preset("x", "x", "rnn", {"cell": "lstm", "hidden": 512}, "claim 1", lambda r: Measurement(0.0, "", True))
    with pytest.raises(ValueError, match="hidden"):
        config_of(clash)
