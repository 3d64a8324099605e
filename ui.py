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
from explorer.config import (ALL_SPECS, ExperimentConfig, TrainConfig, check, field_type, fit, flat,
                             from_query, label, to_query)
from explorer.export import csv_bytes, file_name, file_stem, json_bytes, npz_bytes

PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def page_setup(title: str, icon: str) -> None:
    st.set_page_config(page_title=f"{title} · RNN Gradient Explorer", page_icon=icon, layout="wide")


def _widget(name: str, key: str, values: dict[str, Any], options: Sequence[str] | None = None) -> None:
    """The widget of one field, built from its Spec; bounds that depend on other fields come from
    ``values``, and a range that has shrunk to one value shows that value, disabled."""
    spec, text, kind = ALL_SPECS[name], label(name), field_type(name)
    state = st.session_state
    if spec.choices is not None:
        allowed = options or spec.choices
        if state[key] not in allowed:
            state[key] = allowed[0]
        st.selectbox(text, allowed, key=key, help=spec.help, format_func=lambda v: spec.choice_labels.get(v, v))
    elif kind is bool:
        st.toggle(text, key=key, help=spec.help)
    elif kind is str:
        st.text_input(text, key=key, help=spec.help)
    elif kind is int:
        lo, hi = int(spec.lo), int(spec.upper(values))
        state[key] = min(max(int(state[key]), lo), hi)
        if hi <= lo:  # e.g. the lag of a one-step sequence: nothing to choose
            st.number_input(text, lo, lo, key=key, disabled=True, help=spec.help)
        elif spec.widget == "slider":
            st.slider(text, lo, hi, key=key, help=spec.help)
        else:
            st.number_input(text, lo, hi, step=1, key=key, help=spec.help)
    else:
        fmt, step = ("%.2e", 1e-4) if name == "lr" else ("%.4g", 0.05)
        st.number_input(text, float(spec.lo), float(spec.hi), step=step, format=fmt, key=key, help=spec.help)


def _pin(values: dict[str, Any], fixed: dict[str, Any], choices: dict[str, Sequence[str]]) -> dict[str, Any]:
    """The page's pinned fields, and its narrowed choices (an outside value falls back to the first)."""
    values = {**values, **fixed}
    for name, allowed in choices.items():
        if values[name] not in allowed:
            values[name] = allowed[0]
    return values


def config_sidebar(page: str, fields: Sequence[str], *, choices: dict[str, Sequence[str]] | None = None,
                   fixed: dict[str, Any] | None = None, train: bool = False) -> Any:
    """Sidebar widgets for those of ``fields`` whose Spec shows them, two-way bound to the URL; returns
    the page's config (an ``ExperimentConfig``, or a ``TrainConfig`` with ``train=True``).

    Where the config comes from, in order: the URL, when the page is entered with a query (a shared
    link, back or forward) or its query is not the one this page wrote last; on entering from
    another page through the sidebar (Streamlit drops the query), this page's own last config with
    the settings it shares with the last page seen carried over; else the widgets. Widget keys are ``<page>_<field>``, one set per page:
    Streamlit ties a widget's identity to its page, so keys shared across pages lose their values.
    ``fixed`` pins fields for this page; ``choices`` narrows a field's options.
    """
    choices, fixed = choices or {}, fixed or {}
    state = st.session_state
    memory = state.setdefault("pages", {})  # page -> (its config, the query it wrote)
    shared = state.setdefault("shared", {})  # field -> value, as last shown on any page
    query = st.query_params.to_dict()
    own = memory.get(page)
    arriving = state.get("current_page") != page
    state["current_page"] = page
    default = TrainConfig() if train else ExperimentConfig()
    warnings: list[str] = []
    if query and (arriving or own is None or query != own[1]):
        config, warnings = from_query(query, train=train)
        values, reset = flat(config), True
    elif arriving or own is None:
        values = {**flat(own[0] if own else default), **{k: v for k, v in shared.items() if k in fields}}
        reset = True
    else:
        values, reset = flat(own[0]), False
    config, clamped = fit(default, **_pin(values, fixed, choices))
    for message in warnings + clamped:
        st.warning(message, icon="⚠️")
    current = flat(config)
    if reset:  # the widgets take the config's values
        for name in fields:
            state[f"{page}_{name}"] = current[name]
    shown = []
    with st.sidebar:
        st.subheader("Training" if train else "Experiment")
        for name in fields:
            key = f"{page}_{name}"
            state.setdefault(key, current[name])
            current[name] = state[key]
            if ALL_SPECS[name].shown(current):
                _widget(name, key, current, choices.get(name))
                current[name] = state[key]
                shown.append(name)
    changes = {}
    for name in shown:
        try:
            changes[name] = check(name, state[f"{page}_{name}"])
        except ValueError as err:  # e.g. a forget bias typed as text: keep the last good value
            st.sidebar.error(str(err))
    config, clamped = fit(config, **_pin(changes, fixed, choices))
    for message in clamped:
        st.warning(message, icon="⚠️")
    shared.update({name: flat(config)[name] for name in shown})
    written = to_query(config)
    memory[page] = (config, written)
    st.query_params.from_dict(written)
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


Download = tuple[str, "bytes | Callable[[], bytes]", str]  # (button label, the bytes or their maker, file name)


class Report:
    """One page's charts and their data: files named by page, quantity and key settings
    (``lstm_T100_n64_seed0_maps.npz``), each carrying the config; a chart's PNG named the same way.

    Download buttons never rerun the script (``on_click="ignore"``): a rerun gives every deferred
    file a new id, and a click that still holds the old one fails ("Deferred file ... not found").
    """

    def __init__(self, config: ExperimentConfig | TrainConfig):
        self.config = config

    def csv(self, label: str, quantity: str, columns: dict[str, Any]) -> Download:
        return label, csv_bytes(columns, config=self.config), file_name(self.config, quantity, "csv")

    def npz(self, label: str, quantity: str, arrays: Callable[[], dict[str, Any]]) -> Download:
        """Made when the button is clicked: compressing large maps on every rerun took seconds."""
        return label, lambda: npz_bytes(config=self.config, **arrays()), file_name(self.config, quantity, "npz")

    def chart(self, fig, explanation: str, downloads: Sequence[Download], key: str, latex: str | None = None) -> None:
        """A chart, a sentence or two on what to look for, its equation, and its data as downloads."""
        image = {**PLOT_CONFIG["toImageButtonOptions"], "filename": file_stem(self.config) + "_" + key}
        st.plotly_chart(fig, width="stretch", config={**PLOT_CONFIG, "toImageButtonOptions": image}, key=key)
        st.markdown(explanation)
        if latex:
            st.latex(latex)
        row = st.container(horizontal=True, wrap=True)
        for text, data, name in downloads:
            mime = "text/csv" if name.endswith(".csv") else "application/octet-stream"
            row.download_button(f"⬇ {text}", data, file_name=name, mime=mime, key=f"dl_{key}_{name}",
                                on_click="ignore")

    def config_download(self) -> None:
        st.sidebar.download_button("⬇ config (JSON)", json_bytes(self.config.to_dict()),
                                   file_name=file_name(self.config, "config", "json"), mime="application/json",
                                   key="dl_config", on_click="ignore")


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
