"""Training lab: watch a plain RNN stay stuck while an LSTM or an orthogonal RNN learns, and what
orthogonal regularisation and Riemannian optimisation do to W_hh."""
import streamlit as st

import ui
from explorer import plots
from explorer.registry import cell_type
from explorer.train import train_to_json

ui.page_setup("Training Lab", "🏋️")
config = ui.config_sidebar(
    "lab", ["task", "cell", "activation", "residual", "norm", "gates", "forget_bias", "r_min", "r_max", "max_phase",
            "hidden", "seq_len", "init", "gain", "seed", "steps", "batch_size", "optimizer", "lr", "clip", "ortho_reg",
            "orthogonal_param", "record_every"], train=True, view=["present", "image"])
ui.share("lab", config)
intro, main = ui.frame("lab", "Training lab: the fixes, live")
with intro:
    st.markdown("Vanishing gradients stop a network from learning long-range dependencies. Train a cell on a task "
                "whose answer depends on inputs far in the past, and watch the gradient reaching early steps.")
    st.latex(r"J(\theta) = L_{\text{task}} + \lambda \sum_{\text{blocks}} \|W_h^\top W_h - I\|_F^2")
    st.markdown("**Riemannian optimisation** keeps $W_h \\in O(n)$ throughout training, through "
                "`torch.nn.utils.parametrizations.orthogonal` (matrix exponential or Cayley map).")
    st.caption(f"Task: **{config.task}** at T = {config.model.seq_len}. "
               + ("Adding problem (Arjovsky et al. 2016): sum the two marked values; predicting 1 gives MSE 1/6."
                  if config.task == "adding" else
                  "Copy memory (Arjovsky et al. 2016): reproduce 10 symbols after T blanks; the memoryless baseline "
                  "cross-entropy is 10 ln 8 / (T + 20)."))
with main:
    left, right, _ = st.columns([1, 1, 4])
    start = left.button("▶ Train", type="primary", key="lab_start")
    right.button("■ Stop", key="lab_stop", help="Stops the run; the steps so far stay on screen.")
    result = ui.training(config, start)  # trained now, or any session's finished run from the server's cache
    if result is None:
        result = ui.stopped_run(config)  # the steps so far of a stopped run, with a message saying so
    if result is None:
        st.info(ui.train_prompt(config))
        st.stop()

    report = ui.Report(config, "lab")
    runs = {ui.run_label(config): result}
    done = st.session_state.get("lab_done", {})
    others = [label for label in done if label != ui.run_label(config)]
    for label in st.multiselect("Overlay other finished runs (e.g. tanh RNN vs LSTM, λ = 0 vs λ = 0.1)", others):
        overlay = ui.cached_run(done[label])
        if overlay is None:
            st.caption(f"{label}: no longer in the server's cache; open its settings and press Train to see it again.")
        else:
            runs[label] = overlay
    steps = ui.history(result, "step")[0]

    report.chart(ui.loss_chart(runs),
             "A net that cannot carry gradient across T steps stays on the dashed baseline: it learns only the mean. "
             "Escaping it below the baseline means the long-range dependency was learnt.",
             [report.csv("history (CSV)", "history", {k: [h[k] for h in result.history] for k in result.history[0]}),
              report.json("run (JSON)", "run", lambda: train_to_json(result))], key="loss")
    report.chart(ui.flow_chart(result),
             "Each row is one moment of training; each column a time step. Dark on the left means the loss cannot "
             "reach early inputs: the picture of vanishing gradients while learning.",
             [report.npz("gradient flow (NPZ)", "grad_flow", lambda: {"step": steps, "log10_grad": result.grad_flow})], key="flow",
             latex=r"\frac{\partial L}{\partial h_t} = \frac{\partial L}{\partial h_T}\prod_{k=t+1}^{T}\frac{\partial h_k}{\partial h_{k-1}}")
    recurrent = cell_type(config.model.cell).recurrent
    left, right = st.columns(2) if recurrent != "none" else (st.container(), None)
    with left:
        if result.singular_values.shape[1]:  # W_hh's singular values, or the LRU's |lambda_j|: nothing for minGRU/minLSTM
            deviation = ui.orthogonality_deviation(result) if recurrent == "square" else None
            title = "Singular values of W_hh" if recurrent != "none" else "|λ_j| of the LRU"
            report.chart(plots.singular_values_over_training(steps, result.singular_values, title=title),
                         ("Orthogonal W_hh has every σ_i = 1 (dashed). The regulariser pulls them towards 1; the Riemannian "
                          "parametrisation keeps them there, to rounding." if recurrent != "none" else
                          "The LRU's eigenvalue moduli as training moves them; 1 (dashed) is the edge of stability.")
                         + (f" Largest deviation from orthogonality over the run: **max_i |σ_i − 1| = {deviation[0]:.3g}** "
                            f"(step {deviation[1]})." if deviation else ""),
                         [report.csv("singular values (CSV)", "singular_values",
                                     {"step": steps, **{f"sigma_{i + 1}": result.singular_values[:, i]
                                                        for i in range(result.singular_values.shape[1])}})], key="sv")
    if right is not None:
        with right:
            ortho = {name: ui.history(r, "ortho_error") for name, r in runs.items()}
            report.chart(plots.series_figure(ortho, title="Orthogonality error ‖W_hhᵀW_hh − I‖_F", y="error", log_y=True),
                         "Below 1e-4 throughout for a Riemannian run; shrinking with λ > 0.",
                         [report.csv("orthogonality (CSV)", "ortho_error",
                                     {"step": steps, "ortho_error": ortho[ui.run_label(config)][1]})], key="ortho")
    grad = {name: ui.history(r, "grad_norm") for name, r in runs.items()}
    report.chart(plots.series_figure(grad, title="Gradient norm before clipping", y="‖∇J‖₂", log_y=True),
             f"Clipped steps in this run: {sum(h['clipped'] for h in result.history)} (clip = {config.clip:g}).",
             [], key="grad")
    st.subheader("This run's weights")
    ui.weights_actions(config, result)
    if result.events:
        st.error(f"{len(result.events)} steps had a non-finite loss or gradient and were skipped.")
        st.dataframe(result.events)
