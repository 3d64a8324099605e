r"""Certified spectral norms of a batch of matrices: pure functions of (B, r, c) batches, no state.

For S (B, r, c) and G = S^T S, :func:`certified_spectral` returns \sigma_1(S)^2 = \lambda_1(G)
for every matrix of the batch, each at most ``rtol`` (relative, in \sigma) below that of S and never
above it: a Ritz value \theta_1 \le \lambda_1 (a lower bound) is accepted once an upper bound
\lambda_1 \le \mu = \theta_1 (1 + rtol)^2 is proved. The ways to prove it, cheapest first, are the
members of :class:`Certificate` (listed once there; the docs below and :class:`Tally`'s fields are
made from that list). The paths through the Gram matrix (moment, Cholesky, eigen-solve) hold
up to its rounding in float32 (m eps F^2). :func:`exact_spectral` is the reference every
certificate is tested against: the top eigenvalue of the float64 Gram matrix.

Which certificates to try, and how many Rayleigh-Ritz steps, is a :class:`Plan` (named presets:
``Plan.FULL``, ``Plan.NO_POWER``, ``Plan.FLAT``).
"""
from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from .workers import batched_lapack

BLOCK = 4  # subspace size: covers the dominant complex pairs of rotating dynamics


class Certificate(enum.Enum):
    r"""How a spectral norm is settled, cheapest first. The value names the :class:`Tally` field.

    Each but ``EXACT`` proves \lambda_1(G) \le \mu = \theta_1 (1 + rtol)^2 for the Ritz value \theta_1.
    """

    POWER = ("power", r"""one power step on the warm block's first row v (:func:`_power_step`), where one
       direction holds more than half of F^2 = \|S\|_F^2 (the RNN's long lags): \theta = \|S v\|^2, and
       the complement of v has trace F^2 - \theta, so with \eta = 2\theta - F^2 > 0 and r = G v - \theta v
       the residual bound gives \lambda_1 \le \theta + \|r\|^2 / \eta.""")
    RITZ = ("ritz", r"""block Rayleigh-Ritz steps (k = 4 vectors, warm from the previous lag: long
       products converge to low rank; :func:`_ritz_step`) give \theta_1 \ge .. \ge \theta_k; the
       complement C of the first k' Ritz vectors has trace F^2 - \sum_{i \le k'} \theta_i, which bounds
       its eigenvalues; when \theta_{k'} exceeds that by \eta > 0, the quadratic residual bound
       (Mathias 1998; Li & Li 2005; :func:`_residual_bound`) gives \lambda_1 \le \theta_1 + \|R_{k'}\|^2 / \eta.""")
    MOMENT = ("moment", r"""the same bound with C bounded by \mathrm{tr}(C^2)^{1/2}: pinching G to the Ritz
       block and its complement gives \mathrm{tr}\,C^2 \le \|G\|_F^2 - \sum_{i \le k'} \theta_i^2, from the
       Gram matrix, which stays small at the middle lags, where a long flat tail has a large trace.""")
    CHOLESKY = ("cholesky", r"""a Cholesky factorisation of \mu I - G, which exists iff every eigenvalue
       of G is below \mu (Sylvester).""")
    REFINED = ("refined", r"""the crowded top of the short lags, where no residual bound holds: a sharper
       \theta_1 from subspace iteration on H = (G/s)^8 (three squarings, s \le \lambda_1; k = 8 vectors,
       3 steps: each damps the directions below the 8th by (\lambda_9/\lambda_1)^8) and its Rayleigh-Ritz
       value on G, then the Cholesky test of \mu I - G: the eigen-solve's answer at about half its cost
       (:func:`_refined`).""")
    EXACT = ("exact", r"""else an eigen-solve of G (LAPACK): the rare rows the refined value leaves short.""")

    def __new__(cls, field: str, text: str) -> "Certificate":
        member = object.__new__(cls)
        member._value_ = field
        member.text = text
        return member


def _listing() -> str:
    """The certificates as a numbered list, for the docstrings."""
    return "\n".join(f"    {i}. ``{how.value}``: {how.text}" for i, how in enumerate(Certificate))


class _Counts:
    """The methods of :class:`Tally`."""

    def settle(self, how: Certificate, count: int) -> None:
        """Count ``count`` norms settled by ``how``."""
        setattr(self, how.value, getattr(self, how.value) + count)

    @property
    def certified(self) -> int:
        """Settled by a certificate, not an eigen-solve."""
        return sum(getattr(self, how.value) for how in Certificate if how is not Certificate.EXACT)

    def add(self, other: "Tally") -> None:
        for how in Certificate:
            self.settle(how, getattr(other, how.value))


Tally = dataclasses.make_dataclass("Tally", [(how.value, int, dataclasses.field(default=0)) for how in Certificate],
                                   bases=(_Counts,))
