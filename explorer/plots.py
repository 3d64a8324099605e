"""Plotly figures from plain arrays. Never calls Streamlit.

Sized for a projector: large fonts, a white template, a diverging scale centred at 0 for
log-norms (blue = vanishing, red = exploding). Heatmaps are decimated for display only
(at most ``max_cells`` per axis); the full data goes to the downloads.

The analysis pages' figures are remembered by the content of their arguments (:mod:`explorer.memo`): the same
numbers give the same figure object, which callers must not change. The training figures, redrawn live with new
numbers each time, are not.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from .memo import figure_memo

# a system font: a PNG export renders off-screen without the page's web fonts, and legend entries sized for
# one font overlapped in the other
FONT = dict(size=16, family="Arial, Liberation Sans, Helvetica, sans-serif")
DIVERGING = "RdBu_r"  # blue below 0 (vanishing), red above (exploding)
GATE_SCALE = "Viridis"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f")


def white(fig: go.Figure) -> go.Figure:
    """``fig`` on Plotly's "plotly_white" template, assigned without validating the template again: validating and
    copying it (40 trace types, polar, geo, 3-D scenes) took 60 % of a cached page's script, once per figure. The
    figure's JSON is the same either way (tests/test_plots.py), and Streamlit validates every figure it draws."""
    layout = fig.layout
    layout._validate = False  # as Plotly itself does when it applies the default template
    try:
        layout.template = pio.templates["plotly_white"]
    finally:
        layout._validate = True
    return fig


LOG10_COLORBAR = dict(title=dict(text="log10", side="top"), ticks="outside")  # the log-norm maps' colour bar


def _zero_line(fig: go.Figure) -> None:
    """A thin grey line at y = 0 across the plot: the shape ``fig.add_hline(y=0, ...)`` makes (the same JSON), appended
    directly; ``add_hline`` works out which axes it spans on every call, 13 % of a cached page's script."""
    fig.add_shape(type="line", xref="x domain", x0=0, x1=1, yref="y", y0=0, y1=0, line=dict(color="grey", width=1))


def _set(obj, **props) -> None:
    """Set each leaf of ``props`` on a Plotly object, nested dicts into its children: what ``update_layout`` does,
    without its relayout machinery (parsing every key path again), which cost more than building the figure."""
    for name, value in props.items():
        if isinstance(value, dict):
            _set(getattr(obj, name), **value)
        else:
            setattr(obj, name, value)


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 460) -> go.Figure:
    # the legend sits between the title and the plot, sized by Plotly (automargin): below the x axis a
    # wrapped legend overlapped the axis title, and a PNG export cut it off
    white(fig)
    _set(fig.layout, font=FONT, height=height,
         title=dict(text=title, x=0.01, y=1, yanchor="top", yref="container", pad=dict(t=12)),
         margin=dict(l=70, r=30, t=105 if sum(t.showlegend is not False for t in fig.data) > 1 else 60, b=60),
         legend=dict(orientation="h", x=0, xanchor="left", y=1.03, yanchor="bottom"))
    for axes, text in ((fig.select_xaxes(), x), (fig.select_yaxes(), y)):
        for axis in axes:  # explicit tick size: the app's theme would set 12.75 px
            _set(axis, title=dict(text=text), tickfont=dict(size=14))
    return fig


def decimate(n: int, max_cells: int) -> np.ndarray:
    """Indices 0..n-1 thinned to at most ``max_cells``, always keeping the last."""
    if n <= max_cells:
        return np.arange(n)
    return np.unique(np.r_[np.linspace(0, n - 1, max_cells).round().astype(int), n - 1])


def _finite_or_nan(a: np.ndarray) -> np.ndarray:
    out = np.asarray(a, dtype=np.float64).copy()
    out[~np.isfinite(out)] = np.nan
    return out


