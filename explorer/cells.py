"""Recurrent cells with ``torch.nn.RNN``'s parameter names, and their analytic Jacobians.

Each cell is an ``nn.Module`` whose ``state_dict()`` keys are those of the matching
``torch.nn`` module (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``),
so weights copy across in either direction. ``run`` is differentiable and batched,
so the training lab uses the same cells as the static analysis.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .config import ExperimentConfig

LN_EPS = 1e-5  # Ba, Kiros & Hinton (2016)
BN_EPS = 1e-5

ACTIVATION = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "linear": lambda a: a,
}
# gamma = sup |g'|, the constant of the lecture's bound ||dh_s/dh_t|| <= (gamma sigma_max(W_hh))^(s-t)
GAMMA = {"tanh": 1.0, "relu": 1.0, "sigmoid": 0.25, "linear": 1.0}


LOG4 = math.log(4.0)


def log_activation_grad(name: str, pre: Tensor) -> Tensor:
    r"""\log g'(a) from the pre-activation a, in float64 and in closed forms that keep full relative
    precision where g saturates (1 - 	anh^2 a rounds to 0 once |a| > 9 in float32, 19 in float64):

    .. math::
        \log \mathrm{sech}^2 a = \log 4 - 2|a| - 2\log(1 + e^{-2|a|}), \qquad
        \log \sigma'(a) = -|a| - 2 \log(1 + e^{-|a|}),

    0 for linear, and 0 or -inf for relu (relu'(0) = 0, as torch). Same shape as ``pre``.
    """
    a = pre.to(torch.float64)
    if name == "tanh":
        return LOG4 - 2 * a.abs() - 2 * torch.log1p(torch.exp(-2 * a.abs()))
    if name == "sigmoid":
        return -a.abs() - 2 * torch.log1p(torch.exp(-a.abs()))
    if name == "relu":
        return torch.where(a > 0, 0.0, -math.inf).to(torch.float64)
    return torch.zeros_like(a)


def first_nonfinite(*series: Tensor) -> int | None:
    """The first step k >= 1 at which any of ``series`` ((T, ...) each, row k - 1 = step k) holds a
    non-finite value, or None."""
    bad = None
    for values in series:
        rows = ~torch.isfinite(values.reshape(values.shape[0], -1)).all(dim=1)
        if bool(rows.any()):
            k = int(torch.nonzero(rows)[0, 0]) + 1
            bad = k if bad is None else min(bad, k)
    return bad


@dataclass
class Trace:
    """What one forward pass leaves behind: everything the views and Jacobians need.

    Shapes: T steps, B sequences, d inputs, n hidden units, m state size.
    """

    x: Tensor  # (T, B, d) inputs x_1..x_T
    z: Tensor  # (T+1, B, m) full state z_0..z_T: h, or [h, c] for the LSTM
    hidden: int  # n
    aux: dict[str, Tensor] = field(default_factory=dict)  # name -> (T, B, .), steps 1..T

    @property
    def h(self) -> Tensor:  # (T+1, B, n)
        return self.z[..., : self.hidden]

    @property
    def c(self) -> Tensor | None:  # (T+1, B, n), LSTM only
        return self.z[..., self.hidden:] if self.z.shape[-1] > self.hidden else None

    @property
    def gates(self) -> dict[str, Tensor]:
        """Gate activations by torch's names (i, f, g, o / r, z, n), each (T, B, n)."""
        return {k[5:]: v for k, v in self.aux.items() if k.startswith("gate_")}

    def first_nonfinite(self) -> int | None:
        """The first step k >= 1 whose state z_k (or any intermediate of step k) is not finite, over
        all sequences (batch norm's statistics couple them), or None: where the arithmetic failed."""
        return first_nonfinite(self.z[1:], *self.aux.values())

    def sequence(self, b: int = 0) -> "Trace":
        """Sequence b alone (B = 1, views, no copies). Its Jacobians need nothing else: batch-norm
        statistics are stored per sequence, so building them for one sequence, not all B, is exact."""
        return Trace(x=self.x[:, b:b + 1], z=self.z[:, b:b + 1], hidden=self.hidden,
                     aux={k: v[:, b:b + 1] for k, v in self.aux.items()})


class RecurrentCell(nn.Module):
    """Interface shared by all cells.

    ``hidden`` is n; ``state_size`` is m (n, or 2n for the LSTM); ``gate_blocks`` is
    how many n-row blocks W_ih and W_hh stack (1 RNN, 4 LSTM, 3 GRU).
    """

    hidden: int
    state_size: int
    gate_blocks: int = 1

    def input_drive(self, x: Tensor) -> Tensor:
        """W_ih x_t + b_ih for all steps: (T, B, d) -> (T, B, gate_blocks*n)."""
        return x @ self.weight_ih_l0.T + self.bias_ih_l0

    def step(self, drive: Tensor, z_prev: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """One step, batched over any leading dims: drive (..., B, G n), z_prev (..., B, m)
        -> z (..., B, m) and the step's intermediates. Batch statistics use dim -2."""
        raise NotImplementedError

    def jacobians(self, trace: Trace, steps: Tensor) -> Tensor:
        """Analytic J_k = dz_k/dz_{k-1} for the 1-based ``steps`` (K,): (K, B, m, m)."""
        raise NotImplementedError

    # J_k does not depend on the state (a linear cell): its maps survive an overflow of the state
    state_independent_jacobian = False

    def scaled_jacobians(self, trace: Trace, steps: Tensor) -> tuple[Tensor, Tensor]:
        r"""(\hat J (K, B, m, m), s (K, B) float64) with J_k = e^{s_k} \hat J_k; here s = 0."""
        J = self.jacobians(trace, steps)
        return J, torch.zeros(J.shape[:2], dtype=torch.float64, device=J.device)

    def input_vjp(self, trace: Trace, deltas: Tensor) -> tuple[Tensor, Tensor]:
        r"""\delta_t \partial z_t/\partial d_t for every step, d_t = W_{ih} x_t + b_{ih} the input drive:
        deltas (T, B, m) -> (rows (T, B, G n), log scales (T, B) float64, here 0), by autograd on one
        teacher-forced step per t (all t in one batch)."""
        with torch.enable_grad():
            drive = self.input_drive(trace.x).detach().requires_grad_(True)  # (T, B, G n)
            z_next, _ = self.step(drive, trace.z[:-1].detach())
            z_next.backward(deltas)
        return drive.grad, torch.zeros(drive.shape[:2], dtype=torch.float64, device=drive.device)

    def run(self, x: Tensor) -> Trace:
        """Forward pass from z_0 = 0 over x (T, B, d)."""
        drive = self.input_drive(x)
        z = [x.new_zeros(x.shape[1], self.state_size)]
        auxes = []
        for t in range(x.shape[0]):
            z_t, aux = self.step(drive[t], z[-1])
            z.append(z_t)
            auxes.append(aux)
        aux = {k: torch.stack([a[k] for a in auxes]) for k in auxes[0]} if auxes else {}
        return Trace(x=x, z=torch.stack(z), hidden=self.hidden, aux=aux)

    def recurrent_blocks(self) -> Tensor:
        """W_hh as (gate_blocks, n, n), the blocks torch stacks in gate order."""
        n = self.hidden
        return self.weight_hh_l0.detach().reshape(self.gate_blocks, n, n)


class SimpleRNN(RecurrentCell):
    r"""Elman RNN, optionally residual and/or normalised.

    .. math::
        a_t = W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}, \qquad
        h_t = [h_{t-1} +]\; g(N(a_t))

    where N is the identity, layer norm over units, or batch norm over sequences
    (per-step statistics, Cooijmans et al. 2016). Jacobian, statistics held fixed
    for batch norm:

    .. math::
        \frac{\partial h_t}{\partial h_{t-1}} = [I +]\; \mathrm{diag}(g'(N(a_t)))\, N'(a_t)\, W_{hh}

    Shapes: weight_ih_l0 (n, d), weight_hh_l0 (n, n), bias_ih_l0 (n), bias_hh_l0 (n);
    norm_weight / norm_bias (n) when normalised.
    """

    def __init__(self, input_size: int, hidden: int, activation: str = "tanh",
                 residual: bool = False, norm: str = "none", dtype=torch.float32):
        super().__init__()
        self.hidden = self.state_size = hidden
        self.activation, self.residual, self.norm = activation, residual, norm
        kw = {"dtype": dtype}
        self.weight_ih_l0 = nn.Parameter(torch.empty(hidden, input_size, **kw))
        self.weight_hh_l0 = nn.Parameter(torch.empty(hidden, hidden, **kw))
        self.bias_ih_l0 = nn.Parameter(torch.empty(hidden, **kw))
        self.bias_hh_l0 = nn.Parameter(torch.empty(hidden, **kw))
        if norm != "none":  # unit gain, zero shift at init
            self.norm_weight = nn.Parameter(torch.ones(hidden, **kw))
            self.norm_bias = nn.Parameter(torch.zeros(hidden, **kw))
        # Batch norm couples the sequences through the batch statistics. The analysis holds
        # them fixed (as at inference), so each sequence has its own Jacobian; training does not.
        self.frozen_statistics = False

    @property
    def state_independent_jacobian(self) -> bool:
        """A linear cell's J_k = [I +] W_hh does not depend on h: its maps survive an overflow of h."""
        return self.activation == "linear" and self.norm == "none"

    def step(self, drive: Tensor, z_prev: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        a = drive + z_prev @ self.weight_hh_l0.T + self.bias_hh_l0  # (..., B, n)
        aux = {}
        if self.norm != "none":
            dim = -1 if self.norm == "layer" else -2  # layer: over units; batch: over sequences
            mean = a.mean(dim, keepdim=True)
            var = a.var(dim, unbiased=False, keepdim=True)
            if self.norm == "batch" and self.frozen_statistics:
                mean, var = mean.detach(), var.detach()
            a_hat = (a - mean) * torch.rsqrt(var + self._eps)
            # the statistics per sequence: one sequence's Jacobians need nothing else
            aux["a"], aux["mean"], aux["var"] = a, mean.expand_as(a), var.expand_as(a)
            a = a_hat * self.norm_weight + self.norm_bias
        out = ACTIVATION[self.activation](a)
        aux["pre"], aux["out"] = a, out
        return (z_prev + out if self.residual else out), aux

    @property
    def _eps(self) -> float:
        return LN_EPS if self.norm == "layer" else BN_EPS

    def _factors(self, trace: Trace, idx: Tensor) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor] | None]:
        r"""The pieces of J_k = e^{s_k} diag(\hat d_k) M_k W_hh, all from the stored pre-activations in float64.

        d = g'(y) \gamma / \sigma (g' alone without a norm), with \log g' in closed form
        (:func:`log_activation_grad`); s_k = \max_i \log|d_i| is factored out, so \hat d \in [-1, 1]
        and a step where every unit saturates stays finite. Layer norm's
        M = I - 11^T/n - \hat a \hat a^T/n is returned as (u, \epsilon') with u = \hat a/\|\hat a\| and
        \epsilon' = \epsilon/(\mathrm{var} + \epsilon): M = (I - 11^T/n - u u^T) + \epsilon' u u^T, whose
        second term is the whole of M at n = 2 and is never formed as a difference of O(1) terms.
        Returns (\hat d (K, B, n) float64, s (K, B) float64, (u (K, B, n), \epsilon' (K, B)) or None).
        """
        aux = trace.aux
        if self.norm == "none":
            log_d, sign, ln = log_activation_grad(self.activation, aux["pre"][idx]), None, None
        else:
            a = aux["a"][idx].double()  # (K, B, n)
            if self.norm == "layer":  # per sequence: the exact statistics of the stored a
                mean, var = a.mean(-1, keepdim=True), a.var(-1, unbiased=False, keepdim=True)
            else:  # batch norm: the batch's statistics, stored per sequence
                mean, var = aux["mean"][idx].double(), aux["var"][idx].double()
            inv_std = torch.rsqrt(var + self._eps)
            a_hat = (a - mean) * inv_std
            gamma = self.norm_weight.detach().double()
            y = a_hat * gamma + self.norm_bias.detach().double()
            log_d = log_activation_grad(self.activation, y) + torch.log(gamma.abs()) + torch.log(inv_std)
            sign = torch.sign(gamma).expand_as(log_d)
            ln = None
            if self.norm == "layer":
                length = torch.linalg.vector_norm(a_hat, dim=-1, keepdim=True)
                u = torch.where(length > 0, a_hat / torch.where(length > 0, length, 1.0), 0.0)
                ln = (u, (self._eps / (var + self._eps))[..., 0])
        s = log_d.amax(-1)  # (K, B)
        s = torch.where(torch.isfinite(s), s, 0.0)  # every d_i = 0 (all relus off): J_k = 0 at scale 1
        d_hat = torch.exp(log_d - s[..., None])
        return (d_hat if sign is None else d_hat * sign), s, ln

    def _project(self, ln: tuple[Tensor, Tensor], V: Tensor, dim: int) -> Tensor:
        r"""Layer norm's M applied to V: M W for a matrix (``dim`` = -2, W (.., n, k)) or v M for rows
        (``dim`` = -1, v (.., n)), with M = (I - 11^T/n - u u^T) + \epsilon' u u^T (:meth:`_factors`).
        The first term spans the complement of 1 and u: nothing at n <= 2, so it is left out there."""
        u, eps = (t.to(V.dtype) for t in ln)
        if dim == -2:
            along, eps = u[..., :, None] * (u[..., None, :] @ V), eps[..., None, None]  # u (u^T W)
        else:
            along, eps = (V * u).sum(-1, keepdim=True) * u, eps[..., None]  # (v . u) u
        out = eps * along
        if self.hidden > 2:
            out = out + (V - V.mean(dim, keepdim=True) - along)
        return out

    def scaled_jacobians(self, trace: Trace, steps: Tensor) -> tuple[Tensor, Tensor]:
        r"""J_k = e^{s_k} \hat J_k for the 1-based ``steps`` (K,): (\hat J (K, B, n, n), s (K, B) float64).

        Residual cells keep s = 0: I + diag(g') W cannot shed a scale, and I dominates it anyway.
        """
        idx = steps - 1
        d_hat, s, ln = self._factors(trace, idx)
        W = self.weight_hh_l0.detach()
        if self.residual:
            d_hat, s = d_hat * torch.exp(s)[..., None], torch.zeros_like(s)
        d = d_hat.to(W.dtype)
        MW = W.expand(*d.shape, self.hidden) if ln is None else self._project(ln, W.expand(*d.shape, self.hidden), -2)
        J = d[..., :, None] * MW  # (K, B, n, n)
        if self.residual:
            J = J + torch.eye(self.hidden, dtype=J.dtype, device=J.device)
        return J.detach(), s

    def jacobians(self, trace: Trace, steps: Tensor) -> Tensor:
        J, s = self.scaled_jacobians(trace, steps)
        return J * torch.exp(s).to(J.dtype)[..., None, None]

    def input_vjp(self, trace: Trace, deltas: Tensor) -> tuple[Tensor, Tensor]:
        r"""\delta_t \partial z_t/\partial d_t for every step (d_t = W_{ih} x_t + b_{ih}, the input drive), in
        closed form: \delta_t diag(d) [M] = e^{s_t} (\delta_t \odot \hat d) [M] (:meth:`_factors`).
        deltas (T, B, n) -> (unit-free rows (T, B, n), log scales s (T, B) float64)."""
        d_hat, s, ln = self._factors(trace, torch.arange(deltas.shape[0], device=deltas.device))
        v = deltas * d_hat.to(deltas.dtype)
        return (v if ln is None else self._project(ln, v, -1)), s


def _init_recurrent(W: Tensor, scheme: str, gain: float, gen: torch.Generator, blocks: int = 1) -> None:
    """Initialise W_hh in place, block by block (one n x n block per gate), from torch.nn.init."""
    n = W.shape[1]
    with torch.no_grad():
        for k in range(blocks):
            block = torch.empty(n, n, dtype=torch.float64)  # drawn in float64: same weights for either dtype
            if scheme == "pytorch":  # torch's RNN/LSTM/GRU default, U(-1/sqrt(n), 1/sqrt(n)); gain ignored
                nn.init.uniform_(block, -1 / math.sqrt(n), 1 / math.sqrt(n), generator=gen)
            elif scheme == "gaussian":
                nn.init.normal_(block, 0.0, gain / math.sqrt(n), generator=gen)
            elif scheme == "xavier_uniform":
                nn.init.xavier_uniform_(block, gain=gain, generator=gen)
            elif scheme == "xavier_normal":
                nn.init.xavier_normal_(block, gain=gain, generator=gen)
            elif scheme == "kaiming":  # He normal: N(0, 2/n), times gain
                nn.init.kaiming_normal_(block, nonlinearity="relu", generator=gen)
                block.mul_(gain)
            elif scheme == "orthogonal":
                nn.init.orthogonal_(block, gain=gain, generator=gen)
            elif scheme == "identity":  # IRNN (Le, Jaitly & Hinton 2015)
                nn.init.eye_(block)
                block.mul_(gain)
            else:
                raise ValueError(f"init must be one of the known schemes, got {scheme!r}")
            W[k * n:(k + 1) * n].copy_(block.to(W.device))


def reset_default(module: nn.Module, hidden: int, gen: torch.Generator) -> None:
    """torch.nn.RNN/LSTM/GRU's ``reset_parameters``: every weight and bias U(-1/sqrt(n), 1/sqrt(n))."""
    bound = 1 / math.sqrt(hidden)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.startswith(("weight_", "bias_")):  # drawn in float64: same weights for either dtype
                p.copy_(nn.init.uniform_(torch.empty(p.shape, dtype=torch.float64), -bound, bound, generator=gen))


def build_cell(config: ExperimentConfig, device: torch.device | str = "cpu") -> RecurrentCell:
    """The seeded cell a config describes, on ``device``. Weights are drawn on the CPU
    from a private generator, so CPU and GPU runs see identical numbers."""
    from .backend import DTYPES, generator

    dtype = DTYPES[config.dtype]
    if config.cell == "rnn":
        cell: RecurrentCell = SimpleRNN(config.input_size, config.hidden, config.activation,
                                        config.residual, config.norm, dtype=dtype)
    else:
        from .gated import build_gated

        cell = build_gated(config, dtype)
    gen = generator(config.seed, 0)
    reset_default(cell, config.hidden, gen)
    _init_recurrent(cell.weight_hh_l0, config.init, config.gain, gen, cell.gate_blocks)
    if config.cell == "lstm":
        from .gated import init_forget_bias

        init_forget_bias(cell, config, gen)
    return cell.to(device)


def make_inputs(config: ExperimentConfig, batch: int = 1, device: torch.device | str = "cpu") -> Tensor:
    """x_1..x_T, (T, B, d): gaussian N(0, 1) i.i.d., zeros, or sines of staggered phase."""
    from .backend import DTYPES, generator

    T, d, dtype = config.seq_len, config.input_size, DTYPES[config.dtype]
    if config.input == "gaussian":
        x = torch.randn(T, batch, d, generator=generator(config.seed, 1), dtype=torch.float64).to(dtype)
    elif config.input == "zeros":
        x = torch.zeros(T, batch, d, dtype=dtype)
    else:  # period 25 steps; each feature and sequence shifted in phase
        t = torch.arange(1, T + 1, dtype=dtype)[:, None, None]
        phase = (torch.arange(batch, dtype=dtype)[None, :, None] * 0.37
                 + torch.arange(d, dtype=dtype)[None, None, :] * math.pi / d)
        x = torch.sin(2 * math.pi * t / 25 + phase)
    return x.to(device)
