"""explorer.memo: figures remembered by the content of their arguments, shared by every visitor and never changed."""
from __future__ import annotations

import json

import numpy as np
import pytest

from explorer import plots
from explorer.memo import MEMO, FigureMemo, SharedFigure, figure_memo, shared_figure
from tests.apptests import figures, run


def test_the_same_numbers_give_the_same_figure_and_other_numbers_another():
    values = np.linspace(-3, 1, 50)
    steps = np.arange(1, 51)
    first = plots.step_norms_figure(steps, values, title="t")
    assert plots.step_norms_figure(steps.copy(), values.copy(), title="t") is first  # content, not identity
    changed = values.copy()
    changed[17] = np.nextafter(changed[17], 1.0)  # one ulp
    assert plots.step_norms_figure(steps, changed, title="t") is not first
    assert plots.step_norms_figure(steps, values, title="u") is not first
    assert plots.step_norms_figure(steps, values.astype(np.float32), title="t") is not first  # dtype is part of it
    # the figure is what the function itself builds
    assert json.loads(first.to_json()) == json.loads(plots.step_norms_figure.uncached(steps, values, title="t").to_json())


def test_a_shared_figure_makes_its_dict_once_and_it_is_the_plain_figures():
    """Streamlit asks each chart for ``to_dict()`` on every run: a deep copy of every array and a base64 pass, a
    quarter of a cached page's rerun. A memoised figure never changes, so its dict is made once; the dict and
    the JSON Streamlit sends are the plain figure's, exactly."""
    import plotly.io

    steps, values = np.arange(1, 401), np.linspace(-30, 2, 400)
    shared = plots.step_norms_figure(steps, values, title="once")
    plain = plots.step_norms_figure.uncached(steps, values, title="once")
    assert isinstance(shared, SharedFigure) and type(plain) is not SharedFigure
    assert shared.to_dict() is shared.to_dict()  # made once
    assert shared.to_dict() == plain.to_dict()
    assert plotly.io.to_json(shared, validate=False) == plotly.io.to_json(plain, validate=False)
    assert plotly.io.to_json(shared, validate=False) == plotly.io.to_json(plain, validate=False)  # twice: uids popped
    copy = type(plain)(shared)  # a copy (the projector's) is a plain figure again, free to change
    copy.update_layout(height=123)
    assert type(copy) is not SharedFigure and shared.to_dict() == plain.to_dict()
    assert shared_figure(copy) is copy and isinstance(copy, SharedFigure) and copy.to_dict()["layout"]["height"] == 123
    assert shared_figure("not a figure") == "not a figure"


def test_the_order_of_curves_is_part_of_the_key():
    lags = np.arange(10)
    a, b = ("a", (lags, -0.1 * lags)), ("b", (lags, -0.2 * lags))
    one = plots.lag_figure(dict([a, b]), title="x")
    other = plots.lag_figure(dict([b, a]), title="x")
    assert one is not other and [t.name for t in one.data] != [t.name for t in other.data]


def test_the_memo_is_bounded_by_bytes_least_recently_used_first():
    memo = FigureMemo(max_bytes=1000)
    memo.put(b"a", "A", 400)
    memo.put(b"b", "B", 400)
    assert memo.get(b"a") == "A"  # a is now the most recent
    memo.put(b"c", "C", 400)
    assert memo.get(b"b") is None and memo.get(b"a") == "A" and memo.get(b"c") == "C" and memo.bytes == 800
    memo.put(b"huge", "H", 5000)  # larger than the whole memo: not kept, nothing dropped for it
    assert memo.get(b"huge") is None and len(memo) == 2


def test_an_argument_it_cannot_digest_is_passed_through_uncached():
    calls = []

    @figure_memo
    def build(value):
        calls.append(value)
        return object()

    marker = object()
    build(marker), build(marker)
    assert len(calls) == 2
    build(np.ones(3)), build(np.ones(3))
    assert len(calls) == 3


def test_presentation_mode_styles_a_copy_and_leaves_the_shared_figure_as_it_was():
    """A teacher presenting and a student on the same link: the projector's larger type must not reach the
    student's figures, which are the same shared objects."""
    MEMO.clear()
    plain = run("pages/2_Simple_RNN.py", {})
    assert not plain.exception
    before = [json.dumps(f, sort_keys=True) for f in figures(plain)]
    presented = run("pages/2_Simple_RNN.py", {"present": "1"})
    assert not presented.exception
    assert all(f["layout"]["height"] <= 430 for f in figures(presented))
    again = run("pages/2_Simple_RNN.py", {})
    assert [json.dumps(f, sort_keys=True) for f in figures(again)] == before
    assert MEMO.hits > 0


@pytest.mark.parametrize("page,query", [("pages/3_LSTM_and_GRU.py", {"cell": "gru"}), ("pages/4_Modern_Recurrences.py", {})])
def test_a_second_visit_draws_the_same_figures_from_the_memo(page, query):
    first = run(page, query)
    hits = MEMO.hits
    second = run(page, query)
    assert not first.exception and not second.exception
    assert [json.dumps(f, sort_keys=True) for f in figures(second)] == [json.dumps(f, sort_keys=True) for f in figures(first)]
    assert MEMO.hits > hits