@figure_memo
def jacobian_heatmap(grid: np.ndarray, log10_map: np.ndarray, *, title: str, quantity: str = "log10 ‖∂h_s/∂h_t‖₂",
                     max_cells: int = 300, limit: float | None = None) -> go.Figure:
    """Heatmap of ``log10_map[i, j]`` = log10 norm of dz_{grid[j]}/dz_{grid[i]} over (t, s).

    x is the start t (where the gradient arrives), y the end s (where it starts); only t <= s
    exists. Exact zeros (-inf), undefined pairs (NaN) and t > s are left blank, with no hover.
    The diverging scale is centred at 0 and spans ±``limit`` decades (None: the data's largest |value|);
    values beyond a fixed limit take the end colours.
    """
    keep = decimate(len(grid), max_cells)
    z = _finite_or_nan(log10_map[np.ix_(keep, keep)].T).astype(np.float32)  # rows = s, cols = t
    if limit is None:
        limit = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    fig = go.Figure(go.Heatmap(
        x=grid[keep], y=grid[keep], z=z, colorscale=DIVERGING, zmid=0.0, zmin=-limit, zmax=limit, hoverongaps=False,
        colorbar=LOG10_COLORBAR,
        hovertemplate="t = %{x}<br>s = %{y}<br>" + quantity + " = %{z:.3f}<extra></extra>"))
    return _layout(fig, title, "t (earlier step)", "s (later step)", height=560)


@figure_memo
def lag_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], *, title: str,
               bound: tuple[np.ndarray, np.ndarray] | None = None, y: str = "log10 ‖∂h_T/∂h_(T−k)‖₂",
               bound_name: str = "bound k·log10(γ σ_max)") -> go.Figure:
    """log10 norm against lag k for one or more named series, with the optional bound."""
    fig = go.Figure()
    for i, (name, (lags, values)) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=lags, y=_finite_or_nan(values), name=name, mode="lines",
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=4 if i == 0 else 2.5,
                                           dash=("solid", "dash", "dot", "dashdot")[i % 4]),
                                 hovertemplate="k = %{x}<br>%{y:.3f}<extra>" + name + "</extra>"))
    if bound is not None:
        fig.add_trace(go.Scatter(x=bound[0], y=_finite_or_nan(bound[1]), name=bound_name,
                                 mode="lines", line=dict(color="#8c8c8c", dash="dash", width=2)))
    _zero_line(fig)
    return _layout(fig, title, "lag k = T − t", y)


