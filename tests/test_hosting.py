"""Hosting settings (issue 11): .streamlit/config.toml as a public demo needs it, checked on a running server.

* the file: XSRF protection, CORS protection (no cross-origin access), no error details for visitors, a small
  upload cap, no usage statistics, and the settings it had before;
* a server (plain HTTP, no browser): another origin gets no Access-Control-Allow-Origin and no WebSocket, a
  state-changing request without the XSRF token is refused, the XSRF cookie is set;
* an uncaught exception (a throwaway script run with the project's config): the visitor sees Streamlit's generic
  message, no traceback, type, message or file path; STREAMLIT_CLIENT_SHOW_ERROR_DETAILS=full brings them back;
* serve.py (the optional launcher): the static bundles gzip-compressed, cache headers kept, the app served.
"""
from __future__ import annotations

import base64
import contextlib
import gzip
import glob
import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import ARTIFACTS, SERVER_START_TIMEOUT_S, _free_port, _healthy, _stop

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".streamlit" / "config.toml"
FOREIGN = "http://evil.example"
GENERIC = "This app has encountered an error"


@contextlib.contextmanager
def serve(script: str, tag: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """``streamlit run <script>`` from the repository root (so with its .streamlit/config.toml) on a free port:
    the base URL, once healthy; stopped with its process group. Log: test-artifacts/streamlit-<tag>.log."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = ARTIFACTS / f"streamlit-{tag}.log"
    cmd = [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port), "--server.address",
           "127.0.0.1"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(base_url):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`{' '.join(cmd)}` did not start; log {log_path}:\n"
                            + log_path.read_text(errors="replace")[-3000:], pytrace=False)
            time.sleep(0.25)
        yield base_url
    finally:
        _stop(proc)


def get(url: str, method: str = "GET", headers: dict[str, str] | None = None, data: bytes | None = None):
    """(status, headers, body) of one request, an HTTP error status included."""
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def websocket_status(base_url: str, origin: str, host_header: str | None = None) -> str:
    """The status line the server answers a WebSocket handshake on Streamlit's stream with, from ``origin`` (and
    with ``host_header`` as the Host, as a reverse proxy may pass it)."""
    host, port = base_url.removeprefix("http://").split(":")
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host_header or f'{host}:{port}'}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                 f"Origin: {origin}\r\n\r\n")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(handshake.encode())
        return sock.recv(4096).decode("latin-1").split("\r\n", 1)[0]


# ------------------------------------------------------------------ the file

def test_config_is_the_hosted_one():
    config = tomllib.loads(CONFIG.read_text())
    server, client = config["server"], config["client"]
    assert server["enableXsrfProtection"] is True
    assert server["enableCORS"] is True  # CORS *protection* on: no cross-origin access
    assert not server.get("corsAllowedOrigins")  # no origin let in besides the server's own
    assert 1 <= server["maxUploadSize"] <= 16
    assert client["showErrorDetails"] == "none"
    assert config["browser"]["gatherUsageStats"] is False
    # what the file said before the hosting settings
    assert server["headless"] is True and server["runOnSave"] is False
    assert client["toolbarMode"] == "viewer"
    assert config["theme"] == {"base": "light", "primaryColor": "#d62728", "baseFontSize": 17}


@pytest.mark.parametrize("env, expected", [({}, "none"), ({"STREAMLIT_CLIENT_SHOW_ERROR_DETAILS": "full"}, "full")],
                         ids=["file", "environment"])
def test_error_details_follow_the_environment(env, expected):
    """What ``streamlit`` resolves (file, then environment, then flags), as ``streamlit config show`` prints it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    shown = subprocess.run([sys.executable, "-m", "streamlit", "config", "show"], cwd=ROOT, capture_output=True,
                           text=True, timeout=120, env={**environ, **env}).stdout
    assert f'\nshowErrorDetails = "{expected}"\n' in shown, shown[:3000]


# ------------------------------------------------------------------ a running server, plain HTTP

def test_cross_origin_requests_are_refused(streamlit_server):
    status, headers, body = get(f"{streamlit_server}/_stcore/health", headers={"Origin": FOREIGN})
    assert (status, body) == (200, b"ok")
    assert headers.get("Access-Control-Allow-Origin") is None, dict(headers)
    status, headers, _ = get(f"{streamlit_server}/_stcore/health", "OPTIONS",
                             {"Origin": FOREIGN, "Access-Control-Request-Method": "GET"})
    assert headers.get("Access-Control-Allow-Origin") is None, (status, dict(headers))
    # the app itself is the WebSocket: refused from another site, accepted from the page's own origin
    assert websocket_status(streamlit_server, FOREIGN).split()[1] == "403"
    assert websocket_status(streamlit_server, streamlit_server).split()[1] == "101"
    # behind a reverse proxy: the page's origin is the public name, allowed when the proxy passes the Host the
    # browser asked for (nginx: proxy_set_header Host $http_host), refused when it sends its upstream's
    public = "https://demo.example.org"
    assert websocket_status(streamlit_server, public, host_header="demo.example.org").split()[1] == "101"
    assert websocket_status(streamlit_server, public).split()[1] == "403"


