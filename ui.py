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

from explorer import backend

backend.configure()  # once per process, before torch loads: OpenMP's wait policy, threads, flush-denormal

from explorer import plots
from explorer.analysis import Analysis, analyze, auto_stride
from explorer.analysis import lag_curve as _uncached_lag_curve
from explorer.config import (ALL_SPECS, VIEW_DEFAULTS, VIEW_SPECS, ExperimentConfig, TrainConfig, check, field_type,
                             fit, flat, from_query, to_query, view_from_query)
from explorer.export import csv_bytes, file_name, file_stem, json_bytes, npz_bytes
from explorer.registry import cell_type
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
    ("cached" on a cache hit, not the time another visitor's first run took)."""
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
    timing = "cached" if waited < 0.5 * result.seconds else f"{result.seconds:.2f} s"
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


LAB_CACHE_ENTRIES = 16  # finished runs kept by _cached_training, for all sessions
STOP_NOTE = ("Stopping keeps the steps so far in this session (not cached). After ■ Stop they show at once; "
             "after Streamlit's Stop (top right) these charts stay as they are, and the next click shows the run "
             "so far in full.")


class _NotCached(Exception):
    """``_cached_training(config, _only_if_cached=True)`` found no run: raised instead of training
    (exceptions are never cached)."""


class _RunIndex:
    """The configs whose runs finished on this server, from any session (most recent last). A hint:
    the cache may have evicted a run since, so :func:`cached_run` confirms with a call that cannot train."""

    def __init__(self, size: int):
        import threading

        self._lock, self._size, self._configs = threading.Lock(), size, {}

    def add(self, config: TrainConfig) -> None:
        with self._lock:
            self._configs.pop(config, None)
            self._configs[config] = None
            while len(self._configs) > self._size:
                del self._configs[next(iter(self._configs))]

    def discard(self, config: TrainConfig) -> None:
        with self._lock:
            self._configs.pop(config, None)

    def __contains__(self, config: object) -> bool:
        with self._lock:
            return config in self._configs


@st.cache_resource(show_spinner=False)
def finished_runs() -> _RunIndex:
    """The process-wide index of finished runs (one object shared by every session)."""
    return _RunIndex(4 * LAB_CACHE_ENTRIES)


@st.cache_data(max_entries=LAB_CACHE_ENTRIES, show_spinner=False)
def _cached_training(config: TrainConfig, _only_if_cached: bool = False, _stopped: dict | None = None):
    """A finished run, cached by its config alone (Streamlit leaves arguments named _... out of the key).

    ``_only_if_cached``: a miss raises :class:`_NotCached` instead of training. ``_stopped["result"]``
    receives each partial run, as plain data with no Streamlit call: a Stop interrupts the script at its
    next Streamlit call (■ Stop: a rerun, RerunException; Streamlit's own Stop: StopException, and
    every later call raises it too), and the steps so far must survive either.

    Live charts (loss and gradient flow) are drawn while it trains; Streamlit replays them on a cache
    hit, so they are throttled to one update a second."""
    if _only_if_cached:
        raise _NotCached(config)
    from explorer.train import train

    status, note, live_loss, live_flow = st.empty(), st.empty(), st.empty(), st.empty()
    last = [0.0]

    def progress(partial) -> None:
        if _stopped is not None:
            _stopped["result"] = partial
        rec = partial.history[-1]
        status.progress(rec["step"] / config.steps,
                        text=f"step {rec['step']} / {config.steps} · eval loss {rec['eval_loss']:.4g} "
                             f"(baseline {partial.baseline:.4g})")
        now = time.perf_counter()
        if now - last[0] > 1.0:
            if not last[0]:
                note.caption(STOP_NOTE)
            last[0] = now
            live = f" · live, step {rec['step']} of {config.steps}"
            live_loss.plotly_chart(loss_chart({"this run": partial}, live), width="stretch", config=PLOT_CONFIG)
            live_flow.plotly_chart(flow_chart(partial, live), width="stretch", config=PLOT_CONFIG)

    result = train(config, progress=progress)
    for element in (live_flow, live_loss, note, status):
        element.empty()
    return result


def run_label(config: TrainConfig) -> str:
    m = config.model
    cell = cell_type(m.cell).short_name(m.to_dict())
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


def loss_chart(runs: dict, title_suffix: str = "") -> Any:
    series = {name: (*history(r, "loss"), history(r, "eval_loss")[1]) for name, r in runs.items()}
    baseline = next(iter(runs.values())).baseline
    return plots.loss_figure(series, baseline, title="Loss against the trivial baseline (log scale)" + title_suffix)


def flow_chart(result, title_suffix: str = "") -> Any:
    return plots.grad_flow_heatmap(history(result, "step")[0], result.grad_flow,
                                   title="Gradient flow log10 ‖∂L/∂h_t‖ during training" + title_suffix)


def cached_run(config: TrainConfig):
    """The finished run of ``config`` from the server's cache (trained by any session), or None.
    Never trains: the call cannot train, and a config the cache has evicted leaves the index."""
    index = finished_runs()
    if config not in index:
        return None
    try:
        return _cached_training(config, _only_if_cached=True)
    except _NotCached:
        index.discard(config)
        return None


def training(config: TrainConfig, start: bool):
    """The finished run of ``config``: trained now when ``start`` (or taken from the cache), else the
    server's cached run if any session finished it (a shared link shows it at once), else None.
    A stopped run's steps so far stay in the session: :func:`stopped_run`."""
    done = st.session_state.setdefault("lab_done", {})
    if config.flops() > LAB_FLOP_BUDGET:
        st.error(f"This run needs about {config.flops():.2g} float ops; the app runs at most {LAB_FLOP_BUDGET:.2g} "
                 "(fewer steps, a shorter T, a smaller batch or hidden size). The command line has no limit: "
                 "`python -m explorer train ...`.")
        return None
    if start:
        stopped = {"config": config, "result": None}
        st.session_state["lab_stopped"] = stopped
        result = _cached_training(config, _stopped=stopped)
    else:
        result = cached_run(config)
        if result is None:
            return None
    finished_runs().add(config)
    done[run_label(config)] = config
    if st.session_state.get("lab_stopped", {}).get("config") == config:
        del st.session_state["lab_stopped"]
    return result


def stopped_run(config: TrainConfig):
    """The steps so far of this session's last run, when it was stopped (■ Stop or Streamlit's Stop)
    and ran ``config``, with a message saying so; else None. Both Stops end here, on the page's next run."""
    stopped = st.session_state.get("lab_stopped")
    if not stopped or stopped["config"] != config:
        return None
    result = stopped["result"]
    if result is None:
        st.warning(f"Stopped before the first record (step {min(config.record_every, config.steps)}): "
                   "nothing to show. Press **Train** to run it.")
        return None
    st.warning(f"Stopped at step {result.history[-1]['step']} of {config.steps}: showing the run so far. It is not "
               "cached (only this session has it); **Train** runs all the steps again from the start.")
    return result


def train_prompt(config: TrainConfig) -> str:
    """What pressing Train reproduces, for a config no session has finished on this server lately."""
    m = config.model
    clip = f", gradients clipped at {config.clip:g}" if config.clip > 0 else ""
    reg = f", λ = {config.ortho_reg:g}" if config.ortho_reg else ""
    return (f"Press **Train** to train {run_label(config)}: n = {m.hidden}, {config.steps} steps, batch "
            f"{config.batch_size}, {config.optimizer} at lr {config.lr:g}{clip}{reg}, a record every "
            f"{config.record_every} steps. Training is seeded, so these settings always give the same run: the "
            "one a link with them was made from. This server has no finished run of them in its cache; once "
            "trained, the run is cached and a link to these settings shows it at once.")


def orthogonality_deviation(result) -> tuple[float, int] | None:
    """(max_i |σ_i − 1| over the whole run, the step where it is largest) for W_hh's singular
    values, or None when none is finite."""
    sv = np.asarray(result.singular_values, dtype=float)
    deviation = np.where(np.isfinite(sv), np.abs(sv - 1.0), -1.0).max(axis=1, initial=-1.0)  # per record
    if not len(deviation) or deviation.max() < 0:
        return None
    row = int(deviation.argmax())
    return float(deviation[row]), int(result.history[row]["step"])
