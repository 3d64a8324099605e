r"""The top K Lyapunov exponents of the Jacobian product along a whole sequence, by QR re-orthonormalisation.

For the per-step Jacobians J_k = \partial z_k/\partial z_{k-1} (k = 1..T, (m, m) each) and an orthonormal
frame Q_0 (m, K):

.. math::
    J_k Q_{k-1} = Q_k R_k \quad (\text{reduced QR},\ R_k\ (K, K)\ \text{with}\ R_k[i, i] \ge 0),\qquad
    \lambda_i = \frac{1}{T} \sum_{k=1}^{T} \log_{10} R_k[i, i],

in log10 per step, largest first: \lambda_1 + .. + \lambda_j is the growth rate of the volume of a j-dimensional
parallelotope carried by the product (Benettin et al. 1980), so \lambda_1 is that of \|P\|_2 and of a generic
vector, 10^{\lambda_1 T} \approx \|\partial z_T/\partial z_0\|_2. Only sums of logs are formed, so nothing under- or
overflows; each J_k is promoted to float64 (a float32 one exactly) and its log scale s_k
(:meth:`~explorer.cells.RecurrentCell.scaled_jacobians`: J_k = e^{s_k} \hat J_k) is added to every \log R_k[i, i].
One step costs an (m, m) x (m, K) product and the QR of an (m, K) matrix.

**Beside the theory.** The mean-field \chi (:mod:`explorer.theory`) is the growth per step of
\|P_k\|_F^2/n = E\|P_k v\|^2 for a random unit v: a typical vector's norm grows by \tfrac12 \log_{10}\chi per step.
For n x n random factors the top exponent is that less O(1/n) (the gap between E log and log E), so for a large
chaotic tanh RNN \lambda_1 \to \tfrac12 \log_{10}\chi (within 0.005 at n = 256 for typical seeds, tests). Where the
state settles to a fixed point, J_k \to J^* and \lambda_1 = \log_{10} \rho(J^*), above \tfrac12 \log_{10}\chi by the
finite-n edge of J^*'s spectrum.

**The frame.** Q_0 defaults to a seeded Gaussian (m, K) frame, orthonormalised, not the first K columns of I:
those span an invariant subspace whenever the Jacobians do not mix the units (identity init makes every
simple RNN's J_k = gain diag(g'(a_k)) diagonal), and the method would then return the exponents of units 1..K,
not the top K. Any generic frame gives the same limit; the finite-T estimates differ by O(1/T) (the frame's
transient). Pass ``q0`` to fix another.

**Diagonal recurrences** (minGRU, minLSTM, the LRU: registry ``jacobian == "diagonal"``) need no QR: the
product is diagonal (for the LRU, a rotation times |\lambda_j| per unit), so the exponents are exactly
\lambda_j = (1/T) \sum_k \log_{10} |d_{k,j}|, sorted, each ``modulus_multiplicity`` times.

**Overflow.** Where the forward pass overflowed at step k (:func:`~explorer.analysis.undefined_from`: the
first non-finite state, unless the cell's J does not depend on the state), every J_j with j >= k is undefined,
and so is every average that includes one: the running estimates are NaN from step k on, and the exponents
over the whole sequence (their last row) are NaN: "undefined", null in JSON, like the analysis's maps.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .config import ExperimentConfig
from .registry import cell_type

LOG10E = 1.0 / math.log(10.0)
APP_EXPONENTS = 32  # exponents the app computes: min(this, the state size)
CACHE_BYTES = 4 * 2**20  # Jacobians built this many bytes at a time (float64), as explorer.jacobian.chains
FRAME_SEED = 0

Jacobians = Callable[[Tensor], "tuple[Tensor, Tensor]"]  # 1-based steps (c,) -> (\hat J (c, m, m), s (c,))


def app_exponents(config: ExperimentConfig) -> int:
    """K of the app's Lyapunov spectrum for ``config``: min(state size, ``APP_EXPONENTS``)."""
    return min(config.hidden * cell_type(config.cell).state_units, APP_EXPONENTS)


def default_frame(m: int, K: int, device: torch.device | str = "cpu") -> Tensor:
    """The seeded generic orthonormal frame Q_0 (m, K), float64: the QR of a Gaussian matrix, R's diagonal > 0."""
    gen = torch.Generator(device="cpu").manual_seed(FRAME_SEED)
    Q, R = torch.linalg.qr(torch.randn(m, K, generator=gen, dtype=torch.float64))
    return (Q * torch.where(R.diagonal() < 0, -1.0, 1.0)).to(device)


def _frame(q0, m: int, K: int, device) -> Tensor:
    if q0 is None:
        return default_frame(m, K, device)
    Q = torch.as_tensor(np.asarray(q0) if not isinstance(q0, Tensor) else q0, dtype=torch.float64).to(device)
    if Q.shape != (m, K):
        raise ValueError(f"q0 must be ({m}, {K}), got {tuple(Q.shape)}")
    return Q