Tally.__module__ = __name__  # (pickled by this name: Streamlit's cache)
Tally.__doc__ = ("How each spectral norm was settled: one count per :class:`Certificate`, named by its value.\n\n"
                 + _listing())


@dataclass(frozen=True)
class Plan:
    """What :func:`certified_spectral` tries on a batch, in the order of :class:`Certificate`.

    ``tries``: the certificates to try. ``ritz`` (its Ritz values are what every later bound
    accepts) and ``exact`` (the last resort) always; ``power`` only pays where one direction
    dominates, ``cholesky`` fails where the spectrum is flat (the Ritz value is short of
    \\lambda_1 by more than rtol), and ``refined`` is the flat spectra's way instead. ``ritz_steps``: Rayleigh-Ritz
    steps at most before the Gram matrix. ``orthonormal``: whether the block passed in has
    orthonormal rows; after a power step only its first row is a unit vector, and it is
    orthonormalised before the Ritz step.

    Presets: ``Plan.FULL`` (every certificate, 3 Ritz steps: a cold start, or long lags where the
    power step pays), ``Plan.NO_POWER`` (the same without the power step: several leading
    directions, the LSTM's carousel), ``Plan.FLAT`` (the first lags, where no residual bound
    holds yet: one Ritz step, then the Gram matrix and the refined value; no power step, no plain Cholesky).
    """

    tries: frozenset[Certificate] = frozenset(Certificate)
    ritz_steps: int = 3
    orthonormal: bool = True

    FULL: ClassVar["Plan"]
    NO_POWER: ClassVar["Plan"]
    FLAT: ClassVar["Plan"]

    def __post_init__(self) -> None:
        object.__setattr__(self, "tries", frozenset(Certificate(how) for how in self.tries))
        missing = {Certificate.RITZ, Certificate.EXACT} - self.tries
        if missing:
            raise ValueError(f"a plan always tries {sorted(how.value for how in missing)}")
        if self.ritz_steps < 1:
            raise ValueError(f"ritz_steps must be at least 1, got {self.ritz_steps}")

    def uses(self, how: Certificate) -> bool:
        return how in self.tries

    def without(self, *hows: Certificate) -> "Plan":
        return dataclasses.replace(self, tries=self.tries - set(hows))

    def replace(self, **changes) -> "Plan":
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        tries = ", ".join(how.value for how in Certificate if how in self.tries)
        return f"Plan(tries=[{tries}], ritz_steps={self.ritz_steps}, orthonormal={self.orthonormal})"


Plan.FULL = Plan()
Plan.NO_POWER = Plan.FULL.without(Certificate.POWER)
Plan.FLAT = Plan.FULL.without(Certificate.POWER, Certificate.CHOLESKY).replace(ritz_steps=1)


def _unit_start(count: int, size: int, dtype, device, seed: int = 12345) -> Tensor:
    """A fixed start block with orthonormal rows (count, k, size), the same for every run."""
    gen = torch.Generator().manual_seed(seed)
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
    r"""One power step on G = S^T S with the block's first row v (unit): certificate ``power``.

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
    """Certificate ``ritz``: the residual bound with each complement bounded by its trace F^2 - sum theta_i,
    within ``growth`` = (1 + rtol)^2 of theta_1. theta, res2 (B, k); F2 (B,). Returns (B,) bool."""
    return _residual_bound(theta, res2, F2[:, None] - torch.cumsum(theta, dim=1)) <= theta[:, 0] * growth


REFINE_SQUARINGS = 3  # H = (G/s)^8
REFINE_STEPS = 3  # subspace steps on H at rtol 1e-5 (float32); more in proportion to log(rtol) below that
CHOLESKY_BLOCK = 32  # LAPACK's own Cholesky of n = 128 costs ~4 products here; in blocks of 32, about one


def _positive_definite(A: Tensor) -> Tensor:
    r"""Whether each symmetric A (B, c, c) is positive definite: its Cholesky factorisation exists (B,) bool.

    On the CPU from c = 64 a right-looking blocked factorisation, A_{22} \leftarrow A_{22} - L_{21} L_{21}^T
    with L_{21} = A_{21} L_{11}^{-T}, batched over the matrices (LAPACK factorises them one by one, and its
    per-matrix cost at n = 128 is about four batched products); LAPACK's own elsewhere."""
    c = A.shape[-1]
    if A.device.type != "cpu" or c < 2 * CHOLESKY_BLOCK:
        return torch.linalg.cholesky_ex(A)[1] == 0
    A = A.clone()
    ok = torch.ones(A.shape[0], dtype=torch.bool, device=A.device)
    for j in range(0, c, CHOLESKY_BLOCK):
        e = min(j + CHOLESKY_BLOCK, c)
        L11, info = torch.linalg.cholesky_ex(A[:, j:e, j:e])
        ok &= info == 0
        if e == c:
            break
        L21 = torch.linalg.solve_triangular(L11.transpose(1, 2), A[:, e:, j:e], upper=True, left=False)
        A[:, e:, e:].baddbmm_(L21, L21.transpose(1, 2), alpha=-1)
    return ok


