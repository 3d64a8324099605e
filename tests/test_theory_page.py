"""Theory beside measurement on the Simple RNN page and in the analysis's JSON: the mean-field line, xi, and the
Lyapunov spectrum, checked where closed forms are known (a linear cell with gain * orthogonal W_hh: chi = gain^2,
every exponent log10 gain), and the message where the theory does not apply."""
from __future__ import annotations

import math

import numpy as np

from explorer import ExperimentConfig, analyze
from explorer.analysis import to_json
from tests.apptests import array, run, titled

LINEAR = {"activation": "linear", "init": "orthogonal", "gain": "0.9", "seq_len": "60", "hidden": "16",
          "dtype": "float64"}


def test_the_page_draws_k_log10_chi_beside_the_mean_square_and_the_exponents_beside_half_of_it():
    at = run("pages/2_Simple_RNN.py", LINEAR)
    assert not at.exception
    expected = 2 * math.log10(0.9)  # chi = sigma_w^2 = gain^2 for a linear cell
    [figure] = titled(at, "Mean square vs theory")
    measured, theory = figure["data"]
    lags = array(theory["x"])
    np.testing.assert_allclose(array(theory["y"]), lags * expected, atol=1e-12)
    # an orthogonal W_hh times 0.9: ||P_k||_F^2 / n = 0.81^k exactly
    np.testing.assert_allclose(array(measured["y"]), array(measured["x"]) * expected, atol=1e-9)
    [spectrum] = titled(at, "Top 16 Lyapunov exponents")
    np.testing.assert_allclose(array(spectrum["data"][0]["y"]), np.full(16, math.log10(0.9)), atol=1e-12)
    half = [t for t in spectrum["data"] if t["name"].startswith("½ log10 χ")]
    np.testing.assert_allclose(array(half[0]["y"]), [expected / 2] * 2, atol=1e-12)
    shown = {m.label: m.value for m in at.metric}
    assert shown["log10 χ (theory)"] == f"{expected:.3f}" and shown["measured slope"] == f"{expected:.3f}"
    assert shown["time-scale ξ = −1/ln χ"] == f"{-1 / math.log(0.81):.1f} steps"


def test_where_the_theory_does_not_apply_the_page_says_why_and_still_measures():
    at = run("pages/2_Simple_RNN.py", {"norm": "layer"})
    assert not at.exception
    assert any("Mean-field theory: With layer norm" in str(i.value) for i in at.info)
    [figure] = titled(at, "Mean square vs theory")
    assert len(figure["data"]) == 1  # measured only
    assert titled(at, "Top 32 Lyapunov exponents") or titled(at, "Top 8 Lyapunov exponents")


def test_the_json_carries_theory_and_the_exponents_asked_for():
    config = ExperimentConfig(**{k: (float(v) if k == "gain" else int(v) if v.isdigit() else v) for k, v in LINEAR.items()})
    out = to_json(analyze(config, lyapunov=4))
    assert set(out["theory"]) == {"q_star", "chi", "log10_chi", "xi"}
    assert math.isclose(out["theory"]["chi"], 0.81, rel_tol=1e-12)
    np.testing.assert_allclose(out["lyapunov"], [math.log10(0.9)] * 4, atol=1e-12)
    lstm = to_json(analyze(ExperimentConfig(cell="lstm", seq_len=20, hidden=8)))
    assert lstm["theory"] is None and "LSTM" in lstm["theory_note"] and lstm["lyapunov"] == []


def test_the_command_line_asks_for_exponents_and_refuses_more_than_the_state_has():
    import json
    import subprocess
    import sys

    base = [sys.executable, "-m", "explorer", "analyze", "--activation", "linear", "--init", "orthogonal",
            "--gain", "0.9", "--seq-len", "40", "--hidden", "6", "--dtype", "float64"]
    out = json.loads(subprocess.run(base + ["--lyapunov", "6", "--json"], capture_output=True, text=True,
                                    check=True).stdout)
    np.testing.assert_allclose(out["lyapunov"], [math.log10(0.9)] * 6, atol=1e-12)
    assert math.isclose(out["theory"]["log10_chi"], 2 * math.log10(0.9), rel_tol=1e-12)
    bad = subprocess.run(base + ["--lyapunov", "7"], capture_output=True, text=True)
    assert bad.returncode == 2 and "lyapunov must be in [0, 6]" in bad.stderr and "Traceback" not in bad.stderr


def test_past_an_overflow_the_measured_slope_and_the_exponents_read_undefined():
    at = run("pages/2_Simple_RNN.py", {"activation": "relu", "init": "gaussian", "gain": "3", "seq_len": "400",
                                       "hidden": "16"})
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["measured slope"] == "undefined" and shown["λ₁ (top Lyapunov exponent)"] == "undefined"
