r"""Named configurations for the classroom: the lecture's cases, each with its claim and the check of it.

A page offers the presets made for it (``Preset.page``: "rnn", "gated", "modern", or "lab" for the
Training Lab) in a selector and reads ``?preset=NAME`` from its URL. The preset fills the controls
(:func:`config_of`: the defaults plus ``Preset.changes``, through :func:`explorer.config.fit`), and the
page then writes the full config back to the URL, so the link stays exact.

Each preset states one claim with the number it promises, and ``Preset.check`` measures that number on
the computed result (:func:`compute`): the :class:`~explorer.analysis.Analysis` of
``analyze(config, stride=auto_stride(config))``, or for the lab's preset the two
:class:`~explorer.train.TrainResult` of ``config_of(p)`` and ``compare_of(p)``. Most numbers are log10
norms of the lecture's products, for the simple RNN's J_k = diag(g'(a_k)) W_h and likewise for the others:

.. math::
    \frac{\partial h_s}{\partial h_t} = \prod_{k=t+1}^{s} J_k, \qquad
    J_k = \frac{\partial h_k}{\partial h_{k-1}} \in \mathbb{R}^{m \times m},

read from the all-pairs map ``Analysis.pairs.log10_spectral["state"]`` ((K, K) on the grid; entry
[t, s], finite above the diagonal), its last column (the lag curve, [0, -1] is
log10 ||dh_T/dh_0||_2), one step's norms ``Analysis.step_norms`` and the LSTM's direct cell path
``extras["direct_cell_path"]`` (log10 ||prod_k diag(f_k)||_2 for lags 0..T).

Importing this module imports no torch: the checks and :func:`compute` load the analysis on first use.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from .config import ALL_SPECS, SPECS, ExperimentConfig, TrainConfig, check, fit

if TYPE_CHECKING:
    from .analysis import Analysis
    from .train import TrainResult

PAGES = ("rnn", "gated", "modern", "lab")


@dataclass(frozen=True)
class Measurement:
    """A claim's number measured live: ``value`` (NaN where the arithmetic left it undefined), ``text`` for a
    screen (e.g. "log10 ||dh_T/dh_0||_2 = -7.31"), and whether the claim ``holds`` at that value."""

    value: float
    text: str
    holds: bool


@dataclass(frozen=True)
class Preset:
    """One named configuration.

    ``changes`` maps config field names to values on top of the defaults (``ExperimentConfig()``, or
    ``TrainConfig()`` for page "lab", whose changes may name model and training fields alike);
    ``compare`` (lab only) the second run's changes on top of the first's. ``claim`` is one sentence with
    the promised number; ``check(*results)`` measures it (one Analysis; for the lab, the two TrainResults).
    """

    name: str
    label: str  # how it reads in a selector
    page: str  # "rnn" | "gated" | "modern" | "lab"
    changes: Mapping[str, Any]
    claim: str
    check: Callable[..., Measurement]
    compare: Mapping[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.page not in PAGES:
            raise ValueError(f"preset {self.name}: page must be one of {', '.join(PAGES)}, got {self.page!r}")
        if (self.compare is not None) != (self.page == "lab"):
            raise ValueError(f"preset {self.name}: a lab preset names the run it compares with, no other does")
        # copies: a caller's dict must not change a preset behind its back
        object.__setattr__(self, "changes", dict(self.changes))
        if self.compare is not None:
            object.__setattr__(self, "compare", dict(self.compare))


# ------------------------------------------------------------------ reading an analysis (the tour's too)

def signed(value: float, digits: int = 2) -> str:
    """A log10 value with its sign, e.g. -7.31 or +8.37; "undefined" for NaN (past an overflow)."""
    return f"{value:+.{digits}f}" if math.isfinite(value) else "undefined"


def _sci(value: float) -> str:
    return f"{value:.1e}" if math.isfinite(value) else "undefined"


def upper_pairs(result: "Analysis", view: str = "state") -> np.ndarray:
    """log10 ||dz_s/dz_t||_2 for every grid pair t < s, flat."""
    values = result.pairs.log10_spectral[view]
    return values[np.triu_indices(values.shape[0], 1)]


def end_to_end(result: "Analysis", view: str = "state") -> float:
    """log10 ||dz_T/dz_0||_2: the map's corner, the lag curve at lag T."""
    return float(result.pairs.log10_spectral[view][0, -1])


