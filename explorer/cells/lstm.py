r"""The LSTM with ``torch.nn.LSTM``'s parameters, built in the lecture's stages, and its exact Jacobians.

A gate absent from the stage is fixed at exactly 1 (its parameters stay, unused), so the
state-dict always copies to and from ``torch.nn.LSTM``. The forget-gate bias can be set to a
constant or to the chrono initialisation of Tallec & Ollivier (2018).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..config import ExperimentConfig
from .base import RecurrentCell, Trace, diag_mul, stacked_params

LSTM_GATES = ("input", "forget", "output")


class LSTM(RecurrentCell):
    r"""Long short-term memory, in torch's gate order i, f, g, o.

    .. math::
        a_t = W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh} = [a^i; a^f; a^g; a^o],\\
        i_t = \sigma(a^i_t),\quad f_t = \sigma(a^f_t),\quad g_t = \tanh(a^g_t),\quad o_t = \sigma(a^o_t),\\
        c_t = f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t)

    A gate absent from ``gates`` is 1: stage "input" is c_t = c_{t-1} + i_t g_t,
    h_t = tanh(c_t); stage "input,output" drops only the forget gate. The state is
    z_t = [h_t; c_t] and its Jacobian, with s' = \sigma' and W^x the gate's block of W_hh:

    .. math::
        \frac{\partial c_t}{\partial h_{t-1}} = \mathrm{diag}(c_{t-1} f'_t) W^f
            + \mathrm{diag}(g_t i'_t) W^i + \mathrm{diag}(i_t (1 - g_t^2)) W^g, \qquad
        \frac{\partial c_t}{\partial c_{t-1}} = \mathrm{diag}(f_t),\\
        \frac{\partial h_t}{\partial z_{t-1}} = \mathrm{diag}(\tanh(c_t)\, o'_t) \frac{\partial a^o_t}{\partial z_{t-1}}
            + \mathrm{diag}(o_t (1 - \tanh^2 c_t)) \frac{\partial c_t}{\partial z_{t-1}}

    where f'_t = f_t (1 - f_t) for a present gate and 0 for an absent one (likewise i', o').

    Shapes: weight_ih_l0 (4n, d), weight_hh_l0 (4n, n), bias_ih_l0 (4n), bias_hh_l0 (4n);
    state z (..., B, 2n); Jacobians (K, B, 2n, 2n).
    """

    kind = "lstm"
    gate_blocks = 4
    has_cell_state = True

    def __init__(self, input_size: int, hidden: int, gates: tuple[str, ...] = LSTM_GATES,
                 dtype=torch.float32):
        super().__init__()
        unknown = set(gates) - set(LSTM_GATES)
        if unknown:
            raise ValueError(f"LSTM gates must be among {', '.join(LSTM_GATES)}, got {sorted(unknown)}")
        self.hidden, self.state_size = hidden, 2 * hidden
        self.gates = tuple(g for g in LSTM_GATES if g in gates)
        stacked_params(self, 4, input_size, hidden, dtype)

    @classmethod
    def from_config(cls, config: ExperimentConfig, dtype, input_size: int | None = None) -> "LSTM":
        return cls(input_size or config.input_size, config.hidden, tuple(config.gates.split(",")), dtype=dtype)

    def initialise(self, config: ExperimentConfig, gen: torch.Generator) -> None:
        super().initialise(config, gen)
        init_forget_bias(self, config, gen)

    def present_gates(self) -> tuple[str, ...]:
        return tuple(name[0] for name in LSTM_GATES if name in self.gates)  # i, and f, o at their stages

    def direct_path(self, trace: Trace) -> Tensor:
        return self.log_forget(trace)

    def fused_step(self) -> Callable | None:
        if self.gates != LSTM_GATES:
            return None
        weights = (self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0)
        return lambda x_t, hc: torch.lstm_cell(x_t, hc, *weights)

    def step(self, drive: Tensor, z_prev: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        n = self.hidden
        h, c = z_prev[..., :n], z_prev[..., n:]  # (..., B, n) each
        a = drive + h @ self.weight_hh_l0.T + self.bias_hh_l0  # (..., B, 4n)
        a_i, a_f, a_g, a_o = a.split(n, dim=-1)
        ones = torch.ones_like(a_g)
        i = torch.sigmoid(a_i) if "input" in self.gates else ones
        f = torch.sigmoid(a_f) if "forget" in self.gates else ones
        g = torch.tanh(a_g)
        o = torch.sigmoid(a_o) if "output" in self.gates else ones
        c_new = f * c + i * g
        tanh_c = torch.tanh(c_new)
        h_new = o * tanh_c
        aux = {"gate_i": i, "gate_f": f, "gate_g": g, "gate_o": o, "tanh_c": tanh_c}
        return torch.cat([h_new, c_new], dim=-1), aux

    def _slope(self, name: str, gate: Tensor) -> Tensor:
        """sigma'(a) = s (1 - s) for a present gate; an absent gate is constant."""
        return gate * (1 - gate) if name in self.gates else torch.zeros_like(gate)

    def log_forget(self, trace: Trace) -> Tensor:
        r"""\log f_t = \log\sigma(a^f_t) in float64 from the pre-activation, (T, B, n); 0 where
        the stage has no forget gate. Unlike f_t in float32, it stays finite for a^f_t < -88."""
        if "forget" not in self.gates:
            return torch.zeros(trace.x.shape[:-1] + (self.hidden,), dtype=torch.float64, device=trace.x.device)
        n, rows = self.hidden, slice(self.hidden, 2 * self.hidden)
        w_ih, w_hh = self.weight_ih_l0.detach()[rows].double(), self.weight_hh_l0.detach()[rows].double()
        bias = (self.bias_ih_l0.detach()[rows] + self.bias_hh_l0.detach()[rows]).double()
        a_f = trace.x.double() @ w_ih.T + trace.z[:-1, ..., :n].double() @ w_hh.T + bias
        return torch.nn.functional.logsigmoid(a_f)

    def jacobians(self, trace: Trace, steps: Tensor) -> Tensor:
        idx = steps - 1
        n = self.hidden
        aux = {k: v[idx] for k, v in trace.aux.items()}  # (K, B, n) each
        i, f, g, o, tanh_c = aux["gate_i"], aux["gate_f"], aux["gate_g"], aux["gate_o"], aux["tanh_c"]
        c_prev = trace.z[idx][..., n:]  # (K, B, n)
        W_i, W_f, W_g, W_o = self.weight_hh_l0.detach().split(n, dim=0)  # (n, n) each
        # written block by block into one buffer: building J dominates the analysis at large n
        J = c_prev.new_zeros(*c_prev.shape[:-1], 2 * n, 2 * n)  # (K, B, 2n, 2n)
        dc_dh, dh_dh = J[..., n:, :n], J[..., :n, :n]
        dc_dh.copy_(diag_mul(c_prev * self._slope("forget", f), W_f))
        dc_dh.addcmul_((g * self._slope("input", i))[..., :, None], W_i)
        dc_dh.addcmul_((i * (1 - g * g))[..., :, None], W_g)
        through_c = o * (1 - tanh_c * tanh_c)  # dh_t/dc_t, (K, B, n)
        dh_dh.copy_(diag_mul(tanh_c * self._slope("output", o), W_o))
        dh_dh.addcmul_(through_c[..., :, None], dc_dh)
        J[..., :n, n:].diagonal(dim1=-2, dim2=-1).copy_(through_c * f)  # dh_t/dc_(t-1)
        J[..., n:, n:].diagonal(dim1=-2, dim2=-1).copy_(f)  # dc_t/dc_(t-1)
        return J.detach()


def init_forget_bias(cell: LSTM, config: ExperimentConfig, gen: torch.Generator) -> None:
    r"""Set the LSTM's forget-gate bias from ``config.forget_bias``, in place.

    "default" keeps torch's U(-1/sqrt(n), 1/sqrt(n)); a number b puts the whole forget
    pre-activation bias on b_ih (b_ih^f = b, b_hh^f = 0); "chrono" (Tallec & Ollivier 2018)
    draws

    .. math::
        b^f = \log u,\quad u \sim U[1, T_{max} - 1], \qquad b^i = -b^f

    with T_max = max(seq_len, 3), again on b_ih with the i and f blocks of b_hh zeroed.

    Shapes: bias_ih_l0, bias_hh_l0 (4n); blocks i = [0, n), f = [n, 2n).
    """
    if config.forget_bias == "default":
        return
    n = cell.hidden
    f_block, i_block = slice(n, 2 * n), slice(0, n)
    with torch.no_grad():
        b_ih, b_hh = cell.bias_ih_l0, cell.bias_hh_l0
        if config.forget_bias == "chrono":
            t_max = max(config.seq_len, 3)  # U[1, T_max - 1] must be a non-empty range
            # u and log u in float64, rounded once to the parameter's dtype
            u = 1.0 + (t_max - 2) * torch.rand(n, generator=gen, dtype=torch.float64)
            b_f = torch.log(u).to(device=b_ih.device, dtype=b_ih.dtype)
            b_ih[f_block] = b_f
            b_ih[i_block] = -b_f
            b_hh[i_block] = 0.0
        else:
            b_ih[f_block] = float(config.forget_bias)
        b_hh[f_block] = 0.0
