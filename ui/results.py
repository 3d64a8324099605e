"""Cached results and how a page shows them: progress, the analysis at the app's resolution, metrics, and
:class:`Report`, which draws a chart with its explanation and its data as downloads."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import streamlit as st

from explorer import limits
from explorer.backend import release_memory
from explorer.analysis import Analysis, analyze, auto_stride
from explorer.analysis import lag_curve as _uncached_lag_curve
from explorer.config import ExperimentConfig, TrainConfig
from explorer.lyapunov import app_exponents
from explorer.export import csv_bytes, file_name, file_stem, json_bytes, npz_bytes
from explorer.text import ordinal

from .gate import BACKGROUND, VISITOR, Gate, Ledger, nbytes
from . import models
from .state import view_settings

CACHE_ENTRIES = 64  # results kept for all sessions, at most (EXPLORER_CACHE_MB bounds their bytes)
PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def progress_bar(label: str) -> tuple[Callable[[float], None], Callable[[], None]]:
    """(update(fraction), clear()) for a bar drawn at most every 5 %: it lives inside cached
    functions, whose elements Streamlit records and replays on a cache hit."""
    bar, shown = st.empty(), [-1.0]

    def update(fraction: float) -> None:
        if fraction - shown[0] >= 0.05 or fraction >= 1.0:
            shown[0] = fraction
            bar.progress(min(max(fraction, 0.0), 1.0), text=f"{label}: {fraction:.0%}")

    return update, bar.empty


# The gate and the ledger are one per server process, like st.cache_data's caches (explorer.limits sizes them).
GATE = Gate(limits.LIMITS.concurrent)
LEDGER = Ledger(limits.LIMITS.cache_mb * 2**20, max_entries=CACHE_ENTRIES)


def queue_notice() -> tuple[Callable[[int], None], Callable[[], None]]:
    """(show(ahead), clear()) for the line's message, drawn only once a visitor has to wait."""
    holder: list[Any] = []

    def show(ahead: int) -> None:
        if not holder:
            holder.append(st.empty())
        holder[0].info(f"Queued: {ahead} ahead of you. This server computes {GATE.slots} new "
                       f"result{'s' if GATE.slots > 1 else ''} at a time; cached results need no turn.", icon="⏳")

    return show, lambda: holder and holder[0].empty()


@contextmanager
def turn(background: bool = False) -> Iterator[Gate]:
    """A turn at the server's gate for a new computation, yielding the gate (a long run shares its turn with
    ``gate.share_turn``). A visitor who waits sees the line's message; the tour's computing-ahead (``background``)
    waits silently behind every visitor."""
    gate = GATE
    show, clear = (None, lambda: None) if background else queue_notice()
    try:
        with gate.slot(on_wait=show, priority=BACKGROUND if background else VISITOR):
            clear()
            yield gate
    finally:
        clear()


def shared(cached: Callable[..., Any], *args: Any, background: bool = False, **unhashed: Any) -> Any:
    """``cached(*args)``, a ``st.cache_data`` function of this module, through the gate when its result is not
    cached yet (queued, with a message, behind the computations already running), then entered in the ledger;
    entries the ledger drops (bytes or count) are cleared from their caches."""
    key = (cached.__name__, args)
    if key in LEDGER:
        return cached(*args, **unhashed)
    with turn(background):
        result = cached(*args, **unhashed)
    for name, old in LEDGER.add(key, nbytes(result)):
        _CACHES[name].clear(*old)
    release_memory()  # the computation's transients, freed, back to the system
    return result


@st.cache_data(max_entries=2 * CACHE_ENTRIES, show_spinner=False)  # the ledger's count bound acts first
def _cached_analysis(config: ExperimentConfig, stride: int, _files: dict[str, bytes] | None = None) -> Analysis:
    # _files (a loaded model's bytes) is not hashed: the config names them by their sha256
    update, clear = progress_bar("Multiplying Jacobians, all pairs of steps")
    result = analyze(config, stride=stride, progress=update, lyapunov=app_exponents(config), files=_files)
    clear()
    return result


