"""The Training Lab's runs: trained once per config for every session, drawn live, stopped and kept."""
from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import streamlit as st

from explorer import limits, plots
from explorer.config import TrainConfig
from explorer.registry import cell_type

from .results import PLOT_CONFIG, turn




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
def _cached_training(config: TrainConfig, _only_if_cached: bool = False, _stopped: dict | None = None,
                     _share_turn=None):
    """A finished run, cached by its config alone (Streamlit leaves arguments named _... out of the key).

    ``_only_if_cached``: a miss raises :class:`_NotCached` instead of training. ``_stopped["result"]``
    receives each partial run, as plain data with no Streamlit call: a Stop interrupts the script at its
    next Streamlit call (■ Stop: a rerun, RerunException; Streamlit's own Stop: StopException, and
    every later call raises it too), and the steps so far must survive either. ``_share_turn()`` is called at
    each record: a long run lets the computations queued behind it go first (``Gate.share_turn``).

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
        if _share_turn is not None:
            _share_turn()
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
    budget = limits.LIMITS.lab_flops
    if config.flops() > budget:
        st.error(f"This run needs about {config.flops():.2g} float ops; this deployment runs at most {budget:.2g} "
                 "(EXPLORER_LAB_FLOPS): fewer steps, a shorter T, a smaller batch or hidden size. The command line "
                 "has no limit: "
                 "`python -m explorer train ...`.")
        return None
    if start:
        stopped = {"config": config, "result": None}
        st.session_state["lab_stopped"] = stopped
        if config in finished_runs():  # cached: no turn in the line
            result = _cached_training(config, _stopped=stopped)
        else:
            with turn() as gate:
                result = _cached_training(config, _stopped=stopped, _share_turn=gate.share_turn)
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


def weights_actions(config: TrainConfig, result) -> None:
    """The run's final weights: a safetensors download, and a button that opens them on their cell's analysis page
    beside the untrained model (the run's own initial weights: the same seed) as B."""
    from explorer import weights
    from explorer.export import file_name

    from . import models
    from .sweeps import PAGE_FILES

    page = cell_type(config.model.cell).page
    left, right = st.columns(2)
    # the file is written when asked for (a download's bytes are made on its click), not on every rerun
    left.download_button("⬇ trained weights (safetensors)", lambda: weights.lab_file(result),
                         file_name=file_name(config, "weights", "safetensors"),
                         mime="application/octet-stream", key="dl_lab_weights", on_click="ignore",
                         help="torch.nn names (weight_ih_l0, ...) and the read-out; the run's config in the metadata. "
                              "Open it with python -m explorer analyze --weights FILE, or on the analysis pages.")
    if right.button("Analyse: trained vs untrained" if page in models.COMPARES else "Analyse the trained cell",
                    key="lab_open_weights",
                    help="The trained cell as A, its initial weights as B: both maps on one colour scale, both lag "
                         "curves and both singular spectra"):
        data = weights.lab_file(result)
        key = weights.digest(data)
        models.files()[key] = data
        query = {"weights": key, "seed": str(config.model.seed), "seq_len": str(config.model.seq_len)}
        st.switch_page(PAGE_FILES[page], query_params=query | ({"b_weights": ""} if page in models.COMPARES else {}))
