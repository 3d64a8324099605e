r"""Norms of Jacobian products for every pair of time steps, kept in log space.

For per-step Jacobians J_k = dz_k/dz_{k-1} (k = 1..T) and every pair t <= s,

.. math::
    P(t, s) = \frac{\partial z_s}{\partial z_t} = J_s J_{s-1} \cdots J_{t+1},\qquad P(t, t) = I.

**Log space.** A product of hundreds of Jacobians under- or overflows float32, so each
product is stored as P = e^{\ell} \hat P with \|\hat P\|_F = 1 and the log scale \ell
carried separately. Frobenius norms are then exact: log \|P\|_F = \ell.

**Spectral norms, certified.** For G = \hat P^T \hat P, five certificates, cheapest first:

0. Where one direction holds more than half of \|\hat P\|_F^2 (the RNN's long lags), one power
   step with the previous lag's top vector and the bound of 1. with k' = 1 (:func:`_power_step`).
1. A block Rayleigh-Ritz step (k = 4 vectors, warm-started from the previous lag: long
   products converge to low rank) gives Ritz values \theta_1 \ge .. \ge \theta_k \le \lambda_i(G).
   The complement of the first k' Ritz vectors has trace F^2 - \sum_{i \le k'} \theta_i, which
   bounds its eigenvalues; when \theta_{k'} exceeds that by \eta > 0, the quadratic residual
   bound (Mathias 1998; Li & Li 2005) gives \lambda_1 \le \theta_1 + \|R_{k'}\|^2 / \eta.
2. The same bound with the complement's top eigenvalue bounded by \mathrm{tr}(C^2)^{1/2}
   \le (\|G\|_F^2 - \sum_{i \le k'} \theta_i^2)^{1/2} (pinching), from the Gram matrix: it holds
   at the middle lags, where a long flat tail has a large trace but a small sum of squares.
3. Else a Cholesky factorisation of \mu I - G with \mu = \theta_1 (1 + rtol)^2: it exists iff
   every eigenvalue of G is below \mu (Sylvester).
4. Else an eigen-solve (LAPACK), mostly at lags of a few steps where spectra are flat.

So each reported spectral norm is at most ``rtol`` (relative) below that of the computed
product, never above it (the float32 paths through the Gram matrix up to its rounding, m eps).

**Speed.** Products are batched along the lag: one batched matmul per lag advances every
start point at once (T^2/2 products in T batched calls). On the CPU the start points are
split in two runs of equal work on two single-threaded workers (:func:`_run_split`).
"""
from __future__ import annotations

import math
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import Tensor

LOG10E = 1.0 / math.log(10.0)
CHUNK_BYTES = 256 * 2**20  # memory for the products of one chunk of start points
CACHE_BYTES = 4 * 2**20  # Jacobians built this many bytes at a time stay in cache while they are used


