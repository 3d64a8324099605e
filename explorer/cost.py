r"""What an analysis costs, in seconds of the reference machine (a 2-core laptop), from its config alone.

The app's stride, and where a config asks too much its clamping, follow from this model, so every in-bounds link
on every page finishes its first run in about the same time (see :mod:`explorer.limits`) and, since the model
reads nothing but the config, a shared link gives the same stride and picture everywhere.

.. math::
    \text{seconds} = \sum_f c_f\, x_f(\text{config}, \text{stride})

with one term per kind of work (:func:`features`): float32 and float64 matrix products (the Jacobians, the fold
of the steps into the grid's blocks, the grid pairs' products and certificates), a fixed cost per grid pair, the
O(m^3) certificates of crowded spectra (the refined Ritz value and its Cholesky test, else an eigen-solve; orthogonal
and identity inits: nearly every pair), the float64 product of the
singular values at the lag, the per-step work (which holds the diagonal cells' maps), batch norm's batch and the fixed cost of a
run. The coefficients ``COEFFICIENTS`` are fitted on this project's 2-core machine by
``python benchmarks/bench_cost.py``, which prints the fit and its error on configs it did not fit.
"""
from __future__ import annotations

import functools
import math

from .config import ExperimentConfig
from .lyapunov import app_exponents
from .registry import cell_type

PAIR_COST = 2.5  # matmul-equivalents per grid pair: the product, norms and the spectral certificate
# Inits whose W_hh has a flat singular spectrum: products keep a crowded top, which no cheap bound certifies, so
# nearly every pair takes an O(m^3) certificate (measured: 18,774 of 20,100 pairs at T = 200, n = 128; since the
# refined certificate 1,931 of them an eigen-solve, the rest about half its cost: the fit below predates it).
CROWDED_INITS = frozenset({"orthogonal", "identity"})
# Share of pairs that take an O(m^3) certificate: crowded inits, then the chaotic regime (a gaussian W_hh of gain
# >= 1: measured 7,000 of 80,200 pairs at T = 400, n = 128, gain 1.2), then the rest (4,300 at the default init).
CROWDED_SHARE, CHAOTIC_SHARE, SPREAD_SHARE = 1.0, 0.09, 0.055


def exact_share(config: ExperimentConfig) -> float:
    """The share of grid pairs whose spectral norm needs an O(m^3) certificate (see the constants above)."""
    if config.init in CROWDED_INITS:
        return CROWDED_SHARE
    return CHAOTIC_SHARE if config.init == "gaussian" and config.gain >= 1.0 else SPREAD_SHARE

# Seconds per unit of each feature on the reference machine: fitted by benchmarks/bench_cost.py on 2026-11-30
# (2 cores, Intel Xeon); predicted / measured from 0.65 to 1.34 over 35 configs.
COEFFICIENTS: dict[str, float] = {
    "run": 0.149,  # building the cell, the forward pass, eigenvalues of W_hh, gate statistics
    "matmul32": 1.0 / 175e9,  # float32 flops
    "matmul64": 1.0 / 72e9,  # float64 flops
    "pairs": 7.7e-7,  # per grid pair and view: dispatch and certificate bookkeeping
    "exact": 1.0 / 8.1e9,  # per m^3 of a crowded spectrum's certificate (a Gram matrix, then refined or eigen-solved)
    "exact_calls": 5.0e-5,  # per such certificate: the small calls and the batching around them
    "singular64": 1.0 / 39.5e9,  # float64 flops of the singular values' product
    "steps": 1.0 / 2.17e9,  # per step, m^2 and gate block: back-propagation, contributions, the diagonal cells' maps
    "batch": 1.0 / 1.6e9,  # per sequence, step and n^2 of batch norm's forward pass
    "layer": 1.0 / 38.7e9,  # per step and n^3 of layer norm's Jacobian (its projection folded into each step's)
    # The Lyapunov spectrum (explorer.lyapunov), timed alone (not in the fit): per step, J_k Q and the QR of (m, K)
    # in float64 on one thread, and the per-step work around them. Diagonal cells have a closed form.
    "lyapunov": 1.0 / 8e9,  # per step, m^2 and exponent
    "lyapunov_steps": 5e-5,  # per step
}


