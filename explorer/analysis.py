r"""The analysis of one config: pure functions from a config to arrays.

The lecture's product: for a loss at the last step,

.. math::
    \frac{\partial L}{\partial W_x} = \sum_{t=1}^{T} \frac{\partial L}{\partial h_T}
    \Big(\prod_{k=t}^{T-1} \frac{\partial h_{k+1}}{\partial h_k}\Big) \frac{\partial h_t}{\partial W_x},

and each factor is J_k = diag(g'(a_k)) W_h for the simple RNN. :func:`analyze` returns the
norm of every partial product (all pairs t <= s), the per-step contributions to the sum,
the singular values at one lag, the spectrum of W_hh and the bound (gamma sigma_max)^k.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch

from . import backend, diagonal, theory
from .cells import RecurrentCell, Trace, build_cell, make_inputs
from .config import ExperimentConfig
from .lyapunov import lyapunov_of_cell
from .lyapunov import to_json as lyapunov_json
from .registry import cell_type
from .theory import Theory
from .jacobian import (LOG10E, PairNorms, SingularValues, View, all_pairs, backprop_log, batched_lapack,
                       log10_singular_values, make_grid, step_norms, to_the_end)

@dataclass
class Analysis:
    """Everything the pages plot and the CLI prints, as numpy arrays (float64)."""

    config: ExperimentConfig
    weights: dict[str, np.ndarray]  # torch.nn state-dict names
    inputs: np.ndarray  # (T, d) x_1..x_T
    h: np.ndarray  # (T+1, n) h_0..h_T
    c: np.ndarray | None  # (T+1, n) LSTM cell state
    gates: dict[str, np.ndarray]  # name -> (T, n), steps 1..T
    pairs: PairNorms  # all-pairs log10 norms of dz_s/dz_t
    contributions: np.ndarray  # (T,) log10 ||dL/dW_ih at step t||_F, t = 1..T
    grad_norms: np.ndarray  # (T+1,) log10 ||dL/dz_t||, t = 0..T
    lag: int
    singular_values: np.ndarray  # (m,) log10 sigma_i(dz_T/dz_{T-lag}), descending; NaN: below singular_limit
    eigenvalues: np.ndarray  # (gate_blocks*n,) complex eigenvalues of each n x n block of W_hh
    bound_log10_rate: float | None  # log10(gamma sigma_max(W_hh)) (+1 inside for residual), per step
    extras: dict[str, Any] = field(default_factory=dict)
    # (steps k (K-1,), log10 ||J_k||_2): one step's factor, at the map's grid steps
    step_norms: tuple[np.ndarray, np.ndarray] = (np.zeros(0, dtype=np.int64), np.zeros(0))
    # log10 of the level below which the product's rounding leaves a singular value undetermined (None: all resolved)
    singular_limit: float | None = None
    overflow_step: int | None = None  # the first step whose state is not finite (NaN from there on in h, c, gates)
    theory: Theory | None = None  # mean-field theory of the simple RNN (explorer.theory); None where it does not apply
    theory_note: str | None = None  # why theory is None, or what its nulls mean
    lyapunov: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (K,) top exponents, log10 per step; NaN: undefined
    warnings: list[str] = field(default_factory=list)  # what went wrong in the arithmetic, for the reader
    seconds: float = 0.0
    source: dict[str, Any] | None = None  # a loaded model's file (explorer.weights): its sha256, layer, direction

    @property
    def undefined_from(self) -> int | None:
        """The first step whose Jacobian the overflow left undefined (None: every map stands)."""
        return self.pairs.undefined_from

    @property
    def stride(self) -> int:
        g = self.pairs.grid
        return int(g[-1] - g[-2]) if len(g) > 1 else 1

    def lag_curve(self, view: str = "state") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lags k, log10 ||dz_T/dz_{T-k}||_2, log10 ||.||_F) from the last column of the map."""
        grid = self.pairs.grid
        lags = grid[-1] - grid[::-1]
        return (lags, self.pairs.log10_spectral[view][::-1, -1].copy(),
                self.pairs.log10_frobenius[view][::-1, -1].copy())