@figure_memo
def mean_field_figure(lags: np.ndarray, measured: np.ndarray, log10_chi: float | None, *, title: str,
                      anchor: tuple[float, float] = (0.0, 0.0)) -> go.Figure:
    r"""The measured log10(||dh_T/dh_(T-k)||_F^2 / n) against the lag k (lags (L,), measured (L,)) beside the
    mean-field line of slope log10 chi through ``anchor`` (k, value): dashed; left out where the theory gives no chi.
    The theory predicts the slope once the state has settled, not the transient before, so the page anchors the line
    where the measured slope is fitted."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=lags, y=_finite_or_nan(measured), name="measured log10(‖·‖_F² / n)", mode="lines",
                             line=dict(color=PALETTE[0], width=4),
                             hovertemplate="k = %{x}<br>%{y:.3f}<extra>measured</extra>"))
    if log10_chi is not None and np.isfinite(log10_chi):
        fig.add_trace(go.Scatter(x=lags, y=anchor[1] + (lags - anchor[0]) * log10_chi,
                                 name=f"theory: slope log10 χ = {log10_chi:.3f} per step",
                                 mode="lines", line=dict(color=PALETTE[1], dash="dash", width=3),
                                 hovertemplate="k = %{x}<br>%{y:.3f}<extra>theory</extra>"))
    _zero_line(fig)
    return _layout(fig, title, "lag k = T − t", "log10 (‖∂h_T/∂h_(T−k)‖_F² / n)")


@figure_memo
def lyapunov_figure(exponents: np.ndarray, references: Mapping[str, float | None], *, title: str) -> go.Figure:
    """The top K Lyapunov exponents (K,), log10 per step, largest first, as markers against i, with each finite
    reference (name -> log10 per step) a dashed horizontal line."""
    fig = go.Figure()
    index = np.arange(1, len(exponents) + 1)
    fig.add_trace(go.Scatter(x=index, y=_finite_or_nan(np.asarray(exponents, dtype=float)), name="λ_i measured",
                             mode="markers+lines", marker=dict(color=PALETTE[0], size=9), line=dict(color=PALETTE[0]),
                             hovertemplate="i = %{x}<br>λ_i = %{y:.4f} per step<extra></extra>"))
    for k, (name, value) in enumerate(references.items()):
        if value is not None and np.isfinite(value):
            fig.add_trace(go.Scatter(x=[index[0] if len(index) else 1, index[-1] if len(index) else 1],
                                     y=[value, value], name=f"{name} = {value:.4f}", mode="lines",
                                     line=dict(color=PALETTE[(k + 1) % len(PALETTE)], dash=("dash", "dot")[k % 2],
                                               width=2.5)))
    _zero_line(fig)
    return _layout(fig, title, "i (largest first)", "λ_i, log10 per step")


@figure_memo
def contributions_figure(log10_terms: np.ndarray, *, title: str) -> go.Figure:
    """Per-step terms of the lecture's sum dL/dW_x = sum_t C_t: log10 ||C_t|| (bars) and
    the share of the total carried by steps >= t (line, right axis)."""
    steps = np.arange(1, len(log10_terms) + 1)
    finite = np.isfinite(log10_terms)
    top = np.max(log10_terms[finite]) if finite.any() else 0.0
    weights = np.where(finite, 10.0 ** (np.where(finite, log10_terms, top) - top), 0.0)
    share = np.cumsum(weights[::-1])[::-1] / max(weights.sum(), 1e-300)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=steps, y=_finite_or_nan(log10_terms), name="log10 ‖C_t‖_F (left)", marker_color=PALETTE[0],
                         hovertemplate="t = %{x}<br>log10 ‖C_t‖_F = %{y:.3f}<extra></extra>"), secondary_y=False)
    fig.add_trace(go.Scatter(x=steps, y=share, name="share of Σ‖C‖ from steps ≥ t (right)", mode="lines",
                             line=dict(color=PALETTE[1], width=3),
                             hovertemplate="t = %{x}<br>%{y:.1%} of Σ‖C‖ from steps ≥ t<extra></extra>"),
                  secondary_y=True)
    _layout(fig, title, "step t", "")
    fig.update_yaxes(title_text="log10 ‖C_t‖_F", secondary_y=False)
    fig.update_yaxes(title_text="share from steps ≥ t", range=[0, 1.05], tickformat=".0%", dtick=0.25,
                     showgrid=False, secondary_y=True)
    return fig


@figure_memo
def step_norms_figure(steps: np.ndarray, log10_norms: np.ndarray, *, title: str) -> go.Figure:
    """log10 ||J_k||_2 of single steps against k, with the line of ||J_k|| = 1."""
    fig = go.Figure(go.Scatter(x=steps, y=_finite_or_nan(log10_norms), mode="lines+markers" if len(steps) < 60 else "lines",
                               name="log10 ‖J_k‖₂", line=dict(color=PALETTE[0], width=3),
                               hovertemplate="k = %{x}<br>log10 ‖J_k‖₂ = %{y:.4f}<extra></extra>"))
    fig.add_hline(y=0, line=dict(color="grey", width=2), annotation_text="‖J_k‖₂ = 1",
                  annotation_position="top left")
    return _layout(fig, title, "step k", "log10 ‖J_k‖₂", height=360)


@figure_memo
def gate_spread_figure(quantiles: Mapping[str, np.ndarray], *, title: str) -> go.Figure:
    """Per gate and step: the median over units (line) and the middle half (band), from its quartiles
    (3, T) (:func:`explorer.analysis.gate_quartiles`)."""
    fig = go.Figure()
    low = 0.0
    for i, (name, (q25, q50, q75)) in enumerate(quantiles.items()):
        steps = np.arange(1, len(q50) + 1)
        color = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=np.r_[steps, steps[::-1]], y=np.r_[q75, q25[::-1]], fill="toself", mode="lines",
                                 line=dict(width=0), fillcolor=color, opacity=0.2, hoverinfo="skip",
                                 showlegend=False, legendgroup=name))
        fig.add_trace(go.Scatter(x=steps, y=q50, mode="lines", name=f"gate {name}", legendgroup=name,
                                 line=dict(color=color, width=3),
                                 hovertemplate=f"t = %{{x}}<br>median {name} = %{{y:.3f}}<extra></extra>"))
        if np.isfinite(q25).any():
            low = min(low, float(np.nanmin(q25)))
    fig.update_yaxes(range=[-1.02, 1.02] if low < 0 else [0, 1.02])
    return _layout(fig, title, "step t", "gate value")


@figure_memo
def eigenvalue_figure(eigenvalues: np.ndarray, *, title: str, names: Sequence[str] = ("W_hh",)) -> go.Figure:
    """Eigenvalues in the complex plane with the unit circle; one colour per n x n block."""
    fig = go.Figure()
    theta = np.linspace(0, 2 * np.pi, 361)
    fig.add_trace(go.Scatter(x=np.cos(theta), y=np.sin(theta), mode="lines", name="unit circle",
                             line=dict(color="grey", dash="dot")))
    for i, (name, block) in enumerate(zip(names, np.array_split(eigenvalues, len(names)))):
        fig.add_trace(go.Scatter(x=block.real, y=block.imag, mode="markers", name=name,
                                 marker=dict(size=8, color=PALETTE[i % len(PALETTE)], opacity=0.8),
                                 hovertemplate="%{x:.4f} %{y:+.4f}i<extra>" + name + "</extra>"))
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return _layout(fig, title, "Re λ", "Im λ")


@figure_memo
def singular_values_figure(log10_values: Mapping[str, np.ndarray], *, title: str,
                           limit: float | None = None) -> go.Figure:
    """log10 sigma_i against index i (descending), one series per name; NaN (not drawn) below ``limit``, the
    level under which the product's rounding leaves a value undetermined, drawn as a dotted line."""
    fig = go.Figure()
    if limit is not None:
        fig.add_hline(y=limit, line=dict(color="grey", width=1.5, dash="dot"),
                      annotation_text="rounding limit: smaller σ_i not resolved", annotation_position="bottom right")
    for i, (name, values) in enumerate(log10_values.items()):
        fig.add_trace(go.Scatter(x=np.arange(1, len(values) + 1), y=_finite_or_nan(values), name=name,
                                 mode="lines+markers", marker=dict(size=6), line=dict(color=PALETTE[i % len(PALETTE)]),
                                 hovertemplate="i = %{x}<br>log10 σ_i = %{y:.3f}<extra></extra>"))
    _zero_line(fig)
    return _layout(fig, title, "index i", "log10 σ_i")


