r"""Mean-field theory of the simple RNN beside the measurement: the fixed-point variance q* of the
pre-activations and the per-step growth \chi of the mean squared gradient, from the statistics of the
actual weights and inputs (Poole et al. 2016; Schoenholz et al. 2017; Chen, Pennington & Schoenholz 2018).

For h_t = g(a_t), a_t = W_{hh} h_{t-1} + W_{ih} x_t + b with b = b_{ih} + b_{hh}, treat the entries of
W_{hh} as independent with mean 0 and variance \sigma_w^2/n. Over the n units, a_t is then Gaussian with
mean \mu_b (the bias's mean) and variance q_t, and

.. math::
    q_{t+1} = F(q_t) = \sigma_w^2\, \mathbb{E}_z\big[g(\mu_b + \sqrt{q_t}\, z)^2\big] + \sigma_b^2 + v_x,
    \qquad z \sim N(0, 1),\qquad q_1 = \sigma_b^2 + v_x \ (h_0 = 0),

    \chi = \sigma_w^2\, \mathbb{E}_z\big[g'(\mu_b + \sqrt{q^*}\, z)^2\big],\qquad
    \frac{1}{n}\,\mathbb{E}\,\Big\|\frac{\partial h_T}{\partial h_{T-k}}\Big\|_F^2 \approx \chi^k,
    \qquad \xi = -\frac{1}{\ln \chi},

with the statistics read from the built cell (so whatever sets its parameters, the theory follows):

* \sigma_w^2 = n \cdot \mathrm{mean}(W_{hh}^2): W_{ij} \sim N(0, \sigma_w^2/n) gives \sigma_w^2;
* \mu_b = \mathrm{mean}_i\, b_i and \sigma_b^2 = \mathrm{mean}_i (b_i - \mu_b)^2. A nonzero bias mean is not
  folded into the variance: it shifts the Gaussian the expectations average over (it is what every unit
  shares, and e.g. tanh' at \mu_b \ne 0 is smaller than its spread alone would say);
* v_x = \mathrm{mean}_{t, i} (W_{ih} x_t)_i^2, the input drive's second moment (0 for input zeros).

q* is the fixed point the variance map reaches from q_1 (the forward pass starts at h_0 = 0): with no
bias, no input and g(0) = 0 (tanh, relu, linear) the state stays exactly 0, so q* = 0 whatever \sigma_w,
and then \chi = \sigma_w^2 g'(0)^2 (\sigma_w^2 for tanh and linear; 0 for relu, whose g'(0) = 0 in torch).
Linear and relu cells whose F grows as fast as q (\sigma_w^2 \ge 1, \sigma_w^2/2 \ge 1) have no finite
fixed point once anything drives them: q* = inf (reported as null); \chi is still \sigma_w^2 or \sigma_w^2/2.

Expectations: closed forms for linear and relu (the kink of relu is exact, not sampled); for tanh and sigmoid
the trapezoid rule on a uniform z-grid of step min(1/4, \pi/(16\sqrt q)) over |z| <= 10, which converges
geometrically for these analytic integrands (the step resolves the distance \pi/(2\sqrt q) from the real
axis to tanh's nearest pole) and matches a 30-digit reference to rounding at every q (tests). Gauss-Hermite
with 101 nodes does not: its error is 1e-5 at q = 2.5 and 90 % at q = 64, where tanh(\sqrt q z) is a step of
width 1/8 that its nodes straddle.

Limits: the theory is a statement about typical large random W_hh, as if drawn afresh at each step. The cell
reuses one W_hh, and at n = 256 one matrix's spectrum can stick out past the circular law's edge: where J_k
settles to a constant D W_hh (a fixed point of h) the product then grows with that matrix's spectral radius,
not sqrt(chi), by +0.00..+0.025 in log10 per step for typical seeds and +0.08 for one with a real outlier
eigenvalue (tests/test_theory.py); in the chaotic regime such an outlier can capture the state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .config import ExperimentConfig

Z_RANGE = 10.0  # the trapezoid rule's |z| limit: the Gaussian beyond it is below 1e-22
GRID_STEP = 0.25  # the largest z-step (the Gaussian alone is resolved to rounding at 1/2)
POLE_STEPS = 16.0  # steps per pi/sqrt(q): tanh's pole at pi/2 in a is pi/(2 sqrt q) away in z
# the slope lim F(q)/q / sigma_w^2 at large q: a fixed point exists only where sigma_w^2 times it is < 1
GROWTH = {"linear": 1.0, "relu": 0.5, "tanh": 0.0, "sigmoid": 0.0}


@dataclass(frozen=True)
class Theory:
    """The mean-field prediction for one simple RNN.

    q_star: fixed-point variance of the pre-activations (math.inf: none finite);
    chi: per-step factor of the mean squared gradient, \\|dh_T/dh_{T-k}\\|_F^2 / n ~ chi^k;
    log10_chi: log10 chi (-inf where chi = 0);
    xi: -1/ln chi, the steps over which the mean squared gradient falls by e (math.inf where chi >= 1: it
    does not fall; 0 where chi = 0: it is gone after one step).
    """

    q_star: float
    chi: float
    log10_chi: float
    xi: float

    def to_json(self) -> dict[str, float | None]:
        """{q_star, chi, log10_chi, xi}: floats, null where not finite (see :func:`null_reason`)."""
        return {k: (float(v) if math.isfinite(v) else None)
                for k, v in (("q_star", self.q_star), ("chi", self.chi), ("log10_chi", self.log10_chi), ("xi", self.xi))}


@dataclass(frozen=True)
class Moments:
    """What the theory reads from a cell: sigma_w^2 = n mean(W_hh^2), the bias's mean mu_b and variance
    sigma_b^2 over units, and the input drive's second moment v_x."""

    sigma_w2: float
    sigma_b2: float
    mu_b: float
    v_x: float


