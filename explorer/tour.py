r"""The guided lecture tour: fourteen steps that follow the lecture, each with its config, charts, equation,
what to look at, and the slide's claim beside the number measured live.

The lecture's simple RNN and the product its gradient carries (loss L at the last step):

.. math::
    h_t = g(W_x x_t + W_h h_{t-1} + b_h), \qquad
    \frac{\partial L}{\partial W_x} = \sum_{t=1}^{T} \frac{\partial L}{\partial y_T}
    \frac{\partial y_T}{\partial h_T} \frac{\partial h_t}{\partial W_x}
    \prod_{k=t}^{T-1} \frac{\partial h_{k+1}}{\partial h_k}, \qquad
    \frac{\partial h_{k+1}}{\partial h_k} = \mathrm{diag}(g'(a_{k+1}))\, W_h.

(The app's W_ih, W_hh, b_ih + b_hh are the lecture's W_x, W_h, b_h.) A step's ``config`` is an
:class:`~explorer.config.ExperimentConfig` (pages "rnn", "gated") or, for the two training steps, a small
:class:`~explorer.config.TrainConfig` (page "lab"); :func:`compute` gives the result its ``measure`` reads:
``analyze(config, stride=auto_stride(config))`` ((K, K) maps on the grid, K = T/stride + 1; here every
config is at stride 1) or ``train(config)`` (R records). A page caches that result (the training steps run
a few seconds on first visit). Each measure returns a :class:`~explorer.presets.Measurement`; where the
claim is an identity, the measure recomputes it apart from the analysis (the forward pass rebuilt with
:func:`explorer.cells.build_cell` and :func:`explorer.cells.make_inputs`, autograd, or the gates).

``charts`` name the figures a page draws for the step (``CHARTS``): "map" (all-pairs heatmap of the
state), "lag" (lag curve, with the bound where there is one), "steps" (one step's ||J_k||_2), "contrib",
"eig", "sv", "gates", "cell_map" (the LSTM's c -> c map), "gated_lag" (lag curves with the LSTM's direct
cell path), "loss", "flow" (gradient-flow heatmap), "sv_training" (W_hh's singular values over training).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .config import ExperimentConfig, TrainConfig
from .presets import PRESETS, Measurement, config_of, end_to_end, end_to_end_without, max_abs, signed, upper_pairs

if TYPE_CHECKING:
    from .analysis import Analysis
    from .train import TrainResult

CHARTS = ("map", "lag", "steps", "contrib", "eig", "sv", "gates", "cell_map", "gated_lag", "loss", "flow",
          "sv_training")
# the charts each page can draw for a step
PAGE_CHARTS = {
    "rnn": ("map", "lag", "steps", "contrib", "eig", "sv"),
    "gated": ("map", "lag", "steps", "contrib", "eig", "sv", "gates", "cell_map", "gated_lag"),
    "lab": ("loss", "flow", "sv_training"),
}


@dataclass(frozen=True)
class TourStep:
    """One step of the tour: the lecture's slide, the config that shows it and the number that checks it."""

    number: int  # 1..14, the lecture's order
    title: str
    page: str  # the page that draws it: "rnn", "gated", or "lab" (a training run)
    config: ExperimentConfig | TrainConfig
    charts: tuple[str, ...]  # one or two of CHARTS
    equation: str  # the slide's equation, LaTeX
    text: str  # what to look at: two or three sentences, Markdown with $..$ maths
    claim: str  # the slide's claim, with its number
    measure: Callable[[Any], Measurement]  # the result of compute(step) -> the claim's number, live


def _tol(config: ExperimentConfig) -> float:
    """What an identity may miss by through rounding alone: float32's or float64's."""
    return 1e-5 if config.dtype == "float32" else 1e-9


