r"""Products of per-step Jacobians, kept in log space: one product, the backward chains, the grid's blocks.

For per-step Jacobians J_k = dz_k/dz_{k-1} (k = 1..T),

.. math::
    P(t, s) = \frac{\partial z_s}{\partial z_t} = J_s J_{s-1} \cdots J_{t+1},\qquad P(t, t) = I.

**Log space.** A product of hundreds of Jacobians under- or overflows float32, so each
product is stored as P = e^{\ell} \hat P with \|\hat P\|_F = 1 and the log scale \ell
carried separately (renormalised after every factor). Frobenius norms are then exact:
log \|P\|_F = \ell. Each factor comes the same way, J_k = e^{s_k} \hat J_k (:func:`scaled`), so a
step whose every unit saturates stays finite and exact instead of rounding to a zero matrix.

* :func:`product`, :func:`log10_singular_values`: one product P(t, s), forward;
* :func:`to_the_end`: the backward chain P(t - 1, T) = P(t, T) J_t, every lag to the last step;
* :func:`backprop_log`: back-propagation \delta_{t-1} = \delta_t J_t of a gradient;
* :func:`step_norms`: single steps \|J_k\|_2;
* :func:`_block_products`: the products over each interval of a grid (:func:`make_grid`), and
  :class:`_Split`, the LSTM's J with diagonal c-columns at half the cost of a product.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .certificates import Tally, _unit_start, certified_spectral

LOG10E = 1.0 / math.log(10.0)
CACHE_BYTES = 4 * 2**20  # Jacobians built this many bytes at a time stay in cache while they are used

Jacobians = Callable[[Tensor], "Tensor | tuple[Tensor, Tensor]"]


def make_grid(T: int, stride: int) -> np.ndarray:
    """Time indices 0 and T - j*stride (j >= 0): anchored at T so lags to the last step are
    multiples of the stride."""
    return np.unique(np.concatenate([[0], np.arange(T % stride, T + 1, stride)])).astype(np.int64)


def _steps_per_chunk(m: int, dtype) -> int:
    """How many (m, m) Jacobians to build at once: 64 at m = 128 in float32, 4 at m = 512 (built
    64 at a time, 512-wide ones are read back from memory: 3-6x slower sequential passes)."""
    return max(1, min(64, CACHE_BYTES // (m * m * torch.empty((), dtype=dtype).element_size())))


def scaled(jac: Jacobians, steps: Tensor) -> tuple[Tensor, Tensor]:
    r"""``jac(steps)`` as (\hat J (K, m, m), natural-log scales s (K,) float64) with J_k = e^{s_k} \hat J_k.

    A cell whose every unit saturates at a step (tanh' ~ 1e-40) returns the scale apart, so the
    step stays finite and exact instead of rounding to a zero matrix; a plain tensor has scale 0.
    """
    out = jac(steps)
    if isinstance(out, tuple):
        return out[0], out[1].to(torch.float64)
    return out, torch.zeros(out.shape[0], dtype=torch.float64, device=out.device)


def _each_jacobian(jac: Jacobians, first: int, last: int, m: int, dtype, device, backward: bool = False):
    r"""(k, \hat J_k, s_k) for k = first .. last (or last .. first with ``backward``): \hat J_k (m, m) in
    ``dtype`` and its log scale s_k (a float; :func:`scaled`), built a cache-sized chunk at a time
    (:func:`_steps_per_chunk`) for the one-step-at-a-time chains."""
    chunk = _steps_per_chunk(m, dtype)
    starts = range(first, last + 1, chunk)
    for k0 in reversed(starts) if backward else starts:
        J, logs = scaled(jac, torch.arange(k0, min(k0 + chunk, last + 1), device=device))
        J, logs = J.to(dtype), logs.tolist()
        for i in reversed(range(J.shape[0])) if backward else range(J.shape[0]):
            yield k0 + i, J[i], logs[i]


@dataclass(frozen=True)
class _Split:
    """Jacobians J (B, m, m) whose columns c: are stacked diagonal blocks of size w = m - c (the
    LSTM's dz_t/dc_{t-1}: diag(dh/dc) over diag(f)), kept as J[:, :, :c] and those diagonals.

    J P = J[:, :, :c] P[:c] + [diag(d_1); diag(d_2); ..] P[c:]: one batched matmul with half
    the flops (c = m/2) and one fused elementwise pass."""

    dense: Tensor  # (B, m, c), contiguous
    diagonals: Tensor  # (B, m / w, w)

    @classmethod
    def of(cls, J: Tensor, c: int) -> "_Split":
        w = J.shape[-1] - c
        diagonals = torch.stack([J[:, r:r + w, c:].diagonal(dim1=1, dim2=2) for r in range(0, J.shape[1], w)], 1)
        return cls(J[:, :, :c].contiguous(), diagonals)

    def __getitem__(self, index: slice) -> "_Split":
        return _Split(self.dense[index], self.diagonals[index])

    def times(self, P: Tensor, out: Tensor | None = None) -> Tensor:
        B, m, c = self.dense.shape
        out = torch.bmm(self.dense, P[:, :c], out=out)  # (B, m, m)
        out.view(B, self.diagonals.shape[1], -1, m).addcmul_(self.diagonals[..., None], P[:, None, c:])
        return out


def _times(factor: Tensor | _Split, P: Tensor, out: Tensor | None = None) -> Tensor:
    """factor @ P, batched; into ``out`` (contiguous, not overlapping P) when given."""
    return factor.times(P, out) if isinstance(factor, _Split) else torch.bmm(factor, P, out=out)


def _block_products(jac: Jacobians, grid: np.ndarray, device, diagonal_from: int | None = None,
                    progress: Callable[[float], None] | None = None) -> tuple[Tensor, Tensor]:
    """Normalised products over each grid interval, B_j = J_{grid[j]} ... J_{grid[j-1]+1}.

    Returns (blocks (K-1, m, m) with unit Frobenius norm, their natural-log scales (K-1,)).
    """
    starts, stops = grid[:-1], grid[1:]
    lengths = stops - starts
    blocks, logs = None, None
    for q in range(int(lengths.max())):
        active = np.nonzero(lengths > q)[0]
        steps = torch.as_tensor(starts[active] + 1 + q, device=device)
        J, step_logs = scaled(jac, steps)  # (A, m, m), (A,)
        idx = torch.as_tensor(active, device=device)
        if blocks is None:  # every interval has length >= 1
            blocks, logs = J.clone(), torch.zeros(len(grid) - 1, dtype=torch.float64, device=device)
        else:
            blocks[idx] = _times(J if diagonal_from is None else _Split.of(J, diagonal_from), blocks[idx])
        logs[idx] += step_logs
        norms = torch.linalg.vector_norm(blocks, dim=(1, 2))
        blocks /= torch.where(norms > 0, norms, 1)[:, None, None]
        logs += torch.log(norms.double())
        if progress is not None:
            progress((q + 1) / int(lengths.max()))
    return blocks, logs


def product(jac: Jacobians, t: int, s: int, m: int, dtype=torch.float64, device="cpu") -> tuple[Tensor, float]:
    """dz_s/dz_t = J_s ... J_{t+1} as (normalised matrix (m, m), natural-log scale)."""
    P = torch.eye(m, dtype=dtype, device=device)
    log_scale = 0.0
    for _, J_k, s_k in _each_jacobian(jac, t + 1, s, m, dtype, device):
        P = J_k @ P
        norm = float(torch.linalg.matrix_norm(P))
        if norm == 0.0:
            return P, -math.inf
        P /= norm
        log_scale += math.log(norm) + s_k
    return P, log_scale


RESOLUTION = 1e3  # a singular value is drawn when its error bound is at most 1/RESOLUTION of it
PROBES = 4  # Gaussian probes estimating the Frobenius norms of the suffix products in the error bound


@dataclass(frozen=True)
class SingularValues:
    """log10 sigma_i(dz_s/dz_t), descending (m,), NaN where not resolved; and ``log10_limit``, below which the
    product's rounding leaves a singular value undetermined (None: every value resolved)."""

    log10: np.ndarray
    log10_limit: float | None


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top if top == -math.inf else top + math.log(sum(math.exp(v - top) for v in values))


def log10_singular_values(jac: Jacobians, t: int, s: int, m: int, device="cpu") -> SingularValues:
    r"""Every singular value of P = dz_s/dz_t = J_s \cdots J_{t+1} that the arithmetic resolves, (m,) descending.

    P is the renormalised forward product in float64 whatever the Jacobians' precision (float32 ones are exact
    in float64; a float32 product would leave, at the larger sizes, not even \sigma_1 resolved), then an SVD. An SVD and a product fix each \sigma_i only to an absolute error, which
    for a product of many factors lies many decades below \sigma_1 and far above the smallest \sigma_i. By
    Weyl's inequality |\hat\sigma_i - \sigma_i| <= \|\hat P - P\|_2 <= B, with, to first order,

    .. math::
        B = 2\Big(\sum_{k=t+1}^{s} \|J_s \cdots J_{k+1}\|_F\, \varepsilon\,(m \|J_k\|_F \|\hat P_{k-1}\|_F
            + \|\hat P_k\|_F) + m\, \varepsilon_{64} \|\hat P\|_F\Big)

    (\hat P_k the computed partial products; the suffix norms estimated by ``PROBES`` seeded Gaussian probes
    carried backward, the factor 2 covering that estimate and the second-order terms). A value below
    ``RESOLUTION`` B is set to NaN: its relative error could exceed 1/``RESOLUTION``.
    """
    work = torch.float64
    unit = torch.finfo(work).eps / 2
    P = torch.eye(m, dtype=work, device=device)
    log_scale, terms = 0.0, []  # log ||P_k||_F; per step log of eps (m ||J_k||_F ||P_(k-1)||_F + ||P_k||_F)
    for _, J_k, s_k in _each_jacobian(jac, t + 1, s, m, work, device):
        log_factor = math.log(float(torch.linalg.matrix_norm(J_k))) + s_k if bool(J_k.any()) else -math.inf
        P = J_k @ P
        norm = float(torch.linalg.matrix_norm(P))
        if norm == 0.0:  # an exact zero: every singular value is 0, exactly
            return SingularValues(np.full(m, -np.inf), None)
        P /= norm
        previous, log_scale = log_scale, log_scale + math.log(norm) + s_k
        terms.append(math.log(unit) + _logsumexp([math.log(m) + log_factor + previous, log_scale]))
    sigma = torch.linalg.svdvals(P.double()).cpu().numpy()
    suffix = _suffix_log_norms(jac, t, s, m, device)  # log ||J_s ... J_(k+1)||_F, k = t+1 .. s
    bound = math.log(2.0) + _logsumexp([a + b for a, b in zip(suffix, terms)]
                                       + [math.log(m * torch.finfo(torch.float64).eps / 2) + log_scale])
    limit = (bound + math.log(RESOLUTION)) * LOG10E
    with np.errstate(divide="ignore"):
        values = np.log10(sigma) + log_scale * LOG10E
    resolved = values >= limit
    return SingularValues(np.where(resolved, values, np.nan), None if resolved.all() else limit)


def _suffix_log_norms(jac: Jacobians, t: int, s: int, m: int, device) -> list[float]:
    """log ||J_s ... J_(k+1)||_F for k = t+1 .. s (the last: log ||I||_F), estimated as
    sqrt(E ||S^T G||_F^2 / p) with p seeded Gaussian probes G (m, p) carried backward in float64."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    V = torch.randn(m, PROBES, generator=gen, dtype=torch.float64).to(device)
    log_scale, out = -0.5 * math.log(PROBES), []
    for _, J_k, s_k in _each_jacobian(jac, t + 1, s, m, torch.float64, device, backward=True):
        norm = float(torch.linalg.matrix_norm(V))
        out.append(log_scale + math.log(norm) if norm > 0 else -math.inf)
        V = J_k.T @ (V / norm) if norm > 0 else V
        log_scale += (math.log(norm) if norm > 0 else 0.0) + s_k
    return out[::-1]


def step_norms(jac: Jacobians, steps: np.ndarray, m: int, *, rtol: float = 1e-5, dtype=torch.float32,
               device="cpu") -> np.ndarray:
    """log10 ||J_k||_2 of single steps k in ``steps`` (K,), certified like the map's (cold start), (K,)."""
    if len(steps) == 0:
        return np.zeros(0)
    J, logs = scaled(jac, torch.as_tensor(steps, device=device))
    J = J.to(dtype)
    norms = torch.linalg.vector_norm(J, dim=(1, 2))
    J = J / torch.where(norms > 0, norms, 1)[:, None, None]
    sigma2, _ = certified_spectral(J, _unit_start(len(steps), m, dtype, device),
                                   (norms > 0).to(dtype), rtol, Tally())
    with np.errstate(divide="ignore"):
        return (np.log(norms.double().cpu().numpy()) + logs.cpu().numpy()
                + 0.5 * np.log(sigma2.double().cpu().numpy())) * LOG10E


def to_the_end(jac: Jacobians, T: int, m: int, *, stride: int = 1, rtol: float = 1e-5,
               dtype=torch.float32, device="cpu", progress: Callable[[float], None] | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The last column of :func:`~explorer.jacobian.all_pairs`' map alone: (lags k (K,),
    log10 \|dz_T/dz_{T-k}\|_2 (K,), log10 \|.\|_F (K,)) for the lags of ``make_grid(T, stride)``, ascending from 0.

    One backward chain, P(t - 1, T) = P(t, T) J_t, renormalised at every step (log space), keeps
    the product at each grid lag; then all of them are certified in one batch (cold start:
    :func:`~explorer.jacobian.certified_spectral`'s Ritz steps, Gram-matrix bounds and eigen-solves as needed).
    T products of m x m, like the map's fold, but one batched certificate instead of one per lag.
    """
    lags = T - make_grid(T, stride)[::-1]  # 0 .. T, ascending
    wanted = set(int(k) for k in lags[1:])
    kept, logs = [], []
    P = torch.eye(m, dtype=dtype, device=device)
    log_scale = 0.0
    for k, J_k, s_k in _each_jacobian(jac, 1, T, m, dtype, device, backward=True):  # P(k - 1, T) = P(k, T) J_k
        P = P @ J_k
        norm = float(torch.linalg.matrix_norm(P))
        if norm == 0.0:  # an exact zero stays zero at every longer lag
            log_scale = -math.inf
            P = torch.eye(m, dtype=dtype, device=device) / math.sqrt(m)  # a unit stand-in: its scale is 0
        else:
            P = P / norm
            log_scale += math.log(norm) + s_k
        if T - k + 1 in wanted:
            kept.append(P)
            logs.append(log_scale)
        if progress is not None and k % 64 == 1:
            progress(0.9 * (T - k + 1) / T)
    spec, fro = np.zeros(len(lags)), np.zeros(len(lags))
    fro[0] = 0.5 * math.log10(m)
    if kept:
        S = torch.stack(kept)
        sigma2, _ = certified_spectral(S, _unit_start(len(kept), m, dtype, device),
                                       torch.ones(len(kept), dtype=dtype, device=device), rtol, Tally())
        log_scale = np.array(logs)
        with np.errstate(invalid="ignore"):  # -inf + finite stays -inf
            spec[1:] = (log_scale + 0.5 * np.log(sigma2.double().cpu().numpy())) * LOG10E
        fro[1:] = log_scale * LOG10E
    return lags, spec, fro


def backprop_log(jac: Jacobians, seed_grad: Tensor, T: int) -> tuple[Tensor, np.ndarray]:
    r"""dL/dz_t for t = 0..T from dL/dz_T, in log space.

    .. math:: \delta_{t-1} = \delta_t J_t

    Returns (unit-norm deltas (T+1, m), natural-log norms (T+1,)).
    """
    m = seed_grad.shape[-1]
    deltas = torch.empty(T + 1, m, dtype=seed_grad.dtype, device=seed_grad.device)
    logs = np.zeros(T + 1)
    norm0 = float(seed_grad.norm())
    deltas[T], logs[T] = seed_grad / norm0, math.log(norm0)
    delta, log_scale = deltas[T], logs[T]
    for k, J_k, s_k in _each_jacobian(jac, 1, T, m, seed_grad.dtype, seed_grad.device, backward=True):
        delta = delta @ J_k
        norm = float(delta.norm())
        if norm == 0.0:
            deltas[:k] = 0.0
            logs[:k] = -math.inf
            return deltas, logs
        delta = delta / norm
        log_scale += math.log(norm) + s_k
        deltas[k - 1], logs[k - 1] = delta, log_scale
    return deltas, logs
