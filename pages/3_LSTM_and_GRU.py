"""LSTM built gate by gate, and the GRU: the carousel's gradient flow beside the simple RNN, gates, cell state."""
import numpy as np
import streamlit as st

import ui
from explorer import plots
from explorer.analysis import SATURATION, auto_stride
from explorer.export import pairs_arrays
from explorer.registry import cell_type, cells_on
from explorer.text import caption, saturation_summary


ui.page_setup("LSTM and GRU", "🧮")
config = ui.config_sidebar("gated", ["cell", "gates", "forget_bias", "hidden", "input_size", "seq_len", "init", "gain",
                                    "input", "seed", "dtype"], choices={"cell": cells_on("gated")},
                           view=["scale", "present", "image"])
report = ui.Report(config, "gated")
report.config_download()
ui.share("gated", config, auto_stride(config))
other = ui.compared("gated")
view, kind = config.to_dict(), cell_type(config.cell)
intro, main = ui.frame("gated", "LSTM gate by gate, and the GRU")
with intro:
    ui.model_panel("gated", config, comparing=bool(other))
    for line in kind.equations(view):
        st.latex(line)
    st.markdown(caption("intro", view))
    result, timing = ui.analysis(config)
    if other:
        result_b, _ = ui.analysis(other[0], "B: ")
        ui.comparison_note(other[1], ui.untrained_note(config) if other[0].weights != config.weights else None)
    lags, spec, _ = result.lag_curve()
    cols = st.columns(3)
    ui.log10_metric(cols[0], "log10 ‖∂z_T/∂z_0‖₂" if result.c is not None else "log10 ‖∂h_T/∂h_0‖₂", spec[-1], result)
    cols[1].metric("map grid", f"{len(result.pairs.grid)} × {len(result.pairs.grid)}")
    cols[2].metric("analysis time", timing, help="How long this result took to compute; cached: computed before, by any visitor")
overlay = ui.rnn_overlay(config)  # the simple RNN of the same size (None: left for a click at this size)

with main:
    st.subheader("Gradient flow through the state")
    views = {"full state z = (h, c)" if result.c is not None else "state h": "state"}
    if result.c is not None:
        views["cell path c → c"] = "cell"
    for tab, (label, name) in zip(st.tabs(list(views)), views.items()):
        with tab:
            maps = {"A": (result.pairs.grid, result.pairs.log10_spectral[name])}
            if other and name in result_b.pairs.log10_spectral:
                maps["B"] = (result_b.pairs.grid, result_b.pairs.log10_spectral[name])
            ui.heatmaps(report, maps, title=f"log10 ‖∂z_s/∂z_t‖₂, {label}", quantity="log10 ‖·‖₂",
                        explanation=caption("map", view), key=f"map_{name}",
                        downloads=[report.npz("maps (NPZ)", "maps", lambda: pairs_arrays(result))])
    st.caption(ui.certificate_text(result))
    curves = {f"{'A: ' if other else ''}{config.cell.upper()} full state": (lags, spec)} | ui.overlay_curve(overlay)
    if other:
        curves[f"B: {cell_type(other[0].cell).label}"] = result_b.lag_curve()[:2]
    if result.c is not None:
        curves["LSTM c → c (total derivative)"] = result.lag_curve("cell")[:2]
        direct = result.extras["direct_cell_path"]
        curves["LSTM direct path ∏ diag(f_k)"] = (direct["lags"], direct["log10_spectral"])
    fig = plots.lag_figure(curves, title="log10 ‖∂z_T/∂z_(T−k)‖₂ against the lag k", y="log10 ‖∂z_T/∂z_(T−k)‖₂")
    report.chart(fig, caption("gated_lag", view),
                 [report.csv("curves (CSV)", "lag_curves", {"lag": lags, "gated": spec} | ui.overlay_column(lags, overlay)
                             | ({"cell_total": curves["LSTM c → c (total derivative)"][1],
                                 "cell_direct": np.interp(lags, direct["lags"], direct["log10_spectral"])}
                                if result.c is not None else {}))],
                 key="lag", latex=kind.lag_equation)

    st.subheader(f"Singular values of ∂z_T/∂z_(T−{result.lag})")
    spectra = {f"{'A: ' if other else ''}lag {result.lag}": result.singular_values}
    if other:
        spectra[f"B: lag {result_b.lag}"] = result_b.singular_values
    report.chart(plots.singular_values_figure(spectra, title=f"log10 σ_i of the product over {result.lag} steps",
                                              limit=result.singular_limit),
                 "How many directions of the state the product keeps: a trained carousel holds several near 1 "
                 "(log10 σ ≈ 0) where an untrained cell keeps few.",
                 [report.csv("singular values (CSV)", "singular_values",
                             {"i": np.arange(1, len(result.singular_values) + 1), "log10_sigma": result.singular_values}
                             | ({"log10_sigma_B": result_b.singular_values}
                                if other and len(result_b.singular_values) == len(result.singular_values) else {}))], key="sv")

    st.subheader("Gate activations")
    signed = [gate.name for gate in kind.gates if gate.signed]
    fig = plots.gate_heatmaps(result.gates, signed=signed,
                              title="Gates over time and units (sigmoid gates on [0, 1], tanh on [−1, 1])")
    report.chart(fig, caption("gates", view), [report.npz("gates (NPZ)", "gates", lambda: result.gates)], key="gates")
    sat = result.extras["saturation"]
    fig = plots.gate_spread_figure({k: v for k, v in result.extras["gate_quartiles"].items() if k in sat or k in signed},
                                   title="Gate values per step: median and middle half of the units")
    report.chart(fig, caption("gate_spread", {**view, "saturated": saturation_summary(sat, *SATURATION)}),
                 [report.csv("saturation (CSV)", "saturation", {"t": np.arange(1, config.seq_len + 1), **sat})], key="sat")

    st.subheader("State trajectories")
    n = config.hidden
    final = np.abs(result.c[-1] if result.c is not None else result.h[-1])
    default_units = sorted(np.argsort(np.nan_to_num(final, nan=-1.0))[::-1][: min(6, n)].tolist())
    units = st.multiselect("units to draw (default: the six largest at t = T)", list(range(n)), default=default_units)
    for name, values in ({"c": result.c, "h": result.h} if result.c is not None else {"h": result.h}).items():
        left, right = st.columns(2)
        with left:
            report.chart(plots.trajectories_figure(values, units, title=f"{name}_t for selected units", y=name),
                         "Long-range memory shows as a unit holding its value across many steps.",
                         [report.npz(f"{name}, all units (NPZ)", name, lambda name=name, values=values: {name: values})],
                         key=f"traj_{name}")
        with right:
            report.chart(plots.state_heatmap(values, title=f"{name} over time and units", name=name),
                         "All units at once: red positive, blue negative.", [], key=f"heat_{name}")
