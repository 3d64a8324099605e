"""ui.static_cache.CompressedStaticCache (serve.py's first middleware) against a stub ASGI app: an immutable static
bundle is fetched from the app once, gzip-compressed once, and answered from memory to every client after, gzip
only to clients that accept it; everything else passes through to the app as it came."""
import asyncio
import gzip
from concurrent.futures import ThreadPoolExecutor

from ui.static_cache import CompressedStaticCache

BUNDLE = b"function plot(){return 1}\n" * 4000  # ~100 kB of JavaScript


class StubApp:
    """Answers /static/* with BUNDLE (immutable), /static/index.html with no-cache, anything else 404."""

    def __init__(self):
        self.requests = []

    async def __call__(self, scope, receive, send):
        self.requests.append(scope)
        immutable = scope["path"].endswith(".js")
        status = 200 if scope["path"].startswith("/static/") else 404
        cache = b"public, immutable, max-age=31536000" if immutable else b"no-cache"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/javascript"), (b"cache-control", cache),
                                (b"content-length", str(len(BUNDLE)).encode()), (b"etag", b'"abc"')]})
        await send({"type": "http.response.body", "body": BUNDLE[:50_000], "more_body": True})
        await send({"type": "http.response.body", "body": BUNDLE[50_000:]})


def request(app, path: str, *, method: str = "GET", headers: list[tuple[bytes, bytes]] = ()) -> tuple[int, dict, bytes]:
    scope = {"type": "http", "method": method, "path": path, "headers": list(headers)}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    with ThreadPoolExecutor(1) as thread:  # its own event loop: this test's worker may run Playwright's already
        thread.submit(asyncio.run, app(scope, receive, send)).result()
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


GZIP = [(b"accept-encoding", b"gzip, deflate, br")]


def test_an_immutable_bundle_is_fetched_once_compressed_once_and_served_from_memory():
    stub = StubApp()
    cache = CompressedStaticCache(stub)
    for _ in range(3):
        status, headers, body = request(cache, "/static/js/Plotly.abc.js", headers=GZIP)
        assert status == 200 and headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding"
        assert gzip.decompress(body) == BUNDLE and int(headers["content-length"]) == len(body) < len(BUNDLE) / 10
        assert headers["cache-control"] == "public, immutable, max-age=31536000" and headers["etag"] == '"abc"'
    status, headers, body = request(cache, "/static/js/Plotly.abc.js")  # a client that does not ask for gzip
    assert status == 200 and "content-encoding" not in headers and body == BUNDLE
    status, headers, body = request(cache, "/static/js/Plotly.abc.js", headers=[(b"accept-encoding", b"gzip;q=0")])
    assert "content-encoding" not in headers and body == BUNDLE
    assert len(stub.requests) == 1 and cache.fetches == 1  # one fetch for five clients
    assert all(name != b"accept-encoding" for name, _ in stub.requests[0]["headers"])  # fetched uncompressed
    assert cache.held == len(BUNDLE) + len(cache.entries["/static/js/Plotly.abc.js"].compressed)


def test_everything_else_passes_through_to_the_app():
    stub = StubApp()
    cache = CompressedStaticCache(stub)
    for path, kwargs in [("/static/index.html", {}), ("/static/index.html", {}), ("/Simple_RNN", {}),
                         ("/static/js/a.js", {"method": "HEAD"}),
                         ("/static/js/a.js", {"headers": [(b"range", b"bytes=0-10")]}),
                         ("/static/js/a.js", {"headers": [(b"if-none-match", b'"abc"')]})]:
        status, headers, body = request(cache, path, **kwargs)
        assert "content-encoding" not in headers
    assert len(stub.requests) == 6 and cache.entries == {}  # no-cache, 404, HEAD, range, conditional: not kept
    assert stub.requests[3]["method"] == "HEAD" and stub.requests[4]["headers"] == [(b"range", b"bytes=0-10")]


def test_memory_held_is_bounded():
    stub = StubApp()
    cache = CompressedStaticCache(stub, limit_bytes=len(BUNDLE) + 50_000)
    for name in ("a", "b", "c"):
        for _ in range(2):
            status, _, body = request(cache, f"/static/js/{name}.js", headers=GZIP)
            assert status == 200 and gzip.decompress(body) == BUNDLE
    assert list(cache.entries) == ["/static/js/a.js"] and cache.held <= cache.limit_bytes
    assert len(stub.requests) == 5  # a once; b and c, not kept, fetched for each request


def test_accept_encoding_qualities():
    from ui.static_cache import _accepts_gzip

    for value, wanted in [(b"gzip, deflate, br", True), (b"GZIP", True), (b"gzip;q=0.2", True), (b"*", True),
                          (b"gzip;q=0", False), (b"gzip; q=0.000", False), (b"br", False), (b"identity", False),
                          (b"*;q=0.5, gzip;q=0", False), (b"gzip;q=oops", False)]:
        assert _accepts_gzip([(b"accept-encoding", value)]) is wanted, value
    assert _accepts_gzip([]) is False