@figure_memo
def gate_heatmaps(gates: Mapping[str, np.ndarray], *, title: str, signed: Sequence[str] = (),
                  max_cells: int = 200) -> go.Figure:
    """One heatmap per gate over (step, unit), on one shared [0, 1] scale (the ``signed`` ones, tanh
    candidates such as the LSTM's g, on [-1, 1])."""
    names = list(gates)
    fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=[f"gate {k}" for k in names])
    for row, name in enumerate(names, start=1):
        values = gates[name]  # (T, n)
        keep_t, keep_u = decimate(values.shape[0], max_cells), decimate(values.shape[1], max_cells)
        on_both_sides = name in signed
        fig.add_trace(go.Heatmap(
            x=keep_t + 1, y=keep_u, z=values[np.ix_(keep_t, keep_u)].T.astype(np.float32),
            colorscale="RdBu_r" if on_both_sides else GATE_SCALE, zmin=-1 if on_both_sides else 0, zmax=1,
            showscale=row == 1 or on_both_sides, colorbar=dict(len=0.3, y=1 - (row - 0.5) / len(names)),
            hovertemplate="t = %{x}<br>unit %{y}<br>" + name + " = %{z:.3f}<extra></extra>"), row=row, col=1)
        fig.update_yaxes(title_text="unit", row=row, col=1)
    _layout(fig, title, "", "", height=190 * len(names) + 120)
    fig.update_xaxes(title_text="step t", row=len(names), col=1)
    return fig


@figure_memo
def saturation_figure(shares: Mapping[str, np.ndarray], *, title: str) -> go.Figure:
    """Share of units per step whose gate is below 0.05 or above 0.95."""
    fig = go.Figure()
    for i, (name, share) in enumerate(shares.items()):
        fig.add_trace(go.Scatter(x=np.arange(1, len(share) + 1), y=share, name=f"gate {name}", mode="lines",
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=3)))
    fig.update_yaxes(range=[0, 1.02])
    return _layout(fig, title, "step t", "share of units saturated")


@figure_memo
def trajectories_figure(values: np.ndarray, units: Sequence[int], *, title: str, y: str) -> go.Figure:
    """Lines of ``values[:, u]`` (T+1, n) over t = 0..T for the chosen units."""
    fig = go.Figure()
    steps = np.arange(values.shape[0])
    for i, u in enumerate(units):
        fig.add_trace(go.Scatter(x=steps, y=values[:, u], name=f"unit {u}", mode="lines",
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=2)))
    return _layout(fig, title, "step t", y)


@figure_memo
def state_heatmap(values: np.ndarray, *, title: str, name: str, max_cells: int = 200) -> go.Figure:
    """A state (T+1, n) over (step, unit) on a diverging scale centred at 0."""
    keep_t, keep_u = decimate(values.shape[0], max_cells), decimate(values.shape[1], max_cells)
    z = values[np.ix_(keep_t, keep_u)].T.astype(np.float32)
    limit = float(np.max(np.abs(z))) or 1.0
    fig = go.Figure(go.Heatmap(x=keep_t, y=keep_u, z=z, colorscale=DIVERGING, zmid=0, zmin=-limit, zmax=limit,
                               hovertemplate="t = %{x}<br>unit %{y}<br>" + name + " = %{z:.3f}<extra></extra>"))
    return _layout(fig, title, "step t", "unit")


