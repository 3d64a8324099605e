"""RNN Gradient Explorer: the entry script and its Overview page.

Multipage layout: Streamlit's ``pages/`` folder beside this script. The entry script does
not call ``st.navigation``, so Streamlit builds the same navigation from the folder on
every request, the very first deep link to a fresh server included.
"""
import streamlit as st

import ui

ui.page_setup("Overview", "🔁")
st.title("RNN Gradient Explorer")
st.markdown("New here, or teaching? The **Guided Tour** walks through the lecture in 14 steps, each claim beside "
            "the number measured live (`?present=1` in any link suits a projector).")
st.markdown(
    "Why do gradients **vanish** or **explode** through time, and what does each fix do about it? "
    "Pick a cell, an initialisation and a sequence length; every number on these pages is computed "
    "with PyTorch and checked against `torch.autograd` and the `torch.nn` modules.")

st.header("1 · The simple RNN")
st.latex(r"h_t = g\left(W_x x_t + b_x + W_h h_{t-1} + b_h\right) = g\!\left(W \begin{pmatrix} x_t \\ h_{t-1} \end{pmatrix} + b\right)")
st.header("2 · The vanishing-gradient product")
st.markdown("For a loss at the last step, backpropagation through time sums one term per step, "
            "and each term carries a product of Jacobians:")
# gathered: two lines each, so they fit a 1024 px projector with the sidebar open
st.latex(r"\begin{gathered}\frac{\partial L}{\partial W_x} = \sum_{t=1}^{T} \frac{\partial L}{\partial y_T}"
         r"\frac{\partial y_T}{\partial h_T}\Big(\prod_{k=t}^{T-1} \frac{\partial h_{k+1}}{\partial h_k}\Big)"
         r"\frac{\partial h_t}{\partial W_x},"
         r"\\ \frac{\partial h_{k+1}}{\partial h_k} = \mathrm{diag}\big(g'(a_{k+1})\big)\, W_h\end{gathered}")
st.latex(r"\begin{gathered}\Big\|\frac{\partial h_{k+1}}{\partial h_k}\Big\|_2 < 1 \;(>1) \;\Rightarrow\; "
         r"\text{vanishing (exploding) gradient},"
         r"\\ \Big\|\frac{\partial h_s}{\partial h_t}\Big\|_2 \le \big(\gamma\,\sigma_{\max}(W_h)\big)^{s-t}\end{gathered}")
st.markdown("The **Simple RNN** page draws the norm of every partial product $\\partial h_s/\\partial h_t$ as a map, "
            "the lecture's bound beside the measured curve, the per-step terms of the sum, and the "
            "spectra of $W_h$ and of the product.")
st.header("3 · The fixes")
st.markdown(
    "- **Residual connections**: $y = x + f(x) \\Rightarrow \\partial y/\\partial x = I + \\partial f/\\partial x$ (toggle *residual*).\n"
    "- **Normalisation**: layer norm, or recurrent batch norm (choose *normalisation*).\n"
    "- **Xavier and orthogonal initialisation**: if $W_h W_h^\\top = I$ then $\\|\\partial h_{k+1}/\\partial h_k\\|_2 = \\max_i |g'(a_{k+1,i})|$.\n"
    "- **Orthogonal regularisation** ($+\\lambda\\|W_h^\\top W_h - I\\|_F^2$) and **Riemannian optimisation** only act "
    "while training: see the **Training Lab**.")
st.header("4 · LSTM, one gate at a time, and the GRU")
st.latex(r"c_t = f_t\, c_{t-1} + i_t\, g_t,\qquad h_t = o_t \tanh(c_t)")
st.markdown("With only the input gate, $\\partial c_t/\\partial c_{t-1} = I$: the *constant error carousel*. "
            "The **LSTM and GRU** page builds the cell stage by stage and overlays the simple RNN.")
st.header("5 · The recurrences of the 2020s")
st.latex(r"h_t = a_t \odot h_{t-1} + b_t,\qquad \frac{\partial h_t}{\partial h_{t-1}} = \mathrm{diag}(a_t)")
st.markdown("The LRU (Orvieto et al. 2023) and minGRU / minLSTM (Feng et al. 2024) answer the lecture's question "
            "another way: their recurrence is **diagonal and independent of $h$**, with $|a_t|$ held near 1 by "
            "construction, so the product is each unit's own decay and nothing can cancel or explode. The "
            "**Modern Recurrences** page puts them beside the simple RNN.")
st.divider()
st.markdown("Every control lives in the URL, seed included: copy the address bar to share the exact picture. "
            "Every chart's data can be downloaded. The same numbers come from `python -m explorer analyze --json`.")