def test_xsrf_cookie_and_token(streamlit_server):
    _, headers, _ = get(f"{streamlit_server}/_stcore/health")
    cookies = headers.get_all("Set-Cookie") or []
    xsrf = [c for c in cookies if c.startswith("_streamlit_xsrf=")]
    assert xsrf and "SameSite=Lax" in xsrf[0], cookies
    # a state-changing request (an upload) without the token is refused
    status, _, body = get(f"{streamlit_server}/_stcore/upload_file/session/file", "PUT",
                          {"Origin": FOREIGN}, b"payload")
    assert status == 403 and b"XSRF" in body, (status, body)


# ------------------------------------------------------------------ what a visitor sees of an exception

BOOM = '''import streamlit as st
st.title("boom")
raise ValueError("secret detail from the server")
'''


@pytest.mark.browser
def test_an_exception_shows_no_details(page, tmp_path):
    """The project's config: Streamlit's generic message; the environment variable: the full report."""
    from tests.test_browser import IDLE, LOAD_TIMEOUT_MS

    script = tmp_path / "boom_script.py"
    script.write_text(BOOM)
    for env, shown in (({}, False), ({"STREAMLIT_CLIENT_SHOW_ERROR_DETAILS": "full"}, True)):
        with serve(str(script), f"hosting_boom_{'full' if shown else 'none'}", env) as base_url:
            page.goto(base_url, timeout=LOAD_TIMEOUT_MS)
            error = page.locator("[data-testid='stException']")
            error.first.wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
            page.locator(IDLE).wait_for(state="attached", timeout=LOAD_TIMEOUT_MS)
            text = page.locator("[data-testid='stMain']").inner_text()
        assert GENERIC not in text if shown else GENERIC in text, text
        for detail in ("Traceback", "ValueError", "secret detail", "boom_script", str(tmp_path), 'File "'):
            if shown and detail in ("ValueError", "secret detail"):
                assert detail in text, text
            elif not shown:
                assert detail not in text, f"{detail!r} shown to a visitor:\n{text}"


# ------------------------------------------------------------------ serve.py: the compressed launcher

@pytest.fixture(scope="module")
def serve_py() -> Iterator[str]:
    with serve("serve.py", "hosting_serve_py") as base_url:
        yield base_url


def test_serve_py_compresses_the_bundles(serve_py):
    from streamlit import file_util

    bundle = Path(glob.glob(os.path.join(file_util.get_static_dir(), "static", "js", "PlotlyChart.*.js"))[0])
    status, headers, body = get(f"{serve_py}/static/js/{bundle.name}", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("Content-Encoding") == "gzip", dict(headers)
    assert "immutable" in headers.get("Cache-Control", "") and "max-age=31536000" in headers["Cache-Control"]
    assert gzip.decompress(body) == bundle.read_bytes()
    assert len(body) < 0.4 * bundle.stat().st_size
    status, headers, _ = get(f"{serve_py}/static/js/{bundle.name}")  # a client that does not ask for gzip
    assert status == 200 and headers.get("Content-Encoding") is None
    status, headers, body = get(f"{serve_py}/Simple_RNN", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and b"<div id=\"root\">" in gzip.decompress(body)
    # the same hosting settings as `streamlit run Overview.py`
    assert websocket_status(serve_py, FOREIGN).split()[1] == "403"
    assert websocket_status(serve_py, serve_py).split()[1] == "101"
    _, headers, _ = get(f"{serve_py}/_stcore/health", headers={"Origin": FOREIGN})
    assert headers.get("Access-Control-Allow-Origin") is None
    assert any(c.startswith("_streamlit_xsrf=") for c in headers.get_all("Set-Cookie") or [])


@pytest.mark.browser
def test_serve_py_serves_the_app(page, serve_py, expected_nav_labels, simple_rnn_page):
    """The app behind the launcher: the pages/ navigation and a page's charts, as with Overview.py."""
    from tests.test_browser import assert_healthy, nav_labels, wait_for_app

    page.goto(f"{serve_py}/{simple_rnn_page.url_path}?seq_len=30&hidden=8")
    wait_for_app(page, charts=True)
    assert_healthy(page, page.url)
    assert nav_labels(page) == expected_nav_labels


def test_the_browser_tests_start_what_the_readmes_first_command_starts():
    """The end-to-end tests and the benchmarks drive the app as a visitor gets it: the launcher of the README's
    first set-up command."""
    from tests.conftest import LAUNCHER

    readme = (ROOT / "README.md").read_text()
    first = readme.split("```", 2)[1].strip().splitlines()[0]
    assert first.endswith(f"streamlit run {LAUNCHER}"), first
    for bench in ("bench_classroom.py", "bench_first_visit.py"):
        assert f'default="{LAUNCHER}"' in (ROOT / "benchmarks" / bench).read_text(), bench


@pytest.mark.parametrize("page", ["pages/2_Simple_RNN.py", "pages/3_LSTM_and_GRU.py", "pages/4_Modern_Recurrences.py"])
def test_no_download_is_made_or_stored_on_a_run(page):
    """Every file a page offers is made when its button is clicked (a deferred file), never formatted and stored on
    every run: the browser fetched each stored file once per page view to check its link, nine requests through
    the server's whole middleware stack per visit on the Simple RNN page."""
    from tests.apptests import run

    at = run(page, {})
    assert not at.exception
    buttons = at.get("download_button")
    assert len(buttons) >= 5
    stored = [b.proto.label for b in buttons if b.proto.url or not b.proto.deferred_file_id]
    assert not stored, f"made on every run: {stored}"
