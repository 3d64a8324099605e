"""LSTM built gate by gate, and the GRU: gates, cell state, the carousel, and the simple RNN overlaid."""
import numpy as np
import streamlit as st

import ui
from explorer import ExperimentConfig, plots
from explorer.export import pairs_arrays

STAGES = {
    "input": (r"c_t = c_{t-1} + i_t \odot g_t,\qquad h_t = \tanh(c_t)",
              "Stage 1: only the input gate. The cell path is additive, so ∂c_t/∂c_{t−1} = I exactly: "
              "the **constant error carousel**. Nothing can be forgotten, and c may grow without bound."),
    "input,output": (r"c_t = c_{t-1} + i_t \odot g_t,\qquad h_t = o_t \odot \tanh(c_t)",
                     "Stage 2: the output gate decides what of the cell state is shown. The carousel is unchanged."),
    "input,forget,output": (r"c_t = f_t \odot c_{t-1} + i_t \odot g_t,\qquad h_t = o_t \odot \tanh(c_t)",
                            "Stage 3: the forget gate scales the carousel: ∂c_t/∂c_{t−1} = diag(f_t) directly. "
                            "This is `torch.nn.LSTM`; a forget bias of 1 or chrono keeps f near 1 at the start."),
}
DEFAULTS = ExperimentConfig()
GRU_EQ = (r"r_t = \sigma(\cdot),\; z_t = \sigma(\cdot),\; n_t = \tanh(W_{in}x_t + b_{in} + r_t \odot (W_{hn}h_{t-1} + b_{hn})),"
          r"\; h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}")

ui.page_setup("LSTM and GRU", "🧮")
st.title("LSTM gate by gate, and the GRU")
config = ui.config_sidebar("gated", ["cell", "gates", "forget_bias", "hidden", "input_size", "seq_len", "init", "gain",
                                    "input", "seed", "dtype"], choices={"cell": ("lstm", "gru")})
report = ui.Report(config)
report.config_download()
if config.cell == "lstm":
    latex, words = STAGES[config.gates]
    st.latex(r"i_t = \sigma(W^i_x x_t + W^i_h h_{t-1} + b^i),\; g_t = \tanh(W^g_x x_t + W^g_h h_{t-1} + b^g),\;"
             r"f_t, o_t = \sigma(\cdot)\ \text{(or 1 when absent)}")
    st.latex(latex)
    st.markdown(words)
else:
    st.latex(GRU_EQ)
    st.markdown("The GRU interpolates between the old state and a candidate: where z_t ≈ 1 the state is copied "
                "and ∂h_t/∂h_{t−1} ≈ diag(z_t), a gated carousel without a separate cell.")
result = ui.analysis(config)
# the same n, input, T and seed; the gated fields at their defaults, so a stage change reuses the curve
rnn_lags, rnn_spec, _ = ui.lag_curve(config.replace(cell="rnn", activation="tanh", residual=False, norm="none",
                                                    gates=DEFAULTS.gates, forget_bias=DEFAULTS.forget_bias))

st.subheader("Gate activations")
fig = plots.gate_heatmaps(result.gates, title="Gates over time and units (sigmoid gates on [0, 1], tanh on [−1, 1])")
report.chart(fig, "Dark (near 0) closes a gate, bright (near 1) opens it. Absent gates are exactly 1.",
         [report.npz("gates (NPZ)", "gates", lambda: result.gates)], key="gates")
sat = result.extras["saturation"]
fig = plots.saturation_figure(sat, title="Share of saturated units (gate < 0.05 or > 0.95)")
report.chart(fig, "A saturated gate has σ′ ≈ 0: gradients through its pre-activation vanish, but a forget gate "
         "saturated at 1 keeps the carousel open.",
         [report.csv("saturation (CSV)", "saturation", {"t": np.arange(1, config.seq_len + 1), **sat})], key="sat")

st.subheader("State trajectories")
n = config.hidden
final = np.abs(result.c[-1] if result.c is not None else result.h[-1])
default_units = sorted(np.argsort(final)[::-1][: min(6, n)].tolist())
units = st.multiselect("units to draw (default: the six largest at t = T)", list(range(n)), default=default_units)
states = {"c": result.c, "h": result.h} if result.c is not None else {"h": result.h}
for name, values in states.items():
    left, right = st.columns(2)
    with left:
        report.chart(plots.trajectories_figure(values, units, title=f"{name}_t for selected units", y=name),
                 "Long-range memory shows as a unit holding its value across many steps.",
                 [report.npz(f"{name}, all units (NPZ)", name, lambda name=name, values=values: {name: values})],
                 key=f"traj_{name}")
    with right:
        report.chart(plots.state_heatmap(values, title=f"{name} over time and units", name=name),
                 "All units at once: red positive, blue negative.", [], key=f"heat_{name}")

st.subheader("Gradient flow through the state")
views = {"full state z = (h, c)" if result.c is not None else "state h": "state"}
if result.c is not None:
    views["cell path c → c"] = "cell"
for tab, (label, view) in zip(st.tabs(list(views)), views.items()):
    with tab:
        fig = plots.jacobian_heatmap(result.pairs.grid, result.pairs.log10_spectral[view],
                                     title=f"log10 ‖∂z_s/∂z_t‖₂, {label}")
        report.chart(fig, "Compare with the simple RNN page. At torch's default forget bias (f ≈ 0.5) the LSTM "
                 "forgets quickly too; stage 1 (no forget gate), a forget bias of 1–2 or chrono keep the cell "
                 "path near 0 (white) over long lags.", [report.npz("maps (NPZ)", "maps", lambda: pairs_arrays(result))], key=f"map_{view}")
lags, spec, _ = result.lag_curve()
curves = {f"{config.cell.upper()} full state": (lags, spec), "simple tanh RNN, same n, input, T": (rnn_lags, rnn_spec)}
if result.c is not None:
    curves["LSTM c → c (total derivative)"] = result.lag_curve("cell")[:2]
    direct = result.extras["direct_cell_path"]
    curves["LSTM direct path ∏ diag(f_k)"] = (direct["lags"], direct["log10_spectral"])
fig = plots.lag_figure(curves, title="log10 ‖∂z_T/∂z_(T−k)‖₂ against the lag k", y="log10 ‖∂z_T/∂z_(T−k)‖₂")
report.chart(fig, "The simple RNN of the same size decays geometrically; the LSTM's direct cell path is exactly 0 "
         "(norm 1) without a forget gate, and decays only as fast as ∏ f_k with one.",
         [report.csv("curves (CSV)", "lag_curves", {"lag": lags, "gated": spec, "rnn": np.interp(lags, rnn_lags, rnn_spec)}
                                     | ({"cell_total": curves["LSTM c → c (total derivative)"][1],
                                         "cell_direct": np.interp(lags, direct["lags"], direct["log10_spectral"])}
                                        if result.c is not None else {}))],
         key="lag", latex=r"\frac{\partial c_t}{\partial c_{t-1}}\Big|_{\text{direct}} = \mathrm{diag}(f_t)")
