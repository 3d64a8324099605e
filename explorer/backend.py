"""Process-wide torch settings: one thread pool, flush-to-zero, the device.

Imported before anything else touches torch, because two settings only take hold
before the first parallel op: OpenMP's wait policy (a spinning pool makes
small-op autograd many times slower while another session computes) and
flush-denormal (a float32 matmul on subnormals runs ~100x slower).
"""
from __future__ import annotations

import contextlib
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

# Streamlit serves many sessions from one process; they share this pool.
# Two threads per physical core pair is the sweet spot for n <= 512 matmuls.
THREADS = max(1, min(int(os.environ.get("EXPLORER_THREADS", os.cpu_count() or 1)), 8))
torch.set_num_threads(THREADS)
torch.set_flush_denormal(True)

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def device() -> torch.device:
    """``cuda`` when present (same numbers, faster), else ``cpu``.

    ``EXPLORER_DEVICE=cpu`` forces the CPU, e.g. to compare the two.
    """
    forced = os.environ.get("EXPLORER_DEVICE")
    if forced:
        return torch.device(forced)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def threads(count: int):
    """Run a block with ``count`` intra-op threads, then restore. Training steps are small
    ops (n <= 512 matvecs): on 2 cores one thread is about 2.5x faster than two."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def generator(seed: int, stream: int, dev: torch.device | None = None) -> torch.Generator:
    """A private RNG (never the global one: sessions run concurrently).

    ``stream`` separates what the seed drives: 0 = weights, 1 = inputs, 2 = training data,
    3 = the training read-out.
    """
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed) * 4 + stream)
    return gen
