"""The certified maps against the exact reference path: ``all_pairs(..., method="exact")`` takes the
same batched products and eigvalsh of each float64 Gram matrix P^T P; every certified spectral norm
must be within rtol below it and never above it beyond rounding. The reference itself is checked
against plain float64 products (no log space) and torch.linalg.matrix_norm(ord=2)."""
import numpy as np
import pytest
import torch

from explorer import ExperimentConfig
from explorer.cells import build_cell, make_inputs
from explorer.jacobian import View, all_pairs
from tests.reference import plain_product_norms


def maps(cfg: ExperimentConfig, stride: int, method: str):
    """all_pairs of sequence 0 of ``cfg``, as the analysis calls it (views, LSTM's diagonal columns, rtol)."""
    cell = build_cell(cfg)
    with torch.no_grad():
        trace = cell.run(make_inputs(cfg, 1))
        n, m = cell.hidden, cell.state_size
        lstm = cfg.cell == "lstm"

        def jac(steps):
            J, logs = cell.scaled_jacobians(trace, steps)
            return J[:, 0], logs[:, 0]
        views = (View("state"),) + ((View("cell", (n, 2 * n), (n, 2 * n)),) if lstm else ())
        return all_pairs(jac, cfg.seq_len, m, views=views, stride=stride, rtol=rtol_of(cfg), dtype=trace.z.dtype,
                         diagonal_from=n if lstm else None, method=method)


def rtol_of(cfg: ExperimentConfig) -> float:
    return 1e-5 if cfg.dtype == "float32" else 1e-9


CASES = {
    "rnn-default": (ExperimentConfig(), 1),
    "rnn-gaussian-1.2": (ExperimentConfig(init="gaussian", gain=1.2, seq_len=120, hidden=48), 1),
    "lstm-both-views": (ExperimentConfig(cell="lstm", hidden=32, seq_len=80), 1),
    "lstm-input-gate-strided": (ExperimentConfig(cell="lstm", gates="input", hidden=16, seq_len=60), 3),
    "rnn-strided": (ExperimentConfig(seq_len=300), 7),
    "relu-power-steps": (ExperimentConfig(activation="relu", gain=3.0, seq_len=200, hidden=16), 1),
    "rnn-float64": (ExperimentConfig(dtype="float64", init="gaussian", gain=1.1, seq_len=80, hidden=24), 1),
}

USES = {"rnn-default": ("ritz", "moment", "cholesky", "refined"), "relu-power-steps": ("power",),
        "lstm-both-views": ("ritz", "moment", "cholesky", "refined")}


@pytest.mark.parametrize("name", list(CASES))
def test_certified_maps_are_within_rtol_below_the_exact_reference_never_above(name):
    cfg, stride = CASES[name]
    certified, exact = maps(cfg, stride, "certified"), maps(cfg, stride, "exact")
    np.testing.assert_array_equal(certified.grid, exact.grid)
    K = len(exact.grid)
    rtol = rtol_of(cfg)
    rounding = 16 * torch.finfo(torch.float32 if cfg.dtype == "float32" else torch.float64).eps
    for view in exact.log10_spectral:
        # the same products: Frobenius norms (and their log scales) identical
        np.testing.assert_array_equal(certified.log10_frobenius[view], exact.log10_frobenius[view])
        got, want = certified.log10_spectral[view], exact.log10_spectral[view]
        np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        finite = np.isfinite(want)
        ratio = 10.0 ** (got[finite] - want[finite])  # sigma_certified / sigma_exact
        assert ratio.max() <= 1 + rounding, (view, ratio.max() - 1)
        assert ratio.min() >= (1 - rounding) / (1 + rtol), (view, ratio.min() - 1)
    pairs = len(exact.log10_spectral) * K * (K - 1) // 2
    assert exact.tally.exact == pairs and exact.tally.certified == 0 and exact.rtol == 0.0
    assert certified.tally.certified + certified.tally.exact == pairs
    assert certified.tally.certified > certified.tally.exact  # the certificates, not LAPACK, do most of it
    for how in USES.get(name, ()):  # every certificate is compared against the reference somewhere
        assert getattr(certified.tally, how) > 0, (how, certified.tally)


