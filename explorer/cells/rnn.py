"""The simple (Elman) RNN, optionally residual and layer- or batch-normalised, and its exact Jacobians."""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn

from ..config import ExperimentConfig
from .base import RecurrentCell, Trace

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

    kind = "rnn"

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

    @classmethod
    def from_config(cls, config: ExperimentConfig, dtype, input_size: int | None = None) -> "SimpleRNN":
        return cls(input_size or config.input_size, config.hidden, config.activation, config.residual, config.norm,
                   dtype=dtype)

    def initialise(self, config: ExperimentConfig, gen: torch.Generator) -> None:
        r"""torch.nn's default, W_hh by ``config.init``; then, where ``config.bias_std`` is a number
        :math:`\sigma_b`, the biases of mean-field theory: ``bias_ih`` ~ N(0, σ_b²) (n) and ``bias_hh`` = 0."""
        super().initialise(config, gen)
        if config.bias_std != "default":
            with torch.no_grad():
                torch.nn.init.normal_(self.bias_ih_l0, 0.0, float(config.bias_std), generator=gen)
                torch.nn.init.zeros_(self.bias_hh_l0)

    def bound_log10_rate(self) -> float | None:
        """log10(gamma sigma_max(W_hh)), or log10(1 + gamma sigma_max) with the residual connection, gamma =
        sup|g'|; -inf where W_hh = 0 (the bound is exactly 0); None for normalised cells (no such bound)."""
        if self.norm != "none":
            return None
        gamma_sigma = GAMMA[self.activation] * float(torch.linalg.matrix_norm(self.weight_hh_l0.detach().double(), ord=2))
        base = 1.0 + gamma_sigma if self.residual else gamma_sigma
        return math.log10(base) if base > 0 else -math.inf

    def fused_step(self) -> Callable | None:
        if self.norm != "none" or self.residual or self.activation not in ("tanh", "relu"):
            return None
        kernel = torch.rnn_tanh_cell if self.activation == "tanh" else torch.rnn_relu_cell
        weights = (self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0)
        return lambda x_t, h: kernel(x_t, h, *weights)

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