def _all_below(G: Tensor, mu: Tensor) -> Tensor:
    """Whether every eigenvalue of each symmetric G (B, c, c) is below mu (B,): mu I - G positive definite (Sylvester),
    on the LAPACK workers. (B,) bool."""
    shifted = G.neg()
    shifted.diagonal(dim1=1, dim2=2).add_(mu[:, None])
    return batched_lapack(_positive_definite, shifted)


def _refine_steps(rtol: float) -> int:
    """Subspace steps on H for a Ritz value within ``rtol``: its error is the square of the block's angle,
    which each step damps by a constant factor."""
    return max(REFINE_STEPS, math.ceil(REFINE_STEPS * math.log(rtol) / math.log(1e-5)))


def _refined(G: Tensor, theta: Tensor, F2: Tensor, Vt: Tensor, rtol: float) -> tuple[Tensor, Tensor, Tensor]:
    r"""Certificate ``refined`` for G (B, c, c) with Ritz values ``theta`` (B,) \le \lambda_1 and the warm
    block V^T (B, k, c), orthonormal rows.

    With s = \max(\theta, F^2/c) \le \lambda_1 (so the top of H = (G/s)^8 is at least 1, and at most c^8: no
    overflow), 3 steps (at rtol 1e-5; :func:`_refine_steps`) of subspace iteration on H from [V^T; a fixed block]
    (8 rows) and a Rayleigh-Ritz step on G give \theta' \le \lambda_1; \mu = \max(\theta, \theta')(1 + rtol)^2 is
    certified where \mu I - G is positive definite (:func:`_all_below`). Returns (the lower bound (B,), certified
    (B,), the top k Ritz vectors as the next warm block (B, k, c), orthonormal rows)."""
    B, c, _ = G.shape
    k = Vt.shape[1]
    scale = torch.maximum(theta, F2 / c).clamp_min(torch.finfo(G.dtype).tiny)
    H = G / scale[:, None, None]
    for _ in range(REFINE_SQUARINGS):
        H = torch.bmm(H, H)
    extra = _unit_start(B, c, G.dtype, G.device, seed=54321)[:, : min(2 * BLOCK, c) - k]
    Xt = torch.cat([Vt, extra], 1)
    for _ in range(_refine_steps(rtol)):  # (k x c)(c x c): H is symmetric, X^T H = (H X)^T
        Xt = torch.linalg.qr(torch.bmm(Xt, H).transpose(1, 2))[0].transpose(1, 2)
    values, Y = torch.linalg.eigh(torch.bmm(torch.bmm(Xt, G), Xt.transpose(1, 2)))  # ascending
    lower = torch.maximum(theta, values[:, -1])
    return lower, _all_below(G, lower * (1 + rtol) ** 2), torch.bmm(Y.flip(-1).transpose(1, 2)[:, :k], Xt)


def _top_eigenvalue(G: Tensor) -> Tensor:
    """lambda_max of a batch of symmetric G (B, c, c), on the LAPACK workers."""
    return batched_lapack(lambda part: torch.linalg.eigvalsh(part)[:, -1], G).clamp_min(0)


def exact_spectral(S: Tensor) -> Tensor:
    """sigma_1(S)^2 (B,) for S (B, r, c), float64: the top eigenvalue of the float64 Gram matrix S^T S.

    The reference path (``all_pairs(..., method="exact")``): no certificate, one eigen-solve per matrix."""
    S = S.double()
    return _top_eigenvalue(torch.bmm(S.transpose(1, 2), S))


def _rows(keep: Tensor, *tensors: Tensor) -> tuple[Tensor, ...]:
    """The rows where ``keep`` (B,) holds, of each tensor (B, ...): the tensors themselves, not
    copies, when it holds everywhere (the short lags, where every row goes on to the Gram matrix)."""
    if bool(keep.all()):
        return tensors
    index = torch.nonzero(keep).squeeze(1)
    return tuple(t[index] for t in tensors)