@st.cache_data(max_entries=2 * CACHE_ENTRIES, show_spinner=False)
def _cached_lag_curve(config: ExperimentConfig, stride: int, _files: dict[str, bytes] | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    update, clear = progress_bar("Multiplying Jacobians for the comparison curve")
    curve = _uncached_lag_curve(config, stride=stride, progress=update, files=_files)
    clear()
    return curve


_CACHES = {f.__name__: f for f in (_cached_analysis, _cached_lag_curve)}


def rnn_overlay(config: ExperimentConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The lag curve of the simple tanh RNN with this config's n, input, T and seed: the comparison a gated or
    modern cell is drawn beside. The other cells' fields stay at their defaults, so changing them reuses it.
    None where this deployment's budget leaves it for a click (:func:`explorer.limits.plan`): a button says so."""
    from explorer.cost import overlay_seconds
    from explorer.limits import plan

    defaults = ExperimentConfig()
    rnn = config.replace(weights="", cell="rnn", activation="tanh", residual=False, norm="none", gates=defaults.gates,
                         forget_bias=defaults.forget_bias, bias_std=defaults.bias_std, r_min=defaults.r_min,
                         r_max=defaults.r_max, max_phase=defaults.max_phase)
    asked = st.session_state.setdefault("overlays_asked", set())
    if not plan(config).overlay and rnn not in asked:
        st.info(f"The simple RNN of the same size is left out of the lag chart at this size: with it, a first visit "
                f"would take about {overlay_seconds(config):.0f} s longer than this server allows per visit.",
                icon="ℹ️")
        if not st.button("Draw the simple RNN beside it", key="overlay_ask"):
            return None
        asked.add(rnn)
    return lag_curve(rnn)


OVERLAY_NAME = "simple tanh RNN, same n, input, T"


def overlay_curve(overlay) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The overlay as a lag chart's curve ({} when it was left out)."""
    return {} if overlay is None else {OVERLAY_NAME: (overlay[0], overlay[1])}


def overlay_column(lags: np.ndarray, overlay) -> dict[str, np.ndarray]:
    """The overlay at the chart's lags as a CSV column "rnn" ({} when it was left out)."""
    return {} if overlay is None else {"rnn": np.interp(lags, overlay[0], overlay[1])}


def lag_curve(config: ExperimentConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``analysis(config).lag_curve()``, cached, without computing the rest of that analysis (an overlay)."""
    return shared(_cached_lag_curve, config, auto_stride(config), **_unhashed(config))


def _unhashed(config: ExperimentConfig) -> dict[str, Any]:
    """The bytes a config's loaded files hold, passed beside the cache key (which names them by sha256)."""
    return {"_files": models.files()} if models.needs_files(config) else {}


def analysis(config: ExperimentConfig, name: str = "") -> tuple[Analysis, str]:
    """The cached analysis at the app's resolution, with a progress bar while it computes, the
    overflow's warning, and a note when the map is strided (prefixed ``name``, e.g. "B: "); also how
    long this visit waited, in words ("cached" on a cache hit, not the time another visitor's first run took)."""
    stride = auto_stride(config)
    start = time.perf_counter()
    result = shared(_cached_analysis, config, stride, **_unhashed(config))
    waited = time.perf_counter() - start
    for message in result.warnings:
        st.warning(name + message, icon="⚠️")
    if stride > 1:
        st.info(f"{name}At T = {config.seq_len} and n = {config.hidden} the map keeps every {ordinal(stride)} step "
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


MIME = {"csv": "text/csv", "json": "application/json"}  # by a file's extension; anything else is octet-stream
Download = tuple[str, "bytes | Callable[[], bytes]", str]  # (button label, the bytes or their maker, file name)


class Report:
    """One page's charts and their data: files named by page, quantity and key settings
    (``lstm_T100_n64_seed0_maps.npz``), each carrying the config; a chart's PNG named the same way.

    Download buttons never rerun the script (``on_click="ignore"``): a rerun gives every deferred
    file a new id, and a click that still holds the old one fails ("Deferred file ... not found").
    """

    def __init__(self, config: ExperimentConfig | TrainConfig, page: str):
        self.config, self.page = config, page

    def csv(self, label: str, quantity: str, columns: dict[str, Any],
            config: ExperimentConfig | TrainConfig | None = None) -> Download:
        """Made when the button is clicked, like every file here: a file given as bytes is formatted and stored on
        every run, and the browser fetches it once per page view to check its link. ``config``: the one the file
        carries and is named by, when not the page's (a sweep's base)."""
        config = self.config if config is None else config
        return label, lambda: csv_bytes(columns, config=config), file_name(config, quantity, "csv")

    def json(self, label: str, quantity: str, make: Callable[[], Any],
             config: ExperimentConfig | TrainConfig | None = None) -> Download:
        """``make()`` as JSON, made when the button is clicked; ``config`` names the file, as for :meth:`csv`."""
        return label, lambda: json_bytes(make()), file_name(self.config if config is None else config, quantity, "json")

    def npz(self, label: str, quantity: str, arrays: Callable[[], dict[str, Any]]) -> Download:
        """Made when the button is clicked: compressing large maps on every rerun took seconds."""
        return label, lambda: npz_bytes(config=self.config, **arrays()), file_name(self.config, quantity, "npz")

    def chart(self, fig, explanation: str, downloads: Sequence[Download], key: str, latex: str | None = None,
              selectable: bool = False) -> Any:
        """A chart, a sentence or two on what to look for, its equation, and its data as downloads. ``selectable``:
        clicking a point reruns the page, and the selection event is returned (else None)."""
        from .classroom import presenting, style

        image = {**PLOT_CONFIG["toImageButtonOptions"], "filename": file_stem(self.config) + "_" + key,
                 "format": view_settings(self.page)["image"]}
        select = dict(on_select="rerun", selection_mode="points") if selectable else {}
        event = st.plotly_chart(style(fig, self.page), width="stretch",
                                config={**PLOT_CONFIG, "toImageButtonOptions": image}, key=key, **select)
        st.markdown(explanation)
        if latex:
            st.latex(latex)
        if not presenting(self.page):  # no controls on a projector
            row = st.container(horizontal=True, wrap=True)
            for text, data, name in downloads:
                row.download_button(f"⬇ {text}", data, file_name=name, mime=MIME.get(name.rsplit(".", 1)[-1],
                                    "application/octet-stream"), key=f"dl_{key}_{name}", on_click="ignore")
        return event if selectable else None

    def config_download(self) -> None:
        st.sidebar.download_button("⬇ config (JSON)", lambda: json_bytes(self.config.to_dict()),
                                   file_name=file_name(self.config, "config", "json"), mime="application/json",
                                   key="dl_config", on_click="ignore")
