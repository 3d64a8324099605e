"""A visitor's first look at the default Simple RNN page (issue 11): what the server sends and how long until the
charts are drawn, in a fresh browser (empty cache) and on a second visit in the same browser.

    python benchmarks/bench_first_visit.py                          # loopback: no network cost at all
    python benchmarks/bench_first_visit.py --mbit 10 --rtt-ms 40    # Chromium's throttling: a visitor's link
    python benchmarks/bench_first_visit.py --launcher Overview.py   # without serve.py's compression

Prints every HTTP response of the fresh visit (bytes on the wire, Content-Encoding, Cache-Control, ETag), the
WebSocket bytes, what gzip would make of the uncompressed text, and the times from navigation to the first and the
last chart drawn (Plotly's ``.main-svg`` in the DOM). The target: a fresh browser's last chart within 2x the page
script's own run time on the server, measured here with AppTest (after a warm-up on another config, as
bench_tour does), so the ratio compares numbers of the same run on the same machine.

Beside it, the framework's floor in the same run: a bare Streamlit page holding one small Plotly chart (written to a
temporary folder, served with the same settings), opened in a fresh browser context the same way. No page of this
app can draw its charts sooner than that page does (Streamlit's frontend starts, Plotly's bundle is evaluated).

The server is ``streamlit run serve.py`` (as the README starts it; or Overview.py) with the project's .streamlit/config.toml (started as
tests/test_hosting.py does), warmed by one visit on another config (imports, first analysis) in a browser context
that is then closed. Debian's Chromium through Playwright, as the browser tests. The machine's load average is
printed with the results: on a shared machine every browser-side time is stretched by the other work on it.
"""
from __future__ import annotations

import argparse
import gzip
import os
import pathlib
import sys
import time
from urllib.parse import urlsplit

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer import backend  # noqa: E402

backend.configure()

PAGE = "Simple_RNN"
CHARTS = 7  # the default Simple RNN page's Plotly charts (two maps in tabs, lag, steps, contributions, eig, sv)
TIMEOUT_MS = 180_000

# Records, from navigation start (performance.now()): when each chart was drawn (its Plotly container holds a
# .main-svg), when a chart box first showed, and when the page's loading-message CSS arrived (ui.classroom).
TIMING_SCRIPT = """
(() => {
  window.__firstVisit = {drawn: [], box: null, css: null};
  const seen = new WeakSet();
  const check = () => {
    const now = performance.now(), t = window.__firstVisit;
    document.querySelectorAll("[data-testid='stPlotlyChart']").forEach(chart => {
      if (!seen.has(chart) && chart.querySelector('.main-svg')) { seen.add(chart); t.drawn.push(now); }
    });
    if (t.box === null && document.querySelector(
        ".stPrintGraphic > [data-testid='stSkeleton'], [data-testid='stPlotlyChart']")) t.box = now;
    if (t.css === null && [...document.querySelectorAll('style')].some(
        s => s.textContent.includes('Loading the charting library'))) t.css = now;
  };
  new MutationObserver(check).observe(document, {childList: true, subtree: true});
})();
"""

def done(charts: int) -> str:
    """A page function: true once ``charts`` charts are drawn and the app is idle."""
    return f"""() => {{
  const t = window.__firstVisit;
  return t && t.drawn.length >= {charts} && !!document.querySelector(
      "[data-testid='stApp'][data-test-script-state='notRunning']");
}}"""


def script_seconds() -> float:
    """The page script's own run time on the server (AppTest), after a warm-up run on another config."""
    from tests.apptests import timed_run

    timed_run(f"pages/2_{PAGE}.py", {"seed": "1"})  # imports, first analysis
    return timed_run(f"pages/2_{PAGE}.py", {})


def throttle(context, page, mbit: float | None, rtt_ms: float) -> None:
    if not mbit:
        return
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": rtt_ms,
                                                  "downloadThroughput": mbit * 1e6 / 8,
                                                  "uploadThroughput": mbit * 1e6 / 8})