def _forward(config: ExperimentConfig):
    """The seeded cell and its forward pass on the seeded input (sequence 0), rebuilt apart from the
    analysis: (cell, x (T, 1, d), trace)."""
    import torch

    from .cells import build_cell, make_inputs

    cell = build_cell(config)
    x = make_inputs(config, 1)
    with torch.no_grad():
        return cell, x, cell.run(x)


def _steps(result: "Analysis") -> tuple[np.ndarray, np.ndarray]:
    """(steps k (1-based), ||J_k||_2) of the analysis (the map's grid steps; every step at stride 1)."""
    steps, log_norms = result.step_norms
    return steps, 10.0 ** log_norms


# ------------------------------------------------------------------ 1-8: the simple RNN

def _rnn_equation(result: "Analysis") -> Measurement:
    r"""max_t |h_t - g(W (x_t; h_{t-1}) + b_h)|, from the weights, inputs and states the analysis returns, with
    the slide's concatenated W = (W_x  W_h) (n, d + n) and b_h = b_ih + b_hh."""
    w = result.weights
    W = np.hstack([w["weight_ih_l0"], w["weight_hh_l0"]])
    b = w["bias_ih_l0"] + w["bias_hh_l0"]
    xh = np.hstack([result.inputs, result.h[:-1]])  # (T, d + n): (x_t; h_{t-1}) for t = 1..T
    g = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0), "linear": lambda a: a,
         "sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a))}[result.config.activation]
    err = float(np.max(np.abs(g(xh @ W.T + b) - result.h[1:])))
    return Measurement(err, f"max_t |h_t - g(W (x_t; h_(t-1)) + b_h)| = {err:.1e}", err < _tol(result.config))


def _unrolled(result: "Analysis") -> Measurement:
    r"""The per-step terms C_t = (\partial L/\partial d_t)^T x_t of \partial L/\partial W_x for L = u^T h_T
    (u = 1/\sqrt{n}; d_t = W_x x_t + b), which the analysis takes from the product of Jacobians, against
    autograd through the unrolled forward pass: max_t |log10 ||C_t||_F - log10 ||C_t^{autograd}||_F|."""
    import torch

    config = result.config
    cell, x, _ = _forward(config)
    with torch.enable_grad():
        drive = cell.input_drive(x).detach().requires_grad_(True)  # (T, 1, n)
        h = x.new_zeros(1, cell.state_size)
        for t in range(config.seq_len):
            h, _ = cell.step(drive[t], h)
        (grad,) = torch.autograd.grad(h[0, :cell.hidden].sum() / math.sqrt(cell.hidden), drive)
    ours = np.log10(grad[:, 0].double().norm(dim=-1).numpy() * x[:, 0].double().norm(dim=-1).numpy())
    err = max_abs(result.contributions - ours)
    spread = float(result.contributions[0] - result.contributions[-1])
    return Measurement(err, f"max_t |log10 ||C_t||_F - autograd's| = {err:.1e}; log10 ||C_1||_F / ||C_T||_F = "
                            f"{signed(spread, 1)}", err < 100 * _tol(config))


def _below_one(result: "Analysis") -> Measurement:
    steps, norms = _steps(result)
    top = float(np.max(norms))
    v = end_to_end(result)
    # submultiplicativity: the product's norm is at most the product of the consecutive blocks' norms
    chain = result.pairs.log10_spectral["state"]
    bound = float(np.sum(np.diagonal(chain, 1)))
    ok = top < 1 and v <= bound + 1e-6 and v < 0
    return Measurement(v, f"max_k ||J_k||_2 = {top:.3f} < 1; log10 ||dh_T/dh_0||_2 = {signed(v)} <= "
                          f"sum_k log10 ||J_k||_2 = {signed(bound)}", ok)


