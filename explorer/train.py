r"""The training lab: train a recurrent cell on a long-range task and watch its gradients.

Model. The cell of ``build_cell(config.model.replace(input_size=d_task))`` and a linear
read-out y_t = W_o h_t + b_o (``nn.Linear(n, out)`` shapes, drawn from the private stream
``generator(seed, 3)`` with torch's default U(-1/sqrt(n), 1/sqrt(n))). When the cell is
exactly a ``torch.nn`` module (rnn with tanh/relu, no residual, no norm; the full LSTM;
the GRU), the training forward runs in ``torch.nn.RNN/LSTM/GRU`` with the cell's state dict
(identical names): same numbers, fused kernels. Otherwise our cell's differentiable ``run``
trains.

Objective, with the task loss of :mod:`explorer.tasks` and the n x n gate blocks W_b of W_hh
(b = 1..G; G = 1 RNN, 4 LSTM, 3 GRU):

.. math::
    J(\theta) = L_{task}(\theta) + \lambda \sum_b \|W_b^T W_b - I\|_F^2, \qquad
    \frac{\partial}{\partial W_b} \|W_b^T W_b - I\|_F^2 = 4 W_b (W_b^T W_b - I).

Riemannian option (``orthogonal_param`` = matrix_exp | cayley, simple RNN only):
``torch.nn.utils.parametrizations.orthogonal`` keeps W_hh = B \phi(A) on the orthogonal
group, A skew-symmetric, \phi = exp or the Cayley map; an initial W_hh that is not
orthogonal is projected onto the group (QR) when the parametrisation is registered. B stays
fixed and A is trained (torch's static trivialisation). The map is evaluated once per
optimiser step and that W_hh is substituted into an unparametrised twin (on the CPU, the
fused ``torch.nn.RNN`` where it computes the cell), so the T' steps of the sequence share it.

Recording, every ``record_every`` steps and at the last step, on a fixed eval batch of
256 sequences (drawn first from ``generator(seed, 2)``; the training batches follow from
the same stream), with a float64 copy of the current weights:

* ``eval_loss`` L_eval, and the gradient-flow row g_t = log10 \|\partial L_eval/\partial h_t\|_F for
  t = 1..T' (the norm over the batch and the n units). The total derivative through
  h_t is read off a zero perturbation added to every state, z_t <- z_t + \epsilon_t,
  \partial L/\partial\epsilon_t = \partial L/\partial z_t (LSTM: z = [h, c], the h part is kept).
  Cells that torch.nn computes exactly step through torch's fused cell kernels
  (``torch.lstm_cell`` etc.); the others through ``cell.step``.
  float64 underflows only below ~1e-308 (subnormals are flushed), so vanishing
  gradients read as their true size down to there; an exact 0 is -inf (None in JSON).
* ``singular_values`` of W_hh (the stacked (G n) x n matrix for gated cells): n values,
  descending; ``ortho_error`` = sqrt(\sum_b \|W_b^T W_b - I\|_F^2).

Non-finite loss or gradient norm: the optimiser step is skipped and an event
{step, kind} recorded; the run goes on.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils import parametrizations, parametrize

from . import backend, tasks
from .cells import RecurrentCell, build_cell
from .config import ExperimentConfig, TrainConfig
from .registry import cell_type

EVAL_BATCH = 256
PROBE_BYTES = 256 * 2**20  # autograd memory of one chunk of the float64 probe
# bytes the probe's graph keeps per (step, sequence, state unit): inputs, gates, cat, eps
_PROBE_SAVED = 16 * 8
READOUT_STREAM = 3  # backend.generator streams: 0 weights, 1 inputs, 2 data, 3 read-out


@dataclass
class TrainResult:
    """A finished (or stopped) training run. R records, T' input steps, n hidden units."""

    config: TrainConfig
    baseline: float  # loss of the memoryless predictor (tasks.baseline)
    history: list[dict[str, Any]]  # R x {step, loss, eval_loss, grad_norm, ortho_error, clipped}
    grad_flow: np.ndarray  # (R, T') log10 ||dL_eval/dh_t||, t = 1..T'
    singular_values: np.ndarray  # (R, n) of W_hh, descending
    weights_init: dict[str, np.ndarray]  # torch.nn names (+ readout.weight, readout.bias)
    weights_final: dict[str, np.ndarray]
    events: list[dict[str, Any]] = field(default_factory=list)  # {step, kind}: skipped steps
    stopped: bool = False  # should_stop() ended the run early
    seconds: float = 0.0


