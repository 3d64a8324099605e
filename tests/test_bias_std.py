"""The bias scale of mean-field theory, ``bias_std``: default keeps torch.nn.RNN's biases; a number sigma_b draws
b_ih ~ N(0, sigma_b^2) and sets b_hh = 0. In the URL, the command line and the widgets like every field."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from explorer import ExperimentConfig
from explorer.cells import build_cell
from explorer.config import from_query, to_query
from tests.apptests import run


def test_default_keeps_torchs_biases_and_a_number_draws_the_mean_field_ones():
    n = 512
    torchs = build_cell(ExperimentConfig(hidden=n))
    bound = 1 / n**0.5  # torch.nn.RNN: U(-1/sqrt(n), 1/sqrt(n))
    assert torchs.bias_hh_l0.abs().max() <= bound and torchs.bias_hh_l0.abs().max() > 0.9 * bound
    cell = build_cell(ExperimentConfig(hidden=n, bias_std="0.3"))
    b = cell.bias_ih_l0.detach().double()
    assert torch.equal(cell.bias_hh_l0.detach(), torch.zeros(n))
    assert abs(b.std().item() - 0.3) < 0.3 * 4 / (2 * n) ** 0.5  # the sample std's spread: sigma / sqrt(2n)
    assert abs(b.mean().item()) < 4 * 0.3 / n**0.5
    zero = build_cell(ExperimentConfig(hidden=8, bias_std="0"))
    assert not zero.bias_ih_l0.any() and not zero.bias_hh_l0.any()
    # W_hh and W_ih are the same draws as with torch's biases: only the biases change
    assert torch.equal(cell.weight_hh_l0, torchs.weight_hh_l0) and torch.equal(cell.weight_ih_l0, torchs.weight_ih_l0)


@pytest.mark.parametrize("raw,expected", [("0.25", "0.25"), ("1", "1.0"), (" default ", "default")])
def test_the_url_reads_default_or_a_number_in_range(raw, expected):
    config, warnings = from_query({"bias_std": raw})
    assert (config.bias_std, warnings) == (expected, []) and to_query(config)["bias_std"] == expected


@pytest.mark.parametrize("raw", ["-0.1", "11", "nan", "inf", "chrono", "abc"])
def test_a_bad_value_warns_and_uses_the_default(raw):
    config, warnings = from_query({"bias_std": raw})
    assert config.bias_std == "default" and "bias_std must be default or a number in [0, 10]" in warnings[0]


def test_the_command_line_takes_it_and_refuses_a_bad_one_in_one_line():
    ok = subprocess.run([sys.executable, "-m", "explorer", "analyze", "--bias-std", "0.2", "--seq-len", "5",
                         "--hidden", "3", "--json"], capture_output=True, text=True, check=True)
    out = json.loads(ok.stdout)
    assert out["config"]["bias_std"] == "0.2" and out["weights"]["bias_hh_l0"] == [0.0, 0.0, 0.0]
    bad = subprocess.run([sys.executable, "-m", "explorer", "analyze", "--bias-std", "-1"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "bias_std must be" in bad.stderr and "Traceback" not in bad.stderr


def test_the_simple_rnn_page_shows_it_and_its_link_keeps_it():
    at = run("pages/2_Simple_RNN.py", {"bias_std": "0.4"})
    assert not at.exception and at.query_params["bias_std"] == "0.4"
    assert at.text_input(key="rnn_bias_std").value == "0.4"