def certified_spectral(S: Tensor, V: Tensor, F2: Tensor, rtol: float, tally: Tally,
                       plan: Plan = Plan.FULL) -> tuple[Tensor, Tensor]:
    r"""sigma_1(S)^2 for a batch S (B, r, c), each within relative ``rtol`` (in sigma), never above.

    ``V`` (B, k, c) is a block (warm from the previous lag) whose rows are orthonormal or, after
    a power step, whose first row is a unit vector (``plan.orthonormal``); F2 (B,) = \|S\|_F^2.
    The certificates of ``plan.tries``, cheapest first, each an upper bound
    \lambda_1(G) \le \mu = \theta_1 (1 + rtol)^2 for G = S^T S and the Ritz value \theta_1 \le \lambda_1:

    <certificates>

    Each row goes on to the next certificate only where the previous ones failed, and ``tally``
    counts which one settled it. Returns (sigma^2 (B,), warm blocks for the next call:
    orthonormal unless the plan tries the power step).
    """
    B = S.shape[0]
    growth = (1 + rtol) ** 2
    if plan.uses(Certificate.POWER):
        sigma2, ok, V = _power_step(S, V, F2, growth)
        settled = int(ok.sum())
        if settled == B:
            tally.settle(Certificate.POWER, B)
            return sigma2, V
        if settled * 2 > B:  # the rest on a copy; else all of them (cheaper than copying most)
            rest = torch.nonzero(~ok).squeeze(1)
            sigma2[rest], V[rest] = certified_spectral(S[rest], V[rest], F2[rest], rtol, tally,
                                                       plan.without(Certificate.POWER).replace(orthonormal=False))
            tally.settle(Certificate.POWER, settled)
            return sigma2, V
    if plan.uses(Certificate.POWER) or not plan.orthonormal:  # a power step moves the first row only
        V = torch.linalg.qr(V.transpose(1, 2))[0].transpose(1, 2)
    theta, res2, V = _ritz_step(S, V)
    ok = _trace_bound_holds(theta, res2, F2, growth)
    sigma2 = theta[:, 0].clone()
    if bool(ok.all()):
        tally.settle(Certificate.RITZ, B)
        return sigma2, V
    # the rest: more steps on one copy of their matrices (a converged one costs a cheap step,
    # less than copying the batch again)
    todo = torch.arange(B, device=S.device)
    todo, S_todo, V_todo, F2_todo, theta, res2 = _rows(~ok, todo, S, V, F2, theta, res2)
    ok = torch.zeros(todo.numel(), dtype=torch.bool, device=S.device)
    for _ in range(plan.ritz_steps - 1):
        theta, res2, V_todo = _ritz_step(S_todo, V_todo)
        ok |= _trace_bound_holds(theta, res2, F2_todo, growth)
        if bool(ok.all()):
            break
    if V_todo is not V:  # (no extra steps on the whole batch: the same tensor)
        V[todo] = V_todo
    sigma2[todo] = torch.maximum(sigma2[todo], theta[:, 0])  # every Ritz value is a lower bound
    tally.settle(Certificate.RITZ, B - todo.numel() + int(ok.sum()))
    if bool(ok.all()):
        return sigma2, V
    todo, S_todo, theta, res2, F2_todo = _rows(~ok, todo, S_todo, theta, res2, F2_todo)
    G = torch.bmm(S_todo.transpose(1, 2), S_todo)
    mu = sigma2[todo] * growth
    if plan.uses(Certificate.MOMENT):
        # tr(C^2) <= ||G||_F^2 - sum theta_i^2, plus the Gram matrix's rounding (||dG||_F <= m eps F^2)
        margin = 4 * G.shape[-1] * torch.finfo(G.dtype).eps * F2_todo[:, None] ** 2
        fro2 = torch.linalg.vector_norm(G, dim=(1, 2))[:, None] ** 2
        moment_tail = (fro2 - torch.cumsum(theta * theta, dim=1)).clamp_min(0) + margin
        ok = _residual_bound(theta, res2, moment_tail.sqrt()) <= mu
        tally.settle(Certificate.MOMENT, int(ok.sum()))
        if bool(ok.all()):
            return sigma2, V
        todo, G, mu = _rows(~ok, todo, G, mu)
    if plan.uses(Certificate.CHOLESKY):
        below = _all_below(G, mu)
        tally.settle(Certificate.CHOLESKY, int(below.sum()))
        todo, G = _rows(~below, todo, G)
    if plan.uses(Certificate.REFINED) and todo.numel():
        lower, ok, warm = _refined(G, sigma2[todo], F2[todo], V[todo], rtol)
        sigma2[todo], V[todo] = lower, warm
        tally.settle(Certificate.REFINED, int(ok.sum()))
        todo, G = _rows(~ok, todo, G)
    if todo.numel():
        sigma2[todo] = _top_eigenvalue(G)
        tally.settle(Certificate.EXACT, int(todo.numel()))
    return sigma2, V


if certified_spectral.__doc__:  # (None under python -OO)
    certified_spectral.__doc__ = certified_spectral.__doc__.replace("    <certificates>", _listing())

