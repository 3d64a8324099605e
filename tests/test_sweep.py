"""Sweeps (explorer.sweep): axes and grid order, exact log-space measurements, the disk cache, the executors
(one process, a pool, Ray) giving the same numbers, agreement with mean-field theory, the JSON read back, the CLI."""
import json
import math
import os
import time

import numpy as np
import pytest

from explorer import sweep as sw
from explorer.analysis import analyze, lag_curve
from explorer.config import ExperimentConfig

TINY = ExperimentConfig(activation="tanh", hidden=8, seq_len=20, input="zeros", init="gaussian", dtype="float64")


def _numbers(rows):
    """The rows without their timings (which differ run to run)."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _ray_or_skip():
    try:
        import ray
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("ray is not importable under CI: pip install -r requirements-dev.txt pins it")
        pytest.skip("ray is not importable here (it is in requirements-dev.txt); the Ray executor is untested")
    return ray


# --- axes and the grid -------------------------------------------------------------------------------------------

def test_axes_parse_and_format_values_as_the_config_expects():
    gain = sw.parse_axis("gain=0.5:2.5:9")
    assert gain.values() == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5]
    assert sw.parse_axis("bias_std=0:0.4:3").values() == ["0.0", "0.2", "0.4"]  # a str field holding a number
    assert sw.parse_axis("seq-len=20:200:10").values() == list(range(20, 201, 20))
    assert sw.parse_axis("forget_bias=-2:4:4").values() == ["-2.0", "0.0", "2.0", "4.0"]
    assert sw.parse_axis("gain=1.5:1.5:1").values() == [1.5]


@pytest.mark.parametrize("text,words", [
    ("gain=0.5:2.5", "FIELD=LO:HI:N"), ("gain", "FIELD=LO:HI:N"), ("activation=0:1:3", "must be one of"),
    ("nope=0:1:3", "must be one of"), ("gain=a:1:3", "numbers"), ("gain=0:1:x", "integer"), ("gain=0:9:3", "gain must"),
    ("gain=0:1:0", "N in"), ("gain=0:nan:3", "finite"), ("gain=0:1:1", "LO = HI"), ("seq_len=10:12:5", "repeat"),
    ("bias_std=-1:1:3", "bias_std must"), ("hidden=1:9999:3", "hidden must"),
])
def test_bad_axes_are_one_line_errors(text, words):
    with pytest.raises(ValueError) as err:
        sw.parse_axis(text)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_grid_order_is_the_axes_order_last_fastest():
    sweep = sw.Sweep(TINY, (sw.parse_axis("gain=0.5:1.5:3"), sw.parse_axis("bias_std=0:0.2:2")))
    assert sweep.shape == (3, 2) and sweep.size == 6
    assert [(p["gain"], p["bias_std"]) for p in sweep.points()] == [
        (0.5, "0.0"), (0.5, "0.2"), (1.0, "0.0"), (1.0, "0.2"), (1.5, "0.0"), (1.5, "0.2")]
    configs = sweep.configs()
    assert [(c.gain, c.bias_std) for c in configs] == [(p["gain"], p["bias_std"]) for p in sweep.points()]
    assert all(c.replace(gain=TINY.gain, bias_std=TINY.bias_std) == TINY for c in configs)


def test_sweep_bounds():
    with pytest.raises(ValueError, match="at most"):
        sw.Sweep(TINY, (sw.parse_axis("gain=0:2:100"), sw.parse_axis("seed=0:99:100")))
    with pytest.raises(ValueError, match="once"):
        sw.Sweep(TINY, (sw.parse_axis("gain=0:2:3"), sw.parse_axis("gain=0:1:2")))
    with pytest.raises(ValueError, match="init=pytorch"):
        sw.Sweep(TINY.replace(init="pytorch"), (sw.parse_axis("gain=0:2:3"),))
    with pytest.raises(ValueError, match="hidden"):  # a combination beyond a rule between fields (LSTM n <= 256)
        sw.Sweep(TINY.replace(cell="lstm"), (sw.parse_axis("hidden=128:512:2"),)).configs()


# --- the measurements ----------------------------------------------------------------------------------------------

def test_frobenius_chain_is_the_analysis_lag_curve_exactly():
    for config in (ExperimentConfig(hidden=16, seq_len=30, init="gaussian", gain=1.4, bias_std="0.3", dtype="float64"),
                   ExperimentConfig(cell="gru", hidden=8, seq_len=25)):
        lags, log_fro = sw.log_frobenius_to_the_end(config)
        ref_lags, _, ref_fro = lag_curve(config)
        assert np.array_equal(lags, ref_lags) and np.array_equal(log_fro, ref_fro)


def test_rate_is_the_least_squares_slope_of_the_last_half():
    config = ExperimentConfig(hidden=16, seq_len=31, init="gaussian", gain=1.3, bias_std="0.2", dtype="float64")
    lags, log_fro = sw.log_frobenius_to_the_end(config)
    y = 2 * log_fro - math.log10(16)
    k = lags >= 15
    assert sw.measured_log10_rate(config) == pytest.approx(np.polyfit(lags[k], y[k], 1)[0], rel=1e-12, abs=1e-14)


def test_overflow_and_exact_zero_are_null():
    blown = ExperimentConfig(activation="relu", hidden=16, seq_len=80, init="gaussian", gain=8.0, bias_std="1.0",
                             dtype="float32")
    assert math.isnan(sw.measured_log10_rate(blown)) and sw.row(blown)["measured_log10_rate"] is None
    dead = TINY.replace(activation="relu", bias_std="0.0")  # h stays 0 and torch's relu'(0) = 0: J = 0
    assert sw.measured_log10_rate(dead) == -math.inf
    out = sw.row(dead)
    assert out["measured_log10_rate"] is None and out["theory_log10_chi"] is None  # chi = 0 too
    json.dumps(out, allow_nan=False)


def test_lstm_cell_path_is_the_analysis_pair():
    config = ExperimentConfig(cell="lstm", hidden=8, seq_len=24, dtype="float64", forget_bias="1.0")
    assert sw.measured_log10_cell(config) == pytest.approx(
        analyze(config).pairs.log10_spectral["cell"][0, -1], abs=1e-9)
    result = sw.run_sweep(sw.Sweep(config, (sw.parse_axis("forget_bias=-1:3:3"), sw.parse_axis("seq_len=10:30:2"))),
                          workers=1, cache=False)
    assert all(set(r) == {"forget_bias", "seq_len", "measured_log10_cell", "theory_log10_chi", "seconds"}
               for r in result.rows)
    assert all(r["theory_log10_chi"] is None for r in result.rows)
    cells = result.array("measured_log10_cell")
    assert cells.shape == (3, 2) and np.all(np.diff(cells[:, 1]) > 0)  # a larger forget bias keeps more of c


def test_measured_agrees_with_theory_away_from_criticality():
    """tanh, n = 256, T = 100, input zeros: where the state is chaotic (sigma_w >= 1 with a bias), the Jacobians
    along the trajectory average as mean-field theory assumes. (With sigma_b = 0 the state stays at 0 and every
    J_k is the same W: the slope is then that of a fixed matrix's powers, set by its largest eigenvalues, 0.04
    decades above chi at n = 256: see the sweep's agreement table.)"""
    base = ExperimentConfig(activation="tanh", hidden=256, seq_len=100, input="zeros", init="gaussian", dtype="float64")
    for gain, bias in ((1.0, "0.2"), (2.0, "0.2"), (2.5, "0.4")):
        out = sw.row(base.replace(gain=gain, bias_std=bias))
        assert abs(out["theory_log10_chi"]) > 0.05
        assert abs(out["measured_log10_rate"] - out["theory_log10_chi"]) < 0.03, (gain, bias, out)


def test_critical_line_is_where_theory_says_chi_is_one():
    from explorer.theory import fixed_point, susceptibility

    sigma_w, sigma_b = sw.critical_line("tanh", 0.0, 0.5)
    assert sigma_w[0] == pytest.approx(1.0) and sigma_b[0] == 0.0 and sigma_b[-1] >= 0.5
    assert np.all(np.diff(sigma_w) >= 0) and np.all(np.diff(sigma_b) >= 0)
    for i in range(5, len(sigma_w), 25):
        q = fixed_point("tanh", sigma_w[i] ** 2, sigma_b[i] ** 2, 0.0)
        assert susceptibility("tanh", sigma_w[i] ** 2, q) == pytest.approx(1.0, abs=1e-9)
    assert sw.critical_line("relu", 0.0, 1.0)[0].tolist() == [math.sqrt(2.0)] * 2
    assert sw.critical_line("linear", 0.0, 1.0)[0].tolist() == [1.0, 1.0]


# --- the cache and the executors ------------------------------------------------------------------------------------

SMALL = sw.Sweep(TINY, (sw.parse_axis("gain=0.5:2.5:3"), sw.parse_axis("bias_std=0:0.4:3")))


def test_disk_cache_makes_a_repeat_instant(tmp_path):
    cache = sw.DiskCache(tmp_path)
    seen = []
    first = sw.run_sweep(SMALL, workers=1, cache=cache, progress=lambda done, total: seen.append((done, total)))
    assert first.cached == 0 and seen[0] == (0, 9) and seen[-1] == (9, 9)
    assert len(list(tmp_path.rglob("*.json"))) == 9
    start = time.perf_counter()
    again = sw.run_sweep(SMALL, workers=1, cache=cache)
    assert again.cached == 9 and time.perf_counter() - start < 0.5
    assert again.rows == first.rows  # timings included: read back, not recomputed
    other = sw.run_sweep(sw.Sweep(TINY.replace(seed=1), SMALL.axes), workers=1, cache=cache)
    assert other.cached == 0 and _numbers(other.rows) != _numbers(first.rows)  # the key is the whole config
    for path in tmp_path.rglob("*.json"):
        path.write_text("{broken")  # a damaged file is a miss, recomputed, never an error
    assert sw.run_sweep(SMALL, workers=1, cache=cache).cached == 0


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    assert sw.cache_dir() == tmp_path / "sweep"
    monkeypatch.delenv("EXPLORER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert sw.cache_dir() == tmp_path / "rnn-gradient-explorer" / "sweep"


@pytest.fixture(scope="module")
def one_worker():
    return sw.run_sweep(SMALL, workers=1, cache=False)


def test_local_pool_equals_one_process(one_worker):
    two = sw.run_sweep(SMALL, workers=2, cache=False)
    assert _numbers(two.rows) == _numbers(one_worker.rows)
    assert [(r["gain"], r["bias_std"]) for r in two.rows] == [(p["gain"], p["bias_std"]) for p in SMALL.points()]


def test_ray_equals_local_exactly(one_worker):
    ray = _ray_or_skip()
    import logging

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             runtime_env=sw._ray_runtime_env())
    try:
        result = sw.run_sweep(SMALL, executor="ray", cache=False)
        assert ray.is_initialized()  # a Ray the caller started is left running
    finally:
        ray.shutdown()
    assert _numbers(result.rows) == _numbers(one_worker.rows)


# --- the JSON ------------------------------------------------------------------------------------------------------

def test_json_round_trip_and_malformed_files(one_worker):
    data = one_worker.to_json()
    text = json.dumps(data, allow_nan=False)
    back = sw.loads(text)
    assert _numbers(back.rows) == _numbers(one_worker.rows) and back.sweep == SMALL
    assert np.array_equal(back.array("measured_log10_rate"), one_worker.array("measured_log10_rate"), equal_nan=True)
    bad = [
        "not json", "[]", json.dumps({**data, "rows": data["rows"][:-1]}), json.dumps({k: v for k, v in data.items()
                                                                                      if k != "axes"}),
        json.dumps({**data, "config": {**data["config"], "hidden": -3}}),
        json.dumps({**data, "axes": [{"field": "gain", "lo": 0, "hi": 99, "count": 3}] + data["axes"][1:]}),
        json.dumps({**data, "rows": [{**data["rows"][0], "gain": 7.0}] + data["rows"][1:]}),
        json.dumps({**data, "rows": [{**data["rows"][0], "measured_log10_rate": "big"}] + data["rows"][1:]}),
        text.replace('"measured_log10_rate": -', '"measured_log10_rate": -1e999, "x": -', 1),
        " " * (sw.MAX_UPLOAD_BYTES + 1),
    ]
    for case in bad:
        with pytest.raises(ValueError) as err:
            sw.loads(case)
        assert "\n" not in str(err.value)


# --- the command line ----------------------------------------------------------------------------------------------

def test_cli_sweep_json(monkeypatch, tmp_path, capsys):
    from explorer.cli import main

    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    argv = ["sweep", "--cell", "rnn", "--activation", "tanh", "--hidden", "8", "--seq-len", "20", "--input", "zeros",
            "--sweep", "gain=0.5:2.5:3", "--sweep", "bias_std=0:0.4:3", "--executor", "local", "--workers", "1",
            "--json"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert "9/9 rows" in err  # the progress bar, on stderr
    assert data["config"] == TINY.to_dict() and [a["field"] for a in data["axes"]] == ["gain", "bias_std"]
    assert [list(r) for r in data["rows"]] == [["gain", "bias_std", "measured_log10_rate", "theory_log10_chi",
                                                "seconds"]] * 9
    assert _numbers(data["rows"]) == _numbers(sw.run_sweep(SMALL, workers=1, cache=False).rows)
    assert main(argv) == 0 and "9 from the cache" in capsys.readouterr().err


@pytest.mark.parametrize("argv,words", [
    (["--sweep", "gain=0.5:2.5"], "FIELD=LO:HI:N"), (["--sweep", "gain=0:9:3"], "gain must"),
    ([], "at least one --sweep"), (["--sweep", "gain=0:1:2", "--workers", "0"], "--workers"),
    (["--sweep", "gain=0:1:2", "--address", "x:1"], "--executor ray"), (["--sweep", "gain=0:1:2", "--hidden", "0"], "hidden"),
    (["--sweep", "gain=0:1:2", "--executor", "spark"], "invalid choice"),
])
def test_cli_bad_sweep_is_one_line_and_status_2(argv, words, capsys):
    from explorer.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["sweep", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_the_agreement_report_counts_the_rows_that_hold_and_says_why_the_others_do_not():
    from explorer.sweep import RATE, THEORY, Sweep, SweepResult, agreement, parse_axis

    base = ExperimentConfig(**{**sw.SWEEP_DEFAULTS, "hidden": 32, "seq_len": 40, "input": "zeros"})
    sweep = Sweep(base, (parse_axis("gain=1:2:2"), parse_axis("bias_std=0:0.4:2")))
    values = [(0.05, 0.0), (0.301, 0.29), (0.62, 0.6), (0.41, 0.46)]  # (measured, theory) in grid order
    rows = [{"gain": g, "bias_std": b, RATE: m, THEORY: t, "seconds": 0.0}
            for (g, b), (m, t) in zip([(1.0, "0.0"), (1.0, "0.4"), (2.0, "0.0"), (2.0, "0.4")], values)]
    report = agreement(SweepResult(sweep, rows))
    # row 1: |log10 chi| <= 0.05, not compared; rows 2 and 3 hold (gaps 0.011, 0.02); row 4 misses (-0.05)
    assert (report["compared"], report["held"]) == (3, 2)
    [miss] = report["exceptions"]
    assert (miss["gain"], miss["bias_std"]) == (2.0, "0.4") and abs(miss["difference"] + 0.05) < 1e-12
    assert "finite n" in miss["why"]
    pinned = agreement(SweepResult(sweep, [dict(r, **{RATE: r[THEORY] + 0.04}) for r in rows]))
    assert any("state stays exactly 0" in e["why"] for e in pinned["exceptions"] if e["bias_std"] == "0.0")
    assert SweepResult(sweep, rows).to_json()["agreement"] == report
