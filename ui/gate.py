"""The server's compute gate and the shared caches' byte ledger: what lets one process hold a class.

* :class:`Gate`: at most ``slots`` new computations at once (``EXPLORER_CONCURRENT``, default the cores over
  torch's threads per computation, so threads x computations never exceed the cores); the rest wait in line,
  first come first served, a visitor ahead of the tour's computing-ahead, each told its place.
* :class:`Ledger`: the shared caches' entries by key and size, most recently used last; beyond a byte total
  (``EXPLORER_CACHE_MB``) or a count the oldest are cleared from their ``st.cache_data`` function. It is also how
  a page knows a result is cached (and so skips the line) without computing it.

Both are plain Python (no Streamlit), one object per server process.
"""
from __future__ import annotations

import dataclasses
import itertools
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Hashable, Iterator

import numpy as np

VISITOR, BACKGROUND = 0, 1  # priorities: a lower number goes first


class Gate:
    """A first-come-first-served semaphore whose waiters know how many are ahead of them.

    ``with gate.slot(on_wait=f): ...`` runs the body once one of ``slots`` is free and every earlier ticket of the
    same or a higher priority has started; meanwhile ``f(ahead)`` is called about every ``poll`` seconds with the
    number of tickets ahead (waiting or running). An exception from ``f`` (Streamlit's stop or rerun when the
    visitor leaves or changes a control) leaves the line."""

    def __init__(self, slots: int, poll: float = 0.5):
        self.slots, self.poll = max(1, int(slots)), poll
        self._cond = threading.Condition()
        self._waiting: list[tuple[int, int]] = []  # (priority, ticket), kept sorted
        self._running = 0
        self._tickets = itertools.count()

    def ahead(self, ticket: tuple[int, int]) -> int:
        """Tickets before ``ticket``: those running and those waiting in front of it (call under the lock)."""
        return self._running + self._waiting.index(ticket)

    def _wait_for_turn(self, ticket: tuple[int, int], on_wait: Callable[[int], None] | None) -> None:
        """Wait in line with ``ticket`` (already in it) until it takes a slot; leave the line on any exception."""
        try:
            while True:
                with self._cond:
                    if self._running < self.slots and self._waiting[0] == ticket:
                        self._waiting.pop(0)
                        self._running += 1
                        self._cond.notify_all()  # the next in line may also fit a free slot
                        return
                    ahead = self.ahead(ticket)
                if on_wait is not None:
                    on_wait(ahead)
                with self._cond:
                    if not (self._running < self.slots and self._waiting[0] == ticket):
                        self._cond.wait(self.poll)
        except BaseException:
            with self._cond:
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
                    self._cond.notify_all()
            raise

    def _join(self, priority: int) -> tuple[int, int]:
        ticket = (priority, next(self._tickets))
        with self._cond:
            self._waiting.append(ticket)
            self._waiting.sort()
        return ticket

    @contextmanager
    def slot(self, on_wait: Callable[[int], None] | None = None, priority: int = VISITOR) -> Iterator[None]:
        self._wait_for_turn(self._join(priority), on_wait)
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    def share_turn(self, priority: int = VISITOR) -> None:
        """From inside a slot, for long work (a training run): when others wait, go to the back of the line, let
        them run and take a slot again; else return at once. An exception while waiting (the visitor left)
        propagates, and :meth:`slot`'s exit gives the slot back as usual."""
        with self._cond:
            if not self._waiting:
                return
            self._running -= 1
            self._cond.notify_all()
        try:
            self._wait_for_turn(self._join(priority), None)
        except BaseException:
            with self._cond:
                self._running += 1  # slot()'s exit gives it back
            raise

    def load(self) -> tuple[int, int]:
        """(running, waiting) now."""
        with self._cond:
            return self._running, len(self._waiting)


def nbytes(value: Any) -> int:
    """Bytes held by ``value``'s arrays and tensors, through dataclasses, mappings and sequences (other objects
    count a small constant): the measure of the caches' byte bound, cheaper than pickling."""
    seen: set[int] = set()

    def walk(obj: Any) -> int:
        if id(obj) in seen:
            return 0
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            return obj.nbytes
        if hasattr(obj, "element_size") and hasattr(obj, "nelement"):  # a torch tensor
            return obj.element_size() * obj.nelement()
        if isinstance(obj, (bytes, str)):
            return len(obj)
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return 64 + sum(walk(getattr(obj, f.name)) for f in dataclasses.fields(obj))
        if isinstance(obj, dict):
            return 64 + sum(walk(k) + walk(v) for k, v in obj.items())
        if isinstance(obj, (list, tuple, set, frozenset)):
            return 64 + sum(walk(item) for item in obj)
        return 64

    return walk(value)


class Ledger:
    """The shared caches' entries, most recently used last, with their bytes. :meth:`add` returns the entries
    to clear so that at most ``max_bytes`` and ``max_entries`` stay (never the one just added)."""

    def __init__(self, max_bytes: int, max_entries: int):
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, int] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return True
            return False

    def add(self, key: Hashable, size: int) -> list[Hashable]:
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = size
            evicted = []
            while len(self._entries) > 1 and (len(self._entries) > self.max_entries
                                              or sum(self._entries.values()) > self.max_bytes):
                old, _ = self._entries.popitem(last=False)
                evicted.append(old)
            return evicted

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def total(self) -> int:
        """Bytes of the entries now."""
        with self._lock:
            return sum(self._entries.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
