"""Lyapunov exponents (explorer.lyapunov) against an independent float64 QR (numpy) of per-step Jacobians built
here by torch.autograd from torch's own cell kernels, known answers, the mean-field theory and overflow."""
import math
import time

import numpy as np
import pytest
import torch

from explorer import ExperimentConfig
from explorer.cells import build_cell, make_inputs
from explorer.lyapunov import (default_frame, lyapunov, lyapunov_from_jacobians, lyapunov_of_cell,
                               running_of_cell)
from explorer.theory import theory_of_cell

F64 = dict(dtype="float64")


def traced(config):
    cell = build_cell(config)
    cell.requires_grad_(False)
    x = make_inputs(config)
    with torch.no_grad():
        return cell, x, cell.run(x)


def autograd_jacobians(config):
    """(T, m, m) float64: J_k = dz_k/dz_(k-1) along the trajectory from z_0 = 0, each one step of torch's own
    kernel (rnn_tanh_cell, lstm_cell on z = (h, c), gru_cell) differentiated by torch.autograd."""
    cell = build_cell(config)
    weights = [p.detach() for p in (cell.weight_ih_l0, cell.weight_hh_l0, cell.bias_ih_l0, cell.bias_hh_l0)]
    x, n = make_inputs(config)[:, 0], config.hidden
    steps = {
        "rnn": lambda x_t, z: torch.rnn_tanh_cell(x_t[None], z[None], *weights)[0],
        "lstm": lambda x_t, z: torch.cat(torch.lstm_cell(x_t[None], (z[None, :n], z[None, n:]), *weights))
        .reshape(2 * n),
        "gru": lambda x_t, z: torch.gru_cell(x_t[None], z[None], *weights)[0],
    }
    step = steps[config.cell]
    z = torch.zeros(cell.state_size, dtype=torch.float64)
    J = []
    for x_t in x:
        J.append(torch.autograd.functional.jacobian(lambda z_prev: step(x_t, z_prev), z))
        z = step(x_t, z).detach()
    return torch.stack(J).numpy()


def qr_exponents(J, q0):
    """Reference: Q_k R_k = J_k Q_(k-1) by numpy.linalg.qr, R's diagonal made positive, mean log10 R_k[i, i], sorted."""
    Q, total = np.array(q0, dtype=np.float64), np.zeros(q0.shape[1])
    for J_k in J:
        Q, R = np.linalg.qr(J_k @ Q)
        signs = np.where(np.diag(R) < 0, -1.0, 1.0)
        Q, R = Q * signs, R * signs[:, None]
        total += np.log10(np.diag(R))
    return np.sort(total / len(J))[::-1]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_matches_independent_qr_of_autograd_jacobians(cell):
    config = ExperimentConfig(cell=cell, hidden=6, input_size=3, seq_len=40, lag=5, init="gaussian", gain=1.3,
                              seed=2, **F64)
    J = autograd_jacobians(config)
    m = J.shape[1]
    for K, q0 in ((3, np.eye(m)[:, :3]), (m, np.eye(m)), (4, default_frame(m, 4).numpy())):
        expected = qr_exponents(J, q0)
        np.testing.assert_allclose(lyapunov(config, K, q0=q0), expected, rtol=0, atol=1e-12)
        np.testing.assert_allclose(lyapunov_from_jacobians(J, K, q0=q0), expected, rtol=0, atol=1e-12)
    # the whole spectrum sums to the mean log10 |det J_k| (volume growth): independent of any QR
    full = lyapunov(config, m)
    assert full.sum() == pytest.approx(np.mean(np.linalg.slogdet(J)[1]) / math.log(10), abs=1e-12)
    assert np.all(np.diff(full) <= 0)


