"""Optional launcher: the same app, with the static files Streamlit sends uncompressed gzip-compressed.

    streamlit run serve.py        # instead of `streamlit run Overview.py`: same flags, same .streamlit/config.toml

Streamlit 1.67 serves its JavaScript bundles uncompressed on purpose (it expects a reverse proxy or CDN in front to
compress and cache them; see docs/deploying.md). A first visit to a chart page then downloads about 9.8 MB, 4.7 MB of
it Plotly's bundle; gzip makes that about 3.3 MB. Where nothing in front compresses (a bare VM or container), this
file wraps the app through ``st.App``, Streamlit's documented ASGI entry point (``streamlit run`` recognises a script
that defines one), in two middlewares:

* ``ui.static_cache.CompressedStaticCache``: the hashed bundles (``immutable, max-age=31536000``, kept) are read from
  the app once, gzip-compressed once, and answered from memory to every later browser (a class of 30 fresh browsers
  would otherwise cost the server 30 reads and, with plain gzip, 30 compressions of Plotly's 4.7 MB, ~0.2 s each);
* Starlette's stock GZipMiddleware for the rest (pages, media); a response that already has a Content-Encoding
  (Streamlit's own compressed messages) passes through.

The WebSocket and the cache headers are untouched. Behind a proxy that compresses and caches, run Overview.py as
usual.
"""
import streamlit as st
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware

from ui.static_cache import CompressedStaticCache

GZIP = {"minimum_size": 1024, "compresslevel": 6}  # bytes below which a body is sent as it is; gzip's level
app = st.App("Overview.py", middleware=[Middleware(CompressedStaticCache, **GZIP), Middleware(GZipMiddleware, **GZIP)])
