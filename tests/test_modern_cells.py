"""LRU, minGRU and minLSTM against independent float64 references written from their equations (numpy,
never the library's own code): states, gates, every map, the contributions, and the exact oracles
||dh_s/dh_t||_2 = max_j |lambda_j|^(s-t) (LRU) and prod_k (1 - z_k) per unit (minGRU)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from explorer import ExperimentConfig, analyze, to_json
from explorer.cells import build_cell, make_inputs
from explorer.registry import cell_type

LOG10E = 1 / math.log(10)


def weights(cfg) -> dict[str, np.ndarray]:
    return {k: v.detach().double().numpy() for k, v in build_cell(cfg).state_dict().items()}


def inputs(cfg) -> np.ndarray:
    return make_inputs(cfg).double().numpy()[:, 0]  # (T, d)


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def reference_lru(cfg):
    """h_t = lambda h_(t-1) + gamma (B x_t) in complex128; lambda = exp(-exp(nu) + i exp(theta))."""
    w, x = weights(cfg), inputs(cfg)
    lam = np.exp(-np.exp(w["nu_log"]) + 1j * np.exp(w["theta_log"]))
    gamma = np.exp(w["gamma_log"])
    B = w["B_re"] + 1j * w["B_im"]
    h = [np.zeros(cfg.hidden, complex)]
    for x_t in x:
        h.append(lam * h[-1] + gamma * (B @ x_t))
    return np.array(h), np.log(np.abs(lam))[None].repeat(cfg.seq_len, 0), {}


def reference_mingru(cfg):
    w, x, n = weights(cfg), inputs(cfg), cfg.hidden
    W, b = w["weight_ih_l0"], w["bias_ih_l0"]
    a = x @ W.T + b
    z, cand = sigmoid(a[:, :n]), a[:, n:]
    h = [np.zeros(n)]
    for t in range(cfg.seq_len):
        h.append((1 - z[t]) * h[-1] + z[t] * cand[t])
    return np.array(h), np.log(1 - z), {"z": z}


def reference_minlstm(cfg):
    w, x, n = weights(cfg), inputs(cfg), cfg.hidden
    a = x @ w["weight_ih_l0"].T + w["bias_ih_l0"]
    f, i, cand = sigmoid(a[:, :n]), sigmoid(a[:, n:2 * n]), a[:, 2 * n:]
    keep, take = f / (f + i), i / (f + i)
    h = [np.zeros(n)]
    for t in range(cfg.seq_len):
        h.append(keep[t] * h[-1] + take[t] * cand[t])
    return np.array(h), np.log(keep), {"f": f, "i": i}


REFERENCES = {"lru": reference_lru, "mingru": reference_mingru, "minlstm": reference_minlstm}


def reference_maps(log_diag: np.ndarray, multiplicity: int) -> tuple[np.ndarray, np.ndarray]:
    """log10 ||prod diag||_2 and _F for every pair, from the per-step log moduli (T, u), plainly."""
    T = len(log_diag)
    spec, fro = np.full((T + 1, T + 1), np.nan), np.full((T + 1, T + 1), np.nan)
    for t in range(T + 1):
        for s in range(t, T + 1):
            logs = log_diag[t:s].sum(0)
            spec[t, s] = logs.max() * LOG10E
            fro[t, s] = 0.5 * np.log10(multiplicity * np.sum(np.exp(2 * logs)))
    return spec, fro


@pytest.mark.parametrize("cell", ["lru", "mingru", "minlstm"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_states_gates_and_maps_match_the_equations(cell, dtype):
    cfg = ExperimentConfig(cell=cell, hidden=6, input_size=3, seq_len=40, seed=4, dtype=dtype,
                           r_min=0.5, r_max=0.95, max_phase=3.0)
    h_ref, log_diag, gates = REFERENCES[cell](cfg)
    result = analyze(cfg)
    tol = 1e-12 if dtype == "float64" else 2e-5
    if cell == "lru":
        np.testing.assert_allclose(result.h, h_ref.real, rtol=tol, atol=tol)
        np.testing.assert_allclose(result.extras["h_imag"], h_ref.imag, rtol=tol, atol=tol)
    else:
        np.testing.assert_allclose(result.h, h_ref, rtol=tol, atol=tol)
    for name, values in gates.items():
        np.testing.assert_allclose(result.gates[name], values, rtol=tol, atol=tol)
    mult = cell_type(cell).state_units
    spec_ref, fro_ref = reference_maps(log_diag, mult)
    upper = np.triu(np.ones_like(spec_ref, dtype=bool))
    map_tol = 1e-10 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(result.pairs.log10_spectral["state"][upper], spec_ref[upper], atol=map_tol)
    np.testing.assert_allclose(result.pairs.log10_frobenius["state"][upper], fro_ref[upper], atol=map_tol)


def test_lru_oracle_max_modulus_to_the_lag():
    cfg = ExperimentConfig(cell="lru", hidden=16, seq_len=300, dtype="float64", r_min=0.8, r_max=0.99)
    result = analyze(cfg)
    modulus = np.exp(-np.exp(weights(cfg)["nu_log"]))
    lags, spec, fro = result.lag_curve()
    np.testing.assert_allclose(spec, lags * np.log10(modulus.max()), atol=1e-10)
    np.testing.assert_allclose(fro, 0.5 * np.log10(2 * np.sum(modulus[None] ** (2 * lags[:, None]), 1)), atol=1e-10)
    assert r"r_min" in cell_type("lru").fields and 0.8 <= modulus.min() and modulus.max() <= 0.99
    np.testing.assert_allclose(np.sort(np.abs(result.eigenvalues)), np.sort(modulus), rtol=1e-12)


def test_mingru_oracle_product_of_one_minus_z_reaches_far_below_float64():
    """T = 1500: prod (1 - z) per unit falls to ~1e-450, below float64's range: still finite and exact."""
    cfg = ExperimentConfig(cell="mingru", hidden=8, seq_len=1500, input_size=2, seed=1)
    _, log_diag, _ = reference_mingru(cfg)
    result = analyze(cfg, stride=50)
    grid = result.pairs.grid
    expected = log_diag.sum(0).max() * LOG10E  # t = 0 to T
    assert expected < -300
    assert abs(result.pairs.log10_spectral["state"][0, -1] - expected) < 1e-5
    assert np.isfinite(result.pairs.log10_spectral["state"][np.triu_indices(len(grid), 1)]).all()