def test_orthogonal_linear_cell_has_zero_exponents():
    config = ExperimentConfig(activation="linear", init="orthogonal", gain=1.0, hidden=16, seq_len=200, lag=5, **F64)
    np.testing.assert_allclose(lyapunov(config, 16), 0.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("a", [0.5, 1.1])
def test_scaled_identity_linear_cell(a):
    config = ExperimentConfig(activation="linear", hidden=12, seq_len=100, lag=5, input="gaussian", **F64)
    cell = build_cell(config)
    with torch.no_grad():
        cell.weight_hh_l0.copy_(a * torch.eye(12, dtype=torch.float64))
        trace = cell.run(make_inputs(config))
    np.testing.assert_allclose(lyapunov_of_cell(cell, trace, 12), math.log10(a), rtol=0, atol=1e-12)


def test_generic_frame_finds_the_top_exponents_of_a_diagonal_product():
    """Identity init makes every J_k = gain diag(1 - h_k^2) diagonal: the frame e_1..e_K stays in units 1..K
    (their exponents, exactly), the seeded generic frame finds the top K of all n, to O(1/T): for the first,
    (1/T) log10 ||P q|| lies between lambda_1 + log10|q_top|/T and lambda_1 (q_top: the frame's component along
    the top unit), and these units' exponents differ by only ~0.005 per step (-0.0055 at T = 400, -0.0012 here)."""
    config = ExperimentConfig(init="identity", gain=0.9, hidden=24, input_size=4, seq_len=2000, lag=5, **F64)
    cell, _, trace = traced(config)
    per_unit = np.mean(np.log10(0.9 * (1 - np.tanh(trace.aux["pre"][:, 0].numpy()) ** 2)), axis=0)  # (n,)
    K = 4
    np.testing.assert_allclose(lyapunov_of_cell(cell, trace, K, q0=np.eye(24)[:, :K]),
                               np.sort(per_unit[:K])[::-1], rtol=0, atol=1e-12)
    top = np.sort(per_unit)[::-1][:K]
    assert not np.allclose(np.sort(per_unit[:K])[::-1], top, atol=1e-3)  # units 1..K are not the top K here
    np.testing.assert_allclose(lyapunov_of_cell(cell, trace, K), top, rtol=0, atol=2e-3)


def test_diagonal_cells_closed_form():
    lru = ExperimentConfig(cell="lru", hidden=10, seq_len=50, lag=5, **F64)
    cell, _, _ = traced(lru)
    moduli = np.log10(np.abs(cell.eigenvalues().numpy()))
    np.testing.assert_allclose(lyapunov(lru, 20), np.sort(np.repeat(moduli, 2))[::-1], rtol=0, atol=1e-12)
    mingru = ExperimentConfig(cell="mingru", hidden=10, input_size=3, seq_len=80, lag=5, **F64)
    cell, _, trace = traced(mingru)
    per_unit = np.mean(np.log10(1 - trace.gates["z"][:, 0].numpy()), axis=0)  # J_k = diag(1 - z_k)
    np.testing.assert_allclose(lyapunov(mingru, 4), np.sort(per_unit)[::-1][:4], rtol=0, atol=1e-12)


def test_overflow_leaves_the_exponents_undefined():
    config = ExperimentConfig(activation="relu", init="gaussian", gain=8.0, hidden=16, seq_len=200, lag=5)
    cell, _, trace = traced(config)
    overflow = trace.first_nonfinite()
    assert overflow is not None and overflow < 200
    estimates = running_of_cell(cell, trace, 4)
    assert np.isfinite(estimates[:overflow - 1]).all() and np.isnan(estimates[overflow - 1:]).all()
    assert np.isnan(lyapunov(config, 4)).all()
    # a linear cell's J = W_hh does not depend on h: its exponents stand through an overflow of h
    linear = config.replace(activation="linear")
    assert traced(linear)[2].first_nonfinite() is not None
    assert np.isfinite(lyapunov(linear, 4)).all()


def test_float32_config_is_promoted():
    config = ExperimentConfig(cell="gru", hidden=8, seq_len=60, lag=5, seed=1)
    J = autograd_jacobians(config.replace(dtype="float64"))
    # the float32 trajectory differs from the float64 one by rounding only: same exponents to ~1e-6
    np.testing.assert_allclose(lyapunov(config, 8), qr_exponents(J, default_frame(8, 8).numpy()), rtol=0, atol=1e-5)


def test_top_exponent_is_half_log10_chi_for_a_large_chaotic_tanh_rnn():
    r"""chi is the growth of E||P_k||_F^2 / n = E||P_k v||^2 for a random unit v: a typical vector's norm grows by
    sqrt(chi) per step, i.e. 1/2 log10 chi in log10. For products of n x n random matrices with entries of
    variance chi/n the top exponent is 1/2 log10 chi - O(1/n) (Newman 1986: the Jensen gap E log < log E), so
    for large n lambda_1 -> 1/2 log10 chi; the same for the chaotic RNN (Molgedey, Schuchhardt & Schuster 1992).

    n = 256, T = 200, gain 2, b_ih ~ N(0, 0.2^2), input zeros (chaotic: chi = 1.35); the median over five seeds
    (seed 3's outlier eigenvalue, see tests/test_theory.py, gives -0.03 alone)."""
    diffs = []
    for seed in range(5):
        config = ExperimentConfig(hidden=256, seq_len=200, lag=5, init="gaussian", gain=2.0, input="zeros",
                                  seed=seed, **F64)
        cell = build_cell(config)
        with torch.no_grad():
            cell.bias_ih_l0.copy_(0.2 * torch.randn(256, generator=torch.Generator().manual_seed(100 + seed),
                                                    dtype=torch.float64))
            cell.bias_hh_l0.zero_()
            x = make_inputs(config)
            trace = cell.run(x)
        half = 0.5 * theory_of_cell(cell, x).log10_chi
        diffs.append(lyapunov_of_cell(cell, trace, 1)[0] - half)
    print(f"lambda_1 - 1/2 log10 chi per seed: {np.round(diffs, 4)}")
    assert abs(np.median(diffs)) < 0.03


def test_top_exponent_of_a_settled_cell_is_its_spectral_radius():
    """Below the edge of chaos the state settles to a fixed point h*, J_k -> J* = diag(1 - h*^2) W_hh and
    lambda_1 = log10 rho(J*): not 1/2 log10 chi but above it by the finite-n edge of J*'s spectrum
    (tests/test_theory.py: the +0.02 of the fixed-J cases)."""
    config = ExperimentConfig(hidden=128, seq_len=400, lag=5, init="gaussian", gain=0.5, input="zeros", **F64)
    cell = build_cell(config)
    with torch.no_grad():
        cell.bias_ih_l0.copy_(0.2 * torch.randn(128, generator=torch.Generator().manual_seed(7), dtype=torch.float64))
        cell.bias_hh_l0.zero_()
        trace = cell.run(make_inputs(config))
    h = trace.h[-1, 0].numpy()
    J_star = (1 - h**2)[:, None] * cell.weight_hh_l0.detach().numpy()
    rho = np.max(np.abs(np.linalg.eigvals(J_star)))
    assert lyapunov_of_cell(cell, trace, 1)[0] == pytest.approx(math.log10(rho), abs=5e-3)


def test_speed(capsys):
    config = ExperimentConfig(hidden=512, seq_len=2000, lag=5, init="gaussian", gain=1.5)
    t0 = time.perf_counter()
    exponents = lyapunov(config, 32)
    seconds = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\nlyapunov: K = 32, T = 2000, n = 512 (float32 cell): {seconds:.2f} s")
    assert exponents.shape == (32,) and np.isfinite(exponents).all()
    assert seconds < 120  # a sanity bound only (2 s here when the machine is free)


def test_json_nulls():
    from explorer.lyapunov import to_json

    assert to_json(np.array([0.5, -np.inf, np.nan])) == [0.5, None, None]
