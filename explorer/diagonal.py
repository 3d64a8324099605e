r"""Norms of Jacobian products for diagonal recurrences, in O(T^2 u) instead of O(T^2 m^3).

For a cell whose step acts on each unit j alone, multiplying it by d_{k,j} (a real number in (0, 1) for
minGRU and minLSTM; |\lambda_j| times a rotation for the LRU, whose unit is the pair (Re h_j, Im h_j)), every
product of steps t+1..s has the singular values

.. math:: \sigma_j(t, s) = \prod_{k=t+1}^{s} |d_{k,j}| = \exp\big(C_{s,j} - C_{t,j}\big),\qquad C_{t,j} = \sum_{k \le t} \log|d_{k,j}|,

each ``multiplicity`` times, so \|P\|_2 = \max_j \sigma_j and \|P\|_F^2 = multiplicity \sum_j \sigma_j^2, exactly.
Everything is summed in log space (float64), so products far below float64's range stay finite.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

LOG10E = 1.0 / math.log(10.0)


def prefix(log_moduli: Tensor) -> Tensor:
    """C (T+1, u): C_0 = 0, C_t = sum_{k <= t} log|d_k| (float64) from log_moduli (T, u)."""
    zero = torch.zeros(1, log_moduli.shape[1], dtype=torch.float64, device=log_moduli.device)
    return torch.cat([zero, torch.cumsum(log_moduli.double(), dim=0)])


def pair_maps(log_moduli: Tensor, grid: np.ndarray, multiplicity: int = 1, exact64: bool = False
              ) -> tuple[np.ndarray, np.ndarray]:
    """log10 ||P(t, s)||_2 and ||P(t, s)||_F for every grid pair t <= s: (K, K) each, NaN below the diagonal.

    log_moduli: (T, u) natural logs of the diagonal's moduli, float64. A recurrence whose moduli do
    not change with time (the LRU) depends on the lag s - t alone: O(T u). Otherwise blocks of start
    points take every later s at once (:func:`_block`): a matrix product for the Frobenius norms, and
    the maximum over units, relative to each end point's best unit: float32 (within ~2e-6 in log10) or,
    with ``exact64``, float64 (to rounding).
    """
    K, units = len(grid), log_moduli.shape[1]
    spec, fro = np.full((K, K), np.nan), np.full((K, K), np.nan)
    np.fill_diagonal(spec, 0.0)
    np.fill_diagonal(fro, 0.5 * math.log10(multiplicity * units))
    if K < 2:
        return spec, fro
    if bool((log_moduli == log_moduli[:1]).all()):  # time-invariant: a function of the lag alone
        i, j = np.triu_indices(K, 1)
        lags, which = np.unique(grid[j] - grid[i], return_inverse=True)
        per_step = log_moduli[0].double()
        logs = torch.as_tensor(lags, dtype=torch.float64, device=per_step.device)[:, None] * per_step[None, :]
        top = logs.amax(-1)
        f = top + 0.5 * torch.log(multiplicity * torch.exp(2 * (logs - top[:, None])).sum(-1))
        spec[i, j], fro[i, j] = (top * LOG10E).cpu().numpy()[which], (f * LOG10E).cpu().numpy()[which]
        return spec, fro
    C = prefix(log_moduli)[torch.as_tensor(grid, device=log_moduli.device)]  # (K, u)
    for i0 in range(0, K - 1, BLOCK_ROWS):
        i1 = min(i0 + BLOCK_ROWS, K - 1)
        top, frob = _block(C, i0, i1, torch.float64 if exact64 else torch.float32)  # (R, S) each: natural logs, for the starts i0..i1-1 and every later s
        s_np, f_np = (top * LOG10E).cpu().numpy(), ((frob + 0.5 * math.log(multiplicity)) * LOG10E).cpu().numpy()
        for r in range(i1 - i0):
            i = i0 + r
            spec[i, i + 1:] = s_np[r, r:]
            fro[i, i + 1:] = f_np[r, r:]
    return spec, fro


BLOCK_ROWS = 16  # start points per block: bounds the decay inside a block, hence the products' range
BLOCK_COLS = 128  # end points per chunk of the maximum: a (16, 128, u) chunk stays in cache


def _block(C: Tensor, i0: int, i1: int, work=torch.float32) -> tuple[Tensor, Tensor]:
    r"""For starts t_r = grid[i0..i1) and every later grid point s_c: max_j and 0.5 log sum_j e^{2x_j} of
    x_j = log sigma_j = C_{s,j} - C_{t,j}, (R, S) float64 each.

    With L_{s,j} = C_{s,j} - C_{t_0,j} and v_{r,j} = C_{t_0,j} - C_{t_r,j} (the block's own decay),
    x_j = L_{s,j} + v_{r,j}. Frobenius: one matrix product of e^{2(L - M_s)} (<= 1, M_s = max_j L_{s,j}) with
    e^{2v}, so nothing that matters under- or overflows. Spectral: the maximum of (L_{s,j} - M_s) + v_{r,j}
    in ``work`` precision, then + M_s in float64. The winner's terms are within the block's own decay of 0
    (a few tens), so in float32 (about 60x faster than float64 here) the result is within ~4e-6 of the
    exact maximum, in natural log; in float64, to rounding.
    """
    later = C[i0 + 1:]  # (S, u)
    L = later - C[i0]
    best = L.amax(-1)  # (S,)
    v = C[i0] - C[i0:i1]  # (R, u)
    if float(v.abs().max()) > 300:  # a block that decays past float64's exponent range: pairwise, exactly
        D = later[None] - C[i0:i1, None]  # (R, S, u)
        top = D.amax(-1)
        return top, top + 0.5 * torch.log(torch.exp(2 * (D - top[..., None])).sum(-1))
    frob = best[None] + 0.5 * torch.log(torch.exp(2 * v) @ torch.exp(2 * (L - best[:, None])).T)  # (R, S)
    relative, offsets = (L - best[:, None]).to(work), v.to(work)
    top = torch.cat([(relative[None, c0:c0 + BLOCK_COLS] + offsets[:, None]).amax(-1)
                     for c0 in range(0, len(later), BLOCK_COLS)], dim=1)
    return top.double() + best[None], frob


def singular_values(log_moduli: Tensor, t: int, s: int, multiplicity: int = 1) -> np.ndarray:
    """log10 of every singular value of P(t, s), descending (u * multiplicity,)."""
    logs = log_moduli[t:s].double().sum(0).cpu().numpy() * LOG10E if s > t else np.zeros(log_moduli.shape[1])
    return np.sort(np.repeat(logs, multiplicity))[::-1].copy()


def step_norms(log_moduli: Tensor, steps: np.ndarray) -> np.ndarray:
    """log10 ||J_k||_2 = max_j log10 |d_k,j| for the 1-based ``steps``."""
    return log_moduli[torch.as_tensor(steps, device=log_moduli.device) - 1].double().amax(-1).cpu().numpy() * LOG10E


def backprop(log_moduli: Tensor, phases: Tensor | None, seed: Tensor) -> tuple[Tensor, np.ndarray]:
    r"""dL/dz_t for t = 0..T from dL/dz_T = ``seed``, in closed form and log space.

    The adjoint of unit j, a complex number a_j (real cells: its imaginary part stays 0), goes back one
    step by a_j <- a_j |d_k,j| e^{i phi_k,j}, so a_{t,j} = a_{T,j} \exp(\sum_{k > t} (\log|d_{k,j}| + i phi_{k,j})).
    ``seed``: (u,) complex128 adjoint at T. Returns (unit-norm adjoints (T+1, u) complex128, natural-log
    norms (T+1,)); log norms are -inf where the seed is 0.
    """
    suffix = torch.flip(prefix(torch.flip(log_moduli, [0])), [0])  # (T+1, u): sum_{k > t} log|d_k|
    log_mod = suffix + torch.log(seed.abs())[None, :]
    top = log_mod.amax(-1, keepdim=True)  # (T+1, 1)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    angle = torch.angle(seed)[None, :].expand_as(log_mod)
    if phases is not None:
        angle = angle + torch.flip(prefix(torch.flip(phases, [0])), [0])
    adjoint = torch.polar(torch.exp(log_mod - top), angle)  # |entries| <= 1
    norms = torch.linalg.vector_norm(adjoint, dim=-1)
    with np.errstate(divide="ignore"):
        logs = (top[:, 0] + torch.log(norms)).cpu().numpy()
    unit = adjoint / torch.where(norms > 0, norms, torch.ones_like(norms))[:, None]
    return unit, logs