def moments(W_hh: np.ndarray, bias: np.ndarray, drive: np.ndarray | None = None) -> Moments:
    """:class:`Moments` of W_hh (n, n), the total bias b = b_ih + b_hh (n,) and the input drive W_ih x_t
    without bias ((T, n) or (T, B, n); None or empty: no input)."""
    W, b = np.asarray(W_hh, dtype=np.float64), np.asarray(bias, dtype=np.float64)
    n = W.shape[1]
    v_x = 0.0 if drive is None or np.size(drive) == 0 else float(np.mean(np.square(np.asarray(drive, np.float64))))
    mu = float(b.mean())
    return Moments(sigma_w2=n * float(np.mean(W * W)), sigma_b2=float(np.mean((b - mu) ** 2)), mu_b=mu, v_x=v_x)


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _Phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def _sech2(a: np.ndarray) -> np.ndarray:
    e = np.exp(-2 * np.abs(a))  # 1 - tanh^2 a without cancellation
    return 4 * e / (1 + e) ** 2


def _sigmoid_slope(a: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(a))
    return e / (1 + e) ** 2


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return np.where(a >= 0, 1 / (1 + np.exp(-np.abs(a))), np.exp(-np.abs(a)) / (1 + np.exp(-np.abs(a))))


# g^2 and g'^2 of the activations integrated numerically
SQUARES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "tanh": (lambda a: np.tanh(a) ** 2, lambda a: _sech2(a) ** 2),
    "sigmoid": (lambda a: _sigmoid(a) ** 2, lambda a: _sigmoid_slope(a) ** 2),
}


def gaussian_mean(f: Callable[[np.ndarray], np.ndarray], q: float, mu: float = 0.0) -> float:
    r"""E_z[f(\mu + \sqrt q z)], z ~ N(0, 1), for f analytic near the real axis and at most polynomial growth:
    the trapezoid rule, h \sum_j f(\mu + \sqrt q z_j) \varphi(z_j) over z_j = j h, |z_j| <= 10 (module docstring)."""
    if q <= 0.0:
        return float(f(np.array([mu]))[0])
    s = math.sqrt(q)
    h = min(GRID_STEP, math.pi / (POLE_STEPS * s))
    steps = int(math.ceil(Z_RANGE / h))
    z = np.arange(-steps, steps + 1) * h
    return float(h * np.sum(f(mu + s * z) * np.exp(-0.5 * z * z)) / math.sqrt(2 * math.pi))


def second_moments(activation: str, q: float, mu: float = 0.0) -> tuple[float, float]:
    r"""(E[g(a)^2], E[g'(a)^2]) for a ~ N(\mu, q). Linear: (\mu^2 + q, 1); relu, with t = \mu/\sqrt q:
    ((\mu^2 + q)\Phi(t) + \mu\sqrt q\,\varphi(t), \Phi(t)), and at q = 0 torch's relu'(0) = 0."""
    if activation == "linear":
        return mu * mu + q, 1.0
    if activation == "relu":
        if q <= 0.0:
            return max(mu, 0.0) ** 2, 1.0 if mu > 0 else 0.0
        s = math.sqrt(q)
        t = mu / s
        return (mu * mu + q) * _Phi(t) + mu * s * _phi(t), _Phi(t)
    if activation not in SQUARES:
        raise ValueError(f"activation must be one of linear, relu, {', '.join(SQUARES)}, got {activation!r}")
    g2, dg2 = SQUARES[activation]
    return gaussian_mean(g2, q, mu), gaussian_mean(dg2, q, mu)


