"""The Phase Diagram page's sweeps (:mod:`explorer.sweep`): the axes' widgets, small sweeps the page runs itself
(bounded, cached and through the compute gate like every new result), a sweep's JSON read back from an upload,
and the map whose cells open their config on the cell's own page."""
from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from explorer import limits
from explorer import sweep as sw
from explorer.config import ExperimentConfig, fit, to_query
from explorer.registry import cell_type

from . import results
from .results import progress_bar, shared

MAX_POINTS = 15  # values per axis the page sweeps
MAX_HIDDEN, MAX_SEQ_LEN = 128, 200  # the page's n and T (the command line has the config's own bounds)
UPLOAD_MB = 4
PAGE_FILES = {"rnn": "pages/2_Simple_RNN.py", "gated": "pages/3_LSTM_and_GRU.py",
              "modern": "pages/4_Modern_Recurrences.py"}
LABELS = {"gain": "σ_w (gain of the gaussian W_hh)", "bias_std": "σ_b (bias scale)", "forget_bias": "forget-gate bias b_f",
          "seq_len": "T (steps)"}


def budget() -> float:
    """Seconds of the reference machine one page sweep may take: twice an analysis's (EXPLORER_ANALYSIS_SECONDS)."""
    return 2.0 * limits.LIMITS.analysis_seconds


def bounded(config: ExperimentConfig) -> tuple[ExperimentConfig, list[str]]:
    """``config`` within the page's n and T, with a message for each change."""
    changes, messages = {}, []
    for field, top, symbol in (("hidden", MAX_HIDDEN, "n"), ("seq_len", MAX_SEQ_LEN, "T")):
        if getattr(config, field) > top:
            changes[field] = top
            messages.append(f"This page sweeps {symbol} ≤ {top}; using {top}. Larger sweeps run from the command "
                            "line (below).")
    if not changes:
        return config, messages
    config, more = fit(config, **changes)
    return config, messages + more


def _axis(field: str, lo: float, hi: float, default: tuple[float, float], count: int, step: float) -> sw.Axis:
    """A range slider and a count for one axis, in the sidebar (keys sweep_<field>_range / _count)."""
    low, high = st.sidebar.slider(LABELS[field], lo, hi, default, step=step, key=f"sweep_{field}_range")
    points = st.sidebar.slider(f"values of {field}", 2, MAX_POINTS, count, key=f"sweep_{field}_count")
    return sw.Axis(field, float(low), float(high), int(points) if high > low else 1)


def sweep_of(config: ExperimentConfig) -> sw.Sweep:
    """The page's sweep of ``config`` from its widgets: sigma_w x sigma_b for the simple RNN; forget bias x T (up to
    the config's T) for the LSTM."""
    st.sidebar.subheader("Sweep")
    if config.cell == "lstm":
        axes = (_axis("forget_bias", -4.0, 6.0, (-2.0, 4.0), 7, 0.5), lengths(config.seq_len))
    else:
        axes = (_axis("gain", 0.0, 4.0, (0.6, 2.0), 15, 0.1), _axis("bias_std", 0.0, 2.0, (0.0, 0.5), 11, 0.05))
    return sw.Sweep(config, axes)