def _above_one(result: "Analysis") -> Measurement:
    _, norms = _steps(result)
    low = float(np.min(norms))
    lags, spectral, _ = result.lag_curve()
    half = len(lags) // 2
    v = float(spectral[-1])
    ok = low > 1 and 0 < spectral[half] < v and v > 5
    return Measurement(v, f"min_k ||J_k||_2 = {low:.2f} > 1; log10 ||dh_T/dh_(T-k)||_2 = {signed(spectral[half])} "
                          f"at k = {lags[half]}, {signed(v)} at k = {lags[-1]}", ok)


def _pre_activations(config: ExperimentConfig) -> np.ndarray:
    """a_1..a_T (T, n) float64 of the rebuilt forward pass: the argument of g."""
    _, _, trace = _forward(config)
    return trace.aux["pre"][:, 0].double().numpy()


def _tanh_slope(config: ExperimentConfig) -> np.ndarray:
    """g'(a_k) = 1 - tanh^2(a_k) (T, n), from the rebuilt pre-activations (tanh cells only)."""
    return 1.0 - np.tanh(_pre_activations(config)) ** 2


def _residual(result: "Analysis") -> Measurement:
    r"""min_k ||J_k||_2 of J_k = I + diag(g'(a_k)) W_h, beside its lower bound 1 + \lambda_max(sym(diag(g') W_h))
    (u^T J u = 1 + u^T A u for unit u), computed apart from the forward pass."""
    steps, norms = _steps(result)
    W = result.weights["weight_hh_l0"]
    slope = _tanh_slope(result.config)[steps - 1]  # (K, n)
    A = slope[:, :, None] * W  # diag(g') W_h, (K, n, n)
    lam = np.linalg.eigvalsh(0.5 * (A + A.transpose(0, 2, 1)))[:, -1]
    low, bound = float(np.min(norms)), 1.0 + float(np.min(lam))
    ok = low >= 1 - result.pairs.rtol and bound >= 1 and bool(np.all(norms >= (1 + lam) * (1 - result.pairs.rtol)))
    return Measurement(low, f"min_k ||J_k||_2 = {low:.3f} >= 1 + min_k lambda_max(sym(diag(g') W_h)) = {bound:.3f} "
                            f">= 1; log10 ||dh_T/dh_0||_2 = {signed(end_to_end(result))}", ok)


def _normalised(result: "Analysis") -> Measurement:
    v = float(np.min(upper_pairs(result)))
    plain = end_to_end_without(result.config, norm="none")
    return Measurement(v, f"min over pairs log10 ||dh_s/dh_t||_2 = {signed(v)} (without normalisation: "
                          f"log10 ||dh_T/dh_0||_2 = {signed(plain, 1)})", v > -1 and plain < -5)


def _xavier(result: "Analysis") -> Measurement:
    W = result.weights["weight_hh_l0"]
    n_var = W.shape[0] * float(np.mean(W**2))
    radius = float(np.max(np.abs(result.eigenvalues)))
    v = end_to_end(result)
    ok = abs(n_var - 1) < 0.1 and abs(radius - 1) < 0.15 and abs(v) < 5
    return Measurement(radius, f"n mean(W_h^2) = {n_var:.3f}; spectral radius of W_h = {radius:.3f}; "
                               f"log10 ||dh_T/dh_0||_2 = {signed(v)}", ok)


def _orthogonal(result: "Analysis") -> Measurement:
    r"""max_k | ||J_k||_2 - max_i |g'(a_k,i)| | for the orthogonal W_h: g' from the rebuilt forward pass's
    pre-activations, ||J_k||_2 from the analysis (certified), and W_h W_h^T = I checked on the weights."""
    steps, norms = _steps(result)
    slope = np.max(np.abs(_tanh_slope(result.config)), axis=1)[steps - 1]
    W = result.weights["weight_hh_l0"]
    ortho = float(np.max(np.abs(W @ W.T - np.eye(W.shape[0]))))
    err = float(np.max(np.abs(norms - slope)))
    tol = _tol(result.config)
    return Measurement(err, f"max_k | ||J_k||_2 - max|g'(a_k)| | = {err:.1e} (W_h W_h^T = I to {ortho:.0e})",
                       err < 10 * tol and ortho < tol)


