"""The opt-in server-side timing of page runs (ui.runlog, EXPLORER_RUN_LOG) that benchmarks/bench_classroom.py reads."""
from __future__ import annotations

import json

from tests.apptests import run


def test_each_run_of_a_page_appends_its_time_when_asked_and_nothing_otherwise(tmp_path, monkeypatch):
    log = tmp_path / "runs.jsonl"
    monkeypatch.delenv("EXPLORER_RUN_LOG", raising=False)
    assert not run("pages/2_Simple_RNN.py", {}).exception and not log.exists()
    monkeypatch.setenv("EXPLORER_RUN_LOG", str(log))
    at = run("pages/2_Simple_RNN.py", {"seed": "3"})
    at.run()  # a second run of the same session
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["page"] for r in records] == ["Simple RNN", "Simple RNN"]
    assert records[0]["session"] == records[1]["session"] and all(r["outcome"] == "with_success" for r in records)
    assert all(0 < r["seconds"] < 60 and 0 < r["cpu_seconds"] <= r["seconds"] + 0.05 for r in records)
