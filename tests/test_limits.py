"""The hosted deployment's limits (explorer.limits) and the cost model behind the app's stride (explorer.cost):
environment overrides, clamping with a message, the stride as the smallest that fits, the lowering of a config
that asks too much, and the same through a page's URL and widgets."""
from __future__ import annotations

import dataclasses

import pytest

from explorer import ExperimentConfig, TrainConfig, cost, limits
from explorer.analysis import auto_stride
from explorer.jacobian import make_grid
from explorer.registry import CELL_TYPES
from tests.apptests import run

BUDGET = limits.LIMITS.analysis_seconds


def test_environment_overrides_lower_the_limits_and_bad_values_are_ignored_with_a_word():
    got = limits.Limits.from_environ({"EXPLORER_MAX_SEQ_LEN": "500", "EXPLORER_CONCURRENT": "3",
                                      "EXPLORER_ANALYSIS_SECONDS": "2.5", "EXPLORER_MAX_HIDDEN": "100000"})
    assert (got.max_seq_len, got.concurrent, got.analysis_seconds, got.max_hidden) == (500, 3, 2.5, 512)
    assert not got.problems
    for bad in ("abc", "-3", "0", "nan", "inf", "", "1e999"):
        got = limits.Limits.from_environ({"EXPLORER_LAB_FLOPS": bad})
        assert got.lab_flops == limits.Limits().lab_flops and "EXPLORER_LAB_FLOPS" in got.problems[0], bad


def test_the_stride_is_the_smallest_whose_predicted_time_fits_the_budget():
    assert auto_stride(ExperimentConfig()) == 1
    mid = ExperimentConfig(hidden=256, seq_len=1000)
    stride = auto_stride(mid)
    assert stride > 2 and cost.seconds(mid, stride) <= BUDGET < cost.seconds(mid, stride - 1)
    big = ExperimentConfig(hidden=512, seq_len=2000)  # over budget at any stride: the coarsest useful map
    assert len(make_grid(2000, auto_stride(big))) >= limits.MIN_GRID


def test_the_model_grows_with_every_size_and_falls_with_the_stride():
    base = ExperimentConfig(hidden=128, seq_len=400)
    for change in (dict(hidden=256), dict(seq_len=800), dict(lag=400), dict(dtype="float64"), dict(init="orthogonal"),
                   dict(cell="lstm"), dict(norm="batch", batch=64)):
        assert cost.seconds(base.replace(**change), 4) > cost.seconds(base, 4), change
    assert cost.seconds(base, 8) < cost.seconds(base, 4) < cost.seconds(base, 2)


def test_a_config_that_asks_too_much_is_lowered_lag_first_with_a_message():
    greedy = ExperimentConfig(hidden=512, seq_len=2000, lag=2000)
    planned = limits.plan(greedy)
    assert planned.config.seq_len == 2000 and 1 <= planned.config.lag < 2000
    assert planned.seconds <= limits.OVER_BUDGET * BUDGET
    assert "lag k is lowered to" in planned.messages[0] and "EXPLORER_ANALYSIS_SECONDS" in planned.messages[0]
    assert limits.plan(ExperimentConfig()) == limits.Plan(ExperimentConfig(), 1, cost.seconds(ExperimentConfig(), 1),
                                                          False, ())


@pytest.mark.parametrize("cell", list(CELL_TYPES))
@pytest.mark.parametrize("change", [dict(), dict(dtype="float64"), dict(init="orthogonal"), dict(lag=2000)])
def test_every_cell_at_its_largest_plans_within_the_cap(cell, change):
    kind = CELL_TYPES[cell]
    config = ExperimentConfig(cell=cell, hidden=kind.max_hidden, seq_len=2000, **change)
    planned = limits.plan(config)
    assert planned.seconds <= limits.OVER_BUDGET * BUDGET, planned
    assert planned.stride == auto_stride(planned.config)


def test_a_deployment_clamps_T_and_n_with_a_message_naming_its_variable():
    small = dataclasses.replace(limits.LIMITS, max_seq_len=300, max_hidden=32)
    planned = limits.plan(ExperimentConfig(seq_len=1000, hidden=64, lag=800), small)
    assert (planned.config.seq_len, planned.config.hidden) == (300, 32) and planned.config.lag <= 300
    assert any("EXPLORER_MAX_SEQ_LEN" in m for m in planned.messages)
    assert any("EXPLORER_MAX_HIDDEN" in m for m in planned.messages)
    trained, messages = limits.plan_training(TrainConfig(steps=5000), dataclasses.replace(small, lab_max_steps=100))
    assert trained.steps == 100 and any("EXPLORER_LAB_MAX_STEPS" in m for m in messages)


def test_a_page_lowers_a_costly_url_and_its_link_holds_what_runs(monkeypatch):
    monkeypatch.setattr(limits, "LIMITS", dataclasses.replace(limits.LIMITS, max_seq_len=120, analysis_seconds=0.2))
    at = run("pages/2_Simple_RNN.py", {"seq_len": "400", "hidden": "48", "lag": "400"})
    assert not at.exception, [e.value for e in at.exception]
    texts = [str(w.value) for w in at.warning]
    assert any("T ≤ 120 (EXPLORER_MAX_SEQ_LEN)" in t for t in texts)
    assert at.query_params["seq_len"] == "120" and int(at.query_params["lag"]) <= 120
    assert at.slider(key="rnn_seq_len").max == 120 and at.slider(key="rnn_seq_len").value == 120


def test_a_budget_below_any_config_changes_nothing_and_says_nothing():
    """Lowering T to 1 would not fit a budget below the fixed cost of a run: the config runs as asked."""
    tiny = dataclasses.replace(limits.LIMITS, analysis_seconds=1e-4)
    asked = ExperimentConfig(seq_len=400, hidden=48, lag=400)
    planned = limits.plan(asked, tiny)
    assert planned.config == asked and planned.messages == ()