def timed_context(browser):
    """A fresh browser context that records the timings (``TIMING_SCRIPT``) of every page it opens."""
    from tests.conftest import VIEWPORT

    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(TIMING_SCRIPT)
    return context


def visit(context, url: str, mbit: float | None, rtt_ms: float, charts: int = CHARTS) -> dict:
    """One visit in ``context``: its requests, WebSocket bytes, and timings (seconds from navigation start)."""
    page = context.new_page()
    throttle(context, page, mbit, rtt_ms)
    finished, ws_bytes = [], [0]
    page.on("requestfinished", lambda request: finished.append(request))
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: ws_bytes.__setitem__(
        0, ws_bytes[0] + len(payload))))
    start = time.perf_counter()
    page.goto(url, wait_until="commit", timeout=TIMEOUT_MS)
    page.wait_for_function(done(charts), timeout=TIMEOUT_MS, polling=50)
    wall = time.perf_counter() - start
    timing = page.evaluate("window.__firstVisit")
    page.wait_for_timeout(300)  # let the last requestfinished events arrive
    rows = []
    for request in finished:
        response = request.response()
        if response is None:
            continue
        headers = response.headers
        sizes = request.sizes()
        body = None
        textual = any(t in headers.get("content-type", "") for t in ("javascript", "css", "json", "html", "text/"))
        if textual and not headers.get("content-encoding") and sizes["responseBodySize"] > 10_000:
            try:
                body = response.body()
            except Exception:  # noqa: BLE001 - a body Chromium did not keep
                body = None
        rows.append({"path": urlsplit(request.url).path, "type": request.resource_type, "status": response.status,
                     "bytes": sizes["responseBodySize"] + sizes["responseHeadersSize"],
                     "body": sizes["responseBodySize"], "encoding": headers.get("content-encoding", "-"),
                     "cache": headers.get("cache-control", "-"), "etag": "etag" in headers,
                     "gzip": len(gzip.compress(body, 6)) if body else None,
                     "start": request.timing["startTime"], "end": request.timing["responseEnd"]})
    page.close()
    drawn = sorted(timing["drawn"])
    return {"rows": rows, "ws": ws_bytes[0], "first": drawn[0] / 1e3, "last": drawn[-1] / 1e3,
            "box": (timing["box"] or 0) / 1e3, "css": (timing["css"] or float("nan")) / 1e3, "wall": wall}


BARE_PAGE = """import plotly.graph_objects as go
import streamlit as st

st.title("One chart")
st.plotly_chart(go.Figure(go.Scatter(y=[1, 3, 2])))
"""


