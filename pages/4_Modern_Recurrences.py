"""The recurrences of the 2020s: LRU, minGRU and minLSTM, whose diagonal Jacobians do not vanish, beside the simple RNN."""
import numpy as np
import streamlit as st

import ui
from explorer import plots
from explorer.analysis import auto_stride
from explorer.export import pairs_arrays
from explorer.registry import cell_type, cells_on
from explorer.text import caption


ui.page_setup("Modern Recurrences", "🛰️")
config = ui.config_sidebar("modern", ["cell", "r_min", "r_max", "max_phase", "hidden", "input_size", "seq_len", "input",
                                      "seed", "dtype"], choices={"cell": cells_on("modern")},
                           view=["scale", "present", "image"])
report = ui.Report(config, "modern")
report.config_download()
ui.share("modern", config, auto_stride(config))
kind = cell_type(config.cell)
timescale = 1.0 / max(1.0 - config.r_max, 1e-12)
view = {**config.to_dict(), "bound": False, "timescale": f"{timescale:.4g}"}
intro, main = ui.frame("modern", "Modern recurrences: diagonal, and independent of h")
with intro:
    ui.model_panel("modern", config, comparing=False)  # a Training Lab file of a modern cell opens here
    for line in kind.equations(view):
        st.latex(line)
    st.markdown(caption("intro", view))
    result, timing = ui.analysis(config)
    lags, spec, fro = result.lag_curve()
    cols = st.columns(3)
    ui.log10_metric(cols[0], "log10 ‖∂h_T/∂h_0‖₂", spec[-1], result)
    if len(result.eigenvalues):
        # short label, unit in it: at 1024 px (a projector) "889.6 steps" was cut to "889.6 st…"
        cols[1].metric("time-scale, steps", f"{1.0 / max(1.0 - np.abs(result.eigenvalues).max(), 1e-12):.4g}",
                       help=f"1/(1 − max_j |λ_j|): the steps over which the slowest unit's memory falls by a factor e; "
                            f"the ring's bound 1/(1 − r_max) = {timescale:.4g} steps")
    cols[2].metric("analysis time", timing, help="How long this result took to compute; cached: computed before, by any visitor")
overlay = ui.rnn_overlay(config)  # the simple RNN of the same size (None: left for a click at this size)
with main:
    st.subheader("Every pair of steps: log10 ‖∂h_s/∂h_t‖₂")
    fig = plots.jacobian_heatmap(result.pairs.grid, result.pairs.log10_spectral["state"], title="log10 ‖∂h_s/∂h_t‖₂",
                                 limit=ui.colour_limit("modern"))
    report.chart(fig, caption("map", view), [report.npz("maps (NPZ)", "maps", lambda: pairs_arrays(result))], key="map")

    st.subheader("Gradient reaching step T − k, beside the simple RNN")
    curves = {f"{kind.label} ‖·‖₂": (lags, spec)} | ui.overlay_curve(overlay)
    bound = None
    if len(result.eigenvalues):  # the LRU: max_j |lambda_j|^k, exactly its spectral norm
        bound = (lags, lags * np.log10(np.abs(result.eigenvalues).max()))
    fig = plots.lag_figure(curves, bound=bound, bound_name="|λ|max^k", title="log10 ‖∂h_T/∂h_(T−k)‖₂ against the lag k")
    report.chart(fig, caption("gated_lag", view),
                 [report.csv("curves (CSV)", "lag_curves", {"lag": lags, "log10_spectral": spec, "log10_frobenius": fro}
                             | ui.overlay_column(lags, overlay))],
                 key="lag", latex=kind.lag_equation)

    left, right = st.columns(2)
    with left:
        steps, step_norms = result.step_norms
        report.chart(plots.step_norms_figure(steps, step_norms, title="One step: log10 ‖J_k‖₂"), caption("steps", view),
                     [report.csv("step norms (CSV)", "step_norms", {"k": steps, "log10_spectral": step_norms})], key="steps")
    with right:
        if len(result.eigenvalues):
            report.chart(plots.eigenvalue_figure(result.eigenvalues, title="λ_j and the unit circle", names=("λ",)),
                         caption("eig", view), [report.csv("eigenvalues (CSV)", "eigenvalues",
                                                           {"real": result.eigenvalues.real, "imag": result.eigenvalues.imag})],
                         key="eig")
        else:
            fig = plots.gate_heatmaps(result.gates, title="Gates over time and units (read from the input alone)")
            report.chart(fig, caption("gates", view), [report.npz("gates (NPZ)", "gates", lambda: result.gates)], key="gates")

    st.subheader("Which steps contribute to ∂L/∂W_ih?")
    fig = plots.contributions_figure(result.contributions, title="Per-step terms C_t of the sum (L = 1ᵀh_T/√n)")
    report.chart(fig, caption("contrib", view),
                 [report.csv("terms (CSV)", "contributions", {"t": np.arange(1, config.seq_len + 1),
                                                             "log10_norm_C_t": result.contributions,
                                                             "log10_norm_dL_dh_t": result.grad_norms[1:]})], key="contrib")