def auto_stride(config: ExperimentConfig) -> int:
    """The app's grid stride for ``config``: the smallest whose predicted time (:mod:`explorer.cost`) fits this
    deployment's analysis budget (:mod:`explorer.limits`), never fewer than ``MIN_GRID`` grid points. It depends
    on the config alone, not on the machine's speed, so a shared link gives the same picture."""
    from .limits import stride_for

    return stride_for(config)


def _views(cell: RecurrentCell) -> tuple[View, ...]:
    """The blocks of the full-state product whose norms are mapped: the state, and (the LSTM) c -> c."""
    n = cell.hidden
    blocks = {"state": View("state"), "cell": View("cell", (n, 2 * n), (n, 2 * n))}
    return tuple(blocks[name] for name in cell_type(cell.kind).views)


def pair_norms(cell: RecurrentCell, trace: Trace, config: ExperimentConfig, stride: int = 1,
               progress: Callable[[float], None] | None = None) -> PairNorms:
    """The all-pairs maps of every view of ``cell`` (sequence 0 of ``trace``), as :func:`analyze` computes
    them: pairs that a non-finite state leaves undefined are NaN (``PairNorms.undefined_from``)."""
    undefined = undefined_from(cell, trace)
    pairs = all_pairs(_first_sequence_jacobians(cell, trace, undefined), config.seq_len, cell.state_size,
                      views=_views(cell), stride=stride, rtol=_rtol(config), dtype=trace.z.dtype,
                      device=trace.z.device, progress=progress,
                      diagonal_from=cell.hidden if cell_type(cell.kind).jacobian == "diagonal_columns" else None,
                      before=undefined)
    if undefined is not None:
        pairs.undefined_from = undefined
        later = (pairs.grid[None, :] >= undefined) & (pairs.grid[:, None] < pairs.grid[None, :])  # t < s >= k
        for maps in (pairs.log10_spectral, pairs.log10_frobenius):
            for values in maps.values():
                values[later] = np.nan
    return pairs


def _seed(cell: RecurrentCell, trace: Trace) -> torch.Tensor:
    """dL/dz_T for L = u^T h_T, u = 1/sqrt(n) (h: the state's first n units), (m,)."""
    seed = torch.zeros(cell.state_size, dtype=trace.z.dtype, device=trace.z.device)
    seed[:cell.hidden] = 1.0 / math.sqrt(cell.hidden)
    return seed