def floor_visit(browser, serve, mbit: float | None, rtt_ms: float) -> float:
    """Seconds from navigation to the drawn chart of a bare one-chart Streamlit page, in a fresh context."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        script = pathlib.Path(folder) / "bare_page.py"
        script.write_text(BARE_PAGE)
        with serve(str(script), "bench_first_visit_floor") as base_url:
            warm = timed_context(browser)  # the server's imports
            visit(warm, base_url, None, 0, charts=1)
            warm.close()
            context = timed_context(browser)
            seconds = visit(context, base_url, mbit, rtt_ms, charts=1)["last"]
            context.close()
    return seconds


def mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB"


def report(name: str, v: dict) -> None:
    rows = v["rows"]
    http = sum(r["bytes"] for r in rows)
    print(f"\n[{name}] {len(rows)} HTTP responses, {mb(http)} on the wire (headers included), "
          f"WebSocket {mb(v['ws'])} received")
    for r in sorted(rows, key=lambda r: -r["bytes"])[:12]:
        gz = f"gzip -> {mb(r['gzip'])}" if r["gzip"] else ""
        print(f"  {r['bytes']:>9,d} B  {r['status']}  enc={r['encoding']:<5} etag={'yes' if r['etag'] else 'no ':<3} "
              f"cache={r['cache']:<38} {r['path'][-48:]}  {gz}")
    if len(rows) > 12:
        rest = rows and sorted(rows, key=lambda r: -r["bytes"])[12:]
        print(f"  ... {len(rest)} more, {sum(r['bytes'] for r in rest):,d} B")
    encodings = {}
    for r in rows:
        encodings[r["encoding"]] = encodings.get(r["encoding"], 0) + r["bytes"]
    print("  bytes by Content-Encoding: " + ", ".join(f"{k}: {mb(b)}" for k, b in encodings.items()))
    caches = {}
    for r in rows:
        key = "immutable, max-age=1y" if "immutable" in r["cache"] else r["cache"]
        caches[key] = caches.get(key, 0) + 1
    print("  Cache-Control: " + ", ".join(f"{k} ({n})" for k, n in caches.items())
          + f"; ETag on {sum(r['etag'] for r in rows)} of {len(rows)}")
    plain = [r for r in rows if r["gzip"]]
    if plain:
        print(f"  uncompressed text (JS, CSS, JSON, HTML) > 10 kB: {mb(sum(r['body'] for r in plain))}, gzip -6 "
              f"would send {mb(sum(r['gzip'] for r in plain))}")
    plotly = [r for r in rows if "PlotlyChart" in r["path"]]
    if plotly:
        r = plotly[0]
        where = "from the browser's cache" if r["body"] <= 0 else f"{mb(r['body'])}, Content-Encoding {r['encoding']}"
        print(f"  Plotly bundle: {where}, {r['end'] / 1e3:.2f} s from request to last byte")
    print(f"  loading-message CSS {v['css']:.2f} s, first chart box shown {v['box']:.2f} s, first chart drawn "
          f"{v['first']:.2f} s, last ({CHARTS}) drawn {v['last']:.2f} s after navigation start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mbit", type=float, default=None, help="throttle the browser to this many Mbit/s")
    parser.add_argument("--rtt-ms", type=float, default=40.0, help="with --mbit: added latency per request")
    parser.add_argument("--launcher", default="serve.py", choices=["serve.py", "Overview.py"],
                        help="the script `streamlit run` starts (serve.py, as the README: it gzips the static bundles)")
    args = parser.parse_args()

    script = script_seconds()
    print(f"[first visit] page script on the server (AppTest, default Simple RNN, first run): {script:.2f} s")

    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM_ARGS, find_chromium
    from tests.test_hosting import serve

    executable = find_chromium()
    if executable is None:
        sys.exit("Chromium not found: apt-get install -y chromium, or set CHROMIUM_PATH")
    with serve(args.launcher, "bench_first_visit") as base_url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        warm = timed_context(browser)
        visit(warm, f"{base_url}/{PAGE}?seed=1", None, 0)  # server imports and first analysis, another config
        warm.close()

        context = timed_context(browser)
        fresh = visit(context, f"{base_url}/{PAGE}", args.mbit, args.rtt_ms)
        second = visit(context, f"{base_url}/{PAGE}", args.mbit, args.rtt_ms)
        context.close()
        floor = floor_visit(browser, serve, args.mbit, args.rtt_ms)
        browser.close()

    print(f"[first visit] load average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())} on "
          f"{os.cpu_count()} cores")
    link = f"throttled to {args.mbit:g} Mbit/s, +{args.rtt_ms:g} ms" if args.mbit else "loopback, unthrottled"
    print(f"[first visit] `streamlit run {args.launcher}`; browser: {link}")
    report("fresh browser context", fresh)
    report("second visit, same context", second)
    print(f"\n[first visit] last chart drawn: fresh {fresh['last']:.2f} s, second visit {second['last']:.2f} s; "
          f"page script {script:.2f} s; fresh / script = {fresh['last'] / script:.2f}x (target <= 2x)")
    print(f"[first visit] the framework's floor: a bare Streamlit page with one Plotly chart drawn {floor:.2f} s after "
          f"navigation in a fresh context = {floor / script:.2f}x this page's script; this page "
          f"{fresh['last'] / floor:.2f}x the floor")


if __name__ == "__main__":
    main()
