"""The simple RNN: all-pairs Jacobian norms, the bound, one step's factor, per-step contributions, spectra."""
import numpy as np
import streamlit as st

import ui
from explorer import plots
from explorer.analysis import auto_stride
from explorer.export import pairs_arrays
from explorer.registry import cell_type
from explorer.text import caption

ui.page_setup("Simple RNN", "📉")
config = ui.config_sidebar("rnn", ["activation", "hidden", "input_size", "seq_len", "init", "gain", "input", "seed",
                                  "dtype", "lag", "residual", "norm", "batch", "bias_std"], fixed={"cell": "rnn"},
                           view=["scale", "present", "image"])
report = ui.Report(config, "rnn")
report.config_download()
ui.share("rnn", config, auto_stride(config))
other = ui.compared("rnn")
intro, main = ui.frame("rnn", "Simple RNN: the vanishing-gradient product")
with intro:
    ui.model_panel("rnn", config, comparing=bool(other))
    result, timing = ui.analysis(config)
    if other:
        result_b, _ = ui.analysis(other[0], "B: ")
        ui.comparison_note(other[1], ui.untrained_note(config) if other[0].weights != config.weights else None)
    if config.norm == "batch":
        st.info(f"Recurrent batch norm (Cooijmans et al. 2016): $a_t$ is normalised per unit with statistics over a "
                f"batch of {config.batch} sequences, separately at each step. The maps show the Jacobian of sequence 1 "
                "with those statistics **held fixed**, $J_t = \\mathrm{diag}(g'\\gamma/\\sigma_t)\\,W_{hh}$: the "
                "inference-time Jacobian, and the path that makes the point, since dividing by $\\sigma_t$ (which grows "
                "with $W_{hh}$) cancels the scale of $W_{hh}$. While training, the statistics also depend on "
                "$h_{t-1}$, adding $O(1/\\text{batch})$ coupling between sequences.", icon="ℹ️")
    for line in cell_type(config.cell).equations(config.to_dict()):
        st.latex(line)
    st.latex(r"\frac{\partial h_s}{\partial h_t} = \prod_{k=t+1}^{s} J_k,\quad J_k = \frac{\partial h_k}{\partial h_{k-1}} = "
             + (r"I + " if config.residual else "") + r"\mathrm{diag}\,g'(a_k)\,"
             + (r"N'_k\," if config.norm != "none" else "") + r"W_{hh}")
    lags, spec, fro = result.lag_curve()
    bound_base = "1 + γ·σ_max(W_hh)" if config.residual else "γ·σ_max(W_hh)"
    cols = [*st.columns(2), *st.columns(2)]  # two by two: four across cut "101 × 101" to "101 ×…" at 1024 px
    ui.log10_metric(cols[0], "log10 ‖∂h_T/∂h_0‖₂", spec[-1], result)
    cols[1].metric(bound_base, "—" if result.bound_log10_rate is None else f"{10 ** result.bound_log10_rate:.3f}",
                   help="The bound's factor per step; — where none applies")
    cols[2].metric("map grid", f"{len(result.pairs.grid)} × {len(result.pairs.grid)}")
    cols[3].metric("analysis time", timing, help="How long this result took to compute; cached: computed before, by any visitor")
view = {**config.to_dict(), "bound": result.bound_log10_rate is not None,
        "unresolved": int(np.isnan(result.singular_values).sum()) if result.singular_limit is not None else 0,
        "bound_base": r"$1 + \gamma\,\sigma_{\max}(W_{hh})$" if config.residual else r"$\gamma\,\sigma_{\max}(W_{hh})$"}

