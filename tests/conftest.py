"""Shared fixtures: the app's pages (discovered from ``pages/``), ``streamlit run`` servers, Chromium.

* ``app_page``: any test that asks for it is parametrised over every page of the app: the
  entry script (Overview) plus one per file in ``pages/``, labelled and ordered as Streamlit's
  pages/ auto-discovery does, so a new page is covered without touching the tests.
  ``on_demand_page``: the same, over the pages whose charts wait for a button (``ON_DEMAND``).
* ``expected_nav_labels``, ``simple_rnn_page``: the sidebar's expected entries, in order, and
  the Simple RNN page.
* ``streamlit_server``: one ``streamlit run serve.py`` (the README's command) for the whole session (base URL).
* ``fresh_streamlit_server``: a brand-new server for one test alone; nothing but its health
  endpoint is requested before the test's own first request.
* ``chromium`` / ``page``: Debian's Chromium through Playwright's sync API (never a downloaded
  browser). Missing Chromium or Playwright skips the browser tests, and fails them under CI=true.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENTRY = "Overview.py"  # the main page
LAUNCHER = "serve.py"  # what the README's first command runs: the same app, its bundles compressed once
ARTIFACTS = ROOT / "test-artifacts"  # git-ignored: screenshots, server logs
SERVER_START_TIMEOUT_S = 60.0
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1000}

# Pages that draw their charts only after a button press, by design (every other page but the
# Overview must draw a Plotly chart on load), keyed by sidebar label: the button's widget key, and
# a URL config that keeps the action to a second or two on 2 cores.
ON_DEMAND: dict[str, tuple[str, dict[str, str]]] = {
    "Training Lab": ("lab_start", {"task": "adding", "seq_len": "10", "hidden": "8", "steps": "30",
                                   "batch_size": "8", "record_every": "5"}),
}

# Streamlit's own rule for pages/ file names (streamlit.source_util.PAGE_FILENAME_REGEX):
# "2_Simple_RNN.py" -> sort key (2, "simple_rnn"), URL path "Simple_RNN", label "Simple RNN".
_PAGE_FILENAME = re.compile(r"([0-9]*)[_ -]*(.*)\.py")


@dataclasses.dataclass(frozen=True)
class AppPage:
    script: str  # relative to the repository root: "Overview.py", "pages/2_Simple_RNN.py"
    label: str  # the sidebar entry
    url_path: str  # "" for the entry script
    is_main: bool
    action_key: str | None = None  # ON_DEMAND pages: the key of the button that draws the charts
    action_query: tuple[tuple[str, str], ...] = ()  # ... and a quick config for it

    @property
    def slug(self) -> str:
        return self.url_path or "Overview"

    @property
    def charts_on_load(self) -> bool:
        return not self.is_main and self.action_key is None

    @property
    def quick_query(self) -> dict[str, str]:
        return dict(self.action_query)


def _name(path: Path) -> tuple[str, str]:
    match = _PAGE_FILENAME.search(path.name)
    assert match, path
    return match.group(1), re.sub(r"[_ ]+", "_", match.group(2)).strip() or match.group(1)


def _sort_key(path: Path) -> tuple[float, str]:
    number, name = _name(path)
    return (float(number) if number else float("inf"), name.lower())


def discover_pages() -> list[AppPage]:
    """The entry script, then every ``pages/*.py`` in Streamlit's order (as its v1 pages/ support)."""
    main_name = _name(ROOT / ENTRY)[1]
    pages = [AppPage(ENTRY, main_name.replace("_", " "), "", True)]
    files = [p for p in (ROOT / "pages").glob("*.py") if not p.name.startswith(".") and p.name != "__init__.py"]
    for path in sorted(files, key=_sort_key):
        name = _name(path)[1]
        label = name.replace("_", " ")
        key, query = ON_DEMAND.get(label, (None, {}))
        pages.append(AppPage(f"pages/{path.name}", label, name, False, key, tuple(query.items())))
    return pages


PAGES = discover_pages()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Debian's Chromium (Playwright) against `streamlit run`")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``-n 2 --dist loadgroup``, pytest.ini) every browser test runs in one worker, one after
    another, beside the other tests in the other: the browser tests share a server and wait on Chromium, the rest
    compute."""
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.xdist_group("browser"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "app_page" in metafunc.fixturenames:
        metafunc.parametrize("app_page", PAGES, ids=[p.slug for p in PAGES])
    if "on_demand_page" in metafunc.fixturenames:
        pages = [p for p in PAGES if p.action_key]
        metafunc.parametrize("on_demand_page", pages, ids=[p.slug for p in pages])


@pytest.fixture(scope="session")
def expected_nav_labels() -> list[str]:
    return [p.label for p in PAGES]


@pytest.fixture(scope="session")
def stale_on_demand_labels() -> list[str]:
    return sorted(set(ON_DEMAND) - {p.label for p in PAGES})


@pytest.fixture(scope="session")
def simple_rnn_page() -> AppPage:
    matches = [p for p in PAGES if p.label == "Simple RNN"]
    assert len(matches) == 1, f"expected one Simple RNN page in pages/, found {[p.script for p in PAGES]}"
    return matches[0]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# ------------------------------------------------------------------ streamlit run servers

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after 15 s."""
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)  # start_new_session: the group id is the server's pid
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # any child left in the group
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@contextlib.contextmanager
def run_streamlit(tag: str) -> Iterator[str]:
    """Start ``streamlit run serve.py`` (as the README does) on a free port, wait for its health endpoint (only),
    yield the base URL, and stop the server with its process group. The log goes to
    test-artifacts/streamlit-<tag>.log."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "streamlit", "run", LAUNCHER, "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    log_path = ARTIFACTS / f"streamlit-{tag}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(base_url):
            if proc.poll() is not None or time.monotonic() > deadline:
                why = f"exited with status {proc.returncode}" if proc.poll() is not None else \
                    f"not healthy after {SERVER_START_TIMEOUT_S:.0f} s"
                tail = log_path.read_text(errors="replace")[-3000:]
                pytest.fail(f"`{' '.join(cmd)}` {why}; log {log_path}:\n{tail}", pytrace=False)
            time.sleep(0.25)
        yield base_url
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def streamlit_server() -> Iterator[str]:
    """One server shared by the session's browser tests: its base URL, e.g. http://127.0.0.1:41234."""
    with run_streamlit("session") as base_url:
        yield base_url


@pytest.fixture
def fresh_streamlit_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """A brand-new server for this test alone; no page has been requested from it yet."""
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    with run_streamlit(tag) as base_url:
        yield base_url


# ------------------------------------------------------------------ Chromium via Playwright

def _unavailable(message: str) -> None:
    """Skip locally; under CI=true a missing browser is a failure, never a silent skip."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: browser tests must run)", pytrace=False)
    pytest.skip(message)


def find_chromium() -> str | None:
    candidates = [os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", "/usr/bin/chromium-browser",
                  shutil.which("chromium"), shutil.which("chromium-browser")]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium (playwright.sync_api.Browser) from the system, never a downloaded one."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is missing: pip install -r requirements-dev.txt "
                     "(its browser download is not needed: the tests use the system Chromium)")
    executable = find_chromium()
    if executable is None:
        _unavailable("Chromium not found: install Debian's chromium (apt-get install -y chromium) "
                     "or set CHROMIUM_PATH to a Chromium executable")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium):
    """A fresh browser context (its own Streamlit session) and page; ``page.js_errors`` collects
    uncaught JavaScript exceptions."""
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    pg = context.new_page()
    pg.js_errors = []
    pg.on("pageerror", lambda err: pg.js_errors.append(str(err)))
    try:
        yield pg
    finally:
        context.close()