@pytest.mark.parametrize("cfg", [
    ExperimentConfig(init="gaussian", gain=1.3, hidden=8, seq_len=30, seed=2, dtype="float64"),
    ExperimentConfig(cell="lstm", hidden=5, seq_len=25, seed=1, dtype="float64"),
], ids=["rnn", "lstm"])
def test_exact_reference_equals_plain_float64_products(cfg):
    exact = maps(cfg, 1, "exact")
    ref = plain_product_norms(cfg)
    upper = np.triu_indices(cfg.seq_len + 1)
    np.testing.assert_allclose(exact.log10_spectral["state"][upper], ref["spectral"][upper], rtol=0, atol=1e-12)
    np.testing.assert_allclose(exact.log10_frobenius["state"][upper], ref["frobenius"][upper], rtol=0, atol=1e-12)
    if cfg.cell == "lstm":
        np.testing.assert_allclose(exact.log10_spectral["cell"][upper], ref["cell_spectral"][upper], rtol=0, atol=1e-12)


def test_unknown_method_is_an_error():
    with pytest.raises(ValueError, match="method"):
        all_pairs(lambda steps: torch.eye(3).expand(len(steps), 3, 3).clone(), 5, 3, method="fast")


@pytest.mark.parametrize("name", ["rnn-gaussian-1.2", "lstm-both-views"])
def test_lags_certified_in_groups_agree_with_one_lag_at_a_time(name, monkeypatch):
    """The sweep certifies runs of consecutive lags in one call (pairs.GROUP_BYTES); one lag per call
    (GROUP_BYTES = 0) takes more calls and gives the same norms to within rtol, both below the exact ones."""
    from explorer.jacobian import pairs

    cfg, stride = CASES[name]
    certify, calls = pairs.certified_spectral, []

    def counting(S, *args, **kwargs):
        calls.append(S.shape[0])
        return certify(S, *args, **kwargs)
    monkeypatch.setattr(pairs, "certified_spectral", counting)
    grouped = maps(cfg, stride, "certified")
    grouped_calls, calls[:] = len(calls), []
    monkeypatch.setattr(pairs, "GROUP_BYTES", 0)
    single = maps(cfg, stride, "certified")
    views = len(single.log10_spectral)
    assert len(calls) >= views * (cfg.seq_len // stride)  # at least one call per lag and view
    assert grouped_calls * 3 < len(calls), (grouped_calls, len(calls))
    exact = maps(cfg, stride, "exact")
    rtol = rtol_of(cfg)
    for view in exact.log10_spectral:
        np.testing.assert_array_equal(grouped.log10_frobenius[view], single.log10_frobenius[view])
        finite = np.isfinite(exact.log10_spectral[view])
        for got in (grouped, single):
            ratio = 10.0 ** (got.log10_spectral[view][finite] - exact.log10_spectral[view][finite])
            assert ratio.max() <= 1 + 16 * np.finfo(np.float32).eps
            assert ratio.min() >= (1 - 16 * np.finfo(np.float32).eps) / (1 + rtol)


def test_groups_of_lags_grow_with_the_lag_and_plans_see_every_lag_of_a_group():
    from explorer.jacobian.certificates import Plan
    from explorer.jacobian.pairs import _group_end, _plan_at

    starts = [1]
    while starts[-1] < 100:
        starts.append(_group_end(starts[-1]))
    assert starts[:8] == [1, 2, 3, 5, 8, 12, 18, 27]  # one lag at a time first, then runs half as long as the lag
    # a flat group is retried with the bounds when it reaches a 4th lag, the power step when it reaches an 8th
    assert _plan_at(5, 7, 0.0, 0.0, True) == Plan.FLAT
    assert _plan_at(3, 4, 0.0, 0.0, True) == Plan.NO_POWER
    assert _plan_at(5, 8, 0.5, 0.0, True) == Plan.FULL
    assert _plan_at(9, 15, 0.5, 0.0, True) == Plan.NO_POWER
    assert _plan_at(9, 15, 0.5, 0.9, False) == Plan.FULL.replace(orthonormal=False)
