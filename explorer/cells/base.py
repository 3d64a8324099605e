"""What every recurrent cell shares: the forward pass's record (:class:`Trace`), the interface
(:class:`RecurrentCell`), torch.nn's parameter layout and initialisation, and the inputs.

Each cell is an ``nn.Module`` whose ``state_dict()`` keys are those of the matching ``torch.nn``
module (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``), so weights copy across
in either direction. ``run`` is differentiable and batched, so the training lab uses the same cells
as the static analysis.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from torch import Tensor, nn

from ..config import ExperimentConfig


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
    has_cell: bool = False  # units n.. of z are a cell state c (the LSTM), not more of h (the LRU's Im h)

    @property
    def h(self) -> Tensor:  # (T+1, B, n)
        return self.z[..., : self.hidden]

    @property
    def c(self) -> Tensor | None:  # (T+1, B, n), LSTM only
        return self.z[..., self.hidden:] if self.has_cell else None

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
                     aux={k: v[:, b:b + 1] for k, v in self.aux.items()}, has_cell=self.has_cell)


class RecurrentCell(nn.Module):
    """Interface shared by all cells.

    ``kind`` is the cell's name in :mod:`explorer.registry`, which declares everything else that
    varies by cell; ``hidden`` is n; ``state_size`` is m (n, or 2n for the LSTM's (h, c));
    ``gate_blocks`` is how many n-row blocks the input weights stack (1 RNN, 4 LSTM, 3 GRU).
    """

    kind: str
    hidden: int
    state_size: int
    gate_blocks: int = 1

    @classmethod
    def from_config(cls, config: ExperimentConfig, dtype, input_size: int | None = None) -> "RecurrentCell":
        """The uninitialised cell ``config`` describes (:meth:`initialise` seeds it); ``input_size`` overrides the
        config's d (a loaded network's layer above the first reads n per direction from the layer below)."""
        raise NotImplementedError

    def initialise(self, config: ExperimentConfig, gen: torch.Generator) -> None:
        """Seed the weights from ``gen``: torch.nn's default for all, then W_hh block by block by
        ``config.init`` (one n x n block per gate)."""
        reset_default(self, self.hidden, gen)
        init_recurrent(self.weight_hh_l0, config.init, config.gain, gen, self.gate_blocks)

    def present_gates(self) -> tuple[str, ...]:
        """The sigmoid gates this cell (at its stage) really has: the ones that can saturate."""
        from ..registry import cell_type

        return tuple(g.name for g in cell_type(self.kind).gates if not g.signed)

    def recurrent_blocks(self) -> Tensor | None:
        """W_hh as (gate_blocks, n, n), the blocks torch stacks in gate order; None without a W_hh."""
        n = self.hidden
        return self.weight_hh_l0.detach().reshape(self.gate_blocks, n, n)

    def bound_log10_rate(self) -> float | None:
        """log10 of the per-step factor of the lecture's bound on ||dz_s/dz_t||, where one applies."""
        return None

    def direct_path(self, trace: Trace) -> Tensor | None:
        """log f_k (T, B, n) of a direct carousel path prod_k diag(f_k) (the LSTM's c), or None."""
        return None

    def fused_step(self) -> Callable | None:
        """torch's fused single-step kernel computing exactly this cell, as step(x_t (B, d), state) ->
        state (h, or (h, c)), for the lab's gradient-flow probe; None where torch has none."""
        return None

    def log_moduli(self, trace: Trace, steps: Tensor) -> Tensor:
        """For a diagonal recurrence: log |d_k,i| (K, B, u) float64, where every product of Jacobians has
        the singular values prod_k |d_k,i| (each ``modulus_multiplicity`` times)."""
        raise NotImplementedError(f"{type(self).__name__} has no diagonal Jacobian")

    modulus_multiplicity = 1
    has_cell_state = False  # the state's units n.. are a cell state c (the LSTM)

    def phases(self, trace: Trace, steps: Tensor) -> Tensor | None:
        """For a diagonal recurrence that rotates (the LRU): each step's angle per unit (K, B, u), else None."""
        return None

    def to_adjoint(self, state_row: Tensor) -> Tensor:
        """A row dL/dz (m,) as the diagonal recurrence's per-unit adjoints (u,) complex128 (real cells: as is)."""
        return state_row.to(torch.complex128)

    def from_adjoint(self, adjoints: Tensor) -> Tensor:
        """Per-unit adjoints (..., u) complex back to rows dL/dz (..., m), float64."""
        return adjoints.real

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
        return Trace(x=x, z=torch.stack(z), hidden=self.hidden, aux=aux, has_cell=self.has_cell_state)



def stacked_params(module: nn.Module, blocks: int, input_size: int, hidden: int, dtype) -> None:
    """torch.nn's single-layer parameters, uninitialised (:meth:`RecurrentCell.initialise` fills them):
    weight_ih_l0 (G n, d), weight_hh_l0 (G n, n), bias_ih_l0 (G n), bias_hh_l0 (G n)."""
    kw = {"dtype": dtype}
    module.weight_ih_l0 = nn.Parameter(torch.empty(blocks * hidden, input_size, **kw))
    module.weight_hh_l0 = nn.Parameter(torch.empty(blocks * hidden, hidden, **kw))
    module.bias_ih_l0 = nn.Parameter(torch.empty(blocks * hidden, **kw))
    module.bias_hh_l0 = nn.Parameter(torch.empty(blocks * hidden, **kw))


def diag_mul(v: Tensor, W: Tensor) -> Tensor:
    """diag(v) W for v (..., n) and W (n, k) or (..., n, k): (..., n, k)."""
    return v[..., :, None] * W


def init_recurrent(W: Tensor, scheme: str, gain: float, gen: torch.Generator, blocks: int = 1) -> None:
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


def make_inputs(config: ExperimentConfig, batch: int = 1, device: torch.device | str = "cpu",
                files: Mapping[str, bytes] | None = None) -> Tensor:
    """x_1..x_T, (T, B, d): gaussian N(0, 1) i.i.d., zeros, sines of staggered phase, or (input=file) the
    uploaded sequence ``files[config.input_file]`` (explorer.weights.read_sequence), the same for every b."""
    from ..backend import DTYPES, generator

    T, d, dtype = config.seq_len, config.input_size, DTYPES[config.dtype]
    if config.input == "file":
        from ..weights import WeightsError, not_loaded, read_sequence

        if not files or config.input_file not in files:
            raise not_loaded("the input sequence", config.input_file)
        array = read_sequence(files[config.input_file], "the input sequence", d, int(2**31))
        if len(array) < T:
            raise WeightsError(f"the input sequence has T = {len(array)} steps; the config asks for seq_len = {T}")
        x = torch.from_numpy(array[:T])[:, None, :].expand(T, batch, d).to(dtype)  # its first T steps
    elif config.input == "gaussian":
        x = torch.randn(T, batch, d, generator=generator(config.seed, 1), dtype=torch.float64).to(dtype)
    elif config.input == "zeros":
        x = torch.zeros(T, batch, d, dtype=dtype)
    else:  # period 25 steps; each feature and sequence shifted in phase
        t = torch.arange(1, T + 1, dtype=dtype)[:, None, None]
        phase = (torch.arange(batch, dtype=dtype)[None, :, None] * 0.37
                 + torch.arange(d, dtype=dtype)[None, None, :] * math.pi / d)
        x = torch.sin(2 * math.pi * t / 25 + phase)
    return x.to(device)
