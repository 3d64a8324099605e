"""The figures' template is assigned without validating it again, their layout set leaf by leaf instead of through
``update_layout``, and their zero line appended as a shape instead of through ``add_hline`` (explorer.plots.white,
_layout, _zero_line, for speed): every figure's JSON must equal the one Plotly's own path builds, for the figures of a
whole analysis."""
from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go

from explorer import ExperimentConfig, analyze, plots


def _plotlys_own_layout(fig: go.Figure, title: str, x: str, y: str, height: int = 460) -> go.Figure:
    """The layout as Plotly's update methods set it, the template validated and copied."""
    fig.update_layout(template="plotly_white", font=plots.FONT, height=height,
                      title=dict(text=title, x=0.01, y=1, yanchor="top", yref="container", pad=dict(t=12)),
                      margin=dict(l=70, r=30, t=105 if sum(t.showlegend is not False for t in fig.data) > 1 else 60, b=60),
                      legend=dict(orientation="h", x=0, xanchor="left", y=1.03, yanchor="bottom"))
    fig.update_xaxes(title_text=x, tickfont=dict(size=14))
    fig.update_yaxes(title_text=y, tickfont=dict(size=14))
    return fig


def _figures() -> list[go.Figure]:
    result = analyze(ExperimentConfig(cell="lstm", seq_len=20, hidden=4), lyapunov=4)
    lags, spec, fro = result.lag_curve()
    return [
        plots.jacobian_heatmap(result.pairs.grid, result.pairs.log10_spectral["state"], title="map"),
        plots.lag_figure({"a": (lags, spec), "b": (lags, fro)}, title="lag"),
        plots.contributions_figure(result.contributions, title="terms"),
        plots.step_norms_figure(*result.step_norms, title="steps"),
        plots.singular_values_figure({"lag": result.singular_values}, title="sv", limit=result.singular_limit),
        plots.eigenvalue_figure(result.eigenvalues, title="eig"),
        plots.gate_heatmaps(result.gates, title="gates", signed=["g"]),
        plots.lyapunov_figure(result.lyapunov, {"½ log10 χ": None}, title="lyapunov"),
        plots.phase_diagram_figure(np.arange(3.0), np.arange(2.0), np.zeros((2, 3)), title="phase", x_label="x",
                                   y_label="y", quantity="q"),
        plots.loss_figure({"run": (np.arange(3), np.ones(3), np.ones(3))}, 1 / 6, title="loss"),
        plots.gate_spread_figure(result.extras["gate_quartiles"], title="spread"),
    ]


def test_every_figure_is_as_plotlys_own_update_methods_build_it(monkeypatch):
    ours = [json.loads(fig.to_json()) for fig in _figures()]
    monkeypatch.setattr(plots, "_layout", _plotlys_own_layout)
    monkeypatch.setattr(plots, "_zero_line", lambda fig: fig.add_hline(y=0, line=dict(color="grey", width=1)))
    theirs = [json.loads(fig.to_json()) for fig in _figures()]
    for mine, reference in zip(ours, theirs):
        assert mine["layout"]["template"]["layout"]["plot_bgcolor"] == "white"
        assert mine == reference, mine["layout"]["title"]["text"]