# ------------------------------------------------------------------ 9-10: training

def _ortho_error(W: np.ndarray) -> float:
    """||W^T W - I||_F of a square W_hh."""
    return float(np.linalg.norm(W.T @ W - np.eye(W.shape[1])))


def _regularised(result: "TrainResult") -> Measurement:
    start = _ortho_error(result.weights_init["weight_hh_l0"].astype(np.float64))
    end = float(result.history[-1]["ortho_error"])
    return Measurement(end, f"||W_h^T W_h - I||_F: {start:.3f} at the start, {end:.3f} after "
                            f"{result.history[-1]['step']} steps", end < 0.1 * start)


def _riemannian(result: "TrainResult") -> Measurement:
    start = np.linalg.svd(result.weights_init["weight_hh_l0"].astype(np.float64), compute_uv=False)
    v = float(max(np.max(np.abs(result.singular_values - 1.0)), np.max(np.abs(start - 1.0))))
    return Measurement(v, f"max over the run of max_i |sigma_i(W_h) - 1| = {v:.1e} ({len(result.history)} records, "
                          f"{result.history[-1]['step']} steps)", v < 1e-5)


# ------------------------------------------------------------------ 11-14: LSTM and GRU

def _output_gate(result: "Analysis") -> Measurement:
    m = PRESETS["lstm_no_forget_gate"].check(result)  # the carousel, as the preset measures it
    o = float(np.mean(result.gates["o"]))
    shown = float(np.max(np.abs(result.h[1:] - result.gates["o"] * np.tanh(result.c[1:]))))
    return Measurement(m.value, f"direct path log10 ||prod_k diag(f_k)||_2 = {m.value:g} at every lag (exactly); "
                                f"mean o_t = {o:.2f}, max |h_t - o_t tanh(c_t)| = {shown:.0e}",
                       m.holds and shown < _tol(result.config))


def _forget_gate(result: "Analysis") -> Measurement:
    r"""The direct path \prod_k diag(f_k) from the forget gates themselves, max_i \sum_k log10 f_k,i over the
    last k steps, against the analysis's (from log sigma of the pre-activations)."""
    direct = result.extras["direct_cell_path"]["log10_spectral"]  # lags 0..T
    f = result.gates["f"]  # (T, n), steps 1..T
    ours = np.concatenate([[0.0], np.max(np.cumsum(np.log10(f[::-1]), axis=0), axis=1)])
    err = max_abs(direct - ours)
    v = float(direct[-1])
    return Measurement(v, f"log10 ||prod_k diag(f_k)||_2 = {signed(v)} at lag T = {len(direct) - 1} "
                          f"(from f itself to {err:.0e})", err < 100 * _tol(result.config) and v < -1)


def _gru_jacobian(result: "Analysis") -> Measurement:
    r"""||J_k||_2 from the GRU's formula, built in numpy from the weights, states and gates the analysis
    returns, against the analysis's certified norms:

    J_k = diag(z) + diag((h_{k-1} - n) z(1 - z)) W_hz + diag((1 - z)(1 - n^2)) [diag(u r(1 - r)) W_hr + diag(r) W_hn],
    u = W_hn h_{k-1} + b_hn; gates at step k, (n,) each.
    """
    steps, norms = _steps(result)
    n = result.config.hidden
    W_r, W_z, W_n = np.split(result.weights["weight_hh_l0"], 3)
    b_n = result.weights["bias_hh_l0"][2 * n:]
    r, z, cand = (result.gates[k][steps - 1] for k in ("r", "z", "n"))  # (K, n)
    h_prev = result.h[steps - 1]
    u = h_prev @ W_n.T + b_n
    b = (1 - z) * (1 - cand**2)
    J = ((h_prev - cand) * z * (1 - z))[:, :, None] * W_z + (b * u * r * (1 - r))[:, :, None] * W_r \
        + (b * r)[:, :, None] * W_n
    J[:, np.arange(n), np.arange(n)] += z
    ours = np.linalg.norm(J, ord=2, axis=(1, 2))
    err = float(np.max(np.abs(np.log10(ours) - np.log10(norms))))
    top_z = float(np.max(z))
    return Measurement(err, f"max_k |log10 ||J_k||_2 - the formula's| = {err:.0e}; max_k ||J_k||_2 = "
                            f"{float(np.max(norms)):.3f}, max z = {top_z:.2f}", err < 10 * _tol(result.config))