with main:
    st.subheader("Every pair of steps: log10 ‖∂h_s/∂h_t‖")
    for tab, key, name in zip(st.tabs(["spectral norm ‖·‖₂", "Frobenius norm ‖·‖_F"]), ("log10_spectral", "log10_frobenius"),
                              ("‖·‖₂", "‖·‖_F")):
        with tab:
            maps = {"A": (result.pairs.grid, getattr(result.pairs, key)["state"])}
            if other:
                maps["B"] = (result_b.pairs.grid, getattr(result_b.pairs, key)["state"])
            ui.heatmaps(report, maps, title=f"log10 {name} of ∂h_s/∂h_t", quantity=f"log10 {name}",
                        explanation=caption("map", view), key=f"map_{key}",
                        downloads=[report.npz("maps (NPZ)", "maps", lambda: pairs_arrays(result))])
    st.caption(ui.certificate_text(result))

    st.subheader("Gradient reaching step T − k from the last step")
    bound = (lags, lags * result.bound_log10_rate) if result.bound_log10_rate is not None else None
    curves = {"‖·‖₂ measured": (lags, spec), "‖·‖_F measured": (lags, fro)}
    if other:
        curves = {"A: ‖·‖₂": (lags, spec), "B: ‖·‖₂": result_b.lag_curve()[:2]}
    fig = plots.lag_figure(curves, bound=bound, title="log10 ‖∂h_T/∂h_(T−k)‖ against the lag k",
                           bound_name=f"{'A: ' if other else ''}bound: k·log10({bound_base})")
    report.chart(fig, caption("lag", view),
                 [report.csv("curve (CSV)", "lag_curve", {"lag": lags, "log10_spectral": spec, "log10_frobenius": fro,
                                                          "log10_bound": bound[1] if bound else np.full(len(lags), np.nan)})],
                 key="lag", latex=None if bound is None else (
                     r"\Big\|\frac{\partial h_T}{\partial h_{T-k}}\Big\|_2 \le "
                     + (r"\big(1 + \gamma\,\sigma_{\max}(W_{hh})\big)^{k}" if config.residual
                        else r"\big(\gamma\,\sigma_{\max}(W_{hh})\big)^{k}")))

    st.subheader("Theory beside measurement: mean field and the Lyapunov spectrum")
    ui.theory_section(report, result, view)

    st.subheader("One step: ‖J_k‖₂ beside 1")
    steps, step_norms = result.step_norms
    report.chart(plots.step_norms_figure(steps, step_norms, title="log10 ‖∂h_k/∂h_(k−1)‖₂ per step"),
                 caption("steps", view),
                 [report.csv("step norms (CSV)", "step_norms", {"k": steps, "log10_spectral": step_norms})], key="steps")

    st.subheader("Which steps contribute to ∂L/∂W_ih?")
    fig = plots.contributions_figure(result.contributions, title="Per-step terms C_t of the sum (L = 1ᵀh_T/√n)")
    report.chart(fig, caption("contrib", view),
                 [report.csv("terms (CSV)", "contributions", {"t": np.arange(1, config.seq_len + 1),
                                                             "log10_norm_C_t": result.contributions,
                                                             "log10_norm_dL_dh_t": result.grad_norms[1:]})],
                 key="contrib", latex=r"\frac{\partial L}{\partial W_{ih}} = \sum_{t=1}^{T} C_t,\qquad "
                                      r"C_t = \Big(\frac{\partial L}{\partial h_T}\prod_{k=t+1}^{T}J_k"
                                      r"\,\frac{\partial h_t}{\partial a_t}\Big)^{\!\top} x_t^{\top}")

    left, right = st.columns(2)
    with left:
        st.subheader("Eigenvalues of W_hh")
        report.chart(plots.eigenvalue_figure(result.eigenvalues, title="Eigenvalues of W_hh and the unit circle"),
                     caption("eig", view),
                     [report.csv("eigenvalues (CSV)", "eigenvalues", {"real": result.eigenvalues.real,
                                                                      "imag": result.eigenvalues.imag})], key="eig")
    with right:
        st.subheader(f"Singular values of ∂h_T/∂h_(T−{result.lag})")
        spectra = {f"{'A: ' if other else ''}lag {result.lag}": result.singular_values}
        if other:
            spectra[f"B: lag {result_b.lag}"] = result_b.singular_values
        report.chart(plots.singular_values_figure(spectra,
                                                  title=f"log10 σ_i of the product over {result.lag} steps",
                                                  limit=result.singular_limit),
                     caption("sv", view),
                     [report.csv("singular values (CSV)", "singular_values",
                                 {"i": np.arange(1, len(result.singular_values) + 1),
                                  "log10_sigma": result.singular_values,  # blank: below the limit
                                  "log10_rounding_limit": np.full(len(result.singular_values),
                                                                  np.nan if result.singular_limit is None
                                                                  else result.singular_limit)}
                                 | ({"log10_sigma_B": result_b.singular_values}
                                    if other and len(result_b.singular_values) == len(result.singular_values) else {}))],
                     key="sv")