def max_abs(values: np.ndarray) -> float:
    """max |v| over the values: NaN if any is undefined (past an overflow), inf if any product is exactly 0."""
    return math.nan if np.isnan(values).any() else float(np.max(np.abs(values)))


def _direct(result: "Analysis") -> np.ndarray:
    """The LSTM's direct cell path log10 ||prod_{k>T-lag} diag(f_k)||_2 for lags 0..T, (T+1,)."""
    return result.extras["direct_cell_path"]["log10_spectral"]


def end_to_end_without(config: ExperimentConfig, **changes: Any) -> float:
    """log10 ||dh_T/dh_0||_2 of ``config`` with ``changes``: its lag curve alone (no whole analysis)."""
    from .analysis import auto_stride, lag_curve

    other = config.replace(**changes)
    return float(lag_curve(other, stride=auto_stride(other))[1][-1])


# ------------------------------------------------------------------ the checks

def _vanishing(result: "Analysis") -> Measurement:
    v = end_to_end(result)
    return Measurement(v, f"log10 ||dh_T/dh_0||_2 = {signed(v)}", v < -5)


def _exploding(result: "Analysis") -> Measurement:
    v = end_to_end(result)
    return Measurement(v, f"log10 ||dh_T/dh_0||_2 = {signed(v)}", v > 5)


def _edge_of_chaos(result: "Analysis") -> Measurement:
    v = end_to_end(result)
    rate = v / result.config.seq_len
    return Measurement(v, f"log10 ||dh_T/dh_0||_2 = {signed(v)}, {signed(rate, 3)} decades per step", abs(v) < 5)


def _residual(result: "Analysis") -> Measurement:
    v = float(np.min(upper_pairs(result)))
    # the reported norms are certified lower bounds within rtol: -rtol in log10 is still "at least 1"
    ok = v >= math.log10(1.0 - result.pairs.rtol)
    return Measurement(v, f"min over pairs log10 ||dh_s/dh_t||_2 = {signed(v, 3)}; "
                          f"log10 ||dh_T/dh_0||_2 = {signed(end_to_end(result))}", ok)


def _layer_norm(result: "Analysis") -> Measurement:
    v = max_abs(upper_pairs(result))
    plain = end_to_end_without(result.config, norm="none")
    return Measurement(v, f"max over pairs |log10 ||dh_s/dh_t||_2| = {v:.2f} (without layer norm: "
                          f"log10 ||dh_T/dh_0||_2 = {signed(plain, 1)})", v < 3)


def _orthogonal_linear(result: "Analysis") -> Measurement:
    v = max_abs(upper_pairs(result))
    return Measurement(v, f"max over pairs |log10 ||dh_s/dh_t||_2| = {_sci(v)}", v < 1e-4)


def _irnn(result: "Analysis") -> Measurement:
    v = max_abs(upper_pairs(result))
    return Measurement(v, f"max over pairs |log10 ||dh_s/dh_t||_2| = {_sci(v)}", v < 1e-5)


def _carousel(result: "Analysis") -> Measurement:
    v = max_abs(_direct(result))
    total = end_to_end(result, "cell")
    return Measurement(v, f"direct path log10 ||prod_k diag(f_k)||_2 = {v:g} at every lag (exactly); the total "
                          f"log10 ||dc_T/dc_0||_2 = {signed(total)} (i and g read h = tanh(c))", v == 0.0)


