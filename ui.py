"""Streamlit glue shared by the pages: the URL <-> config <-> widgets loop, cached calls, downloads.

The URL is the state: on a fresh visit (or a pasted link) the query string is parsed into
the config, with a visible warning and the default for each bad value; every widget
change writes the whole config back, seed included, so the link reproduces the picture.
Lives beside the entry script, not in ``explorer/`` (which never imports streamlit) and
not in ``pages/`` (where Streamlit would list it as a page).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np
import streamlit as st

import explorer  # noqa: F401  (torch thread pool and flush-denormal before any torch op)
from explorer import plots
from explorer.analysis import Analysis, analyze, auto_stride
from explorer.analysis import lag_curve as _uncached_lag_curve
from explorer.config import (LSTM_MAX_HIDDEN, SPECS, TRAIN_SPECS, ExperimentConfig, TrainConfig, field_type, fit,
                             from_query, max_batch, to_query)
from explorer.export import json_bytes

ALL_SPECS = {**SPECS, **TRAIN_SPECS}

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
    spec, label, kind = ALL_SPECS[name], LABELS.get(name, name.replace("_", " ")), field_type(name)
    if name == "forget_bias":
        st.text_input(label, key=key, help="default, chrono (Tallec & Ollivier 2018), or a number such as 1")
    elif spec.choices is not None:
        st.selectbox(label, options or spec.choices, key=key, help=spec.help, format_func=lambda v: CHOICE_LABELS.get(v, v))
    elif kind is bool:
        st.toggle(label, key=key, help=spec.help)
    elif name == "hidden":  # the LSTM's state (h, c) has 2n units: n <= 256 keeps maps within budget
        top = LSTM_MAX_HIDDEN if st.session_state.get(key.replace("hidden", "cell")) == "lstm" else int(spec.hi)
        st.session_state[key] = min(st.session_state[key], top)
        st.slider(label, 1, top, key=key, help=spec.help)
    elif name == "seq_len":
        st.slider(label, int(spec.lo), int(spec.hi), key=key, help=spec.help)
    elif name == "batch":  # batch norm runs every sequence: bounded by seq_len * hidden^2
        state = st.session_state
        top = max_batch(state[key.replace("batch", "seq_len")], state[key.replace("batch", "hidden")])
        state[key] = min(state[key], top)
        st.number_input(label, int(spec.lo), top, step=1, key=key, help=f"{spec.help} (at most {top} at this size)")
    elif name == "lag":
        st.slider(label, 1, int(st.session_state[key.replace("lag", "seq_len")]), key=key, help=spec.help)
    elif kind is int:
        st.number_input(label, int(spec.lo), int(spec.hi), step=1, key=key, help=spec.help)
    else:
        fmt, step = ("%.2e", 1e-4) if name == "lr" else ("%.4g", 0.05)
        st.number_input(label, float(spec.lo), float(spec.hi), step=step, format=fmt, key=key, help=spec.help)


def _get(config: ExperimentConfig | TrainConfig, name: str) -> Any:
    if isinstance(config, TrainConfig) and name in SPECS:
        return getattr(config.model, name)
    return getattr(config, name)


def _fit(config: ExperimentConfig | TrainConfig, values: dict[str, Any]) -> tuple[Any, list[str]]:
    if isinstance(config, TrainConfig):
        model, warnings = fit(config.model, **{k: v for k, v in values.items() if k in SPECS})
        return config.replace(model=model, **{k: v for k, v in values.items() if k not in SPECS}), warnings
    return fit(config, **values)


def config_sidebar(fields: Sequence[str], *, choices: dict[str, Sequence[str]] | None = None,
                   fixed: dict[str, Any] | None = None, train: bool = False) -> Any:
    """Sidebar widgets for ``fields``, two-way bound to the URL; returns the page's config
    (an ``ExperimentConfig``, or a ``TrainConfig`` with ``train=True``). ``fixed`` pins fields
    for this page; ``choices`` narrows a field's options (an outside value falls back to the first)."""
    choices, fixed = choices or {}, fixed or {}
    prefix = "lab" if train else "cfg"
    query = st.query_params.to_dict()
    state = st.session_state
    if prefix not in state or (query and query != state.get(f"{prefix}_query")):
        config, warnings = from_query(query, train=train)
        state[f"{prefix}_warnings"] = warnings
        state[prefix] = config
        for name in list(ALL_SPECS):
            state.pop(f"{prefix}_{name}", None)  # widgets take the URL's values
    config = state[prefix]
    pinned = dict(fixed)
    for name, allowed in choices.items():
        if _get(config, name) not in allowed:
            pinned[name] = allowed[0]
    config, clamped = _fit(config, pinned)
    for message in state.pop(f"{prefix}_warnings", []) + clamped:  # once: the URL is rewritten below
        st.warning(message, icon="⚠️")
    with st.sidebar:
        st.subheader("Training" if train else "Experiment")
        for name in fields:
            key = f"{prefix}_{name}"
            if key not in state:
                state[key] = _get(config, name)
            if name == "lag":
                state[key] = min(state[key], state.get(f"{prefix}_seq_len", config.seq_len))
            _widget(name, key, choices.get(name))
    try:
        config, _ = _fit(config, {**{name: state[f"{prefix}_{name}"] for name in fields}, **pinned})
    except ValueError as err:  # e.g. a forget bias typed as text: keep the last good config
        st.sidebar.error(str(err))
    state[prefix] = config
    state[f"{prefix}_query"] = to_query(config)
    st.query_params.from_dict(state[f"{prefix}_query"])
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