def lengths(top: int, count: int = 10) -> sw.Axis:
    """T from about a tenth of ``top`` to ``top``: ``count`` distinct integers, or as many as fit."""
    lo = max(1, top // 10)
    for n in range(min(count, top - lo + 1), 1, -1):
        axis = sw.Axis("seq_len", float(lo), float(top), n)
        try:
            axis.values()
            return axis
        except ValueError:  # repeated integers: fewer values
            continue
    return sw.Axis("seq_len", float(top), float(top), 1)


@st.cache_data(max_entries=2 * results.CACHE_ENTRIES, show_spinner=False)
def _cached_sweep(sweep: sw.Sweep) -> sw.SweepResult:
    update, clear = progress_bar(f"Sweeping {sweep.size} configs")
    result = sw.run_sweep(sweep, workers=1, cache=False, progress=lambda done, total: update(done / total))
    clear()
    return result


# the shared caches' ledger clears an entry from its st.cache_data function by name: this one is registered there
results._CACHES[_cached_sweep.__name__] = _cached_sweep


def computed(sweep: sw.Sweep) -> sw.SweepResult | None:
    """The sweep's rows, cached, through the compute gate; None (with the command line to run it) where it would
    take longer than this deployment allows a page."""
    predicted = sw.predicted_seconds(sweep)
    if predicted > budget():
        st.info(f"This sweep of {sweep.size} configs would take about {predicted:.0f} s; this page runs sweeps of "
                f"up to about {budget():.0f} s. Run it from the command line and read its JSON back below.", icon="ℹ️")
        return None
    return shared(_cached_sweep, sweep)


@st.cache_data(max_entries=64, show_spinner=False)
def critical_line(config: ExperimentConfig, top: float) -> tuple[np.ndarray, np.ndarray]:
    """Theory's chi = 1 line for ``config``'s activation and input, sigma_b in [0, top] (see explorer.sweep)."""
    return sw.critical_line(config.activation, sw.drive_moment(config), top)


def read_upload(data: bytes | None) -> tuple[sw.SweepResult | None, str | None]:
    """(the sweep in an uploaded JSON, None) or (None, a one-line warning); (None, None) without a file."""
    if data is None:
        return None, None
    try:
        return sw.loads(data), None
    except ValueError as err:
        return None, f"The uploaded file is not a sweep's JSON: {err}"


def upload() -> tuple[sw.SweepResult | None, str | None]:
    """A sweep's JSON from the uploader (at most UPLOAD_MB), read and checked."""
    file = st.file_uploader("Read back a sweep's JSON (`python -m explorer sweep ... --json`)", type=["json"],
                            max_upload_size=UPLOAD_MB, key="sweep_upload")
    return read_upload(None if file is None else file.getvalue())


def figure_data(result: sw.SweepResult) -> dict[str, Any] | None:
    """What the map draws: axes, values, labels and theory's line where it applies; None unless two axes."""
    sweep = result.sweep
    if len(sweep.axes) != 2:
        return None
    (ax, ay), what = sweep.axes, sweep.quantity
    base = sweep.base
    line = None
    if (what == sw.RATE and base.cell == "rnn" and base.init == "gaussian" and base.norm == "none"
            and not base.residual and (ax.field, ay.field) == ("gain", "bias_std")):
        line = critical_line(base, float(ay.numbers().max()))
    quantity = ("log10 ‖∂c_T/∂c_0‖₂" if what == sw.CELL else "measured log10 growth per step")
    return {"x": ax.numbers(), "y": ay.numbers(), "z": result.array(what), "x_label": LABELS.get(ax.field, ax.field),
            "y_label": LABELS.get(ay.field, ay.field), "quantity": quantity, "line": line}


def clicked(result: sw.SweepResult, event: Any) -> int | None:
    """The row index of the cell the reader clicked (from the point's customdata, else the nearest centre)."""
    try:
        points = event.selection.points if event is not None else []
    except AttributeError:
        return None
    for point in points:
        index = point.get("customdata")
        if isinstance(index, list):
            index = index[0] if index else None
        if isinstance(index, (int, float)) and 0 <= int(index) < len(result.rows):
            return int(index)
    return None


def link_for(result: sw.SweepResult, index: int) -> tuple[str, str, dict[str, str]]:
    """(the page file, the link's label, its query: the full config) of row ``index``, on its cell's own page."""
    config = result.sweep.configs()[index]
    row = result.rows[index]
    where = " and ".join(f"{a.field} = {row[a.field]}" for a in result.sweep.axes)
    numbers = ", ".join(f"{k} = {'—' if row.get(k) is None else format(row[k], '.4f')}"
                        for k in (result.sweep.quantity, sw.THEORY) if k in row and row.get(k) is not None)
    label = f"Open {where} on its page ↗" + (f" ({numbers})" if numbers else "")
    return PAGE_FILES[cell_type(config.cell).page], label, to_query(config)


def open_link(result: sw.SweepResult, index: int) -> None:
    """The clicked row's numbers and a link to its full config on its cell's page."""
    page, label, query = link_for(result, index)
    st.page_link(page, label=label, query_params=query)


def downloads(report, result: sw.SweepResult) -> list:
    """The map's data: its rows as CSV, and the sweep's JSON (the CLI's, which this page reads back)."""
    columns = {k: [r.get(k) for r in result.rows] for k in result.rows[0]} if result.rows else {}
    columns = {k: [np.nan if v is None else v for v in values] for k, values in columns.items()}
    base = result.sweep.base
    return [report.csv("rows (CSV)", "sweep", columns, config=base),
            report.json("sweep (JSON)", "sweep", result.to_json, config=base)]


def agreement(result: sw.SweepResult) -> dict | None:
    """The library's comparison of measured rates with theory (:func:`explorer.sweep.agreement`), or None for the
    LSTM's sweep or one where no row has both."""
    if result.sweep.quantity != sw.RATE:
        return None
    report = sw.agreement(result)
    return report if report["compared"] else None


def exceptions_table(report: dict) -> None:
    """The rows where theory and measurement differ by the tolerance or more, with why (an expander)."""
    if not report["exceptions"]:
        return
    with st.expander(f"{len(report['exceptions'])} configs where |measured − theory| ≥ {report['tolerance']}: why"):
        st.dataframe([{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
                      for row in report["exceptions"]], hide_index=True, width="stretch")