def log_ticks(values: Sequence[np.ndarray], most: int = 6) -> dict:
    """Settings for a log axis over ``values`` (non-positive and non-finite ignored): the range of the
    data, padded, and its labels: over 1.5 decades or more, one per decade (or per k decades, so that
    at most ``most`` show; below 4 decades with unlabelled grid lines at 2..9 x 10^k); over half a
    decade or more, 1, 2, 5 x 10^k; below that, about five in plain numbers."""
    flat = np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in values]) if len(values) else np.empty(0)
    flat = flat[np.isfinite(flat) & (flat > 0)]
    if not flat.size:
        return dict(type="log")
    lo, hi = float(np.log10(flat.min())), float(np.log10(flat.max()))
    span = hi - lo
    pad = max(0.05 * span, 0.02)
    axis = dict(type="log", range=[lo - pad, hi + pad])
    small = flat.max() < 1e-3  # plain decimals would be long: 0.0000031
    if span >= 1.5:
        dtick = int(np.ceil((span + 2 * pad) / most))
        minor = dict(dtick="D1", showgrid=True, gridcolor="#f2f2f2") if dtick == 1 and span < 4 else {}
        return {**axis, "tick0": 0, "dtick": dtick, "exponentformat": "power", "minor": minor}
    if span >= 0.5:
        return {**axis, "dtick": "D2", "tickformat": ".1~e" if small else ".3~g"}
    return {**axis, "nticks": 5, "tickformat": ".3~e" if small else ".4~g"}


def loss_figure(runs: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], baseline: float, *,
                title: str) -> go.Figure:
    """Training and evaluation loss per run (steps, loss, eval loss), with the trivial baseline."""
    fig = go.Figure()
    for i, (name, (steps, loss, eval_loss)) in enumerate(runs.items()):
        color = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=steps, y=_finite_or_nan(loss), name=f"{name}: train", mode="lines",
                                 line=dict(color=color, width=1.5), opacity=0.6))
        fig.add_trace(go.Scatter(x=steps, y=_finite_or_nan(eval_loss), name=f"{name}: eval", mode="lines",
                                 line=dict(color=color, width=3)))
    fig.add_hline(y=baseline, line=dict(color="#8c8c8c", dash="dash"))
    if baseline > 0:  # on a log axis an annotation's y is log10 of the value (a shape's is the value)
        fig.add_annotation(x=1, xref="x domain", y=float(np.log10(baseline)), yref="y", showarrow=False,
                           text=f"baseline {baseline:.4g}", xanchor="right", yanchor="bottom")
    fig.update_yaxes(**log_ticks([v for _, loss, eval_loss in runs.values() for v in (loss, eval_loss)] + [[baseline]]))
    return _layout(fig, title, "training step", "loss")


def grad_flow_heatmap(steps: np.ndarray, log10_flow: np.ndarray, *, title: str, max_cells: int = 300) -> go.Figure:
    """log10 ||dL/dh_t|| over (training step, t): rows are records, columns t = 1..T."""
    keep_r, keep_t = decimate(len(steps), max_cells), decimate(log10_flow.shape[1], max_cells)
    z = _finite_or_nan(log10_flow[np.ix_(keep_r, keep_t)]).astype(np.float32)
    fig = go.Figure(go.Heatmap(x=keep_t + 1, y=steps[keep_r], z=z, colorscale="Viridis",
                               colorbar=dict(title=dict(text="log10", side="right")),
                               hovertemplate="t = %{x}<br>step %{y}<br>log10 ‖∂L/∂h_t‖ = %{z:.3f}<extra></extra>"))
    return _layout(fig, title, "time step t", "training step")


def series_figure(runs: Mapping[str, tuple[np.ndarray, np.ndarray]], *, title: str, y: str, log_y: bool = False) -> go.Figure:
    """Plain lines (x, y) per named series."""
    fig = go.Figure()
    for i, (name, (x, values)) in enumerate(runs.items()):
        fig.add_trace(go.Scatter(x=x, y=_finite_or_nan(values), name=name, mode="lines",
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=3)))
    if log_y:
        fig.update_yaxes(**log_ticks([values for _, values in runs.values()]))
    return _layout(fig, title, "training step", y)


