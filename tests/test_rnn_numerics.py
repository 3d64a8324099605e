"""Simple-RNN numerics against torch references (torch.nn.RNN, RNNCell, autograd, float64 products)."""
import math

import numpy as np
import pytest
import torch

from explorer import ExperimentConfig, analyze
from explorer.cells import build_cell, make_inputs
from explorer.jacobian import all_pairs
from tests.reference import plain_product_norms

F64 = dict(dtype="float64")


def trace_of(cfg, batch=1):
    cell = build_cell(cfg)
    x = make_inputs(cfg, batch)
    with torch.no_grad():
        return cell, x, cell.run(x)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("init", ["pytorch", "orthogonal", "kaiming"])
def test_states_match_torch_nn_rnn(activation, init):
    cfg = ExperimentConfig(activation=activation, init=init, hidden=12, input_size=3, seq_len=40, seed=3, **F64)
    cell, x, tr = trace_of(cfg, batch=4)
    ref = torch.nn.RNN(3, 12, nonlinearity=activation, dtype=torch.float64)
    ref.load_state_dict(cell.state_dict())  # same names, same shapes
    with torch.no_grad():
        out, h_n = ref(x)
    torch.testing.assert_close(tr.h[1:], out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(tr.h[-1], h_n[0], rtol=1e-12, atol=1e-12)


def test_state_dict_names_are_torch_nn_rnn():
    cell = build_cell(ExperimentConfig(hidden=5, input_size=2))
    assert list(cell.state_dict()) == list(torch.nn.RNN(2, 5).state_dict())
    for (name, a), (_, b) in zip(cell.state_dict().items(), torch.nn.RNN(2, 5).state_dict().items()):
        assert a.shape == b.shape, name


def test_pytorch_default_init_matches_torch_reset_parameters_distribution():
    W = build_cell(ExperimentConfig(hidden=256)).weight_hh_l0.detach()
    bound = 1 / math.sqrt(256)
    assert W.abs().max() <= bound and W.abs().max() > 0.99 * bound
    assert abs(W.var().item() - bound**2 / 3) < 0.05 * bound**2 / 3  # U(-b, b) has variance b^2/3


@pytest.mark.parametrize("init,expected", [
    ("orthogonal", "orthogonal"), ("identity", "identity"), ("xavier_normal", None), ("gaussian", None)])
def test_init_schemes(init, expected):
    cfg = ExperimentConfig(init=init, gain=1.5, hidden=64, **F64)
    W = build_cell(cfg).weight_hh_l0.detach()
    eye = torch.eye(64, dtype=torch.float64)
    if expected == "orthogonal":
        torch.testing.assert_close(W @ W.T, 1.5**2 * eye)
    elif expected == "identity":
        torch.testing.assert_close(W, 1.5 * eye)
    else:  # both have std gain / sqrt(n) for a square matrix
        assert abs(W.std().item() - 1.5 / 8) < 0.1 * 1.5 / 8


def _rnncell_reference(cell, activation):
    """An independent step: torch.nn.RNNCell for tanh/relu, else the textbook formula."""
    sd = {k.replace("_l0", ""): v for k, v in cell.state_dict().items()}
    if activation in ("tanh", "relu"):
        ref = torch.nn.RNNCell(sd["weight_ih"].shape[1], sd["weight_hh"].shape[0], nonlinearity=activation,
                               dtype=torch.float64)
        ref.load_state_dict(sd)
        return lambda x, h: ref(x[None], h[None])[0]
    g = torch.sigmoid if activation == "sigmoid" else (lambda a: a)
    return lambda x, h: g(sd["weight_ih"] @ x + sd["bias_ih"] + sd["weight_hh"] @ h + sd["bias_hh"])


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "linear"])
def test_analytic_jacobians_match_autograd(activation):
    cfg = ExperimentConfig(activation=activation, hidden=9, input_size=2, seq_len=25, seed=1, gain=1.3,
                           init="gaussian", **F64)
    cell, x, tr = trace_of(cfg)
    ref = _rnncell_reference(cell, activation)
    steps = torch.arange(1, 26)
    J = cell.jacobians(tr, steps)[:, 0]
    for k in range(1, 26):
        auto = torch.func.jacrev(lambda h: ref(x[k - 1, 0], h))(tr.h[k - 1, 0])
        torch.testing.assert_close(J[k - 1], auto, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("variant", [dict(residual=True), dict(norm="layer"), dict(norm="layer", residual=True)])
def test_residual_and_layernorm_jacobians_match_autograd(variant):
    cfg = ExperimentConfig(hidden=7, input_size=3, seq_len=12, seed=4, **variant, **F64)
    cell, x, tr = trace_of(cfg)
    drive = cell.input_drive(x)
    J = cell.jacobians(tr, torch.arange(1, 13))[:, 0]
    for k in range(1, 13):
        auto = torch.func.jacrev(lambda z: cell.step(drive[k - 1], z[None])[0][0])(tr.z[k - 1, 0])
        torch.testing.assert_close(J[k - 1], auto, rtol=1e-11, atol=1e-12)


def test_batchnorm_frozen_statistics_jacobian_matches_autograd():
    """Per-step statistics over the batch, held fixed: J = diag(g' gamma / sigma_t) W_hh per sequence."""
    cfg = ExperimentConfig(hidden=6, input_size=2, seq_len=10, seed=3, norm="batch", batch=5, **F64)
    cell, x, tr = trace_of(cfg, batch=5)
    cell.frozen_statistics = True
    drive = cell.input_drive(x)
    J = cell.jacobians(tr, torch.arange(1, 11))
    for k in range(1, 11):
        for b in (0, 3):
            def step_b(z_b):
                z = tr.z[k - 1].clone()
                z[b] = z_b
                return cell.step(drive[k - 1], z)[0][b]
            auto = torch.func.jacrev(step_b)(tr.z[k - 1, b])
            torch.testing.assert_close(J[k - 1, b], auto, rtol=1e-11, atol=1e-12)
    for b in (0, 3):  # one sequence's Jacobians (what the analysis builds) are exactly its slice of all B
        torch.testing.assert_close(cell.jacobians(tr.sequence(b), torch.arange(1, 11))[:, 0], J[:, b], rtol=0, atol=0)
    cell.frozen_statistics = False  # training mode: the statistics depend on z, the Jacobian differs
    auto = torch.func.jacrev(lambda z0: cell.step(drive[0], torch.cat([z0[None], tr.z[0, 1:]]))[0][0])(tr.z[0, 0])
    assert torch.isfinite(auto).all()


def test_batchnorm_analysis_runs_and_is_scale_invariant():
    """Batch norm divides a_t by its batch std: scaling W_hh (gain) leaves the Jacobian norms of a
    linear RNN with zero biases unchanged up to eps, unlike the plain RNN."""
    base = dict(activation="linear", init="orthogonal", hidden=8, seq_len=30, norm="batch", batch=8, **F64)
    small = analyze(ExperimentConfig(gain=0.5, **base)).lag_curve()[1]
    large = analyze(ExperimentConfig(gain=2.0, **base)).lag_curve()[1]
    assert np.isfinite(small).all() and np.isfinite(large).all()
    plain = [analyze(ExperimentConfig(**{**base, "norm": "none", "gain": g})).lag_curve()[1][-1] for g in (0.5, 2.0)]
    assert abs(large[-1] - small[-1]) < 0.1 * abs(plain[1] - plain[0])


def _float64_reference_norms(cfg):
    ref = plain_product_norms(cfg)
    return ref["spectral"], ref["frobenius"]


@pytest.mark.parametrize("cfg", [
    ExperimentConfig(hidden=16, seq_len=40, seed=2, **F64),
    ExperimentConfig(hidden=16, seq_len=40, seed=2, init="orthogonal", activation="relu", **F64),
    ExperimentConfig(hidden=10, seq_len=30, seed=5, gain=2.0, init="gaussian", **F64),
])
def test_all_pairs_match_float64_product_float64(cfg):
    result = analyze(cfg)
    spec, fro = _float64_reference_norms(cfg)
    np.testing.assert_allclose(result.pairs.log10_frobenius["state"], fro, rtol=0, atol=1e-10)
    # certified to rtol=1e-9 in sigma, i.e. 4.3e-10 in log10
    np.testing.assert_allclose(result.pairs.log10_spectral["state"], spec, rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_all_pairs_float32_within_stated_bound(seed):
    cfg = ExperimentConfig(hidden=32, seq_len=60, seed=seed)
    result = analyze(cfg)
    spec, fro = _float64_reference_norms(cfg)
    # float32 products: rounding ~ 1e-6 relative per factor; certificate rtol 1e-5
    np.testing.assert_allclose(result.pairs.log10_spectral["state"], spec, rtol=0, atol=2e-5)
    np.testing.assert_allclose(result.pairs.log10_frobenius["state"], fro, rtol=0, atol=2e-5)
    assert result.pairs.certified > 0  # the fast path is exercised, not only the SVD fallback


def test_spectral_never_above_exact_and_within_rtol():
    cfg = ExperimentConfig(hidden=24, seq_len=50, seed=7, **F64)
    result = analyze(cfg)
    spec, _ = _float64_reference_norms(cfg)
    tally = result.pairs.tally
    assert tally.power + tally.ritz > 0 and tally.cholesky > 0 and tally.refined > 0  # every certificate path
    diff = result.pairs.log10_spectral["state"] - spec
    finite = np.isfinite(diff)
    assert (diff[finite] <= 1e-12).all()
    assert (diff[finite] >= math.log10(1 - 1e-9) - 1e-12).all()


def test_linear_orthogonal_gives_norm_one_everywhere():
    cfg = ExperimentConfig(activation="linear", init="orthogonal", hidden=32, seq_len=200)
    result = analyze(cfg)
    spec, fro = result.pairs.log10_spectral["state"], result.pairs.log10_frobenius["state"]
    upper = np.triu_indices(201)
    np.testing.assert_allclose(spec[upper], 0.0, atol=2e-5)
    np.testing.assert_allclose(fro[upper], 0.5 * math.log10(32), atol=2e-5)


def test_scaled_identity_gives_a_to_the_k_without_underflow_float32():
    cfg = ExperimentConfig(activation="linear", init="identity", gain=0.5, hidden=16, seq_len=600, lag=600)
    result = analyze(cfg, stride=1)
    lags, spec, fro = result.lag_curve()
    np.testing.assert_allclose(spec, lags * math.log10(0.5), atol=1e-4)
    np.testing.assert_allclose(fro, lags * math.log10(0.5) + 0.5 * math.log10(16), atol=1e-4)
    assert round(spec[-1], 1) == -180.6
    np.testing.assert_allclose(result.singular_values, 600 * math.log10(0.5), atol=1e-4)


def test_exploding_identity_stays_finite_float32():
    cfg = ExperimentConfig(activation="linear", init="identity", gain=2.0, hidden=8, seq_len=800, lag=800)
    lags, spec, _ = analyze(cfg).lag_curve()
    np.testing.assert_allclose(spec, lags * math.log10(2.0), atol=1e-4)  # 10^240.8 overflows float32


def test_zero_recurrent_weight_is_an_exact_zero_not_nan():
    cfg = ExperimentConfig(init="identity", gain=0.0, hidden=4, seq_len=10)
    spec = analyze(cfg).pairs.log10_spectral["state"]
    assert np.isneginf(spec[0, 1:]).all() and not np.isnan(spec[np.triu_indices(11)]).any()


@pytest.mark.parametrize("cfg", [
    ExperimentConfig(hidden=20, seq_len=80, seed=s, init=i, gain=g, activation=a)
    for s, (i, g, a) in enumerate([("gaussian", 1.5, "tanh"), ("xavier_uniform", 1.0, "relu"),
                                   ("orthogonal", 1.2, "sigmoid"), ("pytorch", 1.0, "linear")])
])
def test_pascanu_bound_never_violated(cfg):
    result = analyze(cfg)
    spec = result.pairs.log10_spectral["state"]
    t, s = np.triu_indices(cfg.seq_len + 1)
    assert (spec[t, s] <= (s - t) * result.bound_log10_rate + 1e-5).all()


def test_coarse_grid_equals_full_resolution_at_grid_points():
    cfg = ExperimentConfig(hidden=16, seq_len=90, seed=1, **F64)
    full = analyze(cfg, stride=1).pairs
    coarse = analyze(cfg, stride=7).pairs
    g = coarse.grid
    assert g[0] == 0 and g[-1] == 90 and (np.diff(g[1:]) == 7).all()
    np.testing.assert_allclose(coarse.log10_spectral["state"], full.log10_spectral["state"][np.ix_(g, g)], atol=1e-9)
    np.testing.assert_allclose(coarse.log10_frobenius["state"], full.log10_frobenius["state"][np.ix_(g, g)], atol=1e-10)


def test_contributions_match_autograd_per_step_copies():
    """C_t is the gradient w.r.t. the copy of W_ih used at step t (the lecture's sum)."""
    cfg = ExperimentConfig(hidden=6, input_size=3, seq_len=20, seed=2, **F64)
    cell, x, tr = trace_of(cfg)
    result = analyze(cfg)
    sd = {k: v.clone() for k, v in cell.state_dict().items()}
    copies = sd["weight_ih_l0"].repeat(20, 1, 1).requires_grad_(True)
    h = torch.zeros(6, dtype=torch.float64)
    for t in range(20):
        h = torch.tanh(copies[t] @ x[t, 0] + sd["bias_ih_l0"] + sd["weight_hh_l0"] @ h + sd["bias_hh_l0"])
    (h.sum() / math.sqrt(6)).backward()
    ref = np.log10(copies.grad.flatten(1).norm(dim=1).numpy())
    np.testing.assert_allclose(result.contributions, ref, atol=1e-10)
    total = copies.grad.sum(0)  # the sum over t is dL/dW_ih
    torch.testing.assert_close(total, torch.func.grad(lambda w: _loss_with_shared(w, sd, x))(sd["weight_ih_l0"]))


def _loss_with_shared(w, sd, x):
    h = torch.zeros(sd["weight_hh_l0"].shape[0], dtype=torch.float64)
    for t in range(x.shape[0]):
        h = torch.tanh(w @ x[t, 0] + sd["bias_ih_l0"] + sd["weight_hh_l0"] @ h + sd["bias_hh_l0"])
    return h.sum() / math.sqrt(h.shape[0])


def test_singular_values_at_lag_match_direct_svd():
    cfg = ExperimentConfig(hidden=12, seq_len=30, lag=17, seed=3, **F64)
    cell, x, tr = trace_of(cfg)
    J = cell.jacobians(tr, torch.arange(1, 31))[:, 0]
    P = torch.eye(12, dtype=torch.float64)
    for k in range(14, 31):
        P = J[k - 1] @ P
    ref = torch.linalg.svdvals(P).numpy()
    ours = 10.0 ** analyze(cfg).singular_values
    drawn = np.isfinite(ours)  # the rest lie below the rounding's limit (tests/test_edges.py: against 200 bits)
    assert drawn.sum() >= 8
    # an SVD fixes each sigma_i to eps * sigma_1 in absolute terms
    np.testing.assert_allclose(ours[drawn] / ref[0], ref[drawn] / ref[0], rtol=1e-9, atol=1e-14)


def test_eigenvalues_of_w_hh():
    cfg = ExperimentConfig(hidden=10, init="orthogonal", gain=0.9, **F64)
    np.testing.assert_allclose(np.abs(analyze(cfg).eigenvalues), 0.9, atol=1e-10)


def test_all_pairs_direct_call_small_stride_grid():
    """The library function used by notebooks: identity Jacobians give norm 1, sqrt(m)."""
    m = 5
    res = all_pairs(lambda steps: torch.eye(m).expand(len(steps), m, m).clone(), 12, m, stride=5)
    assert list(res.grid) == [0, 2, 7, 12]
    np.testing.assert_allclose(np.triu(res.log10_spectral["state"]), 0.0, atol=1e-6)


def test_linear_residual_rnn_with_skew_symmetric_weight_never_contracts():
    """J = I + W with W^T = -W: J^T J = I + W^T W >= I, so every singular value of every
    product is >= 1 (the residual fix: the gradient cannot vanish)."""
    from explorer.jacobian import log10_singular_values

    cfg = ExperimentConfig(activation="linear", residual=True, hidden=10, seq_len=40, seed=1, **F64)
    cell = build_cell(cfg)
    A = torch.randn(10, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.05  # keeps sigma_max/sigma_min far from 1e16
    with torch.no_grad():
        cell.weight_hh_l0.copy_(A - A.T)
        tr = cell.run(make_inputs(cfg))
    jac = lambda steps: cell.jacobians(tr, steps)[:, 0]  # noqa: E731
    for t, s in ((0, 40), (13, 29), (39, 40)):
        values = log10_singular_values(jac, t, s, 10).log10
        assert np.isfinite(values).all() and values.min() >= -1e-12
    spec = all_pairs(jac, 40, 10, rtol=1e-9, dtype=torch.float64).log10_spectral["state"]
    assert (spec[np.triu_indices(41)] >= -1e-12).all()


def test_two_worker_sweep_equals_one_sweep_and_reports_progress_from_the_caller(monkeypatch):
    """On the CPU the starts are split over two single-threaded workers: the numbers must be
    those of one sweep to rounding (device != cpu takes the one-sweep path), progress must come from the
    calling thread (Streamlit's widgets), and a worker's error must reach the caller."""
    import threading

    from explorer.jacobian import pairs

    cfg = ExperimentConfig(hidden=12, seq_len=70, seed=3, gain=1.3, init="gaussian", **F64)
    cell, _, tr = trace_of(cfg)
    jac = lambda steps: cell.jacobians(tr, steps)[:, 0]  # noqa: E731
    seen = []
    split = all_pairs(jac, 70, 12, rtol=1e-9, dtype=torch.float64,
                      progress=lambda f: seen.append((f, threading.current_thread())))
    one = []
    original = pairs._run_split  # looked up in explorer.jacobian.pairs, where all_pairs calls it
    try:
        def one_sweep(sweep, a0, a1, K, tally, device, progress, done_before, total):
            one.append((a0, a1))
            original(sweep, a0, a1, K, tally, torch.device("meta"), progress, done_before, total)
        pairs._run_split = one_sweep
        single = all_pairs(jac, 70, 12, rtol=1e-9, dtype=torch.float64)
    finally:
        pairs._run_split = original
    assert one == [(0, 70)]
    # halves are smaller batches (other BLAS blocking, other rows per certificate): equal to
    # rounding, and each within the stated rtol of the true norm
    np.testing.assert_allclose(split.log10_spectral["state"], single.log10_spectral["state"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(split.log10_frobenius["state"], single.log10_frobenius["state"], rtol=0, atol=1e-12)
    assert split.tally.certified + split.exact == single.tally.certified + single.exact == 70 * 71 // 2
    assert seen and all(thread is threading.current_thread() for _, thread in seen)
    assert seen[-1][0] == 1.0 and all(a <= b for (a, _), (b, _) in zip(seen, seen[1:]))

    def broken(*args, **kwargs):
        assert threading.current_thread().name.startswith("explorer-pairs")
        raise RuntimeError("broken certificate")
    monkeypatch.setattr(pairs, "certified_spectral", broken)
    with pytest.raises(RuntimeError, match="broken certificate"):
        all_pairs(jac, 70, 12, dtype=torch.float64)


def test_interrupted_caller_stops_both_workers_before_the_error_goes_on(monkeypatch):
    """Streamlit stops a script (a rerun, a closed tab) by raising from its next widget call,
    here the progress callback: the two workers must stop at their next lag, not run on."""
    import time

    from explorer.jacobian import pairs

    calls = []
    certify = pairs.certified_spectral

    def slow(*args, **kwargs):
        calls.append(1)
        time.sleep(0.002)
        return certify(*args, **kwargs)
    monkeypatch.setattr(pairs, "certified_spectral", slow)

    def progress(fraction):
        if fraction > 0:
            raise KeyboardInterrupt("rerun")
    m = 6
    jac = lambda steps: torch.eye(m).expand(len(steps), m, m).clone()  # noqa: E731
    with pytest.raises(KeyboardInterrupt, match="rerun"):
        all_pairs(jac, 300, m, progress=progress)
    stopped_at = len(calls)
    time.sleep(0.2)
    assert len(calls) == stopped_at < 300  # no worker still running; far from the 300 lags of the first half


@pytest.mark.parametrize("cfg,stride", [
    (ExperimentConfig(hidden=12, seq_len=50, seed=4, gain=1.4, init="gaussian", **F64), 1),
    (ExperimentConfig(hidden=12, seq_len=50, seed=4, gain=1.4, init="gaussian", **F64), 7),
    (ExperimentConfig(cell="lstm", hidden=6, seq_len=40, seed=2, **F64), 1),
    (ExperimentConfig(cell="gru", hidden=8, seq_len=45, seed=6, **F64), 4),
])
def test_curve_to_the_end_is_the_last_column_of_the_map(cfg, stride):
    """The lag curve alone (one start of the reversed, transposed sequence) equals the map's last column."""
    from explorer.jacobian import to_the_end

    result = analyze(cfg, stride=stride)
    cell, _, tr = trace_of(cfg)
    jac = lambda steps: cell.jacobians(tr, steps)[:, 0]  # noqa: E731
    lags, spec, fro = to_the_end(jac, cfg.seq_len, cell.state_size, stride=stride, rtol=1e-9, dtype=torch.float64)
    want_lags, want_spec, want_fro = result.lag_curve()
    np.testing.assert_array_equal(lags, want_lags)
    np.testing.assert_allclose(spec, want_spec, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fro, want_fro, rtol=0, atol=1e-10)


def test_curve_to_the_end_keeps_exact_zeros():
    from explorer.jacobian import to_the_end

    cfg = ExperimentConfig(init="identity", gain=0.0, hidden=4, seq_len=10)
    cell, _, tr = trace_of(cfg)
    lags, spec, fro = to_the_end(lambda steps: cell.jacobians(tr, steps)[:, 0], 10, 4)
    assert spec[0] == 0.0 and np.isneginf(spec[1:]).all() and np.isneginf(fro[1:]).all()