def _steps_per_chunk(m: int, dtype) -> int:
    """How many (m, m) Jacobians to build at once: 64 at m = 128 in float32, 4 at m = 512 (built
    64 at a time, 512-wide ones are read back from memory: 3-6x slower sequential passes)."""
    return max(1, min(64, CACHE_BYTES // (m * m * torch.empty((), dtype=dtype).element_size())))


Jacobians = Callable[[Tensor], "Tensor | tuple[Tensor, Tensor]"]


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


def _lapack_worker() -> None:
    # Batched LAPACK (eigvalsh, cholesky) on small matrices runs ~10x slower with 2 OpenMP
    # threads than with 1 here; two single-threaded workers split the batch instead.
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # MXCSR is per thread


_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="explorer-lapack", initializer=_lapack_worker)


def batched_lapack(fn: Callable[[Tensor], Tensor], A: Tensor) -> Tensor:
    """``fn`` over a batch (B, m, m) on the CPU, in halves on the two LAPACK workers (torch
    releases the GIL): batches of 8 or more, or of two or more matrices from m = 128 on."""
    if A.device.type != "cpu" or getattr(_in_sweep, "active", False):  # a sweep worker: its own core
        return fn(A)
    B = A.shape[0]
    parts = (A[: B // 2], A[B // 2:]) if B >= 8 or (B >= 2 and A.shape[-1] >= 128) else (A,)
    return torch.cat([future.result() for future in [_POOL.submit(fn, part) for part in parts]])


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
    tally: "Tally" = field(default_factory=lambda: Tally())
    # pairs t < s with s >= this step are undefined (NaN): the forward pass overflowed there
    undefined_from: int | None = None

    @property
    def certified(self) -> int:
        """Spectral norms settled by a certificate (a residual bound or Cholesky), not an eigen-solve."""
        return self.tally.certified

    @property
    def exact(self) -> int:
        return self.tally.exact


def make_grid(T: int, stride: int) -> np.ndarray:
    """Time indices 0 and T - j*stride (j >= 0): anchored at T so lags to the last step are
    multiples of the stride."""
    return np.unique(np.concatenate([[0], np.arange(T % stride, T + 1, stride)])).astype(np.int64)


BLOCK = 4  # subspace size: covers the dominant complex pairs of rotating dynamics


def _unit_start(count: int, size: int, dtype, device) -> Tensor:
    """A fixed start block with orthonormal rows (count, k, size), the same for every run."""
    gen = torch.Generator().manual_seed(12345)
    k = min(BLOCK, size)
    V = torch.linalg.qr(torch.randn(size, k, generator=gen, dtype=torch.float64))[0]
    return V.T.to(dtype=dtype, device=device).expand(count, k, size).clone()


def _ritz_step(S: Tensor, Vt: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One Rayleigh-Ritz step on G = S^T S for S (B, r, c) from the block V^T (B, k, c), orthonormal rows.

    Returns Ritz values theta_1 >= .. >= theta_k (B, k) (lower bounds: theta_1 <= sigma_1^2),
    ||R_k'||_F^2 for k' = 1..k (B, k) with R = G Y - Y Theta the residual of the first k' Ritz
    vectors, and the next block (G V Y)^T, orthonormalised. Blocks are kept transposed because a
    batched (k x c)(c x c) product is about twice as fast as (c x c)(c x k) in MKL at these sizes.
    """
    Ut = torch.bmm(Vt, S.transpose(1, 2))  # (S V)^T, (B, k, r)
    theta, Y = torch.linalg.eigh(Ut @ Ut.transpose(1, 2))  # ascending, (B, k), (B, k, k)
    theta, Yt = theta.flip(-1), Y.flip(-1).transpose(1, 2)
    Wt = torch.bmm(torch.bmm(Yt, Ut), S)  # (G V Y)^T, (B, k, c)
    Rt = Wt - torch.bmm(Yt, Vt) * theta[:, :, None]
    res2 = torch.cumsum((Rt * Rt).sum(2), dim=1)
    return theta, res2, torch.linalg.qr(Wt.transpose(1, 2))[0].transpose(1, 2)


def _power_step(S: Tensor, Vt: Tensor, F2: Tensor, growth: float) -> tuple[Tensor, Tensor, Tensor]:
    r"""One power step on G = S^T S with the block's first row v (unit): the cheap certificate of
    long lags, where one direction holds more than half of F^2 = \|S\|_F^2.

    \theta = \|S v\|^2 \le \lambda_1; the complement of v has trace F^2 - \theta, so with
    \eta = 2\theta - F^2 > 0 and r = G v - \theta v the residual bound gives
    \lambda_1 \le \theta + \|r\|^2 / \eta. Returns (theta (B,), certified to ``growth`` = (1 + rtol)^2 (B,),
    the block with its first row moved to G v / \|G v\|: no longer orthonormal).
    """
    v = Vt[:, :1]  # (B, 1, c)
    u = torch.bmm(v, S.transpose(1, 2))  # (S v)^T
    w = torch.bmm(u, S)  # (G v)^T
    theta = (u * u).sum((1, 2))
    r = w - theta[:, None, None] * v
    eta = 2 * theta - F2
    ok = (eta > 0) & ((r * r).sum((1, 2)) <= eta * theta * (growth - 1))
    norm = torch.linalg.vector_norm(w, dim=(1, 2))
    Vt[:, :1] = torch.where(norm[:, None, None] > 0, w / torch.where(norm > 0, norm, 1)[:, None, None], v)
    return theta, ok, Vt


def _residual_bound(theta: Tensor, res2: Tensor, complement: Tensor) -> Tensor:
    """Upper bound on sigma_1^2 from the quadratic residual bound (Mathias 1998; Li & Li 2005).

    For each k', ``complement[:, k'-1]`` bounds the top eigenvalue of G compressed to the
    complement of the first k' Ritz vectors; where theta_k' exceeds it by eta > 0,
    lambda_1 <= theta_1 + ||R_k'||^2 / eta. Returns the least such bound (B,), inf where none applies.
    """
    eta = theta - complement
    applicable = eta > 0
    return torch.where(applicable, theta[:, :1] + res2 / torch.where(applicable, eta, 1), math.inf).amin(1)


def _trace_bound_holds(theta: Tensor, res2: Tensor, F2: Tensor, growth: float) -> Tensor:
    """Certificate 1: the residual bound with each complement bounded by its trace F^2 - sum theta_i,
    within ``growth`` = (1 + rtol)^2 of theta_1. theta, res2 (B, k); F2 (B,). Returns (B,) bool."""
    return _residual_bound(theta, res2, F2[:, None] - torch.cumsum(theta, dim=1)) <= theta[:, 0] * growth


def _top_eigenvalue(G: Tensor) -> Tensor:
    """lambda_max of a batch of symmetric G."""
    return batched_lapack(lambda part: torch.linalg.eigvalsh(part)[:, -1], G).clamp_min(0)


def _rows(keep: Tensor, *tensors: Tensor) -> tuple[Tensor, ...]:
    """The rows where ``keep`` (B,) holds, of each tensor (B, ...): the tensors themselves, not
    copies, when it holds everywhere (the short lags, where every row goes on to the Gram matrix)."""
    if bool(keep.all()):
        return tensors
    index = torch.nonzero(keep).squeeze(1)
    return tuple(t[index] for t in tensors)


@dataclass
class Tally:
    """How each spectral norm was settled."""

    power: int = 0  # residual bound after one power step, the complement bounded by its trace
    ritz: int = 0  # the same after block Rayleigh-Ritz steps
    moment: int = 0  # residual bound, the complement bounded by tr(C^2)^(1/2) from the Gram matrix
    cholesky: int = 0  # mu I - G positive definite (a Cholesky factorisation exists)
    exact: int = 0  # LAPACK eigen-solve

    @property
    def certified(self) -> int:
        """Settled by a certificate, not an eigen-solve."""
        return self.power + self.ritz + self.moment + self.cholesky

    def add(self, other: "Tally") -> None:
        for name, count in vars(other).items():
            setattr(self, name, getattr(self, name) + count)


def certified_spectral(S: Tensor, V: Tensor, F2: Tensor, rtol: float, tally: Tally, max_iter: int = 3,
                       cholesky: bool = True, power_step: bool = True, orthonormal: bool = True) -> tuple[Tensor, Tensor]:
    r"""sigma_1(S)^2 for a batch S (B, r, c), each within relative ``rtol`` (in sigma), never above.

    ``V`` (B, k, c) is a block (warm from the previous lag) whose rows are ``orthonormal`` or,
    after a power step, whose first row is a unit vector; F2 (B,)
    = \|S\|_F^2. Five certificates, cheapest first, each an upper bound
    \lambda_1(G) \le \mu = \theta_1 (1 + rtol)^2 for G = S^T S and the Ritz value \theta_1 \le \lambda_1:

    0. with ``power_step``, one power step on the block's first row (:func:`_power_step`);
    1. the residual bound of :func:`_residual_bound` after up to ``max_iter`` subspace steps,
       the complement C of the first k' Ritz vectors bounded by its trace F^2 - \sum_{i \le k'} \theta_i;
    2. the same with C bounded by \mathrm{tr}(C^2)^{1/2}: pinching G to the Ritz block and its
       complement gives \mathrm{tr}\,C^2 \le \|G\|_F^2 - \sum_{i \le k'} \theta_i^2, which stays
       small when the tail is long and flat (its trace does not);
    3. a Cholesky factorisation of \mu I - G, which exists iff every eigenvalue of G is below \mu;
    4. else an eigen-solve (LAPACK).

    ``max_iter=1, cholesky=False`` skips to the Gram matrix where the residual bounds are known
    to fail (the first lags: no dominant direction yet). Paths 2-4 work on the Gram matrix, so
    in float32 they hold up to its rounding (m eps F^2). Returns (sigma^2, warm blocks for the next call:
    orthonormal unless ``power_step``).
    """
    B = S.shape[0]
    growth = (1 + rtol) ** 2
    if power_step:
        sigma2, ok, V = _power_step(S, V, F2, growth)
        settled = int(ok.sum())
        if settled == B:
            tally.power += B
            return sigma2, V
        if settled * 2 > B:  # the rest on a copy; else all of them (cheaper than copying most)
            rest = torch.nonzero(~ok).squeeze(1)
            sigma2[rest], V[rest] = certified_spectral(S[rest], V[rest], F2[rest], rtol, tally, max_iter, cholesky,
                                                       power_step=False, orthonormal=False)
            tally.power += settled
            return sigma2, V
    if power_step or not orthonormal:  # a power step moves the first row only
        V = torch.linalg.qr(V.transpose(1, 2))[0].transpose(1, 2)
    theta, res2, V = _ritz_step(S, V)
    ok = _trace_bound_holds(theta, res2, F2, growth)
    sigma2 = theta[:, 0].clone()
    if bool(ok.all()):
        tally.ritz += B
        return sigma2, V
    # the rest: more steps on one copy of their matrices (a converged one costs a cheap step,
    # less than copying the batch again)
    todo = torch.arange(B, device=S.device)
    todo, S_todo, V_todo, F2_todo, theta, res2 = _rows(~ok, todo, S, V, F2, theta, res2)
    ok = torch.zeros(todo.numel(), dtype=torch.bool, device=S.device)
    for _ in range(max_iter - 1):
        theta, res2, V_todo = _ritz_step(S_todo, V_todo)
        ok |= _trace_bound_holds(theta, res2, F2_todo, growth)
        if bool(ok.all()):
            break
    if V_todo is not V:  # (no extra steps on the whole batch: the same tensor)
        V[todo] = V_todo
    sigma2[todo] = torch.maximum(sigma2[todo], theta[:, 0])  # every Ritz value is a lower bound
    tally.ritz += B - todo.numel() + int(ok.sum())
    if bool(ok.all()):
        return sigma2, V
    todo, S_todo, theta, res2, F2_todo = _rows(~ok, todo, S_todo, theta, res2, F2_todo)
    G = torch.bmm(S_todo.transpose(1, 2), S_todo)
    mu = sigma2[todo] * growth
    # tr(C^2) <= ||G||_F^2 - sum theta_i^2, plus the Gram matrix's rounding (||dG||_F <= m eps F^2)
    margin = 4 * G.shape[-1] * torch.finfo(G.dtype).eps * F2_todo[:, None] ** 2
    fro2 = torch.linalg.vector_norm(G, dim=(1, 2))[:, None] ** 2
    moment_tail = (fro2 - torch.cumsum(theta * theta, dim=1)).clamp_min(0) + margin
    ok = _residual_bound(theta, res2, moment_tail.sqrt()) <= mu
    tally.moment += int(ok.sum())
    if bool(ok.all()):
        return sigma2, V
    todo, G, mu = _rows(~ok, todo, G, mu)
    if cholesky:
        shifted = G.neg()
        shifted.diagonal(dim1=1, dim2=2).add_(mu[:, None])  # mu I - G
        below = batched_lapack(lambda part: torch.linalg.cholesky_ex(part)[1], shifted) == 0
        tally.cholesky += int(below.sum())
        todo, G = _rows(~below, todo, G)
    if todo.numel():
        sigma2[todo] = _top_eigenvalue(G)
        tally.exact += int(todo.numel())
    return sigma2, V


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

    def times(self, P: Tensor) -> Tensor:
        B, m, c = self.dense.shape
        out = torch.bmm(self.dense, P[:, :c])  # (B, m, m)
        out.view(B, self.diagonals.shape[1], -1, m).addcmul_(self.diagonals[..., None], P[:, None, c:])
        return out


def _times(factor: Tensor | _Split, P: Tensor) -> Tensor:
    """factor @ P, batched."""
    return factor.times(P) if isinstance(factor, _Split) else torch.bmm(factor, P)


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


def all_pairs(jac: Jacobians, T: int, m: int, *, views: tuple[View, ...] = (View("state"),),
              stride: int = 1, rtol: float = 1e-5, dtype=torch.float32, device="cpu",
              progress: Callable[[float], None] | None = None, diagonal_from: int | None = None,
              before: int | None = None) -> PairNorms:
    r"""log10 spectral and Frobenius norms of dz_s/dz_t for all grid pairs t <= s.

    ``jac(steps)`` returns the analytic J_k for 1-based ``steps`` (K,) as (K, m, m), or as
    (\hat J_k, log scales) with J_k = e^{s_k} \hat J_k (:func:`scaled`).
    ``diagonal_from`` = c declares that columns c: of every J_k are diagonal blocks (the LSTM's
    dz_t/dc_{t-1}: diag(dh/dc) over diag(f)), which halves the cost of each product.
    ``stride`` > 1 keeps every grid_th time index (display resolution); each product is still
    the exact product of every step in between. ``before`` = k computes only the pairs with s < k
    (the rest stay NaN: the steps from k on are undefined) and leaves J_k, J_k+1, .. unused.
    """
    grid = make_grid(T, stride)
    K = len(grid)
    spec = {v.name: np.full((K, K), np.nan) for v in views}
    fro = {v.name: np.full((K, K), np.nan) for v in views}
    for v in views:  # P(t, t) = I restricted to the view
        np.fill_diagonal(spec[v.name], 0.0 if v.row_range == v.col_range else -np.inf)
        np.fill_diagonal(fro[v.name], 0.5 * math.log10(v.size(m)) if v.row_range == v.col_range else -np.inf)
    result = PairNorms(grid=grid, log10_spectral=spec, log10_frobenius=fro, rtol=rtol)
    tally = result.tally
    reach = K if before is None else int(np.searchsorted(grid, before))  # grid points whose pairs are computed
    if reach < 2:
        return result

    itemsize = torch.empty((), dtype=dtype).element_size()
    if stride == 1:
        every_step = None
        if T * m * m * itemsize <= CHUNK_BYTES:  # built once, not once per lag
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
        """Every pair with a start in [a0, a1), lag by lag: one batched product per lag."""
        P = log_scale = None
        warm = {v.name: _unit_start(a1 - a0, v.size(m), dtype, device) for v in views}
        settled = {v.name: 0.0 for v in views}  # share certified at the previous lag (lag 1: flat)
        powered = {v.name: 0.0 for v in views}  # share the power step settled when last tried
        orthonormal = {v.name: True for v in views}  # the warm block's rows (not after a power step)
        for L in range(1, reach - a0):
            a_end = min(a1, reach - L)  # start indices a with a + L <= reach - 1
            nb = a_end - a0
            factor, B_log = blocks(a0 + L, a_end + L, P is None)
            P = factor.clone() if P is None else _times(factor, P[:nb])
            log_scale = torch.zeros(nb, dtype=torch.float64, device=device) if log_scale is None else log_scale[:nb]
            if B_log is not None:
                log_scale = log_scale + B_log
            norms = torch.linalg.vector_norm(P, dim=(1, 2))
            P /= torch.where(norms > 0, norms, 1)[:, None, None]
            log_scale = log_scale + torch.log(norms.double())  # -inf once a product is exactly 0
            rows_i, cols_i = np.arange(a0, a_end), np.arange(a0, a_end) + L
            for v in views:
                S = P if v.is_full() else P[:, v.rows, v.cols]
                F2 = (torch.ones(nb, dtype=P.dtype, device=device) if v.is_full()
                      else torch.linalg.vector_norm(S.reshape(nb, -1), dim=1) ** 2)  # a contiguous copy: 3x faster
                before = tally.certified
                # at short lags (flat spectra) the bounds fail: straight to the eigen-solve,
                # trying them again every 4th lag
                hopeless = settled[v.name] < 0.02 and L % 4 != 0
                # the power step pays where it settles most rows (one dominant direction, the
                # RNN's long lags; not the LSTM's, whose carousel keeps several): tried again every 8th lag
                power_step = not hopeless and (powered[v.name] > 0.5 or L % 8 == 0)
                before_power = tally.power
                sigma2, warm[v.name] = certified_spectral(S, warm[v.name][:nb], F2, rtol, tally,
                                                          max_iter=1 if hopeless else 3, cholesky=not hopeless,
                                                          power_step=power_step, orthonormal=orthonormal[v.name])
                orthonormal[v.name] = not power_step
                settled[v.name] = (tally.certified - before) / nb
                if power_step:
                    powered[v.name] = (tally.power - before_power) / nb
                log10_spec = (log_scale + 0.5 * torch.log(sigma2.double())) * LOG10E
                log10_fro = (log_scale + 0.5 * torch.log(F2.double())) * LOG10E
                spec[v.name][rows_i, cols_i] = log10_spec.cpu().numpy()
                fro[v.name][rows_i, cols_i] = log10_fro.cpu().numpy()
            report(nb)

    chunk = max(1, min(reach - 1, CHUNK_BYTES // (3 * m * m * itemsize)))
    for a0 in range(0, reach - 1, chunk):
        a1 = min(a0 + chunk, reach - 1)
        _run_split(sweep, a0, a1, reach, tally, device, progress,
                   done_before=_pairs_from(a0, reach), total=_pairs_from(reach - 1, reach))
    return result


def _pairs_from(a0: int, K: int) -> int:
    """Pairs (a, a + L), L >= 1, with a start a < a0 on a grid of K points."""
    return a0 * (K - 1) - a0 * (a0 - 1) // 2


SHORT_LAGS = 8  # lags with flat spectra cost about this many times a long lag (an eigen-solve each)


def _balanced_split(a0: int, a1: int, K: int) -> int:
    """The start b that splits [a0, a1) into two runs of about equal work: start a has lags
    1 .. K - 1 - a, the first ``SHORT_LAGS`` of them weighted ``SHORT_LAGS`` times."""
    lags = K - 1 - np.arange(a0, a1)
    work = np.cumsum(lags + (SHORT_LAGS - 1) * np.minimum(lags, SHORT_LAGS))
    return a0 + 1 + int(np.searchsorted(work, work[-1] / 2))


class _Stopped(Exception):
    """Raised in a sweep worker to stop it early."""


_SWEEPS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="explorer-pairs", initializer=_lapack_worker)
_in_sweep = threading.local()


def _run_split(sweep, a0: int, a1: int, K: int, tally: Tally, device, progress, done_before: int, total: int) -> None:
    """``sweep`` over starts [a0, a1), on the CPU as two halves in two single-threaded workers
    (in this thread where it has one thread only, e.g. ``EXPLORER_THREADS=1``).

    Most of a sweep is small batched ops (Ritz steps on k = 4 vectors, LAPACK on 64..128
    matrices) that one thread runs as fast as two; two halves side by side use both cores.
    Progress is reported from this thread (Streamlit's widgets belong to the script's thread).
    When one half fails, or the caller is interrupted while it waits (a Streamlit rerun raises
    from the progress callback), the other half stops at its next lag before the error goes on.
    """
    done = [0]
    stop = threading.Event()

    def show() -> None:
        if progress is not None:
            progress(min(1.0, (done_before + done[0]) / total))

    def report(count: int) -> None:
        done[0] += count  # one += per lag under the GIL; a lost update would only delay the bar
        if stop.is_set():
            raise _Stopped

    if torch.device(device).type != "cpu" or torch.get_num_threads() < 2 or a1 - a0 < 4:
        sweep(a0, a1, tally, lambda count: (report(count), show()))
        return
    b = min(max(_balanced_split(a0, a1, K), a0 + 1), a1 - 1)
    tallies = (Tally(), Tally())

    def half(lo: int, hi: int, part: Tally) -> None:
        _in_sweep.active = True
        try:
            sweep(lo, hi, part, report)
        finally:
            _in_sweep.active = False

    futures = [_SWEEPS.submit(half, a0, b, tallies[0]), _SWEEPS.submit(half, b, a1, tallies[1])]
    try:
        while not all(future.done() for future in futures):
            wait(futures, timeout=0.05, return_when=FIRST_EXCEPTION)
            if any(future.done() and future.exception() is not None for future in futures):
                break
            show()
    finally:
        stop.set()
        wait(futures)
    for future in futures:
        if future.exception() is not None and not isinstance(future.exception(), _Stopped):
            raise future.exception()  # a worker's error, here
    show()  # also where both halves ended before the first wait
    for part in tallies:
        tally.add(part)


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


def log10_singular_values(jac: Jacobians, t: int, s: int, m: int, dtype=torch.float64,
                          device="cpu") -> np.ndarray:
    """log10 of all singular values of dz_s/dz_t, descending, (m,): the renormalised product
    in ``dtype``, then a float64 SVD."""
    P, log_scale = product(jac, t, s, m, dtype=dtype, device=device)
    with np.errstate(divide="ignore"):
        return np.log10(torch.linalg.svdvals(P.double()).cpu().numpy()) + log_scale * LOG10E


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
    r"""The last column of :func:`all_pairs`' map alone: (lags k (K,), log10 \|dz_T/dz_{T-k}\|_2 (K,),
    log10 \|.\|_F (K,)) for the lags of ``make_grid(T, stride)``, ascending from 0.

    One backward chain, P(t - 1, T) = P(t, T) J_t, renormalised at every step (log space), keeps
    the product at each grid lag; then all of them are certified in one batch (cold start:
    :func:`certified_spectral`'s Ritz steps, Gram-matrix bounds and eigen-solves as needed).
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