def qr_log_stretches(jac: Jacobians, T: int, m: int, K: int, *, q0=None, device="cpu") -> np.ndarray:
    r"""\log_{10} R_k[i, i] for k = 1..T, i < K: (T, K) float64 (-inf where R_k[i, i] = 0: the product's rank
    fell below i + 1). Columns of Q_k are sign-flipped so that R_k's diagonal is >= 0."""
    from . import backend

    Q = _frame(q0, m, K, device)
    rows = torch.empty(T, K, dtype=torch.float64, device=device)
    chunk = max(1, min(64, CACHE_BYTES // (8 * m * m)))
    # small ops (an (m, K) QR per step): one CPU thread, which is faster than two at these sizes and never
    # waits at a contended OpenMP barrier (two threads took 2-24 s for T = 2000, n = 512, K = 32; one, 2-2.6 s)
    with backend.threads(1 if torch.device(device).type == "cpu" else backend.THREADS):
        _qr_steps(jac, T, Q, rows, chunk, device)
    return rows.cpu().numpy()


def _qr_steps(jac: Jacobians, T: int, Q: Tensor, rows: Tensor, chunk: int, device) -> None:
    for k0 in range(1, T + 1, chunk):
        steps = torch.arange(k0, min(k0 + chunk, T + 1), device=device)
        J, logs = jac(steps)
        J, logs = J.to(device=device, dtype=torch.float64), logs.to(device=device, dtype=torch.float64)
        for i in range(J.shape[0]):
            Q, R = torch.linalg.qr(J[i] @ Q)  # reduced: Q (m, K), R (K, K)
            d = R.diagonal()
            Q = Q * torch.where(d < 0, -1.0, 1.0)  # R's diagonal made positive
            rows[k0 - 1 + i] = torch.log10(d.abs()) + logs[i] * LOG10E


def running(log_stretches: np.ndarray, K: int) -> np.ndarray:
    r"""The estimates at every horizon t: row t - 1 holds (1/t) \sum_{k <= t} of each column of ``log_stretches``
    (T, u), sorted descending, the first K: (T, K). A NaN row (undefined) stays NaN."""
    T = log_stretches.shape[0]
    means = np.cumsum(log_stretches, axis=0) / np.arange(1, T + 1)[:, None]  # -inf (a zero R_k[i, i]) stays -inf
    out = -np.sort(-means, axis=1)[:, :K]  # descending
    out[np.isnan(means).any(axis=1)] = np.nan
    return out


def lyapunov_from_jacobians(jacobians, K: int, *, log_scales=None, q0=None) -> np.ndarray:
    r"""The top K exponents (K,) of the product of ``jacobians`` (T, m, m) (J_1 first; numpy or torch, any float
    dtype, used in float64), each J_k times e^{s_k} for natural-log ``log_scales`` (T,) when given."""
    J = torch.as_tensor(np.asarray(jacobians) if not isinstance(jacobians, Tensor) else jacobians)
    T, m = J.shape[0], J.shape[-1]
    K = min(int(K), m)
    s = (torch.zeros(T, dtype=torch.float64) if log_scales is None
         else torch.as_tensor(np.asarray(log_scales, dtype=np.float64)))
    rows = qr_log_stretches(lambda steps: (J[steps - 1], s[steps - 1]), T, m, K, q0=q0, device=J.device)
    return running(rows, K)[-1]


def diagonal_log_stretches(log_moduli: np.ndarray | Tensor, multiplicity: int = 1) -> np.ndarray:
    r"""For a diagonal recurrence: \log_{10} |d_{k,j}| (T, u * multiplicity) from natural-log moduli (T, u),
    each unit repeated ``multiplicity`` times (the LRU's Re and Im share |\lambda_j|)."""
    logs = log_moduli.double().cpu().numpy() if isinstance(log_moduli, Tensor) else np.asarray(log_moduli, np.float64)
    return np.repeat(logs * LOG10E, multiplicity, axis=1)


def running_of_cell(cell, trace, K: int, *, q0=None) -> np.ndarray:
    """The running estimates (T, K) (:func:`running`) of sequence 0 of ``trace``, a forward pass of ``cell``:
    QR for dense Jacobians, the closed form for diagonal ones; NaN from the first undefined step on."""
    from .analysis import undefined_from

    first = trace.sequence(0)
    T, m = first.x.shape[0], cell.state_size
    K = min(int(K), m)
    if K < 1:
        raise ValueError(f"K must be at least 1, got {K}")
    undefined = undefined_from(cell, trace)
    defined = T if undefined is None else undefined - 1  # steps 1..defined have a Jacobian
    device = trace.z.device
    if cell_type(cell.kind).jacobian == "diagonal":
        steps = torch.arange(1, defined + 1, device=device)
        rows = diagonal_log_stretches(cell.log_moduli(first, steps)[:, 0], cell.modulus_multiplicity)
        width = rows.shape[1]
    else:
        def jac(steps: Tensor) -> tuple[Tensor, Tensor]:
            J, logs = cell.scaled_jacobians(first, steps)
            return J[:, 0], logs[:, 0]

        rows = qr_log_stretches(jac, defined, m, K, q0=q0, device=device)
        width = K
    out = np.full((T, K), np.nan)
    if defined:
        out[:defined] = running(rows.reshape(defined, width), K)
    return out


def lyapunov_of_cell(cell, trace, K: int, *, q0=None) -> np.ndarray:
    """The top K exponents (K,) in log10 per step of sequence 0 of ``trace``; NaN where the overflow leaves them undefined."""
    return running_of_cell(cell, trace, K, q0=q0)[-1]


def to_json(exponents: np.ndarray) -> list[float | None]:
    """Exponents as a JSON list: null where undefined (NaN: the forward pass overflowed) or -inf (an exactly
    rank-deficient product, e.g. every relu off at a step)."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(exponents, dtype=np.float64)]


def lyapunov(config: ExperimentConfig, K: int = 8, *, q0=None, device: torch.device | str | None = None) -> np.ndarray:
    """The top min(K, m) Lyapunov exponents (log10 per step, largest first) of the cell and inputs ``config``
    describes, sequence 0, as :func:`~explorer.analysis.analyze` traces them."""
    from . import backend
    from .analysis import traced

    with backend.threads(backend.THREADS):
        run = traced(config, device)
        return lyapunov_of_cell(run.cell, run.trace, K, q0=q0)
