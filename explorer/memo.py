"""Figures remembered by the content of their arguments: a class opening one link asks for the same figures
again and again, and building a Plotly figure (its validators and layout machinery) was 60 % of a cached page's
script. Never calls Streamlit.

``@figure_memo`` keys a call by its function and a digest of its arguments (arrays by dtype, shape and bytes), so
the same numbers give the same figure object whoever asks, and different numbers can never meet a stale one. The
figure returned is shared: callers must not change it (copy it first, as ``ui.classroom.style`` does). Entries are
bounded by bytes (their arrays' sizes) and dropped least recently used first.

A remembered figure is a :class:`SharedFigure`: Streamlit asks every chart for ``to_dict()`` on every run (a deep
copy of each array and a base64 pass over it, a quarter of a cached page's rerun), and a figure that never changes
makes that dict once.
"""
from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np
import plotly.graph_objects as go

from .limits import LIMITS

FIGURE_SHARE = 4  # a quarter of EXPLORER_CACHE_MB (explorer.limits) for figures: 64 MB by default, where the
# usual page's figures take 0.1-2 MB each, so a class's few configs fit many times over


class SharedFigure(go.Figure):
    """A figure shared by every caller and never changed: :meth:`to_dict` makes its dict once and returns that same
    dict after (read it, never change it). Copy the figure, ``go.Figure(shared)``, for a plain one to change."""

    def to_dict(self) -> dict:
        made = self.__dict__.get("_made_dict")
        if made is None:
            made = super().to_dict()
            self.__dict__["_made_dict"] = made  # (past plotly's __setattr__, which validates property names)
        return made


def shared_figure(figure: Any) -> Any:
    """``figure`` (a plain ``go.Figure``) as a :class:`SharedFigure`, in place; anything else as it is."""
    if type(figure) is go.Figure:
        figure.__class__ = SharedFigure
    return figure


class _Unhashable(Exception):
    """An argument the digest does not know: the call is made without the memo."""


def _feed(h, value: Any) -> int:
    """Feed ``value`` into the hash ``h``; returns the bytes of arrays it holds (the entry's size estimate)."""
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        h.update(f"nd{array.dtype.str}{array.shape}".encode())
        h.update(array.view(np.uint8).reshape(-1).data if array.size else b"")
        return array.nbytes
    if value is None or isinstance(value, (bool, int, float, complex, str, np.generic)):
        h.update(f"{type(value).__name__}:{value!r};".encode())
        return 0
    if isinstance(value, (tuple, list)):
        h.update(f"{type(value).__name__}[{len(value)}".encode())
        size = sum(_feed(h, item) for item in value)
        h.update(b"]")
        return size
    if isinstance(value, dict):
        h.update(f"dict{{{len(value)}".encode())
        size = 0
        for key, item in value.items():  # in order: the order of curves is part of the figure
            size += _feed(h, key) + _feed(h, item)
        h.update(b"}")
        return size
    raise _Unhashable(type(value).__name__)


class FigureMemo:
    """A thread-safe least-recently-used store of figures, bounded by ``max_bytes``."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: bytes) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: bytes, figure: Any, size: int) -> None:
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (figure, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes


MEMO = FigureMemo(LIMITS.cache_mb * 2**20 // FIGURE_SHARE)


def figure_memo(fn: Callable) -> Callable:
    """Remember ``fn``'s figures by the content of its arguments (see the module)."""
    @functools.wraps(fn)
    def remembered(*args, **kwargs):
        h = hashlib.blake2b(f"{fn.__module__}.{fn.__qualname__}".encode(), digest_size=20)
        try:
            size = _feed(h, args) + _feed(h, dict(sorted(kwargs.items())))
        except _Unhashable:
            return fn(*args, **kwargs)
        key = h.digest()
        figure = MEMO.get(key)
        if figure is None:
            figure = shared_figure(fn(*args, **kwargs))
            # the figure holds its own copies of the arrays and its layout, and the dict it makes once their base64 text
            MEMO.put(key, figure, 4 * size + 50_000)
        return figure

    remembered.uncached = fn
    return remembered
