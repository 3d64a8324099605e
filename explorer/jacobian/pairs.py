r"""The all-pairs sweep: log10 norms of dz_s/dz_t for every pair t <= s of a time grid.

**Batched along the lag.** For a grid g_0 < .. < g_{K-1} (:func:`~explorer.jacobian.chains.make_grid`)
and a lag L, every start a advances at once,

.. math:: P(g_a, g_{a+L}) = B_{a+L}\, P(g_a, g_{a+L-1}),\qquad B_j = J_{g_j} \cdots J_{g_{j-1}+1},

one batched matmul per lag (K^2/2 products in K batched calls), each product renormalised to
unit Frobenius norm with its log scale apart (:mod:`~explorer.jacobian.chains`). At stride 1 the
blocks B_j are the Jacobians themselves; at a coarser stride they are folded first
(:func:`~explorer.jacobian.chains._block_products`), so every product is still exact over every step.

**Certified.** Runs of consecutive lags (:func:`_group_end`, at most ``GROUP_BYTES`` of products) are
certified in one call (:func:`~explorer.jacobian.certificates.certified_spectral`) with the previous
run's Ritz vectors as the warm start, by a :class:`Plan` chosen from how the previous run went
(:func:`_plan_at`). ``method="exact"`` takes the same products and
eigvalsh of their float64 Gram matrices instead: the reference the certificates are tested against.

**Both cores.** On the CPU the start points are split in two runs of equal work on two
single-threaded workers (:func:`~explorer.jacobian.workers._run_split`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
import torch
from torch import Tensor

from .certificates import Certificate, Plan, Tally, _unit_start, certified_spectral, exact_spectral
from .chains import LOG10E, Jacobians, _block_products, _Split, _times, make_grid, scaled
from .workers import _run_split

# memory for the products of one chunk of start points: their certificates hold a few more batches of that size
# (the Gram matrices, their powers, the shifted copies), so this bounds a large analysis's transient memory too
CHUNK_BYTES = 64 * 2**20
STEPS_BYTES = 256 * 2**20  # the Jacobians of every step, built once at stride 1 when they fit
# products of consecutive lags certified in one call: at small n a lag's batch is a few dozen matrices, and the
# Python around each certificate call (some hundred small ops) would cost more than the products themselves
GROUP_BYTES = 8 * 2**20
METHODS = ("certified", "exact")
Method = Literal["certified", "exact"]


@dataclass(frozen=True)
class View:
    """A block of the state Jacobian whose norms are reported: rows and columns of z."""

    name: str
    row_range: tuple[int, int] | None = None  # [start, stop) of z; None = all
    col_range: tuple[int, int] | None = None

    @property
    def rows(self) -> slice:
        return slice(*self.row_range) if self.row_range else slice(None)

    @property
    def cols(self) -> slice:
        return slice(*self.col_range) if self.col_range else slice(None)

    def size(self, m: int) -> int:
        return len(range(m)[self.cols])

    def is_full(self) -> bool:
        return self.row_range is None and self.col_range is None


@dataclass
class PairNorms:
    """log10 norms of dz_s/dz_t over a grid of time indices (0 = z_0 .. T = z_T)."""

    grid: np.ndarray  # (K,) time indices, ascending, grid[-1] = T
    log10_spectral: dict[str, np.ndarray]  # view -> (K, K); [i, j] = pair (grid[i], grid[j]), NaN below diagonal
    log10_frobenius: dict[str, np.ndarray]  # view -> (K, K)
    rtol: float  # certified relative error of the spectral norms
    tally: Tally = field(default_factory=lambda: Tally())
    # pairs t < s with s >= this step are undefined (NaN): the forward pass overflowed there
    undefined_from: int | None = None

    @property
    def certified(self) -> int:
        """Spectral norms settled by a certificate (a residual bound or Cholesky), not an eigen-solve."""
        return self.tally.certified

    @property
    def exact(self) -> int:
        return self.tally.exact


def _cheap(tally: Tally) -> int:
    """Norms settled without the Gram matrix's refinement or eigen-solve: what decides the next plan."""
    return tally.certified - tally.refined


def _group_end(first: int) -> int:
    """The lag before which a group of lags starting at ``first`` ends: a group spans at most half its first lag
    (rounded up), so the short lags, whose spectra change fastest, are certified one or two at a time, each from
    the previous group's Ritz vectors, and the long ones in runs that grow geometrically."""
    return first + (first + 1) // 2


def _reaches(first: int, last: int, every: int) -> bool:
    """Whether some lag in [first, last] is a multiple of ``every``."""
    return last // every > (first - 1) // every


