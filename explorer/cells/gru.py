r"""The GRU with ``torch.nn.GRU``'s parameters (torch's variant: b_hn inside the reset product), and its
exact Jacobians."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..config import ExperimentConfig
from .base import RecurrentCell, Trace, diag_mul, stacked_params


class GRU(RecurrentCell):
    r"""Gated recurrent unit, torch's variant (b_hn inside the reset product), gates r, z, n.

    .. math::
        r_t = \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}), \qquad
        z_t = \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}),\\
        n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})), \qquad
        h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    Jacobian, with u_t = W_{hn} h_{t-1} + b_{hn}:

    .. math::
        \frac{\partial h_t}{\partial h_{t-1}} = \mathrm{diag}(z_t)
            + \mathrm{diag}((h_{t-1} - n_t) z_t (1 - z_t)) W_{hz}
            + \mathrm{diag}((1 - z_t)(1 - n_t^2)) \big[\mathrm{diag}(u_t r_t (1 - r_t)) W_{hr}
            + \mathrm{diag}(r_t) W_{hn}\big]

    Shapes: weight_ih_l0 (3n, d), weight_hh_l0 (3n, n), bias_ih_l0 (3n), bias_hh_l0 (3n);
    state h (..., B, n); Jacobians (K, B, n, n).
    """

    kind = "gru"
    gate_blocks = 3

    def __init__(self, input_size: int, hidden: int, dtype=torch.float32):
        super().__init__()
        self.hidden = self.state_size = hidden
        stacked_params(self, 3, input_size, hidden, dtype)

    @classmethod
    def from_config(cls, config: ExperimentConfig, dtype, input_size: int | None = None) -> "GRU":
        return cls(input_size or config.input_size, config.hidden, dtype=dtype)

    def fused_step(self) -> Callable:
        weights = (self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0)
        return lambda x_t, h: torch.gru_cell(x_t, h, *weights)

    def step(self, drive: Tensor, z_prev: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        n = self.hidden
        recur = z_prev @ self.weight_hh_l0.T + self.bias_hh_l0  # (..., B, 3n)
        d_r, d_z, d_n = drive.split(n, dim=-1)
        u_r, u_z, u_n = recur.split(n, dim=-1)
        r = torch.sigmoid(d_r + u_r)
        z = torch.sigmoid(d_z + u_z)
        cand = torch.tanh(d_n + r * u_n)  # b_hn sits inside the reset product
        h = (1 - z) * cand + z * z_prev
        return h, {"gate_r": r, "gate_z": z, "gate_n": cand, "hn": u_n}

    def jacobians(self, trace: Trace, steps: Tensor) -> Tensor:
        idx = steps - 1
        n = self.hidden
        r, z = trace.aux["gate_r"][idx], trace.aux["gate_z"][idx]  # (K, B, n)
        cand, u_n = trace.aux["gate_n"][idx], trace.aux["hn"][idx]
        h_prev = trace.z[idx]  # (K, B, n)
        W_r, W_z, W_n = self.weight_hh_l0.detach().split(n, dim=0)  # (n, n) each
        # J = diag(a) W_z + diag(b u_n r') W_r + diag(b r) W_n + diag(z), in three passes
        # over the (K, B, n, n) output: it dominates the analysis at large n
        b = (1 - z) * (1 - cand * cand)
        J = diag_mul((h_prev - cand) * z * (1 - z), W_z)  # (K, B, n, n)
        J.addcmul_((b * u_n * r * (1 - r))[..., :, None], W_r)
        J.addcmul_((b * r)[..., :, None], W_n)
        J.diagonal(dim1=-2, dim2=-1).add_(z)
        return J.detach()
