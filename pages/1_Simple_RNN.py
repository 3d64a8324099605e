"""The simple RNN: all-pairs Jacobian norms, the bound, per-step contributions, spectra."""
import numpy as np
import streamlit as st

import ui
from explorer import plots
from explorer.export import pairs_arrays

ui.page_setup("Simple RNN", "📉")
st.title("Simple RNN: the vanishing-gradient product")
config = ui.config_sidebar("rnn", ["activation", "hidden", "input_size", "seq_len", "init", "gain", "input", "seed",
                                  "dtype", "lag", "residual", "norm", "batch"], fixed={"cell": "rnn"})
report = ui.Report(config)
report.config_download()
result = ui.analysis(config)
if config.norm == "batch":
    st.info(f"Recurrent batch norm (Cooijmans et al. 2016): a_t is normalised per unit with statistics over a batch of "
            f"{config.batch} sequences, separately at each step. The maps show the Jacobian of sequence 1 with those "
            "statistics **held fixed**, J_t = diag(g′·γ/σ_t) W_hh: the inference-time Jacobian, and the path that "
            "makes the point, since dividing by σ_t (which grows with W_hh) cancels the scale of W_hh. While "
            "training, the statistics also depend on h_{t−1}, adding O(1/batch) coupling between sequences.", icon="ℹ️")
st.latex(r"h_t = " + (r"h_{t-1} + " if config.residual else "") + r"g(a_t),\quad a_t = W_{ih}x_t + b_{ih} + W_{hh}h_{t-1} + b_{hh}"
         r",\qquad \frac{\partial h_s}{\partial h_t} = \prod_{k=t+1}^{s} \frac{\partial h_k}{\partial h_{k-1}}")

cols = st.columns(4)
lags, spec, fro = result.lag_curve()
cols[0].metric("log10 ‖∂h_T/∂h_0‖₂", f"{spec[-1]:.2f}")
cols[1].metric("γ·σ_max(W_hh)", "—" if result.bound_log10_rate is None else f"{10 ** result.bound_log10_rate:.3f}")
cols[2].metric("map grid", f"{len(result.pairs.grid)} × {len(result.pairs.grid)}")
cols[3].metric("analysis time (first computed)", f"{result.seconds:.2f} s")

st.subheader("Every pair of steps: log10 ‖∂h_s/∂h_t‖")
tab_spec, tab_fro = st.tabs(["spectral norm ‖·‖₂", "Frobenius norm ‖·‖_F"])
for tab, key, name in ((tab_spec, "log10_spectral", "‖·‖₂"), (tab_fro, "log10_frobenius", "‖·‖_F")):
    with tab:
        fig = plots.jacobian_heatmap(result.pairs.grid, getattr(result.pairs, key)["state"],
                                     title=f"log10 {name} of ∂h_s/∂h_t", quantity=f"log10 {name}")
        report.chart(fig, "Each cell is one partial product of the lecture's sum. **Blue** means the gradient "
                 "from step s has shrunk by that many decades by the time it reaches step t (vanishing), "
                 "**red** that it has grown (exploding). Along a diagonal the lag s − t is fixed; a uniform "
                 "colour gradient away from the diagonal is the geometric decay of the bound.",
                 [report.npz("maps (NPZ)", "maps", lambda: pairs_arrays(result))], key=f"map_{key}")
st.caption(f"Spectral norms: {result.pairs.certified} certified to relative error {result.pairs.rtol:g} by a "
           f"residual bound or a Cholesky factorisation, {result.pairs.exact} by an exact eigen-solve. Frobenius norms are exact.")

st.subheader("Gradient reaching step T − k from the last step")
bound = None
if result.bound_log10_rate is not None:
    bound = (lags, lags * result.bound_log10_rate)
fig = plots.lag_figure({"‖·‖₂ measured": (lags, spec), "‖·‖_F measured": (lags, fro)}, bound=bound,
                       title="log10 ‖∂h_T/∂h_(T−k)‖ against the lag k")
report.chart(fig, "The measured spectral norm never rises above the dashed bound (the Frobenius norm, up to √n "
         "larger, may); the slope of the bound is log10(γ σ_max(W_hh)) per step, with γ = sup|g′|. "
         "A slope below 0 guarantees vanishing.",
         [report.csv("curve (CSV)", "lag_curve", {"lag": lags, "log10_spectral": spec, "log10_frobenius": fro,
                                     "log10_bound": bound[1] if bound else np.full(len(lags), np.nan)})],
         key="lag", latex=r"\Big\|\frac{\partial h_T}{\partial h_{T-k}}\Big\|_2 \le \big(\gamma\,\sigma_{\max}(W_{hh})\big)^{k}")

st.subheader("Which steps contribute to ∂L/∂W_ih?")
fig = plots.contributions_figure(result.contributions, title="Per-step terms C_t of the sum (L = 1ᵀh_T/√n)")
report.chart(fig, "Each bar is one term of the lecture's sum. When the product vanishes only the last few "
         "steps carry weight: the red line shows how much of the total comes from steps t and later.",
         [report.csv("terms (CSV)", "contributions", {"t": np.arange(1, config.seq_len + 1), "log10_norm_C_t": result.contributions,
                                     "log10_norm_dL_dh_t": result.grad_norms[1:]})],
         key="contrib", latex=r"\frac{\partial L}{\partial W_{ih}} = \sum_{t=1}^{T} C_t,\qquad "
                              r"C_t = \Big(\frac{\partial L}{\partial h_T}\prod_{k=t+1}^{T}\frac{\partial h_k}{\partial h_{k-1}}"
                              r"\,\mathrm{diag}\,g'(a_t)\Big)^{\!\top} x_t^{\top}")

left, right = st.columns(2)
with left:
    st.subheader("Eigenvalues of W_hh")
    fig = plots.eigenvalue_figure(result.eigenvalues, title="Eigenvalues of W_hh and the unit circle")
    report.chart(fig, "Eigenvalues outside the unit circle grow under repeated multiplication, inside it they "
             "shrink. Orthogonal initialisation puts them all on the circle.",
             [report.csv("eigenvalues (CSV)", "eigenvalues", {"real": result.eigenvalues.real,
                                                             "imag": result.eigenvalues.imag})], key="eig")
with right:
    st.subheader(f"Singular values of ∂h_T/∂h_(T−{result.lag})")
    fig = plots.singular_values_figure({f"lag {result.lag}": result.singular_values},
                                       title=f"log10 σ_i of the product over {result.lag} steps")
    report.chart(fig, "The largest singular value is the spectral norm; the spread shows how many directions "
             "survive. Only directions with σ_i near 1 carry information across the lag.",
             [report.csv("singular values (CSV)", "singular_values",
                         {"i": np.arange(1, len(result.singular_values) + 1), "log10_sigma": result.singular_values})],
             key="sv")
