"""A class opening one link at once: N concurrent fresh browsers (Playwright contexts in Debian's Chromium) against
``streamlit run serve.py`` (as the README starts it) on a free port, for N = 1, 10 and 20.

The browsers run on the server's own cores, so their rendering is told apart from the server's work: they run at
the lowest CPU priority (``nice 19``, ``--browser-nice``), so the scheduler serves the server first, as if the
browsers were on the visitors' own machines; and per scenario:

(a) the server process's CPU seconds per visit (/proc/<pid>/stat, the whole scenario over N);
(b) the server-side time of each session's script runs (``EXPLORER_RUN_LOG``, ``ui/runlog.py``): p50 / p95 of the
    wall time, and p95 of the script thread's CPU time (the wall time includes waiting for the cores the browsers
    share);
(c) the browsers' p50 / p95 from navigation to the last chart drawn (to the idle app on the text-only Overview),
    beside the Overview's at the same N: the browsers' own floor;

and errors (an exception on a page, a visit that timed out) and the server's peak RSS (VmHWM).

    python benchmarks/bench_classroom.py              # about 10 minutes on 2 cores
    python benchmarks/bench_classroom.py --quick      # N = 1 and 5
    python benchmarks/bench_classroom.py --browser-nice 0   # browsers at the server's priority
    python benchmarks/bench_classroom.py --launcher Overview.py   # the app without serve.py's compression

Targets (issue 11): the same cached link at N = 20 costs the server <= 1.5x its N = 1 CPU per visit and (b)'s p95
is <= 3x N = 1's; no errors; 10 different configs at once all complete and the queue message is seen; a cached
Simple RNN or LSTM/GRU page costs <= 1.5x the Overview's server CPU per visit, measured in the same run.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import CHROMIUM_ARGS, VIEWPORT, _free_port as free_port, find_chromium  # noqa: E402

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
HEADING = "[data-testid='stMain'] h1"
CHART = "[data-testid='stPlotlyChart']"
DRAWN = "[data-testid='stPlotlyChart'] .js-plotly-plot .main-svg"
EXCEPTION = "[data-testid='stException']"
TIMEOUT_MS = 300_000
TICKS = os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server(run_log: str, launcher: str = "serve.py"):
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", launcher, "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "EXPLORER_RUN_LOG": run_log}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read().strip() == b"ok":
                    break
            time.sleep(0.25)
        yield proc.pid, url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def visit(browser, url: str, charts: bool, seen_queue: list[bool]) -> tuple[float | None, str]:
    """Seconds from navigation to the last chart drawn (or the idle app), and an error ("" if none)."""
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    try:
        start = time.perf_counter()
        await page.goto(url, timeout=TIMEOUT_MS)
        await page.locator(HEADING).first.wait_for(state="visible", timeout=TIMEOUT_MS)
        while True:  # idle, and (on chart pages) every chart box drawn
            if await page.get_by_text("Queued:").count():
                seen_queue[0] = True
            idle = await page.locator(IDLE).count()
            boxes, drawn = await page.locator(CHART).count(), await page.locator(DRAWN).count()
            if idle and (not charts or (boxes and drawn >= boxes)):
                break
            if time.perf_counter() - start > TIMEOUT_MS / 1000:
                return None, "timed out"
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - start
        if await page.locator(EXCEPTION).count():
            return seconds, "exception: " + (await page.locator(EXCEPTION).first.inner_text())[:200]
        return seconds, ""
    except Exception as err:  # noqa: BLE001 - counted as an error of the visit
        return None, f"{type(err).__name__}: {err}"[:200]
    finally:
        await context.close()


def runs_since(path: str, offset: int) -> tuple[list[dict], int]:
    with open(path, "a+", encoding="utf-8") as log:
        log.seek(offset)
        text = log.read()
        return [json.loads(line) for line in text.splitlines() if line.strip()], offset + len(text.encode())


async def scenario(browser, pid: int, base: str, run_log: str, label: str, paths: list[str], charts: bool) -> dict:
    _, offset = runs_since(run_log, 0)
    cpu0, seen_queue = cpu_seconds(pid), [False]
    results = await asyncio.gather(*(visit(browser, base + path, charts, seen_queue) for path in paths))
    await asyncio.sleep(1.0)  # the server's last messages
    cpu = (cpu_seconds(pid) - cpu0) / len(paths)
    runs, _ = runs_since(run_log, offset)
    script = [r["seconds"] for r in runs if r["outcome"] == "with_success"]
    script_cpu = [r["cpu_seconds"] for r in runs if r["outcome"] == "with_success"]
    times = [t for t, _ in results if t is not None]
    errors = [e for _, e in results if e]
    row = dict(label=label, n=len(paths), cpu=cpu, script_p50=percentile(script, 0.5),
               script_p95=percentile(script, 0.95), script_cpu_p95=percentile(script_cpu, 0.95), browser_p50=percentile(times, 0.5),
               browser_p95=percentile(times, 0.95), errors=errors, queue_seen=seen_queue[0], rss=peak_rss_mb(pid))
    print(f"[classroom] {label:28s} N={len(paths):2d}  server CPU/visit {cpu:5.2f} s  script p50/p95 "
          f"{row['script_p50']:5.2f}/{row['script_p95']:5.2f} s (CPU p95 {row['script_cpu_p95']:4.2f} s)  browsers p50/p95 {row['browser_p50']:5.1f}/"
          f"{row['browser_p95']:5.1f} s  errors {len(errors)}  queue seen {seen_queue[0]}  peak RSS {row['rss']:.0f} MB",
          flush=True)
    for error in errors[:3]:
        print(f"[classroom]     {error}")
    return row


def niced(executable: str, niceness: int, folder: str) -> str:
    """A launcher that starts ``executable`` at CPU priority ``niceness`` (every process it forks inherits it)."""
    if niceness == 0:
        return executable
    launcher = pathlib.Path(folder) / "chromium-niced"
    launcher.write_text(f'#!/bin/sh\nexec nice -n {niceness} "{executable}" "$@"\n')
    launcher.chmod(0o755)
    return str(launcher)


async def main_async(ns: list[int], browser_nice: int, launcher: str) -> None:
    from playwright.async_api import async_playwright

    executable = find_chromium()
    if executable is None:
        sys.exit("Chromium not found: apt-get install -y chromium (or set CHROMIUM_PATH)")
    launchers = tempfile.TemporaryDirectory()
    executable = niced(executable, browser_nice, launchers.name)
    run_log = tempfile.mktemp(prefix="explorer-runs-", suffix=".jsonl")
    rnn = "/Simple_RNN?seq_len=200&hidden=64&seed=1"
    lstm = "/LSTM_and_GRU?seq_len=100&hidden=32&seed=1"
    rows = []
    with server(run_log, launcher) as (pid, base):
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
            for path, charts in ((rnn, True), (lstm, True), ("/", False)):  # warm: imports, caches, first kernels
                await visit(browser, base + path, charts, [False])
            for n in ns:
                rows.append(await scenario(browser, pid, base, run_log, "Overview (text only)", ["/"] * n, False))
                rows.append(await scenario(browser, pid, base, run_log, "Simple RNN, cached link", [rnn] * n, True))
                rows.append(await scenario(browser, pid, base, run_log, "LSTM and GRU, cached link", [lstm] * n, True))
            different = [f"/Simple_RNN?seq_len=300&hidden=96&seed={1000 + k}" for k in range(10)]
            rows.append(await scenario(browser, pid, base, run_log, "Simple RNN, 10 new configs", different, True))
            await browser.close()
    os.unlink(run_log)
    launchers.cleanup()

    def row(label: str, n: int) -> dict:
        return next(r for r in rows if r["label"] == label and r["n"] == n)

    low, high = min(ns), max(ns)
    print("[classroom] summary")
    for label in ("Simple RNN, cached link", "LSTM and GRU, cached link"):
        one, many = row(label, low), row(label, high)
        print(f"[classroom]   {label}: CPU/visit N={high} / N={low} = {many['cpu'] / one['cpu']:.2f} (target <= 1.5); "
              f"script p95 N={high} / N={low} = {many['script_p95'] / one['script_p95']:.2f} wall (target <= 3), "
              f"{many['script_cpu_p95'] / one['script_cpu_p95']:.2f} in the script thread's CPU time")
        for n in ns:
            print(f"[classroom]   {label} N={n}: server CPU/visit {row(label, n)['cpu'] / row('Overview (text only)', n)['cpu']:.2f}x "
                  "the Overview's (target <= 1.5)")
    new = rows[-1]
    print(f"[classroom]   10 new configs: {10 - len(new['errors'])} of 10 completed, queue message seen: "
          f"{new['queue_seen']}")
    print(f"[classroom]   errors in all: {sum(len(r['errors']) for r in rows)}; peak RSS {max(r['rss'] for r in rows):.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="N = 1 and 5 only")
    parser.add_argument("--browser-nice", type=int, default=19, choices=range(0, 20), metavar="0..19",
                        help="the browsers' CPU niceness (default 19: the server is served first; 0: same priority)")
    parser.add_argument("--launcher", default="serve.py", choices=("serve.py", "Overview.py"),
                        help="the script `streamlit run` starts (serve.py, as the README: the static bundles compressed once)")
    args = parser.parse_args()
    print(f"[classroom] streamlit run {args.launcher}; browsers at nice {args.browser_nice}", flush=True)
    asyncio.run(main_async([1, 5] if args.quick else [1, 10, 20], args.browser_nice, args.launcher))


if __name__ == "__main__":
    main()
