"""The guided tour's glue: where the visitor is in it (``?step=N`` in the link, the arrow keys, the buttons),
and the charts a step names, drawn from its result (an analysis, or a short training run)."""
from __future__ import annotations

import threading
from typing import Any

import numpy as np
import streamlit as st

from explorer import plots
from explorer.config import VIEW_DEFAULTS, TrainConfig, quoted, to_query, view_from_query
from explorer.registry import cell_type

from .results import turn
from .state import PageState

PAGE = "tour"


def position(count: int) -> int:
    """The step the visitor is at, 1..count: from the link when it changed (a shared link, back or forward),
    else from the buttons; a bad ``step`` gets a warning and step 1. Writes the link back."""
    state = st.session_state
    memory = state.setdefault("pages", {})
    query = st.query_params.to_dict()
    own = memory.get(PAGE)
    arriving = state.get("current_page") != PAGE
    state["current_page"] = PAGE
    looks = dict(own.looks) if own else dict(VIEW_DEFAULTS)
    if query and (arriving or own is None or query != own.written):
        raw = query.get("step", "1")
        # decimal digits, as int() reads them ("²" is a digit it refuses), and few enough for it (at most 4300)
        number = int(raw) if raw.isdecimal() and len(raw) <= 100 and 1 <= int(raw) <= count else None
        if number is None:
            st.warning(f"step must be an integer in [1, {count}], got {quoted(raw)}; using 1.", icon="⚠️")
        state["tour_step"] = number or 1
        looks, warnings = view_from_query(query)
        for message in warnings:
            st.warning(message, icon="⚠️")
    state.setdefault("tour_step", 1)
    if state.pop(f"{PAGE}_present", None) == "0":  # the frame's "leave presentation" button
        looks["present"] = "0"
    written = {"step": str(state["tour_step"]), **looks}
    memory[PAGE] = PageState(None, looks, {}, written)
    st.query_params.from_dict(written)
    return state["tour_step"]


def _move(by: int, count: int) -> None:
    st.session_state["tour_step"] = min(max(st.session_state.get("tour_step", 1) + by, 1), count)


def navigation(number: int, count: int, full_page: str, config: Any) -> None:
    """Back and next (also the ← and → keys), the step's place, and its configuration opened on its own page."""
    bar = st.container(horizontal=True, vertical_alignment="center")
    bar.button("◀ back", key="tour_back", on_click=_move, args=(-1, count), disabled=number == 1, shortcut="Left",
               help="The previous step (← key)")
    bar.button("next ▶", key="tour_next", on_click=_move, args=(1, count), disabled=number == count, type="primary",
               shortcut="Right", help="The next step (→ key)")
    bar.markdown(f"step **{number}** of {count}")
    query = to_query(config)
    bar.page_link(full_page, label="open in full page ↗", query_params=query)


def draw(report, chart: str, result, config, key: str) -> None:
    """One chart a tour step names, from its result: an Analysis, or a TrainResult for the training steps."""
    from . import lab
    from .classroom import heatmaps

    if chart in ("map", "cell_map"):
        view = "cell" if chart == "cell_map" else "state"
        heatmaps(report, {"A": (result.pairs.grid, result.pairs.log10_spectral[view])},
                 title="log10 ‖∂c_s/∂c_t‖₂ (c → c)" if view == "cell" else "log10 ‖∂h_s/∂h_t‖₂",
                 quantity="log10 ‖·‖₂", explanation="", key=key)
    elif chart in ("lag", "gated_lag"):
        lags, spec, fro = result.lag_curve()
        curves = {"‖·‖₂": (lags, spec)}
        if chart == "gated_lag" and "cell" in result.pairs.log10_spectral:
            curves["c → c (total derivative)"] = result.lag_curve("cell")[:2]
            direct = result.extras["direct_cell_path"]
            curves["direct path ∏ diag(f_k)"] = (direct["lags"], direct["log10_spectral"])
        else:
            curves["‖·‖_F"] = (lags, fro)
        rate = result.bound_log10_rate
        bound = (lags, lags * rate) if rate is not None and np.isfinite(rate) else None
        report.chart(plots.lag_figure(curves, bound=bound, title="log10 ‖∂z_T/∂z_(T−k)‖ against the lag k",
                                      y="log10 ‖∂z_T/∂z_(T−k)‖"), "", [], key=key)
    elif chart == "steps":
        steps, values = result.step_norms
        report.chart(plots.step_norms_figure(steps, values, title="One step: log10 ‖J_k‖₂"), "", [], key=key)
    elif chart == "contrib":
        report.chart(plots.contributions_figure(result.contributions, title="Per-step terms C_t of ∂L/∂W_ih"), "", [],
                     key=key)
    elif chart == "eig":
        report.chart(plots.eigenvalue_figure(result.eigenvalues, title="Eigenvalues of W_hh and the unit circle"), "",
                     [], key=key)
    elif chart == "sv":
        report.chart(plots.singular_values_figure({f"lag {result.lag}": result.singular_values},
                                                  title=f"log10 σ_i of ∂h_T/∂h_(T−{result.lag})",
                                                  limit=result.singular_limit), "", [], key=key)
    elif chart == "gates":
        signed = [g.name for g in cell_type(config.cell).gates if g.signed]
        report.chart(plots.gate_heatmaps(result.gates, signed=signed, title="Gates over time and units"), "", [], key=key)
    elif chart == "loss":
        report.chart(lab.loss_chart({lab.run_label(config): result}), "", [], key=key)
    elif chart == "flow":
        report.chart(lab.flow_chart(result), "", [], key=key)
    elif chart == "sv_training":
        report.chart(plots.singular_values_over_training(lab.history(result, "step")[0], result.singular_values,
                                                         title="Singular values of W_hh during training"), "", [], key=key)
    else:
        raise ValueError(f"unknown tour chart {chart!r}")


# Steps computed ahead while the visitor reads the one before, for every session (a class walks the tour together):
# step number -> its result, or the thread computing it
_AHEAD: dict[int, Any] = {}
_AHEAD_LOCK = threading.Lock()


def compute_ahead(number: int) -> None:
    """Compute the step after ``number`` in a background thread, so that moving on is instant."""
    from explorer.tour import STEPS, compute

    following = number + 1
    with _AHEAD_LOCK:
        if following > len(STEPS) or following in _AHEAD:
            return

        def work() -> None:
            try:
                with turn(background=True):  # a visitor's own computation goes first
                    result = compute(STEPS[following - 1])
            except Exception:  # the step's own visit computes it again and shows what went wrong
                with _AHEAD_LOCK:
                    _AHEAD.pop(following, None)
                return
            with _AHEAD_LOCK:
                _AHEAD[following] = result

        _AHEAD[following] = thread = threading.Thread(target=work, name=f"tour-step-{following}", daemon=True)
    thread.start()


def result_of(number: int, config) -> Any:
    """The step's result: computed ahead (waiting for it if it is still on its way), else the cached analysis or
    the step's short run (trained on the first visit, then cached)."""
    from . import lab
    from .results import analysis

    ahead = _AHEAD.get(number)
    if isinstance(ahead, threading.Thread):
        ahead.join()
        ahead = _AHEAD.get(number)
    if ahead is not None and not isinstance(ahead, threading.Thread):
        return ahead
    if isinstance(config, TrainConfig):
        return lab.training(config, start=True)
    return analysis(config)[0]
