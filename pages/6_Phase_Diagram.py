"""The phase diagram: a sweep of configs, each cell the measured growth per step, with theory's edge of chaos."""
import streamlit as st

import ui
from explorer import plots
from explorer import sweep as sw
from ui import sweeps

ui.page_setup("Phase Diagram", "🧭")
config = ui.config_sidebar("phase", ["cell", "activation", "hidden", "input_size", "seq_len", "input", "seed"],
                           choices={"cell": ("rnn", "lstm")},
                           fixed={"init": "gaussian", "dtype": "float64"}, view=["scale", "present", "image"])
config, lowered = sweeps.bounded(config)
for message in lowered:
    st.warning(message, icon="⚠️")
report = ui.Report(config, "phase")
report.config_download()
sweep = sweeps.sweep_of(config)
lstm = config.cell == "lstm"
intro, main = ui.frame("phase", "Phase diagram: order and chaos")
with intro:
    if lstm:
        st.markdown("Each cell is one LSTM: its forget-gate bias $b_f$ and its length $T$. The colour is the "
                    "measured $\\log_{10}\\|\\partial c_T/\\partial c_0\\|_2$, the gradient carried along the cell "
                    "state from the first step to the last (blue: it fades; white: it is kept).")
    else:
        st.markdown("Each cell is one simple RNN with $W_{hh} \\sim N(0, \\sigma_w^2/n)$ and biases "
                    "$b \\sim N(0, \\sigma_b^2)$. The colour is the **measured** growth per step of the mean squared "
                    "gradient, the least-squares slope of $\\log_{10}(\\|\\partial h_T/\\partial h_{T-k}\\|_F^2/n)$ "
                    "over the last $T/2$ lags: blue vanishes (order), red explodes (chaos). The dashed line is "
                    "mean-field theory's edge of chaos $\\chi = 1$.")
        st.latex(r"\chi = \sigma_w^2\,\mathbb{E}_z\big[g'(\sqrt{q^*}\,z)^2\big],\qquad "
                 r"q^* = \sigma_w^2\,\mathbb{E}_z\big[g(\sqrt{q^*}\,z)^2\big] + \sigma_b^2 + v_x")
    uploaded, problem = sweeps.upload()
    if problem:
        st.warning(problem, icon="⚠️")
    result = uploaded if uploaded is not None else sweeps.computed(sweep)
    if uploaded is not None:
        st.info(f"Showing the uploaded sweep ({uploaded.sweep.size} configs, {uploaded.sweep.base.cell}); remove "
                "the file to see this page's own.", icon="📄")
    with st.expander("a larger sweep: the command line (a process per core, or a Ray cluster)"):
        st.code(sw.command(sweep), language="bash", wrap_lines=True)
        st.caption("`--executor ray --address HOST:PORT` runs each config as a Ray task on a cluster; rows are "
                   "cached on disk by config, so a repeat is instant. Upload the JSON above to draw it here.")

with main:
    data = sweeps.figure_data(result) if result is not None else None
    if result is not None and data is None:
        st.warning(f"The page draws sweeps over two axes; this one has {len(result.sweep.axes)}.", icon="⚠️")
    if data is not None:
        base = result.sweep.base
        cols = st.columns(3)
        cols[0].metric("configs", f"{result.sweep.size}", help="One measured number per config")
        cols[1].metric("computed in", f"{sum(r.get('seconds') or 0.0 for r in result.rows):.1f} s",
                       help="The sum of the rows' own times (one thread each)")
        close = sweeps.agreement(result)
        if close is not None:
            cols[2].metric(f"theory within {close['tolerance']}", f"{close['held']} of {close['compared']}",
                           help=f"Configs with |log10 χ| > {close['near_critical']} whose measured rate is within "
                                f"{close['tolerance']} decades per step of log10 χ; the others are listed with why")
        where = "the LSTM's cell state" if result.sweep.quantity == sw.CELL else f"{base.activation} RNN"
        fig = plots.phase_diagram_figure(data["x"], data["y"], data["z"], x_label=data["x_label"],
                                         y_label=data["y_label"], quantity=data["quantity"], line=data["line"],
                                         title=f"{data['quantity']}: {where}, n = {base.hidden}"
                                               + ("" if result.sweep.quantity == sw.CELL else f", T = {base.seq_len}"),
                                         limit=ui.colour_limit("phase"))
        explanation = ("Click a cell to open that config on its own page (a link with the full config appears "
                       "below). ")
        if data["line"] is not None:
            explanation += ("The critical line comes from the theory's closed form with the nominal σ and the "
                            "input drive's second moment (each sweep cell's theory uses its own cell's weights).")
        event = report.chart(fig, explanation, sweeps.downloads(report, result), key="phase_map", selectable=True)
        if close is not None:
            sweeps.exceptions_table(close)
        index = sweeps.clicked(result, event)
        if index is not None:
            sweeps.open_link(result, index)