def _plan_at(first: int, last: int, settled: float, powered: float, orthonormal: bool) -> Plan:
    """The plan for the lags [first, last] of one view, from the share of rows the cheap certificates
    (:func:`_cheap`) ``settled`` at the previous group and the share the power step settled when last tried
    (``powered``).

    At short lags (flat spectra) the bounds fail: straight to the Gram matrix's refinement (``Plan.FLAT``),
    trying them again where the group reaches a 4th lag. The power step pays where it settles most rows (one
    dominant direction, the RNN's long lags; not the LSTM's, whose carousel keeps several): tried again
    where the group reaches an 8th lag. ``orthonormal``: the warm block's rows (not after a power step)."""
    if settled < 0.02 and not _reaches(first, last, 4):
        plan = Plan.FLAT
    elif powered > 0.5 or _reaches(first, last, 8):
        plan = Plan.FULL
    else:
        plan = Plan.NO_POWER
    return plan if plan.orthonormal == orthonormal else plan.replace(orthonormal=orthonormal)


def all_pairs(jac: Jacobians, T: int, m: int, *, views: tuple[View, ...] = (View("state"),),
              stride: int = 1, rtol: float = 1e-5, dtype=torch.float32, device="cpu",
              progress: Callable[[float], None] | None = None, diagonal_from: int | None = None,
              before: int | None = None, method: Method = "certified") -> PairNorms:
    r"""log10 spectral and Frobenius norms of dz_s/dz_t for all grid pairs t <= s.

    ``jac(steps)`` returns the analytic J_k for 1-based ``steps`` (K,) as (K, m, m), or as
    (\hat J_k, log scales) with J_k = e^{s_k} \hat J_k (:func:`~explorer.jacobian.chains.scaled`).
    ``diagonal_from`` = c declares that columns c: of every J_k are diagonal blocks (the LSTM's
    dz_t/dc_{t-1}: diag(dh/dc) over diag(f)), which halves the cost of each product.
    ``stride`` > 1 keeps every grid_th time index (display resolution); each product is still
    the exact product of every step in between. ``before`` = k computes only the pairs with s < k
    (the rest stay NaN: the steps from k on are undefined) and leaves J_k, J_k+1, .. unused.
    ``method``: "certified" (each spectral norm within ``rtol`` below that of the computed product,
    never above it, up to the rounding of the Gram matrix) or "exact" (the same products, eigvalsh
    of each float64 Gram matrix P^T P: the reference; ``rtol`` is then that of LAPACK, reported as 0).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    grid = make_grid(T, stride)
    K = len(grid)
    spec = {v.name: np.full((K, K), np.nan) for v in views}
    fro = {v.name: np.full((K, K), np.nan) for v in views}
    for v in views:  # P(t, t) = I restricted to the view
        np.fill_diagonal(spec[v.name], 0.0 if v.row_range == v.col_range else -np.inf)
        np.fill_diagonal(fro[v.name], 0.5 * math.log10(v.size(m)) if v.row_range == v.col_range else -np.inf)
    result = PairNorms(grid=grid, log10_spectral=spec, log10_frobenius=fro, rtol=rtol if method == "certified" else 0.0)
    tally = result.tally
    reach = K if before is None else int(np.searchsorted(grid, before))  # grid points whose pairs are computed
    if reach < 2:
        return result

    itemsize = torch.empty((), dtype=dtype).element_size()
    if stride == 1:
        every_step = None
        if T * m * m * itemsize <= STEPS_BYTES:  # built once, not once per lag
            every_step, every_log = scaled(jac, torch.arange(1, T + 1, device=device))
            every_split = None if diagonal_from is None else _Split.of(every_step, diagonal_from)

        def blocks(j0: int, j1: int, first: bool) -> tuple[Tensor | _Split, Tensor]:  # J_k for k in [j0, j1)
            if every_step is not None:
                J, logs = every_step[j0 - 1:j1 - 1], every_log[j0 - 1:j1 - 1]
            else:
                J, logs = scaled(jac, torch.arange(j0, j1, device=device))
            if first or diagonal_from is None:
                return J, logs
            return (every_split[j0 - 1:j1 - 1] if every_step is not None else _Split.of(J, diagonal_from)), logs
    else:
        # the fold over all T steps is the larger share of the work at a coarse stride
        block_mats, block_logs = _block_products(jac, grid, device, diagonal_from,
                                                 progress and (lambda f: progress(0.6 * f)))
        progress = progress and (lambda f, report=progress: report(0.6 + 0.4 * f))

        def blocks(j0: int, j1: int, first: bool) -> tuple[Tensor, Tensor]:  # block j: grid[j-1] -> grid[j]
            return block_mats[j0 - 1:j1 - 1], block_logs[j0 - 1:j1 - 1]

    def sweep(a0: int, a1: int, tally: Tally, report: Callable[[int], None]) -> None:
        """Every pair with a start in [a0, a1), lag by lag: one batched product per lag, written into a
        buffer that gathers a group of lags (:func:`_group_end`) for one certificate call."""
        capacity = max(a1 - a0, GROUP_BYTES // (m * m * itemsize))
        buffers = [torch.empty((capacity, m, m), dtype=dtype, device=device) for _ in range(2)]
        P = log_scale = None
        warm = {v.name: _unit_start(a1 - a0, v.size(m), dtype, device) for v in views}
        settled = {v.name: 0.0 for v in views}  # share certified at the previous group (lag 1: flat)
        powered = {v.name: 0.0 for v in views}  # share the power step settled when last tried
        orthonormal = {v.name: True for v in views}  # the warm block's rows (not after a power step)
        L, last_lag = 1, reach - a0 - 1
        while L <= last_lag:
            buffer = buffers[0]
            buffers.reverse()  # the other buffer holds the previous group's last product, read by the first lag
            first, counts, scales, filled = L, [], [], 0
            while L <= last_lag:
                nb = min(a1, reach - L) - a0  # start indices a with a + L <= reach - 1
                if counts and (filled + nb > capacity or L >= _group_end(first)):
                    break
                factor, B_log = blocks(a0 + L, a0 + nb + L, P is None)
                out = buffer[filled:filled + nb]
                P = out.copy_(factor) if P is None else _times(factor, P[:nb], out=out)
                log_scale = torch.zeros(nb, dtype=torch.float64, device=device) if log_scale is None else log_scale[:nb]
                if B_log is not None:
                    log_scale = log_scale + B_log
                norms = torch.linalg.vector_norm(P, dim=(1, 2))
                P /= torch.where(norms > 0, norms, 1)[:, None, None]
                log_scale = log_scale + torch.log(norms.double())  # -inf once a product is exactly 0
                counts.append(nb)
                scales.append(log_scale)
                filled += nb
                L += 1
            group = buffer[:filled]
            group_scale = torch.cat(scales)
            rows_i = np.concatenate([np.arange(a0, a0 + nb) for nb in counts])
            cols_i = rows_i + np.repeat(np.arange(first, L), counts)
            for v in views:
                S = group if v.is_full() else group[:, v.rows, v.cols]
                F2 = (torch.ones(filled, dtype=dtype, device=device) if v.is_full()
                      else torch.linalg.vector_norm(S.reshape(filled, -1), dim=1) ** 2)  # a contiguous copy: 3x faster
                if method == "exact":
                    sigma2 = exact_spectral(S)
                    tally.settle(Certificate.EXACT, filled)
                else:
                    before_cheap, before_power = _cheap(tally), tally.power
                    plan = _plan_at(first, L - 1, settled[v.name], powered[v.name], orthonormal[v.name])
                    start = torch.cat([warm[v.name][:nb] for nb in counts])  # each lag from the last group's
                    sigma2, block = certified_spectral(S, start, F2, rtol, tally, plan)
                    warm[v.name] = block[filled - counts[-1]:]  # the last lag's: the next group starts from it
                    orthonormal[v.name] = not plan.uses(Certificate.POWER)
                    settled[v.name] = (_cheap(tally) - before_cheap) / filled
                    if plan.uses(Certificate.POWER):
                        powered[v.name] = (tally.power - before_power) / filled
                log10_spec = (group_scale + 0.5 * torch.log(sigma2.double())) * LOG10E
                log10_fro = (group_scale + 0.5 * torch.log(F2.double())) * LOG10E
                spec[v.name][rows_i, cols_i] = log10_spec.cpu().numpy()
                fro[v.name][rows_i, cols_i] = log10_fro.cpu().numpy()
            report(filled)

    chunk = max(1, min(reach - 1, CHUNK_BYTES // (3 * m * m * itemsize)))
    for a0 in range(0, reach - 1, chunk):
        a1 = min(a0 + chunk, reach - 1)
        _run_split(sweep, a0, a1, reach, tally, device, progress,
                   done_before=_pairs_from(a0, reach), total=_pairs_from(reach - 1, reach))
    return result


def _pairs_from(a0: int, K: int) -> int:
    """Pairs (a, a + L), L >= 1, with a start a < a0 on a grid of K points."""
    return a0 * (K - 1) - a0 * (a0 - 1) // 2