@pytest.mark.parametrize("cell", ["lru", "mingru", "minlstm"])
def test_dense_jacobians_are_autograds(cell):
    """The cells' (m, m) Jacobians (for the dense chains and tests) equal autograd through one step."""
    cfg = ExperimentConfig(cell=cell, hidden=4, input_size=2, seq_len=5, dtype="float64")
    c = build_cell(cfg)
    x = make_inputs(cfg)
    with torch.no_grad():
        trace = c.run(x)
    drive = c.input_drive(x).detach()
    for k in range(1, 6):
        ref = torch.autograd.functional.jacobian(lambda z: c.step(drive[k - 1], z[None])[0][0], trace.z[k - 1, 0])
        torch.testing.assert_close(c.jacobians(trace, torch.tensor([k]))[0, 0], ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", ["lru", "mingru", "minlstm"])
def test_contributions_match_autograd(cell):
    """log10 ||C_t||_F = log10 ||dL/dd_t|| ||x_t|| with L = 1^T h_T / sqrt(n), against autograd through the run."""
    cfg = ExperimentConfig(cell=cell, hidden=5, input_size=3, seq_len=25, dtype="float64")
    c = build_cell(cfg)
    x = make_inputs(cfg)
    drive = c.input_drive(x).detach().requires_grad_(True)
    z = torch.zeros(1, c.state_size, dtype=torch.float64)
    for t in range(cfg.seq_len):
        z, _ = c.step(drive[t], z)
    (z[0, :cfg.hidden].sum() / math.sqrt(cfg.hidden)).backward()
    expected = np.log10(drive.grad[:, 0].norm(dim=-1).numpy() * x[:, 0].norm(dim=-1).numpy())
    np.testing.assert_allclose(analyze(cfg).contributions, expected, atol=1e-10)


def test_lru_json_names_its_weights_and_is_finite():
    data = json.loads(json.dumps(to_json(analyze(ExperimentConfig(cell="lru", hidden=3, seq_len=6, input_size=2))),
                                 allow_nan=False))
    assert list(data["weights"]) == ["nu_log", "theta_log", "gamma_log", "B_re", "B_im"]
    assert len(data["weights"]["B_re"]) == 3 and len(data["weights"]["B_re"][0]) == 2
    assert len(data["h"][0]) == 3 and len(data["h_imag"][0]) == 3 and "jacobian_cell" not in data