@st.cache_data(max_entries=32, show_spinner=False)
def _cached_lag_curve(config: ExperimentConfig, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    update, clear = progress_bar("Multiplying Jacobians for the comparison curve")
    curve = _uncached_lag_curve(config, stride=stride, progress=update)
    clear()
    return curve


def lag_curve(config: ExperimentConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``analysis(config).lag_curve()``, cached, without computing the rest of that analysis (an overlay)."""
    return _cached_lag_curve(config, auto_stride(config))


def analysis(config: ExperimentConfig) -> Analysis:
    """The cached analysis at the app's resolution, with a progress bar while it computes."""
    stride = auto_stride(config)
    result = _cached_analysis(config, stride)
    if stride > 1:
        st.info(f"At T = {config.seq_len} and n = {config.hidden} the map keeps every {stride}th step "
                f"({len(result.pairs.grid)} × {len(result.pairs.grid)} grid) to stay within a few seconds "
                f"(this one took {result.seconds:.1f} s). "
                "Every product is still exact over all steps in between; for full resolution run "
                f"`python -m explorer analyze --stride 1` with this config.", icon="ℹ️")
    return result


def chart(fig, explanation: str, downloads: Sequence[tuple[str, bytes | Callable[[], bytes], str]], key: str,
          latex: str | None = None) -> None:
    """A chart, a sentence or two on what to look for, and its data as downloads: (label, the bytes
    or a callable that makes them when the button is clicked, file name). Large NPZ files are made
    on click: compressing them on every rerun took seconds at T = 2000, n = 512."""
    st.plotly_chart(fig, width="stretch", config=PLOT_CONFIG, key=key)
    st.markdown(explanation)
    if latex:
        st.latex(latex)
    row = st.container(horizontal=True, wrap=True)
    for label, data, name in downloads:
        mime = "text/csv" if name.endswith(".csv") else "application/octet-stream"
        row.download_button(f"⬇ {label}", data, file_name=name, mime=mime, key=f"dl_{key}_{name}")


def config_download(config, key: str) -> None:
    st.sidebar.download_button("⬇ config (JSON)", json_bytes(config.to_dict()), file_name="config.json",
                               mime="application/json", key=f"dl_cfg_{key}")


LAB_FLOP_BUDGET = 1.6e12  # about 1.5x the default run (adding, T=50, LSTM n=64, 3000 steps): a minute or two


@st.cache_data(max_entries=16, show_spinner=False)
def _cached_training(config: TrainConfig):
    """A finished run, cached by its config. Live charts are drawn while it trains; Streamlit
    replays them on a cache hit, so they are throttled to one update a second."""
    from explorer.train import train

    live, status = st.empty(), st.empty()
    last = [0.0]

    def progress(partial) -> None:
        st.session_state["lab_partial"] = partial  # survives a Stop (which interrupts this run)
        now = time.perf_counter()
        rec = partial.history[-1]
        status.progress(rec["step"] / config.steps,
                        text=f"step {rec['step']} / {config.steps} · eval loss {rec['eval_loss']:.4g} "
                             f"(baseline {partial.baseline:.4g})")
        if now - last[0] > 1.0 or rec["step"] >= config.steps:
            last[0] = now
            live.plotly_chart(loss_chart({"this run": partial}), width="stretch", config=PLOT_CONFIG)

    result = train(config, progress=progress)
    live.empty()
    status.empty()
    return result


def run_label(config: TrainConfig) -> str:
    m = config.model
    cell = {"rnn": f"{m.activation} RNN", "lstm": "LSTM", "gru": "GRU"}[m.cell]
    extras = [f"init={m.init}" + (f"×{m.gain:g}" if m.init != "pytorch" else "")]
    if m.residual:
        extras.append("residual")
    if m.norm != "none":
        extras.append(f"{m.norm} norm")
    if config.ortho_reg:
        extras.append(f"λ={config.ortho_reg:g}")
    if config.orthogonal_param != "none":
        extras.append(config.orthogonal_param)
    return f"{cell} ({', '.join(extras)}) · {config.task} T={m.seq_len} · seed {m.seed}"


def history(result, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(recorded steps, values of ``key``) from a training run's history."""
    return (np.array([h["step"] for h in result.history]),
            np.array([h[key] for h in result.history], dtype=float))


def loss_chart(runs: dict) -> Any:
    series = {name: (*history(r, "loss"), history(r, "eval_loss")[1]) for name, r in runs.items()}
    baseline = next(iter(runs.values())).baseline
    return plots.loss_figure(series, baseline, title="Loss against the trivial baseline (log scale)")


def training(config: TrainConfig, start: bool):
    """The run for ``config``: from the cache when this session finished it before, trained now
    when ``start``; otherwise None (the partial result of a stopped run stays in the session)."""
    done = st.session_state.setdefault("lab_done", {})
    if config.flops() > LAB_FLOP_BUDGET:
        st.error(f"This run needs about {config.flops():.2g} float ops; the app runs at most {LAB_FLOP_BUDGET:.2g} "
                 "(fewer steps, a shorter T, a smaller batch or hidden size). The command line has no limit: "
                 "`python -m explorer train ...`.")
        return None
    if not (start or config in done.values()):
        return None
    st.session_state.pop("lab_partial", None)
    result = _cached_training(config)
    done[run_label(config)] = config
    return result
