"""Opt-in timing of each page run on the server, for ``benchmarks/bench_classroom.py``: with
``EXPLORER_RUN_LOG=<file>`` set, every run of a page appends one JSON line to that file when the run ends::

    {"page": "Simple RNN", "session": "<id>", "seconds": 0.41, "cpu_seconds": 0.38, "outcome": "with_success",
     "end": 1730000000.0}

``seconds`` runs from :func:`start` (called by ``ui.page_setup``, the first line of every page) to the end of the
run, as the session's ScriptRunner signals it (``SCRIPT_STOPPED_*``); ``cpu_seconds`` is the script thread's CPU
time over the same span (work the run hands to other threads, such as the Jacobian workers, is not in it). Unset (the default), :func:`start` returns
at once and nothing else here runs.
"""
from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

ENV = "EXPLORER_RUN_LOG"

_lock = threading.Lock()
_open: dict[int, dict[str, Any]] = {}  # id(ScriptRunner) -> the run it executes


def _on_event(runner: Any, event: Any = None, **_: Any) -> None:
    name = getattr(event, "name", "")
    if not name.startswith("SCRIPT_STOPPED"):
        return  # every message of the run passes here: return fast
    with _lock:
        run = _open.pop(id(runner), None)
    if run is None:
        return
    path, t0, cpu0 = run.pop("path"), run.pop("t0"), run.pop("cpu0")
    outcome = name.removeprefix("SCRIPT_STOPPED_").lower()  # with_success, for_rerun, with_compile_error
    # the event comes from the script's own thread: its CPU time is this run's, whatever else shares the cores
    line = json.dumps({**run, "seconds": round(time.perf_counter() - t0, 4),
                       "cpu_seconds": round(time.thread_time() - cpu0, 4), "outcome": outcome,
                       "end": round(time.time(), 3)}) + "\n"
    try:
        with _lock, open(path, "a", encoding="utf-8") as log:
            log.write(line)
    except OSError:  # the log is optional: a full disk must not break the visitor's run
        pass


def start(page: str) -> None:
    """Time this run of ``page`` when ``EXPLORER_RUN_LOG`` names a file."""
    path = os.environ.get(ENV)
    if not path:
        return
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    # The ScriptRunner executing this run (its bound method is the context's enqueue): it signals the run's end.
    runner = getattr(getattr(ctx, "_enqueue", None), "__self__", None)
    signal = getattr(runner, "on_event", None)
    if ctx is None or signal is None:
        return
    with _lock:
        _open[id(runner)] = {"path": path, "t0": time.perf_counter(), "cpu0": time.thread_time(), "page": page,
                             "session": ctx.session_id}
    signal.connect(_on_event)  # blinker: once per receiver; weak, and this module holds the function
