"""Streamlit's static bundles answered from memory, gzip-compressed once per server, not once per browser.

A pure ASGI middleware (no Streamlit, no Starlette) for ``serve.py``. Streamlit's hashed bundles under ``/static/``
never change while a server runs (it sends them ``Cache-Control: public, immutable, max-age=31536000``), so the
first request for one is passed to the app without ``Accept-Encoding``; a 200 marked immutable is kept, raw and
gzip-compressed (in a worker thread, once), and every later request for that path is answered from memory, gzip
where the client accepts it. Anything else (other paths, HEAD, range and conditional requests, other statuses or
cache headers) passes through untouched. The memory it holds is bounded (``limit_bytes``).
"""
from __future__ import annotations

import asyncio
import gzip
from dataclasses import dataclass

PASS_THROUGH_HEADERS = (b"range", b"if-none-match", b"if-modified-since", b"if-range")
DROPPED = (b"content-length", b"content-encoding", b"vary")


@dataclass(frozen=True)
class _Entry:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]  # the app's, less length, encoding and vary
    raw: bytes
    compressed: bytes | None  # None: not worth compressing (already compressed media, tiny files)

    @property
    def size(self) -> int:
        return len(self.raw) + len(self.compressed or b"")


def _accepts_gzip(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the request's Accept-Encoding gives gzip (or, where gzip is not named, ``*``) a quality above 0."""
    quality: dict[str, float] = {}
    for name, value in headers:
        if name.lower() != b"accept-encoding":
            continue
        for item in value.decode("latin-1").lower().split(","):
            coding, *params = (part.strip() for part in item.split(";"))
            q = 1.0
            for param in params:
                key, _, number = param.partition("=")
                if key.strip() == "q":
                    try:
                        q = float(number)
                    except ValueError:
                        q = 0.0
            quality[coding] = q
    return quality.get("gzip", quality.get("*", 0.0)) > 0


class CompressedStaticCache:
    """ASGI middleware: the app's immutable ``/static/`` responses kept in memory, compressed once.

    ``minimum_size``: bodies below it are not compressed; ``compresslevel``: gzip's level; ``limit_bytes``: the most
    the kept responses (raw and compressed) may hold; beyond it a response is answered but not kept."""

    def __init__(self, app, *, minimum_size: int = 1024, compresslevel: int = 6, limit_bytes: int = 64 * 2**20):
        self.app = app
        self.minimum_size = minimum_size
        self.compresslevel = compresslevel
        self.limit_bytes = limit_bytes
        self.entries: dict[str, _Entry] = {}
        self.held = 0
        self.fetches = 0  # requests passed to the app to fill the cache (what the tests count)

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] != "http" or scope["method"] != "GET" or "/static/" not in scope["path"]
                or any(name.lower() in PASS_THROUGH_HEADERS for name, _ in scope["headers"])):
            await self.app(scope, receive, send)
            return
        entry = self.entries.get(scope["path"]) or await self._fetch(scope, receive)
        await self._answer(entry, _accepts_gzip(scope["headers"]), send)

    async def _fetch(self, scope, receive) -> _Entry:
        """The app's response to this request without Accept-Encoding, kept when it is an immutable 200."""
        self.fetches += 1
        plain = dict(scope, headers=[(n, v) for n, v in scope["headers"] if n.lower() != b"accept-encoding"])
        start: dict = {}
        body = bytearray()

        async def capture(message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        await self.app(plain, receive, capture)
        headers = tuple((n, v) for n, v in start.get("headers", []) if n.lower() not in DROPPED)
        raw = bytes(body)
        cache_control = b", ".join(v for n, v in headers if n.lower() == b"cache-control").lower()
        keep = start.get("status") == 200 and b"immutable" in cache_control
        compressed = None
        if keep and len(raw) >= self.minimum_size:
            compressed = await asyncio.to_thread(gzip.compress, raw, self.compresslevel, mtime=0)
            if len(compressed) >= len(raw):  # images, fonts: already compressed
                compressed = None
        entry = _Entry(start.get("status", 500), headers, raw, compressed)
        if keep and self.held + entry.size <= self.limit_bytes and scope["path"] not in self.entries:
            self.entries[scope["path"]] = entry
            self.held += entry.size
        return entry

    @staticmethod
    async def _answer(entry: _Entry, gzip_ok: bool, send) -> None:
        body = entry.compressed if gzip_ok and entry.compressed is not None else entry.raw
        headers = list(entry.headers) + [(b"content-length", str(len(body)).encode())]
        if entry.compressed is not None:
            headers.append((b"vary", b"Accept-Encoding"))
            if body is entry.compressed:
                headers.append((b"content-encoding", b"gzip"))
        await send({"type": "http.response.start", "status": entry.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
