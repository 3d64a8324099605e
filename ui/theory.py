"""Theory beside measurement on an analysis page: the mean-field line on the lag chart's mean square, the
gradient time-scale xi, and the Lyapunov spectrum beside 1/2 log10 chi and the spectral norm's slope."""
from __future__ import annotations

import math

import numpy as np
import streamlit as st

from explorer import plots
from explorer.analysis import Analysis
from explorer.text import caption
from explorer.theory import late_anchor, measured_rates


def _number(value: float | None, digits: int = 3) -> str:
    """A log10 figure as the metrics show it: undefined (NaN: past an overflow), −∞ (an exact zero), — (none)."""
    if value is None:
        return "—"
    if math.isnan(value):
        return "undefined"
    return "−∞" if value == -math.inf else f"{value:.{digits}f}"


def theory_section(report, result: Analysis, view: dict) -> None:
    """Two charts with their data: the measured mean square against k log10 chi, and the Lyapunov spectrum; metrics
    for log10 chi, the measured slope, xi and lambda_1. Where the theory does not apply it says why."""
    config, theory = result.config, result.theory
    lags, spec, fro = result.lag_curve()
    mean_square, slope, spectral_slope = measured_rates(lags, spec, fro, config.hidden)
    log10_chi = theory.log10_chi if theory is not None else None
    view = {**view, "theory": theory is not None, "theory_note": result.theory_note or ""}
    cols = [c for row in (st.columns(2), st.columns(2)) for c in row]  # four across are cut short at 1024 px
    cols[0].metric("log10 χ (theory)", _number(log10_chi), help="Mean-field growth per step of ‖∂h_T/∂h_(T−k)‖_F²/n")
    cols[1].metric("measured slope", _number(slope), help="Least-squares slope per step over the last half of the lags")
    if theory is None:
        xi = "—"
    elif theory.chi >= 1.0:
        xi = "∞ (χ ≥ 1)"
    else:
        xi = f"{theory.xi:.1f} steps"
    cols[2].metric("time-scale ξ = −1/ln χ", xi, help="Steps for the mean squared gradient to lose a factor e")
    top = float(result.lyapunov[0]) if len(result.lyapunov) else None
    cols[3].metric("λ₁ (top Lyapunov exponent)", _number(top, 4), help="log10 per step, over the whole sequence")
    if theory is None:
        st.info(f"Mean-field theory: {result.theory_note}", icon="ℹ️")
    left, right = st.columns(2)
    with left:
        anchor = late_anchor(lags, mean_square)
        fig = plots.mean_field_figure(lags, mean_square, log10_chi, title="Mean square vs theory",
                                      anchor=anchor)
        line = anchor[1] + (lags - anchor[0]) * log10_chi if log10_chi is not None else np.full(len(lags), np.nan)
        report.chart(fig, caption("theory", view),
                     [report.csv("mean square (CSV)", "mean_field",
                                 {"lag": lags, "log10_mean_square": mean_square, "theory_line": line})],
                     key="theory",  # two lines: the column is half the page (259 px at a 1024 px projector)
                     latex=r"\begin{gathered}\frac{1}{n}\Big\|\frac{\partial h_T}{\partial h_{T-k}}\Big\|_F^2 "
                           r"\approx \chi^k,\\ \chi = \sigma_w^2\,\mathbb{E}_z\big[g'(\sqrt{q^*}z)^2\big]\end{gathered}")
    with right:
        exponents = result.lyapunov
        references = {"½ log10 χ (theory)": None if log10_chi is None else log10_chi / 2,
                      "slope of log10 ‖·‖₂": spectral_slope}
        fig = plots.lyapunov_figure(exponents, references, title=f"Top {len(exponents)} Lyapunov exponents")
        report.chart(fig, caption("lyapunov", view),
                     [report.csv("exponents (CSV)", "lyapunov",
                                 {"i": np.arange(1, len(exponents) + 1), "lambda_log10_per_step": exponents})],
                     key="lyapunov")