# ------------------------------------------------------------------ the steps

_RNN_JACOBIAN = r"\frac{\partial h_{k+1}}{\partial h_k} = \mathrm{diag}\big(g'(a_{k+1})\big)\, W_h"
_TRAIN = dict(task="adding", steps=300, batch_size=64, lr=1e-3, record_every=25)

STEPS: tuple[TourStep, ...] = (
    TourStep(
        1, "The simple RNN", "rnn", ExperimentConfig(), ("map",),
        r"h_t = g(W_x x_t + W_h h_{t-1} + b_h) = g\Big(W \begin{pmatrix} x_t \\ h_{t-1} \end{pmatrix} + b_h\Big)",
        "One matrix $W = (W_x\\ W_h)$ is applied at every step to the input and the previous state. The map shows "
        "every partial product $\\partial h_s/\\partial h_t$ of this net (tanh, torch's default init, $T = 100$): "
        "blue is a gradient that shrinks on its way back from step $s$ to step $t$.",
        "h_t = g(W_x x_t + W_h h_(t-1) + b_h): the states on the screen follow the slide's equation to float32 "
        "rounding (1e-5).",
        _rnn_equation),
    TourStep(
        2, "The unrolled product", "rnn", ExperimentConfig(dtype="float64"), ("contrib", "map"),
        r"\frac{\partial L}{\partial W_x} = \sum_{t=1}^{T} \frac{\partial L}{\partial y_T} "
        r"\frac{\partial y_T}{\partial h_T} \frac{\partial h_t}{\partial W_x} "
        r"\prod_{k=t}^{T-1} \frac{\partial h_{k+1}}{\partial h_k}",
        "Each bar is one term of the sum: the input at step $t$ reaches the loss only through the product "
        "$\\prod_{k=t}^{T-1} \\partial h_{k+1}/\\partial h_k$, the map's last column. Look how many decades the "
        "early terms lie below the last ones: the gradient hardly sees the start of the sequence.",
        "Each term of dL/dW_x carries the product of T - t Jacobians; computed that way it equals autograd's "
        "through the unrolled net (to 1e-7 in log10).",
        _unrolled),
    TourStep(
        3, "Vanishing gradients (‖J‖ < 1)", "rnn", ExperimentConfig(init="orthogonal", gain=0.9), ("steps", "lag"),
        r"\Big\|\frac{\partial h_{k+1}}{\partial h_k}\Big\|_2 < 1 \;\Rightarrow\; "
        r"\Big\|\frac{\partial h_T}{\partial h_t}\Big\|_2 \le \prod_{k=t}^{T-1} "
        r"\Big\|\frac{\partial h_{k+1}}{\partial h_k}\Big\|_2 \to 0",
        "$W_h$ is 0.9 times an orthogonal matrix, so every factor has $\\|J_k\\|_2 \\le 0.9\\,\\max|g'| < 1$: "
        "the bars stay below the grey line. The lag curve then falls at least as fast as the dashed bound "
        "$k \\log_{10} 0.9$: the gradient vanishes geometrically.",
        "||dh_(k+1)/dh_k||_2 < 1 at every step: the gradient vanishes, log10 ||dh_T/dh_0||_2 <= "
        "sum_k log10 ||J_k||_2 < 0.",
        _below_one),
    TourStep(
        4, "Exploding gradients (‖J‖ > 1)", "rnn", config_of("exploding"), ("steps", "lag"),
        r"\Big\|\frac{\partial h_{k+1}}{\partial h_k}\Big\|_2 > 1 \;\Rightarrow\; \text{exploding gradient}",
        "A relu RNN with $W_h \\sim \\mathcal{N}(0, 2^2/n)$: every factor's norm is about 3, and the lag curve "
        "climbs steadily, 8 decades over 100 steps (less than the factors' 49: their largest directions do not "
        "line up). In float32 the state would overflow on a longer sequence; float64 keeps it finite.",
        "||dh_(k+1)/dh_k||_2 > 1: the gradient explodes, log10 ||dh_T/dh_(T-k)||_2 grows with k, above +5 at "
        "k = T = 100.",
        _above_one),
    TourStep(
        5, "Residual connections", "rnn", ExperimentConfig(residual=True), ("steps", "map"),
        r"\begin{gathered}y = x + f(x) \;\Rightarrow\; \frac{\partial y}{\partial x} = I + \frac{\partial f}{\partial x},"
        r"\\ \frac{\partial h_{k+1}}{\partial h_k} = I + \mathrm{diag}(g')\, W_h\end{gathered}",
        "The same tanh net as in step 1 with $h_t = h_{t-1} + g(a_t)$: the identity carries the gradient past "
        "every step, so no bar falls below the grey line. The map has no blue left; the added term can make the "
        "products grow (red) instead.",
        "dy/dx = I + df/dx: every factor has ||J_k||_2 >= 1 (at least 1 + lambda_max of diag(g') W_h's "
        "symmetric part), so no step shrinks the gradient.",
        _residual),
    TourStep(
        6, "Normalisation", "rnn", ExperimentConfig(norm="batch", init="gaussian", gain=0.5), ("map", "lag"),
        r"h_t = g\Big(\gamma \odot \frac{a_t - \mu_t}{\sqrt{\sigma_t^2 + \epsilon}} + \beta\Big), \qquad "
        r"a_t = W_x x_t + W_h h_{t-1} + b_h",
        "Batch normalisation divides $a_t$ by its spread over the batch, so the scale of $W_h$ cancels. At gain "
        "0.5 the plain RNN loses 32 decades over 100 steps; here the map stays white to red. No bound is drawn: "
        "the statistics of each step enter the Jacobian.",
        "Normalising a_t divides out W_h's scale: no product loses even one decade (min log10 ||dh_s/dh_t||_2 > "
        "-1) where the plain RNN loses more than 5.",
        _normalised),
    TourStep(
        7, "Xavier initialisation", "rnn", ExperimentConfig(init="xavier_uniform"), ("eig", "lag"),
        r"\begin{gathered}W_{ij} \sim U\Big[-\sqrt{\tfrac{6}{n_{in} + n_{out}}},\ \sqrt{\tfrac{6}{n_{in} + n_{out}}}\Big],"
        r"\\ \mathrm{Var}(W_{ij}) = \frac{2}{n_{in} + n_{out}} = \frac{1}{n}\end{gathered}",
        "Xavier's variance keeps the size of $W_h h$ equal to that of $h$: the eigenvalues of $W_h$ fill the unit "
        "disc. The lag curve then changes by a few decades at most over 100 steps, neither the steep fall of "
        "step 3 nor the climb of step 4.",
        "Var(W_ij) = 2/(n_in + n_out) = 1/n: W_h's spectral radius is about 1 (within 0.15), and "
        "|log10 ||dh_T/dh_0||_2| < 5 at T = 100.",
        _xavier),
    TourStep(
        8, "Orthogonal initialisation", "rnn", ExperimentConfig(init="orthogonal", dtype="float64"),
        ("steps", "lag"),
        r"\frac{\partial h_{k+1}}{\partial h_k} = g' W_h \;\Rightarrow\; "
        r"\Big\|\frac{\partial h_{k+1}}{\partial h_k}\Big\|_2 = \|g'\|_2 \ \text{ if } W_h W_h^T = I",
        "With an orthogonal $W_h$ one step's norm is exactly $\\max_i |g'(a_{k,i})|$: $W_h$ itself neither "
        "shrinks nor stretches, only the slope of tanh does. The bars sit just below 1, where some unit is "
        "near $a = 0$.",
        "If W_h W_h^T = I then ||dh_(k+1)/dh_k||_2 = ||g'|| = max|g'(a_k)|: the measured norms match the slopes "
        "to 1e-8.",
        _orthogonal),
    TourStep(
        9, "Orthogonal regularisation", "lab",
        TrainConfig(model=ExperimentConfig(cell="rnn", seq_len=30, hidden=32), ortho_reg=1.0, **_TRAIN),
        ("sv_training", "loss"),
        r"\min_\theta\ L(\theta) + \lambda \|W_h^T W_h - I\|_F^2",
        "A tanh RNN on the adding problem ($T = 30$, $n = 32$) with $\\lambda = 1$: the penalty pulls the singular "
        "values of $W_h$, spread from 0 to about 1.2 by torch's init, towards 1 within a hundred or two steps. "
        "The loss is the task's alone; the penalty only shapes $W_h$.",
        "+ lambda ||W_h^T W_h - I||_F^2 pulls W_h to the orthogonal matrices: ||W_h^T W_h - I||_F falls from its "
        "initial value (below a tenth of it in 300 steps).",
        _regularised),
    TourStep(
        10, "Riemannian optimisation", "lab",
        TrainConfig(model=ExperimentConfig(cell="rnn", seq_len=30, hidden=32, init="orthogonal"),
                    orthogonal_param="matrix_exp", **_TRAIN),
        ("sv_training", "flow"),
        r"W_h = B\, e^{A},\quad A^T = -A \;\Rightarrow\; W_h^T W_h = I \text{ at every step}",
        "The optimiser moves $A$, a skew-symmetric matrix, and $W_h = B e^A$ stays on the orthogonal group: every "
        "singular value stays at 1 for the whole run. The gradient-flow map shows what reaches the early steps "
        "when no factor $W_h$ shrinks it.",
        "Riemannian optimisation keeps W_h orthogonal at every step: max_i |sigma_i(W_h) - 1| < 1e-5 over the run.",
        _riemannian),
    TourStep(
        11, "LSTM: input gate only (the constant error carousel)", "gated", config_of("lstm_input_gate_only"),
        ("gated_lag", "cell_map"),
        r"\begin{gathered}g_t = g(W_x x_t + W_h h_{t-1} + b_h),\quad i_t = \sigma(W^i_x x_t + W^i_h h_{t-1} + b^i_h),"
        r"\\ c_t = c_{t-1} + i_t g_t \;\Rightarrow\; \frac{\partial c_t}{\partial c_{t-1}}\Big|_{\text{direct}} = I"
        r"\end{gathered}",
        "The cell path is additive, so the gradient along $c$ is copied unchanged: the direct path is the flat "
        "line at 0 while the simple RNN of the same size falls away. The total $\\partial c_T/\\partial c_0$ "
        "(the c $\\to$ c map) is not $I$: $i_t$ and $g_t$ read $h_{t-1} = \\tanh(c_{t-1})$, and nothing can be "
        "forgotten.",
        "With the input gate only, dc_t/dc_(t-1) = I along the carousel: log10 ||dc_T/dc_0||_2 = 0 (the direct "
        "path, exactly, at every lag).",
        PRESETS["lstm_input_gate_only"].check),
    TourStep(
        12, "LSTM: + output gate", "gated", config_of("lstm_no_forget_gate"), ("gates", "gated_lag"),
        r"\begin{gathered}o_t = \sigma(W^o_x x_t + W^o_h h_{t-1} + b^o_h),"
        r"\\ h_t = o_t\, g(c_t), \qquad c_t = c_{t-1} + i_t g_t\end{gathered}",
        "The output gate decides how much of the cell the rest of the net sees: here $o_t$ is near 1/2 (grey in "
        "the gate map). It scales the way into and out of $c$, not the carousel itself, whose direct path is "
        "still the line at 0.",
        "The output gate leaves the carousel as it is: dc_t/dc_(t-1) = I along the direct path (log10 = 0 at "
        "every lag), and h_t = o_t tanh(c_t).",
        _output_gate),
    TourStep(
        13, "LSTM: + forget gate", "gated", ExperimentConfig(cell="lstm", hidden=32, dtype="float64"),
        ("gated_lag", "gates"),
        r"\begin{gathered}f_t = \sigma(W^f_x x_t + W^f_h h_{t-1} + b^f_h),"
        r"\\ c_t = f_t c_{t-1} + i_t g_t \;\Rightarrow\; "
        r"\frac{\partial c_t}{\partial c_{t-1}}\Big|_{\text{direct}} = \mathrm{diag}(f_t)\end{gathered}",
        "The forget gate scales the carousel at every step: the direct path now falls as "
        "$\\prod_k f_k$, with $f \\approx 1/2$ at torch's default bias. This is `torch.nn.LSTM`; a forget bias "
        "of 1 or chrono (the presets) keeps $f$ near 1 at the start.",
        "The forget gate scales the carousel: dc_t/dc_(t-1) = diag(f_t), so the direct path is prod_k diag(f_k) "
        "(matched from the gates to 1e-7) and decays below 1.",
        _forget_gate),
    TourStep(
        14, "GRU", "gated", ExperimentConfig(cell="gru", dtype="float64"), ("gates", "gated_lag"),
        r"\begin{gathered}h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1} \;\Rightarrow\;"
        r"\\ \frac{\partial h_t}{\partial h_{t-1}} = \mathrm{diag}(z_t) + \mathrm{diag}(1 - z_t)\frac{\partial n_t}{\partial h_{t-1}}"
        r"\\ + \mathrm{diag}(h_{t-1} - n_t)\frac{\partial z_t}{\partial h_{t-1}}\end{gathered}",
        "The update gate $z_t$ interpolates between the old state and the candidate $n_t$: its copy term "
        "$\\mathrm{diag}(z_t)$ is a gated carousel without a separate cell. At torch's init $z \\approx 1/2$, so "
        "the GRU still forgets fast; training must push $z$ towards 1 where a memory is needed.",
        "dh_t/dh_(t-1) = diag(z_t) + diag(1 - z_t) dn_t/dh_(t-1) + diag(h_(t-1) - n_t) dz_t/dh_(t-1): the "
        "formula's norms match the measured ones to 1e-8.",
        _gru_jacobian),
)


def step(number: int) -> TourStep:
    """Step ``number`` (1..14); ``ValueError`` otherwise."""
    if isinstance(number, bool) or not (isinstance(number, int) and 1 <= number <= len(STEPS)):
        raise ValueError(f"the tour has steps 1 to {len(STEPS)}, got {number!r}")
    return STEPS[number - 1]


def compute(s: TourStep | int) -> Any:
    """The result a step's measure reads: the analysis at the app's stride, or the short training run."""
    s = step(s) if isinstance(s, int) else s
    if isinstance(s.config, TrainConfig):
        from .train import train

        return train(s.config)
    from .analysis import analyze, auto_stride

    return analyze(s.config, stride=auto_stride(s.config))


def measure(s: TourStep | int) -> Measurement:
    """Compute the step and measure its claim."""
    s = step(s) if isinstance(s, int) else s
    return s.measure(compute(s))
