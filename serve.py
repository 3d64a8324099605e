"""Optional launcher: the same app, with the static files Streamlit sends uncompressed gzip-compressed.

    streamlit run serve.py        # instead of `streamlit run Overview.py`: same flags, same .streamlit/config.toml

Streamlit 1.67 serves its JavaScript bundles uncompressed on purpose (it expects a reverse proxy or CDN in front to
compress and cache them; see docs/deploying.md). A first visit to a chart page then downloads about 9.8 MB, 4.7 MB of
it Plotly's bundle; gzip makes that about 3.3 MB. Where nothing in front compresses (a bare VM or container), this
file wraps the app in Starlette's stock GZipMiddleware through ``st.App``, Streamlit's documented ASGI entry point
(``streamlit run`` recognises a script that defines one). Streamlit's own compression of everything else is untouched
(the middleware passes a response that already has a Content-Encoding through), as are the WebSocket and the cache
headers (the hashed bundles stay ``immutable, max-age=31536000``). The cost: the bundles are compressed again for
each browser that fetches them (about 0.2 s of CPU for Plotly's, once per browser, since browsers keep them).
Behind a proxy that compresses, run Overview.py as usual.
"""
import streamlit as st
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware

app = st.App("Overview.py", middleware=[Middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)])