def torch_module(model: ExperimentConfig) -> str | None:
    """The ``torch.nn`` module that computes exactly the cell ``model`` describes, or None (the registry's rule)."""
    return cell_type(model.cell).torch_module(model.to_dict())


def ortho_penalty(W: Tensor, blocks: int) -> Tensor:
    r"""\sum_b \|W_b^T W_b - I\|_F^2 over the n x n blocks of W (G n, n). Scalar, differentiable."""
    n = W.shape[-1]
    Wb = W.reshape(blocks, n, n)
    gram = Wb.transpose(-1, -2) @ Wb  # (G, n, n)
    eye = torch.eye(n, dtype=W.dtype, device=W.device)
    return ((gram - eye) ** 2).sum()


def _data(config: TrainConfig) -> tuple[torch.Generator, tuple[Tensor, Tensor]]:
    gen = backend.generator(config.model.seed, 2)
    # the eval batch comes first, so it depends on (seed, task, T) only
    x, y = tasks.make_batch(config.task, config.model.seq_len, EVAL_BATCH, gen, dtype=torch.float64)
    return gen, (x, y)


def eval_batch(config: TrainConfig) -> tuple[Tensor, Tensor]:
    """The fixed float64 eval batch of ``config``: x (T', 256, d) and its target, on the CPU."""
    return _data(config)[1]


class _Runner(nn.Module):
    """x (T', B, d) -> h (T', B, n) of our cell's ``run`` or of a ``torch.nn`` RNN/LSTM/GRU, as a
    module whose tensors ``functional_call`` can substitute (keys ``core.<torch.nn name>``)."""

    def __init__(self, core: nn.Module):
        super().__init__()
        self.core = core

    def forward(self, x: Tensor) -> Tensor:
        if isinstance(self.core, RecurrentCell):
            return self.core.run(x).h[1:]
        return self.core(x)[0]


class _Model:
    """Cell (or its torch.nn twin) plus read-out; forward gives h (T', B, n) and the live W_hh."""

    def __init__(self, config: TrainConfig, dev: torch.device):
        self.model_config = config.model.replace(input_size=tasks.input_size(config.task))
        self.cell = build_cell(self.model_config, dev)
        self.names = list(self.cell.state_dict())
        n, dtype = self.cell.hidden, next(self.cell.parameters()).dtype
        self.blocks = self.cell.gate_blocks
        self.readout = nn.Linear(n, tasks.output_size(config.task), device="meta", dtype=dtype).to_empty(device=dev)
        gen = backend.generator(config.model.seed, READOUT_STREAM)
        with torch.no_grad():  # nn.Linear's default init, from a private generator
            bound = 1.0 / math.sqrt(n)
            for p in (self.readout.weight, self.readout.bias):
                p.copy_(torch.empty(p.shape, dtype=dtype).uniform_(-bound, bound, generator=gen).to(dev))
        kind = torch_module(self.model_config)
        self.fast: nn.Module | None = None
        if kind is not None:
            kw = {"nonlinearity": self.model_config.activation} if kind == "RNN" else {}
            # built on "meta" then loaded: torch's own init would draw from the global RNG
            self.fast = getattr(nn, kind)(self.model_config.input_size, n, device="meta", dtype=dtype,
                                          **kw).to_empty(device=dev)
            self.fast.load_state_dict(self.cell.state_dict())
        self.engine: _Runner | None = None
        if config.orthogonal_param != "none":
            # The parametrised cell holds the trained tensors; an unparametrised twin (torch.nn's
            # fused module where it computes this cell) runs the sequence with W_hh = B phi(A)
            # evaluated once per step and substituted (see forward). Not torch.nn's module on
            # CUDA: there it re-flattens the tensors it is given for cuDNN at each call, in place.
            fused = self.fast is not None and dev.type == "cpu"
            self.engine = _Runner(self.fast if fused else copy.deepcopy(self.cell))
            self.engine.requires_grad_(False)
            self.fast = None
            parametrizations.orthogonal(self.cell, "weight_hh_l0", orthogonal_map=config.orthogonal_param)

    def parameters(self) -> list[nn.Parameter]:
        core = self.fast if self.fast is not None else self.cell
        return list(core.parameters()) + list(self.readout.parameters())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """x (T', B, d) -> h (T', B, n) for steps 1..T', and W_hh (G n, n) in the graph (None: a cell without one)."""
        if self.fast is not None:
            return self.fast(x)[0], self.fast.weight_hh_l0
        if self.engine is not None:
            # One evaluation of the map per step, substituted into an unparametrised twin. Not
            # parametrize.cached(): its flag and dict are module globals of torch, so a session
            # inside it would hand other sessions' parametrisations stale values. Nor
            # functional_call on the parametrised cell itself: it assigns W through the
            # parametrisation's setter (right_inverse: base <- W, A <- 0), and the unrolled
            # sequence then evaluates the map again at every time step, forward and backward.
            W = self.cell.weight_hh_l0
            tensors = {f"core.{name}": W if name == "weight_hh_l0" else getattr(self.cell, name)
                       for name, _ in self.engine.core.named_parameters()}
            return functional_call(self.engine, tensors, (x,)), W
        return self.cell.run(x).h[1:], getattr(self.cell, "weight_hh_l0", None)

    def tensors(self) -> dict[str, Tensor]:
        """Current weights, detached, by torch.nn names (+ readout.weight, readout.bias)."""
        if self.fast is not None:
            out = dict(self.fast.state_dict())
        else:
            out = {k: v for k, v in self.cell.state_dict().items() if not k.startswith("parametrizations.")}
            if parametrize.is_parametrized(self.cell, "weight_hh_l0"):
                with torch.no_grad():
                    out["weight_hh_l0"] = self.cell.weight_hh_l0
            order = [k for k in self.names if k in out]  # the cell's own order, as before any parametrisation
            out = {k: out[k] for k in order + sorted(set(out) - set(order))}
        out["readout.weight"], out["readout.bias"] = self.readout.weight, self.readout.bias
        return {k: v.detach() for k, v in out.items()}


