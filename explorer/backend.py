"""Process-wide torch settings, made explicit; the device; private random generators.

Importing this module (or any of the library) sets nothing and starts no thread: the settings
the library is tuned for are applied by :func:`configure`, which each entry point calls once
(the CLI, the app's ``ui.py``, the benchmarks). A notebook may call it too, or keep its own.
This module does not import torch until it is used, so that :func:`configure` can come first:
OpenMP reads its wait policy when torch loads.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import os
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# Intra-op threads of an analysis (``analysis.analyze`` runs on this many whatever thread calls
# it): ``EXPLORER_THREADS``, default the CPU count, at most 8. Streamlit serves many sessions from
# one process; they share this pool. Two threads per physical core pair is the sweet spot for
# n <= 512 matmuls. Read from the environment only: no torch call.
THREADS = max(1, min(int(os.environ.get("EXPLORER_THREADS", os.cpu_count() or 1)), 8))


def configure() -> None:
    """Apply the process-wide settings the library is tuned for. Idempotent: a second call sets
    the same again (useful from another thread: flush-to-zero is per thread).

    * ``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it: a spinning OpenMP pool makes
      small-op autograd many times slower while another session computes. OpenMP reads it when
      torch first loads, so it takes hold in this process only if this runs before anything
      imports torch (the entry points call it first); child processes inherit it either way.
    * ``torch.set_num_threads(THREADS)``.
    * ``torch.set_flush_denormal(True)`` in the calling thread: a float32 matmul on subnormals runs
      ~100x slower. (The library's worker threads set their own: one thread, flush-to-zero.)
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(THREADS)
    torch.set_flush_denormal(True)


def __getattr__(name: str):
    if name == "DTYPES":  # built on first use: importing this module does not import torch
        import torch

        globals()["DTYPES"] = dtypes = {"float32": torch.float32, "float64": torch.float64}
        return dtypes
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def device() -> "torch.device":
    """``cuda`` when present (same numbers, faster), else ``cpu``.

    ``EXPLORER_DEVICE=cpu`` forces the CPU, e.g. to compare the two.
    """
    import torch

    forced = os.environ.get("EXPLORER_DEVICE")
    if forced:
        return torch.device(forced)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def release_memory() -> bool:
    """Hand the C heap's free pages back to the operating system (glibc's ``malloc_trim``); False where there is no
    glibc. A server that has just built and cached a large result otherwise keeps its freed transients (products,
    Gram matrices, the pickled copy) as resident memory: measured over 200 new configs, +408 MB that stayed
    against -2 MB with a trim after each."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


_frozen_modules = 0  # len(sys.modules) at the last freeze
_freeze_lock = threading.Lock()


def freeze_long_lived() -> bool:
    """Move every object alive now out of the cyclic collector's reach (``gc.freeze``) where modules have been
    imported since the last call (the first call, and after a page's first imports); True where it froze.

    A server calls this at the start of each script run. Streamlit collects every generation after every run
    (``runner.postScriptGC``, its guard against memory building up): with torch, plotly and the app loaded that
    walks about 270,000 objects, 0.15 s of CPU per run, nearly all of them the modules' own, which never become
    garbage. Frozen, they are walked no more (0.015 s a run); objects made afterwards, a session's cycles
    included, are collected as before. Reference counting still frees frozen objects; only a cycle among
    objects that were alive at a freeze (one per burst of imports) would stay."""
    global _frozen_modules
    if len(sys.modules) <= _frozen_modules:
        return False
    with _freeze_lock:
        if len(sys.modules) <= _frozen_modules:
            return False
        gc.collect()  # today's garbage first: frozen, it would stay
        gc.freeze()
        _frozen_modules = len(sys.modules)
    return True


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """The C library's ``malloc_trim``, or None where it has none (not glibc)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


@contextlib.contextmanager
def threads(count: int):
    """Run a block with ``count`` intra-op threads, then restore, with flush-to-zero on in this thread.
    Training steps are small ops (n <= 512 matvecs): on 2 cores one thread is about 2.5x faster than two."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    torch.set_flush_denormal(True)  # per thread: a Streamlit script thread is not the one configure() ran in
    try:
        yield
    finally:
        torch.set_num_threads(before)


def generator(seed: int, stream: int, dev: "torch.device | None" = None) -> "torch.Generator":
    """A private RNG (never the global one: sessions run concurrently).

    ``stream`` separates what the seed drives: 0 = weights, 1 = inputs, 2 = training data,
    3 = the training read-out.
    """
    import torch

    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed) * 4 + stream)
    return gen
