r"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs all we needed?"): gates that read the input alone, so
the recurrence is diagonal and independent of h, and its Jacobian is a diagonal of numbers in (0, 1).

.. math::
    \text{minGRU:}\quad z_t = \sigma(W_z x_t + b_z),\ \tilde h_t = W_h x_t + b_h,\
        h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t,\qquad
        \frac{\partial h_t}{\partial h_{t-1}} = \mathrm{diag}(1 - z_t)

    \text{minLSTM:}\quad f_t = \sigma(W_f x_t + b_f),\ i_t = \sigma(W_i x_t + b_i),\
        f'_t = \frac{f_t}{f_t + i_t},\ i'_t = \frac{i_t}{f_t + i_t},\
        h_t = f'_t \odot h_{t-1} + i'_t \odot \tilde h_t,\qquad
        \frac{\partial h_t}{\partial h_{t-1}} = \mathrm{diag}(f'_t)

Shapes: weight_ih_l0 ([W_z; W_h]: (2n, d); [W_f; W_i; W_h]: (3n, d)), bias_ih_l0 (2n or 3n); no W_hh.
The diagonal's logarithm comes from the pre-activations in float64 (log(1 - z) = log sigma(-a_z),
log f' = log sigma(a_f) - log(sigma(a_f) + sigma(a_i))), so a factor that rounds to 0 or 1 in float32
stays exact in the products' log space.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..config import ExperimentConfig
from .base import RecurrentCell, Trace, reset_default


class _InputGated(RecurrentCell):
    """What minGRU and minLSTM share: input weights only, a diagonal Jacobian from the gates."""

    state_independent_jacobian = True  # the gates read x alone

    def __init__(self, input_size: int, hidden: int, dtype=torch.float32):
        super().__init__()
        self.hidden = self.state_size = hidden
        self.weight_ih_l0 = nn.Parameter(torch.empty(self.gate_blocks * hidden, input_size, dtype=dtype))
        self.bias_ih_l0 = nn.Parameter(torch.empty(self.gate_blocks * hidden, dtype=dtype))

    @classmethod
    def from_config(cls, config: ExperimentConfig, dtype, input_size: int | None = None) -> "_InputGated":
        return cls(input_size or config.input_size, config.hidden, dtype=dtype)

    def initialise(self, config: ExperimentConfig, gen: torch.Generator) -> None:
        reset_default(self, self.hidden, gen)  # torch.nn.Linear-like U(-1/sqrt(n), 1/sqrt(n)); no W_hh to init

    def recurrent_blocks(self) -> None:
        return None

    def log_moduli(self, trace: Trace, steps: Tensor) -> Tensor:
        """log of the Jacobian's diagonal (K, B, n), float64."""
        drive = trace.x[steps - 1].double() @ self.weight_ih_l0.detach().double().T + self.bias_ih_l0.detach().double()
        return self._log_keep(drive)

    def _log_keep(self, drive: Tensor) -> Tensor:
        raise NotImplementedError

    def jacobians(self, trace: Trace, steps: Tensor) -> Tensor:
        keep = torch.exp(self.log_moduli(trace, steps)).to(trace.z.dtype)
        return torch.diag_embed(keep)  # (K, B, n, n)


class MinGRU(_InputGated):
    kind = "mingru"
    gate_blocks = 2

    def step(self, drive: Tensor, z_prev: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        a_z, candidate = drive.split(self.hidden, dim=-1)
        z = torch.sigmoid(a_z)
        return (1 - z) * z_prev + z * candidate, {"gate_z": z}

    def _log_keep(self, drive: Tensor) -> Tensor:
        return F.logsigmoid(-drive[..., : self.hidden])  # log(1 - z) = log sigma(-a_z)


class MinLSTM(_InputGated):
    kind = "minlstm"
    gate_blocks = 3

    def step(self, drive: Tensor, z_prev: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        a_f, a_i, candidate = drive.split(self.hidden, dim=-1)
        f, i = torch.sigmoid(a_f), torch.sigmoid(a_i)
        total = f + i
        return (f / total) * z_prev + (i / total) * candidate, {"gate_f": f, "gate_i": i}

    def _log_keep(self, drive: Tensor) -> Tensor:
        a_f, a_i = drive[..., : self.hidden], drive[..., self.hidden: 2 * self.hidden]
        log_f, log_i = F.logsigmoid(a_f), F.logsigmoid(a_i)
        return log_f - torch.logaddexp(log_f, log_i)  # log f' = log f - log(f + i)