def _recurrent_spectrum(probe: RecurrentCell, W: Tensor | None, blocks: int) -> tuple[np.ndarray, float]:
    """(singular values of W_hh, descending, and sqrt of the orthogonality penalty) for a cell with a W_hh;
    for a diagonal recurrence with fixed eigenvalues (the LRU) their moduli, descending, and NaN; else
    nothing and NaN. Non-finite weights give NaNs."""
    if W is None:
        fixed = getattr(probe, "eigenvalues", None)
        moduli = torch.sort(fixed().abs(), descending=True).values.numpy() if fixed is not None else np.zeros(0)
        return moduli, math.nan
    W = W.to(torch.float64)
    if not bool(torch.isfinite(W).all()):
        return np.full(W.shape[1], np.nan), math.nan
    return torch.linalg.svdvals(W).cpu().numpy(), math.sqrt(float(ortho_penalty(W, blocks)))


def _numpy(tensors: dict[str, Tensor]) -> dict[str, np.ndarray]:
    return {k: v.cpu().numpy().copy() for k, v in tensors.items()}


def _fused_step(cell: RecurrentCell) -> Callable | None:
    """torch's fused single-step kernel for a cell that ``torch_module`` maps to torch.nn,
    as step(x_t (B, d), state) -> state (h, or (h, c) for the LSTM); else None."""
    return cell.fused_step()


def _unroll(cell: RecurrentCell, x: Tensor, eps_t: tuple[Tensor, ...], fused: bool) -> Tensor:
    """h_1..h_T' (T', b, n) with eps_t[t] added to the state after step t."""
    n, b = cell.hidden, x.shape[1]
    step = _fused_step(cell) if fused else None
    hs = []
    if step is not None:  # eps covers h only: dL/dh_t holding c_t fixed is all we read
        h = x.new_zeros(b, n)
        state = (h, torch.zeros_like(h)) if cell.state_size > n else h
        for t in range(x.shape[0]):
            state = step(x[t], state)
            if isinstance(state, tuple):
                state = (state[0] + eps_t[t], state[1])
                hs.append(state[0])
            else:
                state = state + eps_t[t]
                hs.append(state)
        return torch.stack(hs)
    drive = cell.input_drive(x)  # (T', b, G n)
    z = x.new_zeros(b, cell.state_size)
    for t in range(x.shape[0]):
        z, _ = cell.step(drive[t], z)
        z = z + eps_t[t]
        hs.append(z[:, :n])
    return torch.stack(hs)


