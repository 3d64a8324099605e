"""The server's compute gate (ui.gate.Gate) and the caches' byte ledger (ui.gate.Ledger): first come first served,
each waiter told its place, a stopped waiter leaving the line; two pages asking for new work at once run one
after the other and both finish; a cached result needs no turn."""
from __future__ import annotations

import pickle
import threading
import time

import pytest

import ui.results as results
from explorer import ExperimentConfig, analyze
from tests.apptests import run
from ui.gate import BACKGROUND, Gate, Ledger, nbytes


def _hold(gate: Gate, started: threading.Event, release: threading.Event, **kwargs) -> threading.Thread:
    def body():
        with gate.slot(**kwargs):
            started.set()
            release.wait(10)

    thread = threading.Thread(target=body)
    thread.start()
    assert started.wait(5)
    return thread


def test_waiters_start_in_order_of_arrival_and_each_is_told_how_many_are_ahead():
    gate, order, seen = Gate(1, poll=0.02), [], {}
    started, release = threading.Event(), threading.Event()
    holder = _hold(gate, started, release)

    def visitor(name: str, priority: int = 0):
        def told(ahead: int) -> None:
            seen.setdefault(name, set()).add(ahead)

        with gate.slot(on_wait=told, priority=priority):
            order.append(name)

    threads = []
    for name, priority in (("first", 0), ("background", BACKGROUND), ("second", 0)):
        threads.append(threading.Thread(target=visitor, args=(name, priority)))
        threads[-1].start()
        time.sleep(0.1)
    assert gate.load() == (1, 3)
    release.set()
    for thread in (holder, *threads):
        thread.join(5)
    assert order == ["first", "second", "background"]  # visitors before the tour's computing-ahead
    assert 1 in seen["first"] and 2 in seen["second"] and 3 in seen["background"]
    assert gate.load() == (0, 0)


def test_a_waiter_stopped_by_its_visitor_leaves_the_line_and_the_next_goes_on():
    gate = Gate(1, poll=0.02)
    started, release = threading.Event(), threading.Event()
    holder = _hold(gate, started, release)

    def leave(ahead: int) -> None:
        raise KeyboardInterrupt("the visitor closed the tab")  # as Streamlit's StopException would

    with pytest.raises(KeyboardInterrupt):
        with gate.slot(on_wait=leave):
            pass
    assert gate.load() == (1, 0)
    release.set()
    holder.join(5)
    with gate.slot():  # free again
        assert gate.load() == (1, 0)


def test_slots_run_side_by_side_up_to_their_number():
    gate, running, most = Gate(2, poll=0.02), [0], [0]
    lock = threading.Lock()

    def work():
        with gate.slot():
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.15)
            with lock:
                running[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most[0] == 2


def test_the_ledger_keeps_bytes_and_count_within_bounds_dropping_the_least_recently_used():
    ledger = Ledger(max_bytes=100, max_entries=3)
    assert ledger.add("a", 40) == [] and ledger.add("b", 40) == []
    assert "a" in ledger  # a use: "b" is now the oldest
    assert ledger.add("c", 40) == ["b"]
    assert ledger.add("d", 10) == [] and ledger.add("e", 10) == ["a"]  # count: at most 3
    assert ledger.add("huge", 500) == ["c", "d", "e"]  # never the entry just added
    assert len(ledger) == 1 and ledger.total() == 500


def test_nbytes_counts_an_analysis_as_its_pickle_does():
    result = analyze(ExperimentConfig(seq_len=300, hidden=32))
    size, pickled = nbytes(result), len(pickle.dumps(result))
    assert 0.7 * pickled <= size <= 1.3 * pickled, (size, pickled)


def test_two_pages_asking_for_new_work_at_once_run_one_after_the_other_and_both_finish(monkeypatch):
    gate = Gate(1, poll=0.05)
    monkeypatch.setattr(results, "GATE", gate)
    spans, told = [], []
    real_analyze, real_notice = results.analyze, results.queue_notice

    def slow_analyze(config, **kwargs):
        start = time.perf_counter()
        out = real_analyze(config, **kwargs)
        time.sleep(1.0)  # long enough that the second visitor arrives while the first computes
        spans.append((start, time.perf_counter()))
        return out

    def notice():
        show, clear = real_notice()
        return (lambda ahead: (told.append(ahead), show(ahead))), clear

    monkeypatch.setattr(results, "analyze", slow_analyze)
    monkeypatch.setattr(results, "queue_notice", notice)
    seeds = [int(time.time() * 1000) % 100_000 + k for k in (0, 1)]  # configs no other test cached
    pages = {}

    def visit(seed: int) -> None:
        pages[seed] = run("pages/2_Simple_RNN.py", {"seed": str(seed)}, timeout=120)

    threads = [threading.Thread(target=visit, args=(seed,)) for seed in seeds]
    for thread in threads:
        thread.start()
        time.sleep(0.3)
    for thread in threads:
        thread.join(180)
    for seed in seeds:
        assert not pages[seed].exception, [e.value for e in pages[seed].exception]
        assert pages[seed].query_params["seed"] == str(seed) and pages[seed].get("plotly_chart")
    (a_start, a_end), (b_start, b_end) = sorted(spans)
    assert a_end <= b_start  # one after the other
    assert told and told[0] == 1  # the second was told one was ahead of it


def test_a_cached_result_needs_no_turn_while_the_line_is_full(monkeypatch):
    gate = Gate(1, poll=0.05)
    monkeypatch.setattr(results, "GATE", gate)
    assert not run("pages/2_Simple_RNN.py", {"seed": "7"}).exception  # computed and cached
    started, release = threading.Event(), threading.Event()
    holder = _hold(gate, started, release)
    try:
        start = time.perf_counter()
        at = run("pages/2_Simple_RNN.py", {"seed": "7"}, timeout=30)
        assert not at.exception and time.perf_counter() - start < 20
        assert not [i for i in at.info if "Queued" in str(i.value)]
    finally:
        release.set()
        holder.join(5)


def test_entries_beyond_the_ledger_are_cleared_from_their_cache(monkeypatch):
    monkeypatch.setattr(results, "LEDGER", Ledger(max_bytes=10**9, max_entries=1))
    cleared = []
    real = results._CACHES["_cached_analysis"]

    class Watch:
        def clear(self, *args):
            cleared.append(args)
            real.clear(*args)

    monkeypatch.setitem(results._CACHES, "_cached_analysis", Watch())
    for seed in ("11", "12"):
        assert not run("pages/2_Simple_RNN.py", {"seed": seed}).exception
    assert [config.seed for config, _ in cleared] == [11]


def test_a_long_run_shares_its_turn_with_those_queued_behind_it():
    gate, order = Gate(1, poll=0.02), []
    in_slot, go_on = threading.Event(), threading.Event()

    def training():
        with gate.slot():
            order.append("training starts")
            gate.share_turn()  # nobody waits: returns at once
            in_slot.set()
            go_on.wait(5)
            gate.share_turn()  # an analysis waits: it goes first
            order.append("training goes on")

    def analysis():
        with gate.slot():
            order.append("analysis")

    first = threading.Thread(target=training)
    first.start()
    assert in_slot.wait(5)
    second = threading.Thread(target=analysis)
    second.start()
    time.sleep(0.1)
    go_on.set()
    first.join(5)
    second.join(5)
    assert order == ["training starts", "analysis", "training goes on"] and gate.load() == (0, 0)

