r"""The Linear Recurrent Unit (Orvieto et al. 2023): a complex diagonal recurrence whose eigenvalues are
drawn on a ring just inside the unit circle and held there by construction.

.. math::
    h_t = \lambda \odot h_{t-1} + \gamma \odot (B x_t),\qquad
    \lambda_j = \exp(-e^{\nu_j} + i\,e^{\theta_j}),\qquad \gamma_j = e^{\gamma^{\log}_j} = \sqrt{1 - |\lambda_j|^2}\ \text{at init}

with |\lambda_j| uniform on r_min <= |\lambda| <= r_max (u ~ U[0, 1], |\lambda|^2 = r_min^2 + u (r_max^2 - r_min^2))
and arg \lambda_j uniform on [0, max_phase]; B = (B_re + i B_im), each part N(0, 1/(2d)).

The state is analysed as the real vector z = [Re h; Im h] (m = 2n): per unit the step is the real-linear
map [[Re \lambda, -Im \lambda], [Im \lambda, Re \lambda]] = |\lambda| R(arg \lambda), so every product of s - t steps has
the singular values |\lambda_j|^{s-t}, each twice: \|\partial z_s/\partial z_t\|_2 = \max_j |\lambda_j|^{s-t} exactly.

Parameters (the paper's names): nu_log, theta_log, gamma_log (n), B_re, B_im (n, d).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..config import ExperimentConfig
from .base import RecurrentCell, Trace


class LRU(RecurrentCell):
    kind = "lru"
    state_independent_jacobian = True
    modulus_multiplicity = 2  # Re and Im of each unit share |lambda_j|

    def __init__(self, input_size: int, hidden: int, dtype=torch.float32):
        super().__init__()
        self.hidden, self.state_size = hidden, 2 * hidden
        kw = {"dtype": dtype}
        self.nu_log = nn.Parameter(torch.empty(hidden, **kw))
        self.theta_log = nn.Parameter(torch.empty(hidden, **kw))
        self.gamma_log = nn.Parameter(torch.empty(hidden, **kw))
        self.B_re = nn.Parameter(torch.empty(hidden, input_size, **kw))
        self.B_im = nn.Parameter(torch.empty(hidden, input_size, **kw))

    @classmethod
    def from_config(cls, config: ExperimentConfig, dtype, input_size: int | None = None) -> "LRU":
        return cls(input_size or config.input_size, config.hidden, dtype=dtype)

    def initialise(self, config: ExperimentConfig, gen: torch.Generator) -> None:
        """The paper's ring initialisation, drawn in float64 from ``gen`` (same numbers in either dtype)."""
        n, d = self.B_re.shape
        f64 = {"dtype": torch.float64}
        u1, u2 = torch.rand(n, generator=gen, **f64), torch.rand(n, generator=gen, **f64)
        modulus2 = config.r_min**2 + u1 * (config.r_max**2 - config.r_min**2)  # |lambda|^2
        nu_log = torch.log(-0.5 * torch.log(modulus2))  # |lambda| = exp(-exp(nu))
        theta_log = torch.log(config.max_phase * u2)  # -inf at a zero phase: exp(theta_log) = 0
        gamma_log = 0.5 * torch.log1p(-modulus2)  # gamma = sqrt(1 - |lambda|^2): -inf where |lambda| = 1
        with torch.no_grad():
            for param, value in ((self.nu_log, nu_log), (self.theta_log, theta_log), (self.gamma_log, gamma_log)):
                param.copy_(value)
            scale = 1.0 / math.sqrt(2 * d)
            self.B_re.copy_(torch.randn(n, d, generator=gen, **f64) * scale)
            self.B_im.copy_(torch.randn(n, d, generator=gen, **f64) * scale)

    def eigenvalues(self) -> Tensor:
        """lambda (n,), complex128."""
        modulus = torch.exp(-torch.exp(self.nu_log.detach().double()))
        return torch.polar(modulus, torch.exp(self.theta_log.detach().double()))

    def recurrent_blocks(self) -> None:
        return None

    def input_drive(self, x: Tensor) -> Tensor:
        """[Re; Im] of B x_t: (T, B, d) -> (T, B, 2n)."""
        return torch.cat([x @ self.B_re.T, x @ self.B_im.T], dim=-1)

    def _lambda(self, dtype) -> tuple[Tensor, Tensor, Tensor]:
        modulus = torch.exp(-torch.exp(self.nu_log))
        phase = torch.exp(self.theta_log)
        return (modulus * torch.cos(phase)).to(dtype), (modulus * torch.sin(phase)).to(dtype), torch.exp(self.gamma_log)

    def step(self, drive: Tensor, z_prev: Tensor, factors: tuple[Tensor, Tensor, Tensor] | None = None
             ) -> tuple[Tensor, dict[str, Tensor]]:
        n = self.hidden
        re, im, gamma = factors if factors is not None else self._lambda(z_prev.dtype)
        h_re, h_im = z_prev[..., :n], z_prev[..., n:]
        u_re, u_im = drive[..., :n], drive[..., n:]
        new = torch.cat([re * h_re - im * h_im + gamma * u_re, im * h_re + re * h_im + gamma * u_im], dim=-1)
        return new, {}

    def run(self, x: Tensor) -> Trace:
        """The forward pass, lambda and gamma evaluated once (differentiably) for all T steps."""
        factors = self._lambda(x.dtype)
        drive = self.input_drive(x)
        z = [x.new_zeros(x.shape[1], self.state_size)]
        for t in range(x.shape[0]):
            z.append(self.step(drive[t], z[-1], factors)[0])
        return Trace(x=x, z=torch.stack(z), hidden=self.hidden)

    def jacobians(self, trace: Trace, steps: Tensor) -> Tensor:
        """The real 2n x 2n map [[diag Re lambda, -diag Im lambda], [diag Im lambda, diag Re lambda]], every step."""
        n = self.hidden
        re, im, _ = self._lambda(trace.z.dtype)
        J = torch.zeros(2 * n, 2 * n, dtype=trace.z.dtype, device=trace.z.device)
        idx = torch.arange(n, device=J.device)
        J[idx, idx], J[idx, idx + n], J[idx + n, idx], J[idx + n, idx + n] = re.detach(), -im.detach(), im.detach(), re.detach()
        return J.expand(len(steps), trace.z.shape[1], 2 * n, 2 * n).clone()

    def log_moduli(self, trace: Trace, steps: Tensor) -> Tensor:
        """log |lambda_j| = -exp(nu_j), every step: (K, B, n) float64."""
        log_modulus = -torch.exp(self.nu_log.detach().double())
        return log_modulus.expand(len(steps), trace.z.shape[1], self.hidden).clone()

    def phases(self, trace: Trace, steps: Tensor) -> Tensor:
        """arg lambda_j = exp(theta_j), every step: (K, B, n) float64."""
        return torch.exp(self.theta_log.detach().double()).expand(len(steps), trace.z.shape[1], self.hidden).clone()

    def to_adjoint(self, state_row: Tensor) -> Tensor:
        """[g_re; g_im] (2n,) -> a = g_re - i g_im (n,): the step's adjoint is then a multiplication by lambda."""
        n = self.hidden
        return torch.complex(state_row[:n].double(), -state_row[n:].double())

    def from_adjoint(self, adjoints: Tensor) -> Tensor:
        return torch.cat([adjoints.real, -adjoints.imag], dim=-1)