def gradient_flow(cell: RecurrentCell, readout_weight: Tensor, readout_bias: Tensor, task: str,
                  x: Tensor, target: Tensor, fused: bool = True) -> tuple[float, np.ndarray]:
    r"""Eval loss L and log10 \|\partial L/\partial h_t\|_F for t = 1..T' (numpy, (T',)).

    ``cell`` is typically a float64 copy; x (T', B, d), target (B,) or (T', B). Each state
    gets a zero perturbation \epsilon_t, created once and split with ``unbind`` (indexing it
    in the loop would make the backward pass O(T'^2)); \partial L/\partial\epsilon_t =
    \partial L/\partial z_t, of which the h part is kept. Cells that torch.nn computes exactly
    step through torch's fused cell kernels (``fused=False`` forces ``cell.step``).
    The batch is split into chunks of sequences when the graph would be large (not for
    batch norm, whose statistics couple the sequences); chunk norms combine in scaled
    form, \|g\| = M \sqrt{\sum_c s_c (M_c/M)^2} with M_c the chunk's largest |entry| and
    s_c its sum of squares after dividing by M_c, so no square underflows.
    """
    steps, B = x.shape[:2]
    n = cell.hidden
    width = n if (fused and _fused_step(cell) is not None) else cell.state_size
    coupled = getattr(cell, "norm", "none") == "batch"
    chunk = B if coupled else max(1, min(B, PROBE_BYTES // (steps * cell.state_size * _PROBE_SAVED)))
    loss_total = 0.0
    maxes, ssqs = [], []
    for s0 in range(0, B, chunk):
        xs, ys = x[:, s0:s0 + chunk], target[..., s0:s0 + chunk]
        eps = torch.zeros(steps, xs.shape[1], width, dtype=x.dtype, device=x.device, requires_grad=True)
        h = _unroll(cell, xs, eps.unbind(0), fused)
        L = tasks.loss(task, h, readout_weight, readout_bias, ys, reduction="sum") / B
        (grad,) = torch.autograd.grad(L, eps)
        gh = grad[..., :n].reshape(steps, -1)  # (T', b n)
        peak = gh.abs().amax(1)  # (T',)
        scaled = gh / torch.where(peak > 0, peak, torch.ones_like(peak))[:, None]
        maxes.append(peak)
        ssqs.append((scaled * scaled).sum(1))
        loss_total += float(L.detach())
    peaks, sums = torch.stack(maxes), torch.stack(ssqs)  # (chunks, T')
    top = peaks.amax(0)
    ratio = peaks / torch.where(top > 0, top, torch.ones_like(top))
    top_np = top.cpu().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        log10 = np.log10(top_np) + 0.5 * np.log10((sums * ratio * ratio).sum(0).cpu().numpy())
    log10[top_np == 0] = -np.inf
    return loss_total, log10


def _train(config: TrainConfig, *, progress: Callable[[TrainResult], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """The training loop; :func:`train` is the entry point."""
    start = time.perf_counter()
    dev = backend.device()
    model = _Model(config, dev)
    probe = build_cell(model.model_config.replace(dtype="float64"), dev)
    probe.requires_grad_(False)
    gen, (x_eval, y_eval) = _data(config)
    x_eval, y_eval = x_eval.to(dev), y_eval.to(dev)
    dtype = next(model.cell.parameters()).dtype
    T = config.model.seq_len
    params = model.parameters()
    opt_class = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}
    opt = opt_class[config.optimizer](params, lr=config.lr)
    lam, blocks = config.ortho_reg, model.blocks

    weights_init = _numpy(model.tensors())
    history: list[dict[str, Any]] = []
    flows: list[np.ndarray] = []
    svals: list[np.ndarray] = []
    events: list[dict[str, Any]] = []
    loss_sum, loss_count, clipped = 0.0, 0, 0
    last_recorded = 0

    def result(stopped: bool = False, weights: dict[str, np.ndarray] | None = None) -> TrainResult:
        n, steps_eval = model.cell.hidden, x_eval.shape[0]
        return TrainResult(
            config=config, baseline=tasks.baseline(config.task, T), history=list(history),
            grad_flow=np.stack(flows) if flows else np.empty((0, steps_eval)),
            singular_values=np.stack(svals) if svals else np.empty((0, len(svals[0]) if svals else n)),
            weights_init=weights_init, weights_final=weights if weights is not None else _numpy(model.tensors()),
            events=list(events), stopped=stopped, seconds=time.perf_counter() - start)

    def record(step: int, grad_norm: float) -> dict[str, np.ndarray]:
        nonlocal loss_sum, loss_count, clipped, last_recorded
        tensors = model.tensors()
        cell_tensors = {k: v for k, v in tensors.items() if not k.startswith("readout.")}
        probe.load_state_dict(cell_tensors)  # copy_ casts to float64
        eval_loss, flow = gradient_flow(probe, tensors["readout.weight"].double(), tensors["readout.bias"].double(),
                                        config.task, x_eval, y_eval)
        sv, ortho = _recurrent_spectrum(probe, cell_tensors.get("weight_hh_l0"), blocks)
        history.append({
            "step": step,
            "loss": loss_sum / loss_count if loss_count else math.nan,
            "eval_loss": eval_loss,
            "grad_norm": grad_norm,
            "ortho_error": ortho,
            "clipped": clipped,
        })
        flows.append(flow)
        svals.append(sv)
        loss_sum, loss_count, clipped, last_recorded = 0.0, 0, 0, step
        return _numpy(tensors)

    stopped = False
    weights = None
    with torch.enable_grad():  # a caller's no_grad() must not silently disable training
        for step in range(1, config.steps + 1):
            x, y = tasks.make_batch(config.task, T, config.batch_size, gen, dtype=dtype, device=dev)
            h, W_hh = model.forward(x)
            loss = tasks.loss(config.task, h, model.readout.weight, model.readout.bias, y)
            total = loss + lam * ortho_penalty(W_hh, blocks) if lam > 0 and W_hh is not None else loss
            opt.zero_grad(set_to_none=True)
            total.backward()
            if config.clip > 0:
                norm = nn.utils.clip_grad_norm_(params, config.clip)
            else:
                norm = nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
            loss_value, norm_value = float(loss.detach()), float(norm)
            if math.isfinite(loss_value):
                loss_sum, loss_count = loss_sum + loss_value, loss_count + 1
            if math.isfinite(loss_value) and math.isfinite(norm_value):
                opt.step()
                clipped += int(config.clip > 0 and norm_value > config.clip)
            else:  # skip the update: one bad batch must not poison the weights
                kind = "nonfinite_loss" if not math.isfinite(loss_value) else "nonfinite_grad"
                events.append({"step": step, "kind": kind})
            stopped = bool(should_stop is not None and should_stop())
            if step % config.record_every == 0 or step == config.steps or stopped:
                weights = record(step, norm_value)
                if progress is not None:
                    progress(result(weights=weights))
            if stopped:
                break
    return result(stopped=stopped and last_recorded < config.steps, weights=weights)



def train(config: TrainConfig, *, progress: Callable[[TrainResult], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    r"""Train ``config`` and record its gradient flow; seeded, so a config reproduces exactly.
    Runs on one intra-op thread: small recurrent steps are faster than on two here.

    Each step: a fresh batch x (T', B, d) from ``generator(seed, 2)``, J = L_task + \lambda R,
    backward, the pre-clip norm \|\nabla J\|_2 over all parameters (clipped to ``clip`` with
    ``clip_grad_norm_`` when clip > 0), and the optimiser step unless the loss or the
    norm is not finite. ``progress(partial)`` follows each record; ``should_stop()`` is
    polled after each step and ends the run (with a final record) when it returns True.
    Raises ``ValueError`` for a Riemannian parametrisation of a gated cell.
    """
    with backend.threads(1):
        return _train(config, progress=progress, should_stop=should_stop)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _nested(a: np.ndarray) -> list:
    """A numpy array as nested lists, non-finite entries as None."""
    a = np.asarray(a, dtype=np.float64)
    mask = ~np.isfinite(a)
    if not mask.any():
        return a.tolist()
    obj = a.astype(object)
    obj[mask] = None
    return obj.tolist()


def train_to_json(result: TrainResult) -> dict[str, Any]:
    """A JSON-ready dict: nested lists, every non-finite number (NaN, +-inf) as None."""
    return {
        "config": result.config.to_dict(),
        "baseline": _finite(float(result.baseline)),
        "history": [{k: _finite(v) for k, v in row.items()} for row in result.history],
        "grad_flow": _nested(result.grad_flow),
        "singular_values": _nested(result.singular_values),
        "weights_init": {k: _nested(v) for k, v in result.weights_init.items()},
        "weights_final": {k: _nested(v) for k, v in result.weights_final.items()},
        "events": [{k: _finite(v) for k, v in e.items()} for e in result.events],
    }
