"""LSTM/GRU analysis: all-pairs maps of the full state and the cell path against plain float64
products, the direct cell path, saturation, and the JSON contract."""
import json
import math

import numpy as np
import pytest
import torch

from explorer import ExperimentConfig, analyze, to_json
from explorer.cli import main
from explorer.jacobian.chains import _Split
from tests.reference import plain_product_norms


@pytest.mark.parametrize("gates", ["input", "input,output", "input,forget,output"])
def test_lstm_maps_match_float64_products(gates):
    cfg = ExperimentConfig(cell="lstm", gates=gates, hidden=6, input_size=2, seq_len=25, seed=1, dtype="float64")
    result = analyze(cfg)
    ref = plain_product_norms(cfg)
    np.testing.assert_allclose(result.pairs.log10_spectral["state"], ref["spectral"], atol=1e-9)
    np.testing.assert_allclose(result.pairs.log10_spectral["cell"], ref["cell_spectral"], atol=1e-9)


def test_gru_map_matches_float64_products():
    cfg = ExperimentConfig(cell="gru", hidden=7, seq_len=30, seed=2, dtype="float64")
    ref = plain_product_norms(cfg)
    np.testing.assert_allclose(analyze(cfg).pairs.log10_spectral["state"], ref["spectral"], atol=1e-9)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_float32_maps_within_stated_bound_of_float64_products(cell):
    """The app's precision, through every certificate and both workers: float32 products
    (rounding about 1e-6 per factor) certified to rtol 1e-5, so within 2e-5 in log10."""
    cfg = ExperimentConfig(cell=cell, hidden=32, seq_len=60, seed=3)
    result = analyze(cfg)
    ref = plain_product_norms(cfg)
    tally = result.pairs.tally
    assert tally.ritz and tally.moment and tally.cholesky and tally.refined  # every certificate on the way
    np.testing.assert_allclose(result.pairs.log10_spectral["state"], ref["spectral"], rtol=0, atol=2e-5)
    np.testing.assert_allclose(result.pairs.log10_frobenius["state"], ref["frobenius"], rtol=0, atol=2e-5)
    if cell == "lstm":
        np.testing.assert_allclose(result.pairs.log10_spectral["cell"], ref["cell_spectral"], rtol=0, atol=2e-5)


def test_structured_product_equals_dense():
    n, B = 4, 3
    J = torch.randn(B, 2 * n, 2 * n, dtype=torch.float64)
    J[:, :, n:] = 0
    J[:, :n, n:] = torch.diag_embed(torch.randn(B, n, dtype=torch.float64))
    J[:, n:, n:] = torch.diag_embed(torch.randn(B, n, dtype=torch.float64))
    P = torch.randn(B, 2 * n, 2 * n, dtype=torch.float64)
    torch.testing.assert_close(_Split.of(J, n).times(P), J @ P)
    torch.testing.assert_close(_Split.of(J, n)[1:].times(P[1:]), J[1:] @ P[1:])


def test_input_gate_only_is_the_constant_error_carousel():
    cfg = ExperimentConfig(cell="lstm", gates="input", hidden=8, seq_len=60)
    result = analyze(cfg)
    direct = result.extras["direct_cell_path"]
    assert (direct["log10_spectral"] == 0.0).all()  # prod diag(f_k) = I exactly
    np.testing.assert_allclose(direct["log10_frobenius"], 0.5 * math.log10(8), atol=1e-12)
    assert set(result.extras["saturation"]) == {"i"}


def test_direct_path_is_product_of_forget_gates():
    cfg = ExperimentConfig(cell="lstm", hidden=5, seq_len=40, seed=3, dtype="float64")
    result = analyze(cfg)
    f = result.gates["f"]
    direct = result.extras["direct_cell_path"]
    for lag in (1, 7, 40):
        prod = np.prod(f[-lag:], axis=0)
        assert abs(direct["log10_spectral"][lag] - math.log10(prod.max())) < 1e-12
        assert abs(direct["log10_frobenius"][lag] - math.log10(np.linalg.norm(prod))) < 1e-12


def test_saturation_share_by_definition():
    cfg = ExperimentConfig(cell="gru", hidden=16, seq_len=30, gain=3.0, init="gaussian")
    result = analyze(cfg)
    for name in ("r", "z"):
        g = result.gates[name]
        np.testing.assert_allclose(result.extras["saturation"][name], ((g < 0.05) | (g > 0.95)).mean(axis=1))


def test_lstm_json_contract(capsys):
    assert main(["analyze", "--cell", "lstm", "--gates", "input,output", "--forget-bias", "chrono",
                 "--seq-len", "6", "--hidden", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["gates"] == "input,output" and data["config"]["forget_bias"] == "chrono"
    assert list(data["weights"]) == list(torch.nn.LSTM(2, 3).state_dict())
    assert len(data["weights"]["weight_hh_l0"]) == 12  # i, f, g, o blocks of n rows
    assert len(data["c"]) == 7 and len(data["c"][0]) == 3
    assert set(data["gates"]) == {"i", "f", "g", "o"}
    assert all(len(v) == 6 and len(v[0]) == 3 for v in data["gates"].values())
    assert data["gates"]["f"] == [[1.0] * 3] * 6  # absent gate
    for key in ("jacobian", "jacobian_cell"):
        spec = data[key]["log10_spectral"]
        assert len(spec) == 7 and spec[3][2] is None and abs(spec[3][3]) < 1e-12


def test_gru_json_contract():
    data = json.loads(json.dumps(to_json(analyze(ExperimentConfig(cell="gru", hidden=4, seq_len=5)))))
    assert list(data["weights"]) == list(torch.nn.GRU(2, 4).state_dict())
    assert set(data["gates"]) == {"r", "z", "n"} and "c" not in data and "jacobian_cell" not in data