def fixed_point(activation: str, sigma_w2: float, sigma_b2: float, v_x: float, mu: float = 0.0) -> float:
    r"""q* = F(q*) reached from q_1 = \sigma_b^2 + v_x (module docstring); math.inf where F(q) - q stays
    positive for ever (linear, relu above their critical \sigma_w^2).

    F(q) - q >= 0 at q_1, so q* is bracketed: the upper end doubles until F(q) < q (F is bounded for tanh
    and sigmoid, grows as \sigma_w^2 q or \sigma_w^2 q/2 for linear and relu), then bisection to rounding.
    With \mu = 0 every F here is increasing and F(q) - q concave for q > 0, so this is the one stable fixed
    point the iteration q_{t+1} = F(q_t) climbs to from q_1.
    """
    def excess(q: float) -> float:
        return sigma_w2 * second_moments(activation, q, mu)[0] + sigma_b2 + v_x - q

    lo = sigma_b2 + v_x
    if excess(lo) <= 0.0:  # e.g. no bias, no input, g(0) = 0: the state stays exactly 0
        return lo
    if sigma_w2 * GROWTH[activation] >= 1.0:  # F(q) - q >= (growth - 1) q + const > 0 for every q
        return math.inf
    hi = max(2.0 * lo, 1.0)
    while excess(hi) > 0.0:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):  # bisection: lo keeps F(q) >= q, hi keeps F(q) < q
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if excess(mid) > 0.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def susceptibility(activation: str, sigma_w2: float, q: float, mu: float = 0.0) -> float:
    r"""\chi = \sigma_w^2 E[g'(\mu + \sqrt q z)^2]; at q = inf its limit (\sigma_w^2 linear, \sigma_w^2/2 relu)."""
    if math.isinf(q):
        return sigma_w2 * {"linear": 1.0, "relu": 0.5}[activation]
    return sigma_w2 * second_moments(activation, q, mu)[1]


def from_chi(q_star: float, chi: float) -> Theory:
    """The :class:`Theory` of q* and chi: log10 chi and xi = -1/ln chi, with their conventions at 0 and >= 1."""
    log10_chi = math.log10(chi) if chi > 0 else -math.inf
    if chi >= 1.0:
        xi = math.inf  # the mean squared gradient does not fall
    elif chi == 0.0:
        xi = 0.0
    else:
        xi = -1.0 / math.log(chi)
    return Theory(q_star=q_star, chi=chi, log10_chi=log10_chi, xi=xi)


def mean_field(activation: str, W_hh: np.ndarray, bias: np.ndarray, drive: np.ndarray | None = None) -> Theory:
    """The theory from raw arrays: W_hh (n, n), total bias b_ih + b_hh (n,), input drive W_ih x_t ((T, n) or
    (T, B, n), or None for no input)."""
    m = moments(W_hh, bias, drive)
    q = fixed_point(activation, m.sigma_w2, m.sigma_b2, m.v_x, m.mu_b)
    return from_chi(q, susceptibility(activation, m.sigma_w2, q, m.mu_b))


def _structure_reason(kind: str | None, norm: str, residual: bool) -> str | None:
    from .registry import CELL_TYPES

    if kind != "rnn":
        label = CELL_TYPES[kind].label if kind in CELL_TYPES else str(kind)
        return (f"The mean-field theory here is that of the simple RNN h_t = g(W_hh h_(t-1) + W_ih x_t + b); it does "
                f"not describe the {label}.")
    if norm != "none":
        return f"With {norm} norm a_t is rescaled by its own statistics: the mean-field variance map does not describe it."
    if residual:
        return ("A residual cell h_t = h_(t-1) + g(a_t) has J = I + diag(g')W_hh: its state variance grows without "
                "a fixed point and chi is not sigma_w^2 E[g'^2].")
    return None


def cell_reason(cell: Any) -> str | None:
    """Why the theory does not apply to ``cell`` (None: it does): only the plain simple RNN."""
    return _structure_reason(getattr(cell, "kind", None), getattr(cell, "norm", "none"), getattr(cell, "residual", False))


def theory_of_cell(cell: Any, x: Any) -> Theory | None:
    """The theory of a built cell (its parameters as they are now) on inputs x (T, B, d): None where
    :func:`cell_reason` says it does not apply."""
    if cell_reason(cell) is not None:
        return None
    W = cell.weight_hh_l0.detach().double().cpu().numpy()
    b = (cell.bias_ih_l0.detach().double() + cell.bias_hh_l0.detach().double()).cpu().numpy()
    drive = (x.double() @ cell.weight_ih_l0.detach().double().T).cpu().numpy()  # W_ih x_t, bias apart
    return mean_field(cell.activation, W, b, drive)


