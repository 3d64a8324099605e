"""Streamlit glue shared by the pages: the URL <-> config <-> widgets loop, cached calls, downloads.

The URL is the state: on a fresh visit (or a pasted link) the query string is parsed into
the config, with a visible warning and the default for each bad value; every widget
change writes the whole config back, seed included, so the link reproduces the picture.
Lives beside the entry script, not in ``explorer/`` (which never imports streamlit) and
not in ``pages/`` (where Streamlit would list it as a page).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import streamlit as st

import explorer  # noqa: F401  (torch thread pool and flush-denormal before any torch op)
from explorer import plots  # noqa: F401
from explorer.analysis import Analysis, analyze, auto_stride
from explorer.config import SPECS, ExperimentConfig, fit, from_query, to_query
from explorer.export import json_bytes

PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
LABELS = {
    "activation": "activation g", "hidden": "hidden units n", "input_size": "input size d",
    "seq_len": "sequence length T", "init": "W_hh initialisation", "gain": "gain", "input": "input signal",
    "seed": "seed", "dtype": "precision", "lag": "lag k for singular values", "gates": "LSTM stage (gates)",
    "forget_bias": "forget-gate bias", "residual": "residual h_t = h_(t-1) + g(a_t)", "norm": "normalisation",
    "batch": "batch (batch-norm statistics)", "cell": "cell",
}

CHOICE_LABELS = {
    "input": "1 · input gate only", "input,output": "2 · + output gate", "input,forget,output": "3 · + forget gate (torch.nn.LSTM)",
    "rnn": "simple RNN", "lstm": "LSTM", "gru": "GRU",
}


def page_setup(title: str, icon: str) -> None:
    st.set_page_config(page_title=f"{title} · RNN Gradient Explorer", page_icon=icon, layout="wide")


def _widget(name: str, key: str, options: Sequence[str] | None = None) -> None:
    spec, label = SPECS[name], LABELS[name]
    kind = type(ExperimentConfig.__dataclass_fields__[name].default)
    if name == "forget_bias":
        st.text_input(label, key=key, help="default, chrono (Tallec & Ollivier 2018), or a number such as 1")
    elif spec.choices is not None:
        st.selectbox(label, options or spec.choices, key=key, help=spec.help, format_func=lambda v: CHOICE_LABELS.get(v, v))
    elif kind is bool:
        st.toggle(label, key=key, help=spec.help)
    elif name == "hidden":  # the LSTM's state (h, c) has 2n units: n <= 256 keeps maps within budget
        top = 256 if st.session_state.get("cfg_cell") == "lstm" else int(spec.hi)
        st.session_state[key] = min(st.session_state[key], top)
        st.slider(label, 1, top, key=key, help=spec.help)
    elif name == "seq_len":
        st.slider(label, int(spec.lo), int(spec.hi), key=key, help=spec.help)
    elif name == "lag":
        st.slider(label, 1, int(st.session_state["cfg_seq_len"]), key=key, help=spec.help)
    elif kind is int:
        st.number_input(label, int(spec.lo), int(spec.hi), step=1, key=key, help=spec.help)
    else:
        st.number_input(label, float(spec.lo), float(spec.hi), step=0.05, format="%.4g", key=key, help=spec.help)


def experiment_sidebar(fields: Sequence[str], *, choices: dict[str, Sequence[str]] | None = None,
                       fixed: dict[str, Any] | None = None) -> ExperimentConfig:
    """Sidebar widgets for ``fields``, two-way bound to the URL. ``fixed`` pins fields for this
    page; ``choices`` narrows a field's options (an outside value falls back to the first)."""
    choices, fixed = choices or {}, fixed or {}
    query = st.query_params.to_dict()
    state = st.session_state
    if "cfg" not in state or (query and query != state.get("cfg_query")):
        config, warnings = from_query(query)
        state["cfg_warnings"] = warnings
        state["cfg"] = config
        for f in dataclasses.fields(ExperimentConfig):
            state.pop("cfg_" + f.name, None)  # widgets take the URL's values
    config: ExperimentConfig = state["cfg"]
    pinned = dict(fixed)
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            pinned[name] = allowed[0]
    config, clamped = fit(config, **pinned)
    for message in state.pop("cfg_warnings", []) + clamped:  # once: the URL is rewritten below
        st.warning(message, icon="⚠️")
    with st.sidebar:
        st.subheader("Experiment")
        for name in fields:
            key = "cfg_" + name
            if key not in state:
                state[key] = getattr(config, name)
            if name == "lag":
                state[key] = min(state[key], state.get("cfg_seq_len", config.seq_len))
            _widget(name, key, choices.get(name))
    values = {name: state["cfg_" + name] for name in fields}
    try:
        config = config.replace(**{**values, **pinned})
    except ValueError as err:  # e.g. a forget bias typed as text: keep the last good config
        st.sidebar.error(str(err))
    state["cfg"] = config
    state["cfg_query"] = to_query(config)
    st.query_params.from_dict(state["cfg_query"])
    return config


def progress_bar(label: str) -> tuple[Callable[[float], None], Callable[[], None]]:
    """(update(fraction), clear()) for a bar drawn at most every 5 %: it lives inside cached
    functions, whose elements Streamlit records and replays on a cache hit."""
    bar, shown = st.empty(), [-1.0]

    def update(fraction: float) -> None:
        if fraction - shown[0] >= 0.05 or fraction >= 1.0:
            shown[0] = fraction
            bar.progress(min(max(fraction, 0.0), 1.0), text=f"{label}: {fraction:.0%}")

    return update, bar.empty


@st.cache_data(max_entries=32, show_spinner=False)
def _cached_analysis(config: ExperimentConfig, stride: int) -> Analysis:
    update, clear = progress_bar("Multiplying Jacobians, all pairs of steps")
    result = analyze(config, stride=stride, progress=update)
    clear()
    return result


def analysis(config: ExperimentConfig) -> Analysis:
    """The cached analysis at the app's resolution, with a progress bar while it computes."""
    stride = auto_stride(config)
    result = _cached_analysis(config, stride)
    if stride > 1:
        st.info(f"At T = {config.seq_len} and n = {config.hidden} the map keeps every {stride}th step "
                f"({len(result.pairs.grid)} × {len(result.pairs.grid)} grid) to stay within a few seconds. "
                "Every product is still exact over all steps in between; for full resolution run "
                f"`python -m explorer analyze --stride 1` with this config.", icon="ℹ️")
    return result


def chart(fig, explanation: str, downloads: Sequence[tuple[str, bytes, str]], key: str, latex: str | None = None) -> None:
    """A chart, a sentence or two on what to look for, and its data as downloads."""
    st.plotly_chart(fig, width="stretch", config=PLOT_CONFIG, key=key)
    st.markdown(explanation)
    if latex:
        st.latex(latex)
    cols = st.columns(len(downloads) + 2)
    for col, (label, data, name) in zip(cols, downloads):
        mime = "text/csv" if name.endswith(".csv") else "application/octet-stream"
        col.download_button(f"⬇ {label}", data, file_name=name, mime=mime, key=f"dl_{key}_{name}")


def config_download(config, key: str) -> None:
    st.sidebar.download_button("⬇ config (JSON)", json_bytes(config.to_dict()), file_name="config.json",
                               mime="application/json", key=f"dl_cfg_{key}")