def contributions(cell: RecurrentCell, trace: Trace, deltas: torch.Tensor, log_norms: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    r"""log10 \|C_t\|_F of the per-step terms of dL/dW_ih for L = u^T h_T, u = 1/\sqrt{n}, sequence 0.

    C_t = (dL/dd_t)^T x_t, where d_t = W_ih x_t + b_ih is step t's input drive and
    dL/dd_t = \delta_t dz_t/dd_t with \delta_t = dL/dz_t, given in log space as unit rows ``deltas``
    (T+1, m) and natural-log norms (T+1,) (:func:`~explorer.jacobian.backprop_log`, or the diagonal
    closed form). \delta_t dz_t/dd_t comes from the cell (:meth:`~explorer.cells.RecurrentCell.input_vjp`:
    closed form with its own log scale for the simple RNN, autograd for the others).
    Returns (log10 ||C_t||_F (T,), log10 ||dL/dz_t|| (T+1,)).
    """
    first = trace.sequence(0)
    rows, row_logs = cell.input_vjp(first, deltas[1:, None])  # (T, 1, G n), (T, 1)
    per_drive = rows[:, 0].double().norm(dim=-1)  # (T,)
    x_norm = first.x[:, 0].double().norm(dim=-1)
    with np.errstate(divide="ignore"):
        contrib = (np.log10((per_drive * x_norm).cpu().numpy()) + (row_logs[:, 0].cpu().numpy() + log_norms[1:])
                   * LOG10E)
    return contrib, log_norms * LOG10E


def analyze(config: ExperimentConfig, *, stride: int = 1, device: torch.device | str | None = None,
            progress: Callable[[float], None] | None = None, lyapunov: int = 0,
            files: Mapping[str, bytes] | None = None) -> Analysis:
    """Build the seeded cell (or load the trained one ``config.weights`` names, :mod:`explorer.weights`), run it on
    the seeded input (or the uploaded sequence) and compute every view; with ``lyapunov`` = K > 0 also the top K
    Lyapunov exponents of the whole sequence's product (:mod:`explorer.lyapunov`). ``files`` maps a loaded file's
    ``sha256:<hex>`` to its bytes (held in memory only). ``Analysis.config`` is the config fitted to the file.

    Runs on ``backend.THREADS`` intra-op threads whatever thread calls it (OpenMP's thread
    count is per thread: a Streamlit script thread would otherwise get one)."""
    with backend.threads(backend.THREADS):
        return _analyze(config, stride, device, progress, lyapunov, files)


def undefined_from(cell: RecurrentCell, trace: Trace) -> int | None:
    """The first step whose Jacobian the arithmetic could not give: the first non-finite state (an
    overflow), unless the cell's Jacobians do not depend on the state (a linear cell). None if none."""
    bad = trace.first_nonfinite()
    return None if bad is None or cell.state_independent_jacobian else bad


def _first_sequence_jacobians(cell: RecurrentCell, trace: Trace, undefined: int | None = None) -> Callable:
    r"""steps (K,) -> (\hat J_k (K, m, m), log scales (K,)) of sequence 0, built for that sequence only
    (:meth:`Trace.sequence`; J_k = e^{s_k} \hat J_k). Steps from ``undefined`` on stand in as zeros: the
    products through them are exact zeros (the cheapest to certify), and every number they touch is blanked
    afterwards (:func:`pair_norms`, :func:`_analyze`)."""
    first = trace.sequence(0)

    def jac(steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        J, logs = cell.scaled_jacobians(first, steps)
        J, logs = J[:, 0], logs[:, 0]
        if undefined is not None:
            bad = steps >= undefined
            if bool(bad.any()):
                J = torch.where(bad[:, None, None], 0.0, J)
                logs = torch.where(bad, 0.0, logs)
        return J, logs

    return jac


@dataclass
class Traced:
    """A cell set up for analysis, its inputs (T, B, d_layer), its forward pass, the config it fits (a loaded
    file's fields filled in) and the file it came from (None: the seeded init)."""

    cell: RecurrentCell
    x: torch.Tensor
    trace: Trace
    config: ExperimentConfig
    source: dict[str, Any] | None = None


def traced(config: ExperimentConfig, device=None, files: Mapping[str, bytes] | None = None) -> Traced:
    """The seeded cell, or the trained one ``config.weights`` names (:func:`explorer.weights.load`), on ``device``
    (None: the backend's), its inputs (through a file's lower layers, reversed for the reverse direction) and its
    forward pass. Raises :class:`explorer.weights.WeightsError` for a file that does not load."""
    device = torch.device(device) if device is not None else backend.device()
    loaded = None
    if config.weights:
        from .weights import load

        loaded = load(config, files)
        config = loaded.config
        cell = loaded.build(device)
    else:
        cell = build_cell(config, device)
    cell.frozen_statistics = True  # batch norm: one Jacobian per sequence (see SimpleRNN)
    cell.requires_grad_(False)  # differentiated w.r.t. states and input drives only, never the weights
    x = make_inputs(config, config.batch if config.norm == "batch" else 1, device, files)
    if loaded is not None:
        x = loaded.layer_inputs(x)
    with torch.no_grad():
        return Traced(cell, x, cell.run(x), config, None if loaded is None else loaded.source)


def lag_curve(config: ExperimentConfig, *, stride: int = 1, device: torch.device | str | None = None,
              progress: Callable[[float], None] | None = None, files: Mapping[str, bytes] | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``analyze(config, stride=stride).lag_curve()`` without the rest of the analysis: the last
    column of the map only (:func:`~explorer.jacobian.to_the_end`), e.g. for an overlay."""
    with backend.threads(backend.THREADS):
        run = traced(config, device, files)
        cell, trace, config = run.cell, run.trace, run.config
        undefined = undefined_from(cell, trace)
        lags, spec, fro = to_the_end(_first_sequence_jacobians(cell, trace, undefined), config.seq_len,
                                     cell.state_size, stride=stride, rtol=_rtol(config), dtype=trace.z.dtype,
                                     device=trace.z.device, progress=progress)
        if undefined is not None:  # every lag from T back passes the overflow
            spec[1:], fro[1:] = np.nan, np.nan
        return lags, spec, fro


def overflow_warning(config: ExperimentConfig, step: int, state_independent: bool) -> str:
    """What a page and the JSON say when the forward pass overflowed at ``step``."""
    text = (f"The {config.dtype} forward pass overflowed at step {step}: h_{step} is not finite. Every number "
            f"that depends on h_{step} or a later state is undefined and left blank")
    if state_independent:
        text += " (the Jacobians of a linear cell do not depend on h: the maps and contributions stand)"
    if config.dtype == "float32":
        return text + ". Use float64 (precision) or a smaller gain."
    return text + ". Even float64 overflowed: use a smaller gain or a shorter sequence."


def _blank(values: np.ndarray | None, first_row: int | None) -> np.ndarray | None:
    """``values`` with rows from ``first_row`` on set to NaN (undefined), a copy."""
    if values is None or first_row is None:
        return values
    out = np.array(values, dtype=np.float64)
    out[first_row:] = np.nan
    return out


def _dense_chain(cell: RecurrentCell, trace: Trace, config: ExperimentConfig, stride: int, undefined: int | None,
                 progress) -> tuple[PairNorms, tuple[torch.Tensor, np.ndarray], np.ndarray, np.ndarray]:
    """The maps, dL/dz_t, the singular values at the lag and one step's norms from the cell's (m, m) Jacobians."""
    T, m, device = config.seq_len, cell.state_size, trace.z.device
    jac = _first_sequence_jacobians(cell, trace, undefined)
    pairs = pair_norms(cell, trace, config, stride=stride, progress=progress)
    backprop = backprop_log(jac, _seed(cell, trace), T)
    singular = log10_singular_values(jac, T - config.lag, T, m, device=device)
    if stride == 1:  # the map's first diagonal: s = t + 1
        per_step = pairs.log10_spectral["state"][np.arange(T), np.arange(1, T + 1)].copy()
    else:
        steps = pairs.grid[1:]
        per_step = step_norms(jac, steps, m, rtol=_rtol(config), dtype=trace.z.dtype, device=device)
        if undefined is not None:
            per_step[steps >= undefined] = np.nan
    return pairs, backprop, singular, per_step


def _diagonal_chain(cell: RecurrentCell, trace: Trace, config: ExperimentConfig, stride: int, undefined: int | None,
                    progress) -> tuple[PairNorms, tuple[torch.Tensor, np.ndarray], np.ndarray, np.ndarray]:
    """The same for a diagonal recurrence (:mod:`explorer.diagonal`): every norm from the diagonal's moduli, exact."""
    T, first = config.seq_len, trace.sequence(0)
    steps = torch.arange(1, T + 1, device=trace.z.device)
    log_moduli = cell.log_moduli(first, steps)[:, 0]  # (T, u)
    grid = make_grid(T, stride)
    spec, fro = diagonal.pair_maps(log_moduli, grid, cell.modulus_multiplicity, exact64=config.dtype == "float64")
    pairs = PairNorms(grid=grid, log10_spectral={"state": spec}, log10_frobenius={"state": fro}, rtol=0.0)
    phases = cell.phases(first, steps)
    adjoints, log_norms = diagonal.backprop(log_moduli, None if phases is None else phases[:, 0],
                                            cell.to_adjoint(_seed(cell, trace)))
    deltas = cell.from_adjoint(adjoints).to(trace.z.dtype)
    singular = SingularValues(diagonal.singular_values(log_moduli, T - config.lag, T, cell.modulus_multiplicity),
                              None)  # exact: sums of the moduli's logs
    if progress is not None:
        progress(1.0)
    return pairs, (deltas, log_norms), singular, diagonal.step_norms(log_moduli, grid[1:])


def _analyze(config: ExperimentConfig, stride: int, device, progress, lyapunov: int = 0,
             files: Mapping[str, bytes] | None = None) -> Analysis:
    t0 = time.perf_counter()
    run = traced(config, device, files)
    cell, x, trace, config = run.cell, run.x, run.trace, run.config
    overflow, undefined = trace.first_nonfinite(), undefined_from(cell, trace)
    T, lag = config.seq_len, config.lag
    chain = _diagonal_chain if cell_type(config.cell).jacobian == "diagonal" else _dense_chain
    pairs, (deltas, log_norms), resolved, per_step = chain(cell, trace, config, stride, undefined, progress)
    singular, singular_limit = resolved.log10, resolved.log10_limit
    contrib, grad_norms = contributions(cell, trace, deltas, log_norms)
    if undefined is not None:  # every delta_t, t < T, and every product ending at T pass step `undefined`
        contrib, grad_norms, singular = np.full_like(contrib, np.nan), _blank(grad_norms, 0), np.full_like(singular, np.nan)
        singular_limit = None
        grad_norms[T] = math.log10(1.0)  # dL/dh_T = u, whatever h_T is: 1 / sqrt(n) per unit, norm 1
    blocks = cell.recurrent_blocks()
    if blocks is not None:  # gate blocks split over the two workers
        eig = batched_lapack(torch.linalg.eigvals, blocks.double().cpu()).reshape(-1).numpy()
    else:  # a diagonal recurrence's fixed eigenvalues (the LRU's lambda), or none that stay fixed
        fixed = getattr(cell, "eigenvalues", None)
        eig = fixed().cpu().numpy() if fixed is not None else np.zeros(0, dtype=complex)
    rate = cell.bound_log10_rate()
    gates = {k: _blank(v[:, 0].double().cpu().numpy(), overflow and overflow - 1) for k, v in trace.gates.items()}
    extras = {"saturation": saturation(gates, cell.present_gates()), "gate_quartiles": gate_quartiles(gates)}
    log_direct = cell.direct_path(trace)
    if log_direct is not None:
        direct = direct_cell_path(log_direct[:, 0].cpu().numpy() * LOG10E)
        if undefined is not None:  # f_k depends on h_(k-1): every lag from T back passes the overflow
            direct = {k: v if k == "lags" else _blank(v, 1) for k, v in direct.items()}
        extras["direct_cell_path"] = direct
    if trace.c is None and cell.state_size > cell.hidden:  # the rest of the state is more of h (the LRU's Im h)
        extras["h_imag"] = _blank(trace.z[:, 0, cell.hidden:].double().cpu().numpy(), overflow)
    warnings = [] if overflow is None else [overflow_warning(config, overflow, cell.state_independent_jacobian)]
    mean_field, theory_note = theory.evaluate(config, cell, x)  # the very parameters and inputs measured above
    exponents = lyapunov_of_cell(cell, trace, lyapunov) if lyapunov > 0 else np.zeros(0)
    return Analysis(
        config=config,
        weights={k: v.detach().double().cpu().numpy() for k, v in cell.state_dict().items()},
        inputs=x[:, 0].double().cpu().numpy(),
        h=_blank(trace.h[:, 0].double().cpu().numpy(), overflow),
        c=_blank(None if trace.c is None else trace.c[:, 0].double().cpu().numpy(), overflow),
        gates=gates,
        pairs=pairs,
        contributions=contrib,
        grad_norms=grad_norms,
        lag=lag,
        singular_values=singular,
        eigenvalues=eig,
        bound_log10_rate=rate,
        extras=extras,
        step_norms=(pairs.grid[1:], per_step),
        singular_limit=singular_limit,
        overflow_step=overflow,
        theory=mean_field,
        theory_note=theory_note,
        lyapunov=exponents,
        warnings=warnings,
        seconds=time.perf_counter() - t0,
        source=run.source,
    )


def direct_cell_path(log10_forget: np.ndarray) -> dict[str, np.ndarray]:
    r"""Norms of the LSTM's direct cell path \prod_{k=t+1}^{T} diag(f_k), for every t, in log space.

    Spectral norm = max_i \prod_k f_{k,i}; Frobenius = sqrt(sum_i \prod_k f_{k,i}^2).
    log10_forget: (T, n) log10 f (from the pre-activation: finite where f underflows float32).
    Returns lags (T+1,) and log10 norms (T+1,) for lags 0..T.
    """
    suffix = np.vstack([np.zeros((1, log10_forget.shape[1])), np.cumsum(log10_forget[::-1], axis=0)])  # lags 0..T
    spectral = suffix.max(axis=1)
    frob = 0.5 * np.log10(np.sum(10.0 ** (2 * (suffix - spectral[:, None])), axis=1)) + spectral
    return {"lags": np.arange(len(suffix)), "log10_spectral": spectral, "log10_frobenius": frob}


SATURATION = (0.05, 0.95)


def saturation(gates: dict[str, np.ndarray], present: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Share of units per step whose sigmoid gate is below 0.05 or above 0.95, (T,) per gate.

    Only the ``present`` gates (:meth:`~explorer.cells.RecurrentCell.present_gates`): an absent
    gate is 1 by construction, and a tanh candidate does not saturate the same way.
    """
    lo, hi = SATURATION
    return {k: np.where(np.isnan(gates[k]).any(axis=1), np.nan, ((gates[k] < lo) | (gates[k] > hi)).mean(axis=1))
            for k in present}


def gate_quartiles(gates: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per gate (T, n): the quartiles over units at each step, (3, T) (25th, 50th, 75th; NaN where undefined).
    Computed once with the analysis: a page redraws the spread of 2000 x 512 gates on every rerun."""
    return {k: np.percentile(v, [25, 50, 75], axis=1) for k, v in gates.items()}


def _rtol(config: ExperimentConfig) -> float:
    return 1e-5 if config.dtype == "float32" else 1e-9


def _matrix(a: np.ndarray) -> list:
    """Log-norm values as nested lists: NaN and -inf become null (see ``NULL_MEANS``)."""
    return [[None if not math.isfinite(v) else round(float(v), 12) for v in row] for row in np.atleast_2d(a)]


def _values(a: np.ndarray) -> list:
    """States and gates as nested lists, every non-finite value null."""
    return [[float(v) if math.isfinite(v) else None for v in row] for row in a]


def _full_map(pairs: PairNorms, key: str, view: str, T: int) -> np.ndarray:
    """A (T+1, T+1) map: the grid's values, NaN off the grid."""
    maps = getattr(pairs, key)[view]
    if len(pairs.grid) == T + 1:
        return maps
    out = np.full((T + 1, T + 1), np.nan)
    out[np.ix_(pairs.grid, pairs.grid)] = maps
    return out


def _zero_from(full: np.ndarray) -> list:
    """Per row t, the first s whose product is exactly zero (-inf), or null: a zero stays zero for every later s."""
    zero = np.isneginf(full)
    return [int(np.argmax(row)) if row.any() else None for row in zero]


NULL_MEANS = {
    "jacobian": ("In log10_spectral and log10_frobenius, [t][s] is null when t > s (below the diagonal), when t or "
                 "s is not in grid (the map's stride), when s >= undefined_from_step and t < s (undefined: the "
                 "forward pass overflowed, see warnings), or else when s >= exact_zero_from[t] (the product is "
                 "exactly zero: log10 = -inf)."),
    "log10_values": ("In contributions_log10, grad_norms_log10, singular_values_log10 and step_norms_log10 a null "
                     "is undefined when "
                     "undefined_from_step is set (every value but grad_norms_log10[T] passes the overflow), else an "
                     "exact zero (log10 = -inf). A null in singular_values_log10.values, when resolved_above_log10 is "
                     "a number, is a singular value below it: the product's rounding leaves it undetermined."),
    "states": "In h, c and gates a null is a non-finite value or a step from overflow_step on (undefined).",
    "weights": ("A null weight is -inf or inf: the LRU's log-parameters at a ring edge (theta_log at phase 0, "
                "gamma_log and nu_log at |lambda| = 1)."),
    "theory": ("theory is null where the mean-field theory of the simple RNN does not apply (theory_note says why); "
               "a null inside it is explained by theory_note (no finite fixed point, chi = 0, or xi with chi >= 1)."),
    "lyapunov": ("A null exponent is undefined (the forward pass overflowed: every average over the whole sequence "
                 "includes an undefined Jacobian) or -inf (an exactly rank-deficient product, e.g. every relu off at a "
                 "step). The list is empty unless asked for (--lyapunov K)."),
    "source": ("source is null for the seeded init the config describes; for a loaded model it names the file "
               "(weights: its sha256 or the shipped example, sha256, prefix, layer, direction, module)."),
    "bound_log10_rate": ("null where the bound does not apply (normalised or gated cells), or, with "
                         "bound_exact_zero true, where W_hh = 0 makes it exactly zero (log10 = -inf)."),
}


def to_json(result: Analysis) -> dict[str, Any]:
    """The CLI's JSON contract (see README): config, weights, inputs, h, jacobian, ..., warnings.

    Every number is finite or null, and ``null_means`` says which null is which."""
    T = result.config.seq_len

    def jac_block(view: str) -> dict[str, Any]:
        spectral = _full_map(result.pairs, "log10_spectral", view, T)
        return {
            "log10_spectral": _matrix(spectral),
            "log10_frobenius": _matrix(_full_map(result.pairs, "log10_frobenius", view, T)),
            "grid": result.pairs.grid.tolist(),
            "spectral_rtol": result.pairs.rtol,
            "exact_zero_from": _zero_from(spectral),
        }

    out: dict[str, Any] = {
        "config": result.config.to_dict(),
        "warnings": list(result.warnings),
        "overflow_step": result.overflow_step,
        "undefined_from_step": result.undefined_from,
        "weights": {k: _values(np.atleast_2d(v)) if v.ndim > 1 else _values(v[None])[0] for k, v in result.weights.items()},
        "inputs": result.inputs.tolist(),
        "h": _values(result.h),
        "jacobian": jac_block("state"),
    }
    if result.c is not None:
        out["c"] = _values(result.c)
    if "h_imag" in result.extras:
        out["h_imag"] = _values(result.extras["h_imag"])
    if "cell" in result.pairs.log10_spectral:
        out["jacobian_cell"] = jac_block("cell")
    if result.gates:
        out["gates"] = {k: _values(v) for k, v in result.gates.items()}
    out["contributions_log10"] = _matrix(result.contributions)[0]
    out["grad_norms_log10"] = _matrix(result.grad_norms)[0]
    out["singular_values_log10"] = {"lag": result.lag, "values": _matrix(result.singular_values)[0],
                                    "resolved_above_log10": result.singular_limit}
    out["step_norms_log10"] = {"steps": result.step_norms[0].tolist(), "values": _matrix(result.step_norms[1])[0]}
    out["eigenvalues_hh"] = [[float(z.real), float(z.imag)] for z in result.eigenvalues]
    rate = result.bound_log10_rate
    out["bound_log10_rate"] = rate if rate is not None and math.isfinite(rate) else None
    out["bound_exact_zero"] = rate == -math.inf
    out["theory"] = None if result.theory is None else result.theory.to_json()
    out["theory_note"] = result.theory_note
    out["lyapunov"] = lyapunov_json(result.lyapunov)
    out["source"] = result.source
    out["null_means"] = NULL_MEANS
    return out
