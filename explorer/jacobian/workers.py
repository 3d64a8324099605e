r"""The CPU's two cores: two pools of two single-threaded workers, started on first use.

Most of the work of the all-pairs sweep is small batched ops (Ritz steps on k = 4 vectors,
LAPACK on 64..128 matrices of n = 64..128) that one OpenMP thread runs as fast as two, and
batched LAPACK on small matrices runs about 10x slower with two OpenMP threads than with one.
So the work is split in two instead, each half on a worker with one intra-op thread:

* :func:`batched_lapack`: one batched LAPACK call (eigvalsh, cholesky) as two half batches;
* :func:`_run_split`: a sweep over start points as two runs of equal work
  (:func:`_balanced_split`), progress reported and interruptions handled from the caller's thread.

No pool exists, and no thread starts, until the first call that needs one: importing the
library starts nothing.
"""
from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Callable

import numpy as np
import torch
from torch import Tensor

SHORT_LAGS = 8  # lags with flat spectra cost about this many times a long lag (an eigen-solve each)

_pools: dict[str, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()
_in_sweep = threading.local()  # .active: this thread runs half a sweep (it has its own core)


def _single_thread() -> None:
    """Each worker's initializer: one intra-op thread, and flush-to-zero (MXCSR is per thread:
    a float32 matmul on subnormals runs ~100x slower)."""
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)


def _pool(name: str) -> ThreadPoolExecutor:
    """The pool of two single-threaded workers ``explorer-<name>``, created on first use."""
    pool = _pools.get(name)
    if pool is None:
        with _pools_lock:
            pool = _pools.get(name)
            if pool is None:
                pool = _pools[name] = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"explorer-{name}",
                                                         initializer=_single_thread)
    return pool


def batched_lapack(fn: Callable[[Tensor], Tensor], A: Tensor) -> Tensor:
    """``fn`` over a batch (B, m, m) on the CPU, in halves on the two LAPACK workers (torch
    releases the GIL): batches of 8 or more, or of two or more matrices from m = 128 on.
    In a sweep worker (which has its own core already) and on other devices, ``fn(A)`` here."""
    if A.device.type != "cpu" or getattr(_in_sweep, "active", False):
        return fn(A)
    B = A.shape[0]
    parts = (A[: B // 2], A[B // 2:]) if B >= 8 or (B >= 2 and A.shape[-1] >= 128) else (A,)
    pool = _pool("lapack")
    return torch.cat([future.result() for future in [pool.submit(fn, part) for part in parts]])


def _balanced_split(a0: int, a1: int, K: int) -> int:
    """The start b that splits [a0, a1) into two runs of about equal work: start a has lags
    1 .. K - 1 - a, the first ``SHORT_LAGS`` of them weighted ``SHORT_LAGS`` times."""
    lags = K - 1 - np.arange(a0, a1)
    work = np.cumsum(lags + (SHORT_LAGS - 1) * np.minimum(lags, SHORT_LAGS))
    return a0 + 1 + int(np.searchsorted(work, work[-1] / 2))


class _Stopped(Exception):
    """Raised in a sweep worker (from its ``report``) to stop it early."""


def _run_split(sweep, a0: int, a1: int, K: int, tally, device, progress, done_before: int, total: int) -> None:
    """``sweep(lo, hi, tally, report)`` over starts [a0, a1), on the CPU as two halves in two
    single-threaded workers (in this thread where it has one thread only, e.g. ``EXPLORER_THREADS=1``,
    on other devices, and for fewer than 4 starts).

    ``sweep`` calls ``report(count)`` after each lag with the pairs it finished; each half counts
    into its own fresh ``type(tally)()``, added to ``tally`` at the end. Progress,
    ``progress((done_before + done) / total)``, is reported from this thread (Streamlit's widgets
    belong to the script's thread). When one half fails, or the caller is interrupted while it
    waits (a Streamlit rerun raises from the progress callback), the other half stops at its
    next lag before the error goes on.
    """
    done = [0]
    stop = threading.Event()

    def show() -> None:
        if progress is not None:
            progress(min(1.0, (done_before + done[0]) / total))

    def report(count: int) -> None:
        done[0] += count  # one += per lag under the GIL; a lost update would only delay the bar
        if stop.is_set():
            raise _Stopped

    if torch.device(device).type != "cpu" or torch.get_num_threads() < 2 or a1 - a0 < 4:
        sweep(a0, a1, tally, lambda count: (report(count), show()))
        return
    b = min(max(_balanced_split(a0, a1, K), a0 + 1), a1 - 1)
    tallies = (type(tally)(), type(tally)())

    def half(lo: int, hi: int, part) -> None:
        _in_sweep.active = True
        try:
            sweep(lo, hi, part, report)
        finally:
            _in_sweep.active = False

    pool = _pool("pairs")
    futures = [pool.submit(half, a0, b, tallies[0]), pool.submit(half, b, a1, tallies[1])]
    try:
        while not all(future.done() for future in futures):
            wait(futures, timeout=0.05, return_when=FIRST_EXCEPTION)
            if any(future.done() and future.exception() is not None for future in futures):
                break
            show()
    finally:
        stop.set()
        wait(futures)
    for future in futures:
        if future.exception() is not None and not isinstance(future.exception(), _Stopped):
            raise future.exception()  # a worker's error, here
    show()  # also where both halves ended before the first wait
    for part in tallies:
        tally.add(part)