def _forget_bias_1(result: "Analysis") -> Measurement:
    direct = _direct(result)
    T = len(direct) - 1
    v = float(direct[-1] / T)
    return Measurement(v, f"direct cell path: {signed(v, 3)} decades per step (log10 ||prod_k diag(f_k)||_2 = "
                          f"{signed(direct[-1])} at lag {T})", v > -0.15)


def _chrono(result: "Analysis") -> Measurement:
    direct = _direct(result)
    v = float(direct[-1])
    return Measurement(v, f"log10 ||prod_k diag(f_k)||_2 = {signed(v)} at lag T = {len(direct) - 1}", v > -1)


def _gru(result: "Analysis") -> Measurement:
    v = end_to_end(result)
    step = float(np.max(result.step_norms[1]))
    return Measurement(v, f"max_k ||dh_k/dh_(k-1)||_2 = {10 ** step:.3f}; log10 ||dh_T/dh_0||_2 = {signed(v)}",
                       step < 0 and v < -5)


def _lru(result: "Analysis") -> Measurement:
    grid = result.pairs.grid
    rate = math.log10(float(np.max(np.abs(result.eigenvalues))))  # log10 max_j |lambda_j|, per step
    lags = grid[None, :] - grid[:, None]
    upper = np.triu_indices(len(grid), 1)
    v = max_abs((result.pairs.log10_spectral["state"] - lags * rate)[upper])
    return Measurement(v, f"max over pairs |log10 ||dh_s/dh_t||_2 - (s-t) log10 max|lambda|| = {_sci(v)}; "
                          f"log10 ||dh_T/dh_0||_2 = {signed(end_to_end(result), 3)}", v < 1e-6)


def _mingru(result: "Analysis") -> Measurement:
    grid = result.pairs.grid
    # sum of log10(1 - z_k) over k = 1..s per unit, from the gates: the product's diagonal, computed apart
    keep = np.vstack([np.zeros((1, result.gates["z"].shape[1])), np.cumsum(np.log10(1.0 - result.gates["z"]), axis=0)])
    rows = keep[grid]  # (K, n)
    ours = np.max(rows[None, :, :] - rows[:, None, :], axis=-1)  # [t, s]: max_i sum_{k=t+1}^{s} log10(1 - z_k,i)
    upper = np.triu_indices(len(grid), 1)
    v = max_abs((result.pairs.log10_spectral["state"] - ours)[upper])
    return Measurement(v, f"max over pairs |log10 ||dh_s/dh_t||_2 - log10 max_i prod_k (1 - z_k,i)| = {_sci(v)}",
                       v < 1e-9)


def _adding(rnn: "TrainResult", lstm: "TrainResult") -> Measurement:
    """The two runs' final eval MSE against the baseline 1/6: the LSTM well below, the tanh RNN near it."""
    base = lstm.baseline
    a, b = rnn.history[-1]["eval_loss"], lstm.history[-1]["eval_loss"]
    return Measurement(b, f"final eval MSE: LSTM {b:.4f}, tanh RNN {a:.3f} (baseline 1/6 = {base:.3f})",
                       b < 0.1 * base and a > 0.8 * base)


# ------------------------------------------------------------------ the presets, in lecture order