def singular_values_over_training(steps: np.ndarray, values: np.ndarray, *, title: str,
                                  min_span: float = 0.1) -> go.Figure:
    """Each singular value of W_hh (columns of ``values``, records x n) over training.

    The y axis covers the data and the line σ = 1, padded, and is never narrower than
    ``min_span``: values orthogonal to rounding (1 ± 1e-6) must not look spread apart.
    """
    fig = go.Figure()
    for i in decimate(values.shape[1], 64):
        fig.add_trace(go.Scatter(x=steps, y=values[:, i], mode="lines", showlegend=False,
                                 line=dict(width=1.5, color=PALETTE[0]), opacity=0.5,
                                 hovertemplate=f"σ_{i + 1}" + " = %{y:.7g}<extra></extra>"))
    fig.add_hline(y=1.0, line=dict(color="#8c8c8c", dash="dash"))
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size:
        lo, hi = min(float(finite.min()), 1.0), max(float(finite.max()), 1.0)
        half = max(0.55 * (hi - lo), 0.5 * min_span)
        mid = 0.5 * (lo + hi)
        fig.update_yaxes(range=[max(mid - half, 0.0) if lo >= 0 else mid - half, mid + half])
    return _layout(fig, title, "training step", "σ_i(W_hh)")


def _edges(values: np.ndarray) -> tuple[float, float]:
    """The outer edges of cells centred on ``values`` (evenly spaced; one value: ±0.5 around it)."""
    values = np.asarray(values, dtype=np.float64)
    half = 0.5 * (values[-1] - values[0]) / (len(values) - 1) if len(values) > 1 else 0.5
    return float(values[0] - half), float(values[-1] + half)


@figure_memo
def phase_diagram_figure(x: np.ndarray, y: np.ndarray, z: np.ndarray, *, title: str, x_label: str, y_label: str,
                         quantity: str, line: tuple[np.ndarray, np.ndarray] | None = None,
                         line_name: str = "theory: χ = 1", limit: float | None = None) -> go.Figure:
    """A sweep over two axes as a heatmap: ``z[i, j]`` (grid order: (len(x), len(y))) at x[i], y[j], on a diverging
    scale centred at 0 spanning ±``limit`` (None: the data's largest |value|); null cells (NaN, ±inf) blank.

    Over each cell an invisible marker (its index in grid order in ``customdata``) makes the cell clickable
    (Streamlit's point selection: a heatmap's cells cannot be selected themselves); a clicked one is ringed.
    ``line`` = (x, y) points, e.g. theory's critical line, drawn dashed within the map's range."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    values = _finite_or_nan(np.asarray(z, dtype=np.float64).reshape(len(x), len(y)))
    if limit is None:
        limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    limit = limit if limit > 0 else 1.0
    fig = go.Figure(go.Heatmap(x=x, y=y, z=values.T, colorscale=DIVERGING, zmid=0.0, zmin=-limit, zmax=limit,
                               hoverongaps=False, hoverinfo="skip", name=quantity,
                               colorbar=LOG10_COLORBAR))
    xx, yy = np.meshgrid(x, y, indexing="ij")
    fig.add_trace(go.Scatter(
        x=xx.ravel(), y=yy.ravel(), mode="markers", customdata=np.arange(xx.size), showlegend=False, name="cells",
        text=[("—" if not np.isfinite(v) else f"{v:.4f}") for v in values.ravel()],
        marker=dict(symbol="square-open", size=16, color="rgba(0,0,0,0)", line=dict(width=0)),
        selected=dict(marker=dict(color="#111111", opacity=1.0)), unselected=dict(marker=dict(opacity=0.0)),
        hovertemplate=f"{x_label} = %{{x:.4g}}<br>{y_label} = %{{y:.4g}}<br>{quantity} = %{{text}}"
                      "<br>click: open this config<extra></extra>"))
    if line is not None and len(line[0]):
        fig.add_trace(go.Scatter(x=np.asarray(line[0]), y=np.asarray(line[1]), mode="lines", name=line_name,
                                 line=dict(color="black", dash="dash", width=3), hoverinfo="skip"))
    _layout(fig, title, x_label, y_label, height=560)
    fig.update_xaxes(range=list(_edges(x)), showgrid=False, zeroline=False)
    fig.update_yaxes(range=list(_edges(y)), showgrid=False, zeroline=False)
    fig.update_layout(clickmode="event+select", dragmode=False)
    return fig
