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
from explorer.config import (ALL_SPECS, VIEW_DEFAULTS, VIEW_SPECS, ExperimentConfig, TrainConfig, check, field_type,
                             fit, flat, from_query, to_query, view_from_query)
from explorer.export import csv_bytes, file_name, file_stem, json_bytes, npz_bytes
from explorer.text import ordinal

PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def page_setup(title: str, icon: str) -> None:
    st.set_page_config(page_title=f"{title} · RNN Gradient Explorer", page_icon=icon, layout="wide")


def _widget(name: str, key: str, values: dict[str, Any], options: Sequence[str] | None = None) -> None:
    """The widget of one field, built from its Spec; bounds that depend on other fields come from
    ``values``, and a range that has shrunk to one value shows that value, disabled."""
    spec = ALL_SPECS.get(name) or VIEW_SPECS[name]
    text, kind = spec.label or name, None if spec.choices is not None else field_type(name)
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
                   fixed: dict[str, Any] | None = None, train: bool = False, view: Sequence[str] = ()) -> Any:
    """Sidebar widgets for those of ``fields`` whose Spec shows them, two-way bound to the URL; returns
    the page's config (an ``ExperimentConfig``, or a ``TrainConfig`` with ``train=True``). The ``view``
    settings (``VIEW_SPECS``: how the page draws, never what it computes) get widgets and travel in the
    URL too; :func:`view_settings` reads them.

    Where the config comes from, in order: the URL, when the page is entered with a query (a shared
    link, back or forward) or its query is not the one this page wrote last; on entering from
    another page through the sidebar (Streamlit drops the query), this page's own last config with
    the settings it shares with the last page seen carried over; else the widgets. Widget keys are
    ``<page>_<field>``, one set per page: Streamlit ties a widget's identity to its page, so keys
    shared across pages lose their values. ``fixed`` pins fields; ``choices`` narrows a field's options.
    """
    choices, fixed = choices or {}, fixed or {}
    state = st.session_state
    memory = state.setdefault("pages", {})  # page -> (its config, its view settings, the query it wrote)
    shared = state.setdefault("shared", {})  # field -> value, as last shown on any page
    query = st.query_params.to_dict()
    own = memory.get(page)
    arriving = state.get("current_page") != page
    state["current_page"] = page
    default = TrainConfig() if train else ExperimentConfig()
    warnings: list[str] = []
    # Streamlit's sidebar link may record the new page's address with the old page's query: that query
    # is another page's config, not a link to this one
    foreign = any(written == query for name, (_, _, written) in memory.items() if name != page)
    if query and not foreign and (arriving or own is None or query != own[2]):
        config, warnings = from_query(query, train=train)
        looks, more = view_from_query(query)
        values, warnings, reset = {**flat(config), **looks}, warnings + more, True
    elif arriving or own is None:
        mine = {**flat(own[0]), **own[1]} if own else {**flat(default), **VIEW_DEFAULTS}
        values = {**mine, **{k: v for k, v in shared.items() if k in fields or k in view}}
        reset = True
    else:
        values, reset = {**flat(own[0]), **own[1]}, False
    looks = {name: values.get(name, VIEW_DEFAULTS[name]) for name in view}
    config, clamped = fit(default, **_pin({k: v for k, v in values.items() if k in ALL_SPECS}, fixed, choices))
    for message in warnings + clamped:
        st.warning(message, icon="⚠️")
    current = {**flat(config), **looks}
    if reset:  # the widgets take the config's values
        for name in [*fields, *view]:
            state[f"{page}_{name}"] = current[name]
    shown = []
    with st.sidebar:
        for title, names in (("Training" if train else "Experiment", fields), ("View", view)):
            if names:
                st.subheader(title)
            for name in names:
                key = f"{page}_{name}"
                state.setdefault(key, current[name])
                current[name] = state[key]
                spec = ALL_SPECS.get(name) or VIEW_SPECS[name]
                if spec.shown(current):
                    _widget(name, key, current, choices.get(name))
                    current[name] = state[key]
                    shown.append(name)
    changes = {}
    for name in (n for n in shown if n in ALL_SPECS):
        try:
            changes[name] = check(name, state[f"{page}_{name}"])
        except ValueError as err:  # e.g. a forget bias typed as text: keep the last good value
            st.sidebar.error(str(err))
    config, clamped = fit(config, **_pin(changes, fixed, choices))
    for message in clamped:
        st.warning(message, icon="⚠️")
    looks = {name: current[name] for name in view}
    shared.update({name: flat(config)[name] for name in shown if name in ALL_SPECS} | looks)
    written = {**to_query(config), **looks}
    memory[page] = (config, looks, written)
    st.query_params.from_dict(written)
    return config


def view_settings(page: str) -> dict[str, str]:
    """The page's view settings (``VIEW_SPECS``) as its sidebar last set them."""
    memory = st.session_state.get("pages", {}).get(page)
    return {**VIEW_DEFAULTS, **(memory[1] if memory else {})}


def colour_limit(page: str) -> float | None:
    """The locked colour range of the page's maps in decades, or None to fit each map."""
    scale = view_settings(page)["scale"]
    return None if scale == "auto" else float(scale)


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


def analysis(config: ExperimentConfig) -> tuple[Analysis, str]:
    """The cached analysis at the app's resolution, with a progress bar while it computes, the
    overflow's warning, and a note when the map is strided; also how long this visit waited, in words
    (a cache hit shows its own wait, not the time another visitor's first run took)."""
    stride = auto_stride(config)
    start = time.perf_counter()
    result = _cached_analysis(config, stride)
    waited = time.perf_counter() - start
    for message in result.warnings:
        st.warning(message, icon="⚠️")
    if stride > 1:
        st.info(f"At T = {config.seq_len} and n = {config.hidden} the map keeps every {ordinal(stride)} step "
                f"({len(result.pairs.grid)} × {len(result.pairs.grid)} grid) to stay within a few seconds. "
                "Every product is still exact over all steps in between; for full resolution run "
                f"`python -m explorer analyze --stride 1` with this config.", icon="ℹ️")
    cached = waited < 0.5 * result.seconds
    timing = f"{waited:.2f} s (cached)" if cached else f"{result.seconds:.2f} s"
    return result, timing


def log10_metric(column, label: str, value: float, result: Analysis) -> None:
    """A log10 norm as a metric: "undefined" with "overflow at step k" under it where the arithmetic
    failed, "−∞" (exactly 0) for an exact zero, else two decimals."""
    if np.isnan(value) and result.overflow_step is not None:
        column.metric(label, "undefined", f"overflow at step {result.overflow_step}", delta_color="off",
                      delta_arrow="off", help="The forward pass overflowed: see the warning above.")
    elif value == -np.inf:
        column.metric(label, "−∞", "exactly 0", delta_color="off", delta_arrow="off")
    else:
        column.metric(label, f"{value:.2f}")


def certificate_text(result: Analysis) -> str:
    pairs = result.pairs
    return (f"Spectral norms: {pairs.certified} certified to relative error {pairs.rtol:g} (of the product of the "
            f"computed {result.config.dtype} Jacobians) by a residual bound or a Cholesky factorisation, {pairs.exact} "
            "by an exact eigen-solve. Frobenius norms are exact.")


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