def config_reason(config: ExperimentConfig) -> str | None:
    """Why the theory does not apply to ``config`` (None: it does), from the config alone: :func:`cell_reason`,
    and identity init."""
    reason = _structure_reason(config.cell, config.norm, config.residual)
    if reason is None and config.weights:
        reason = ("A trained W_hh is not a draw of independent random entries, which the mean-field theory assumes: "
                  "compare the trained model with its untrained twin (A/B) instead.")
    if reason is None and config.init == "identity":
        reason = ("W_hh = gain * I does not mix the units: the mean-field theory assumes independent random entries "
                  "(each unit is its own scalar recurrence here).")
    return reason


def evaluate(config: ExperimentConfig, cell: Any = None, x: Any = None) -> tuple[Theory | None, str | None]:
    """(theory, reason) for ``config``: the theory of ``cell`` on inputs ``x`` (T, B, d) when given (the analysis's
    own, so the theory reads the very parameters it measures), else of the cell and inputs ``config`` builds; and
    why it is None (:func:`config_reason`) or what its nulls mean (:func:`null_reason`), or None."""
    reason = config_reason(config)
    if reason is not None:
        return None, reason
    if cell is None:
        from .cells import build_cell, make_inputs

        cell, x = build_cell(config, "cpu"), make_inputs(config, 1, "cpu")
    result = theory_of_cell(cell, x)
    return result, (cell_reason(cell) if result is None else null_reason(result))


def theory(config: ExperimentConfig) -> Theory | None:
    """The theory of the cell ``config`` builds, on its inputs; None where it does not apply (:func:`theory_reason`)."""
    return evaluate(config)[0]


def null_reason(result: Theory) -> str | None:
    """What the nulls of ``result.to_json()`` mean, or None when there are none."""
    notes = []
    if math.isinf(result.q_star):
        notes.append("q_star is null: the variance map has no finite fixed point (a linear or relu cell with "
                     "sigma_w^2 at or above its critical value 1 or 2 grows without bound).")
    if result.chi == 0.0:
        notes.append("log10_chi is null: chi = 0 (every unit's g' is 0 at the fixed point: the gradient is gone "
                     "after one step, xi = 0).")
    if result.chi >= 1.0:
        notes.append("xi is null: chi >= 1, the mean squared gradient does not decay (it grows for chi > 1).")
    return " ".join(notes) or None


def theory_reason(config: ExperimentConfig) -> str | None:
    """Why :func:`theory` is None for ``config``, or what the nulls in its JSON mean; None when neither."""
    return evaluate(config)[1]


def slope(lags: np.ndarray, values: np.ndarray) -> float:
    """The least-squares slope of ``values`` against ``lags``: NaN if any is NaN (undefined: an overflow), -inf if
    any is -inf (an exact zero: the gradient is gone), else finite."""
    values = np.asarray(values, dtype=np.float64)
    if np.isnan(values).any():
        return math.nan
    if np.isneginf(values).any():
        return -math.inf
    x = np.asarray(lags, dtype=np.float64)
    x = x - x.mean()
    return float(np.sum(x * (values - values.mean())) / np.sum(x * x))


def _late(lags: np.ndarray) -> np.ndarray:
    """The last half of the lags, k >= floor(max k / 2): where the state has settled and slopes are compared."""
    return lags >= int(lags.max(initial=0)) // 2


def late_slope(lags: np.ndarray, values: np.ndarray) -> float | None:
    """:func:`slope` over the last half of the lags (k >= floor(max k / 2), where the state has settled to its
    fixed-point statistics); None with fewer than two such lags."""
    lags = np.asarray(lags)
    keep = _late(lags)
    if keep.sum() < 2:
        return None
    return slope(lags[keep], np.asarray(values)[keep])


def late_anchor(lags: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """(mean lag, mean value) over the lags :func:`late_slope` fits, finite values only; (0, 0) where none: the point
    a line of the theory's slope is drawn through, so that the slopes compare where they are compared."""
    lags, values = np.asarray(lags, dtype=float), np.asarray(values, dtype=float)
    keep = _late(lags) & np.isfinite(values)
    return (float(lags[keep].mean()), float(values[keep].mean())) if keep.any() else (0.0, 0.0)


def measured_rates(lags: np.ndarray, log10_spectral: np.ndarray, log10_frobenius: np.ndarray,
                   n: int) -> tuple[np.ndarray, float | None, float | None]:
    r"""What the theory is compared with, from a lag curve (L,): log10(\|\partial h_T/\partial h_{T-k}\|_F^2 / n)
    per lag (the mean squared gradient, whose per-step growth mean-field theory calls \chi), its late slope
    (beside log10 \chi), and the late slope of log10 \|\cdot\|_2 (beside the top Lyapunov exponent)."""
    mean_square = 2.0 * np.asarray(log10_frobenius, dtype=float) - math.log10(n)
    return mean_square, late_slope(lags, mean_square), late_slope(lags, log10_spectral)