_PRESETS = (
    Preset("vanishing", "Vanishing (tanh, gaussian gain 0.9)", "rnn",
           dict(cell="rnn", activation="tanh", init="gaussian", gain=0.9, seq_len=200),
           "With W_h ~ N(0, 0.9²/n) the tanh RNN's gradient vanishes: log10 ||dh_T/dh_0||_2 < -5 at T = 200.",
           _vanishing),
    Preset("exploding", "Exploding (relu, gaussian gain 2, float64)", "rnn",
           dict(cell="rnn", activation="relu", init="gaussian", gain=2.0, dtype="float64", seq_len=100),
           "With W_h ~ N(0, 2²/n) the relu RNN's gradient explodes: log10 ||dh_T/dh_0||_2 > +5 at T = 100 "
           "(float64 keeps the growing state finite).",
           _exploding),
    Preset("residual", "Residual connection (tanh)", "rnn",
           dict(cell="rnn", activation="tanh", residual=True, seq_len=100),
           "With h_t = h_(t-1) + g(a_t) every factor is I + diag(g')W_h and no product falls below norm 1: "
           "min over all pairs of log10 ||dh_s/dh_t||_2 >= 0 (the same net without it loses 22 decades).",
           _residual),
    Preset("layer_norm", "Layer norm (tanh, gaussian gain 0.5)", "rnn",
           dict(cell="rnn", activation="tanh", norm="layer", init="gaussian", gain=0.5, seq_len=100),
           "Layer norm divides out the scale of W_h: at gain 0.5, where the plain RNN loses 32 decades over "
           "T = 100, every product stays within 3 decades of 1 (max over pairs |log10 ||dh_s/dh_t||_2| < 3).",
           _layer_norm),
    Preset("edge_of_chaos", "Edge of chaos (tanh, gaussian gain 1.0)", "rnn",
           dict(cell="rnn", activation="tanh", init="gaussian", gain=1.0, seq_len=100),
           "At gain 1 (W_h's eigenvalues fill the unit disc) the products change slowly: "
           "|log10 ||dh_T/dh_0||_2| < 5 at T = 100, where gain 0.9 loses 7 decades and relu at gain 2 gains 8.",
           _edge_of_chaos),
    Preset("orthogonal_linear", "Orthogonal W_h, linear", "rnn",
           dict(cell="rnn", activation="linear", init="orthogonal", seq_len=100),
           "A linear RNN with orthogonal W_h multiplies by W_h at every step, so every product is orthogonal: "
           "|log10 ||dh_s/dh_t||_2| < 1e-4 at every pair.",
           _orthogonal_linear),
    Preset("irnn", "IRNN (relu, W_h = I)", "rnn",
           dict(cell="rnn", activation="relu", init="identity", seq_len=100),
           "With W_h = I and relu (Le et al. 2015) every factor is diag(relu'), a 0/1 diagonal: while a unit stays "
           "active every product has norm 1, |log10 ||dh_s/dh_t||_2| < 1e-5 at every pair.",
           _irnn),
    Preset("lstm_input_gate_only", "LSTM, input gate only (carousel)", "gated",
           dict(cell="lstm", gates="input", hidden=32, seq_len=100),
           "With the input gate only, c_t = c_(t-1) + i_t g_t: the direct cell path dc_t/dc_(t-1) = I, "
           "log10 ||prod_k diag(f_k)||_2 = 0 exactly at every lag (the constant error carousel).",
           _carousel),
    Preset("lstm_no_forget_gate", "LSTM, input and output gates (no forget gate)", "gated",
           dict(cell="lstm", gates="input,output", hidden=32, seq_len=100),
           "The output gate changes what h shows, not the carousel: the direct cell path is still I, "
           "log10 ||prod_k diag(f_k)||_2 = 0 exactly at every lag.",
           _carousel),
    Preset("lstm_forget_bias_1", "LSTM, forget bias 1", "gated",
           dict(cell="lstm", gates="input,forget,output", forget_bias="1", hidden=32, seq_len=100),
           "A forget bias of 1 puts f near sigma(1) = 0.73: the direct cell path loses under 0.15 decades per "
           "step, where f = 1/2 (about torch's default) would lose 0.30.",
           _forget_bias_1),
    Preset("chrono", "LSTM, chrono forget bias", "gated",
           dict(cell="lstm", gates="input,forget,output", forget_bias="chrono", hidden=32, seq_len=100),
           "Chrono initialisation (b_f = log u, u ~ U[1, T-1]) gives the slowest unit f near 1 - 1/T: the direct "
           "cell path loses under one decade over the whole sequence, log10 ||prod_k diag(f_k)||_2 > -1 at "
           "lag T = 100.",
           _chrono),
    Preset("gru", "GRU (torch's default init)", "gated",
           dict(cell="gru", seq_len=100),
           "At torch's default init z_t is near 1/2: every factor ||dh_t/dh_(t-1)||_2 stays below 1 (no "
           "explosion), yet the GRU forgets fast, log10 ||dh_T/dh_0||_2 < -5 at T = 100: "
           "its gates must learn to hold z near 1.",
           _gru),
    Preset("lru", "LRU (ring 0.9 to 0.999)", "modern",
           dict(cell="lru", seq_len=1000),
           "The LRU's products are exactly its eigenvalues' powers, ||dh_s/dh_t||_2 = max_j |lambda_j|^(s-t) "
           "(to 1e-6 in log10 at every pair): over T = 1000 steps it loses well under a decade.",
           _lru),
    Preset("mingru", "minGRU", "modern",
           dict(cell="mingru", seq_len=100, dtype="float64"),
           "minGRU's gates read the input alone, so dh_t/dh_(t-1) = diag(1 - z_t) exactly: "
           "||dh_s/dh_t||_2 = max_i prod_k (1 - z_k,i) at every pair (to 1e-9 in log10, float64).",
           _mingru),
    Preset("adding_tanh_vs_lstm", "Adding problem: tanh RNN vs LSTM", "lab",
           dict(task="adding", cell="rnn", activation="tanh", init="pytorch", seq_len=50, hidden=32,
                steps=1000, batch_size=64, lr=1e-2, optimizer="adam", clip=1.0, record_every=50),
           "On the adding problem at T = 50 the LSTM escapes the trivial baseline (final eval MSE below 1/60) "
           "while the tanh RNN at torch's default init stays near 1/6 (above 0.8/6).",
           _adding, compare=dict(cell="lstm")),
)