def grid_points(T: int, stride: int) -> int:
    """Points of :func:`explorer.jacobian.make_grid` (0 and T - j stride), without building it."""
    return len({0, *range(T % stride, T + 1, stride)})


def features(config: ExperimentConfig, stride: int, exponents: int | None = None) -> dict[str, float]:
    """The amount of each kind of work in :func:`explorer.analysis.analyze` at ``stride`` with ``exponents``
    Lyapunov exponents (default: the app's, :func:`explorer.lyapunov.app_exponents`; see the module)."""
    kind = cell_type(config.cell)
    n, T = config.hidden, config.seq_len
    m = n * kind.state_units
    K = grid_points(T, stride)
    pairs = K * (K - 1) / 2
    out = dict.fromkeys(COEFFICIENTS, 0.0)
    out["run"] = 1.0
    out["steps"] = T * m * m * max(1, kind.gate_blocks)
    if config.norm == "layer":
        out["layer"] = T * n**3
    if config.norm == "batch":
        out["batch"] = config.batch * T * n * n
    if kind.jacobian == "diagonal":  # explorer.diagonal: O(u) per pair, no products of matrices (measured: the
        return out  # per-step terms above account for it, T = 2000 at stride 1 in about a second)
    K = app_exponents(config) if exponents is None else exponents
    if K:
        out["lyapunov"], out["lyapunov_steps"] = T * m * m * K, T
    views = len(kind.views)
    product = 0.5 if kind.jacobian == "diagonal_columns" else 1.0
    matmuls = 2 * T * kind.jacobian_cost + product * (T if stride > 1 else 0) + PAIR_COST * (1.6 if views > 1 else 1.0) * pairs
    out["matmul64" if config.dtype == "float64" else "matmul32"] = matmuls * 2.0 * m**3
    out["pairs"] = views * pairs
    share = exact_share(config)
    out["exact"] = share * views * pairs * m**3
    out["exact_calls"] = share * views * pairs
    out["singular64"] = 2.0 * m**3 * min(config.lag, T)
    return out


def seconds(config: ExperimentConfig, stride: int, coefficients: dict[str, float] | None = None) -> float:
    """Predicted seconds of ``analyze(config, stride=stride)`` on the reference machine."""
    c = coefficients or COEFFICIENTS
    return sum(c[name] * amount for name, amount in features(config, stride).items())


def overlay_seconds(config: ExperimentConfig) -> float:
    """Predicted seconds of the simple-RNN lag curve drawn beside a gated or modern cell (``ui.rnn_overlay``):
    one backward chain of T products of n x n, the Jacobians, and one batched certificate of the grid's lags."""
    n, T = config.hidden, config.seq_len
    c = COEFFICIENTS
    flops = (T + T * cell_type("rnn").jacobian_cost) * 2.0 * n**3
    rate = c["matmul64"] if config.dtype == "float64" else c["matmul32"]
    return (c["run"] + rate * flops + c["steps"] * T * n * n + c["exact"] * SPREAD_SHARE * min(T, 200) * n**3
            + c["exact_calls"] * SPREAD_SHARE * min(T, 200))


@functools.lru_cache(maxsize=1024)
def stride_within(config: ExperimentConfig, budget_seconds: float, min_grid: int) -> tuple[int, float]:
    """(the smallest stride whose predicted time fits ``budget_seconds``, that time); never fewer than
    ``min_grid`` grid points: the coarsest such stride when none fits (its time is then over the budget).
    From stride 2 on the time falls as the stride grows (fewer pairs), so those are bisected."""
    coarsest = max(1, math.ceil(config.seq_len / (min_grid - 1)))
    if coarsest == 1 or seconds(config, 1) <= budget_seconds:
        return 1, seconds(config, 1)
    lo, hi = 2, coarsest  # invariant: hi fits, or hi is the coarsest
    if seconds(config, hi) > budget_seconds:
        return hi, seconds(config, hi)
    while lo < hi:
        mid = (lo + hi) // 2
        if seconds(config, mid) <= budget_seconds:
            hi = mid
        else:
            lo = mid + 1
    return hi, seconds(config, hi)