PRESETS: dict[str, Preset] = {p.name: p for p in _PRESETS}


def preset(name: str) -> Preset:
    """The preset ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {name!r}") from None


def on_page(page: str) -> tuple[Preset, ...]:
    """The presets a page offers, in lecture order ("lab": the Training Lab's)."""
    return tuple(p for p in PRESETS.values() if p.page == page)


def _build(base: ExperimentConfig | TrainConfig, changes: Mapping[str, Any], name: str) -> Any:
    allowed = ALL_SPECS if isinstance(base, TrainConfig) else SPECS
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise ValueError(f"preset {name}: {', '.join(unknown)} not a field of its config")
    config, problems = fit(base, **{k: check(k, v) for k, v in changes.items()})
    if problems:  # a preset is written to be valid as it stands: a fix by fit() is a bug in the table
        raise ValueError(f"preset {name}: " + " ".join(problems))
    return config


def config_of(p: Preset | str) -> ExperimentConfig | TrainConfig:
    """The preset's config: the defaults plus its changes (a ``TrainConfig`` for the lab's presets)."""
    p = preset(p) if isinstance(p, str) else p
    return _build(TrainConfig() if p.page == "lab" else ExperimentConfig(), p.changes, p.name)


def compare_of(p: Preset | str) -> TrainConfig | None:
    """The lab preset's second run (its ``compare`` changes on top of :func:`config_of`), or None."""
    p = preset(p) if isinstance(p, str) else p
    return None if p.compare is None else _build(config_of(p), p.compare, p.name)


def compute(p: Preset | str) -> tuple[Any, ...]:
    """What ``p.check`` reads: ``(analyze(config, stride=auto_stride(config)),)``, or for the lab
    ``(train(config_of(p)), train(compare_of(p)))``. Seconds for an analysis, the lab's runs longer."""
    p = preset(p) if isinstance(p, str) else p
    if p.page == "lab":
        from .train import train

        return train(config_of(p)), train(compare_of(p))
    from .analysis import analyze, auto_stride

    config = config_of(p)
    return (analyze(config, stride=auto_stride(config)),)


def measure(p: Preset | str) -> Measurement:
    """Compute the preset and check its claim."""
    p = preset(p) if isinstance(p, str) else p
    return p.check(*compute(p))
