"""Property-based URL fuzzing (issue 11): random and adversarial query strings on every page, and on the parser.

Every page (the Overview and each file of pages/, the ``app_page`` fixture) is run under AppTest with a query
drawn by Hypothesis: keys mostly the config's own field names (``ExperimentConfig``, ``TrainConfig`` and the view
settings, read from explorer.config), the special ones (``preset``, the tour's ``step``, ``b_`` compare keys) and
unknown ones; values valid, random, or adversarial: huge numbers (1e308, 10**30, "9"*400), negative, NaN, inf,
unicode (RTL, emoji, combining marks, NUL), script tags, Markdown, 10 kB values, empty values, and repeated keys
(a list: AppTest sends each as its own ``key=value``). The properties:

* the page renders without an exception;
* each known parameter that the page reads and that is invalid gets its warning (that the default is used):
  exactly the messages of ``explorer.config.from_query`` / ``view_from_query`` for the query as the page sees
  it (the last of repeated values), a ``B:`` warning for a bad ``b_`` key, a warning for a bad preset or step;
* the URL the page writes back holds only valid values: parsed again, it gives no warning, no unknown key, and
  is a fixed point of the parser (the full config, seed included);
* no text from the URL reaches a warning outside a Markdown code span, so a page never renders it as HTML,
  a link, an image, maths or emphasis; no element shows a script tag outside a code span.

Examples are kept fast: the query merges over ``apptests.SMALL`` (T = 30, n = 8); a huge T gets n = 4 and a
huge n gets T = 5 (the app clamps T to 2000 and n to 512). Hypothesis runs derandomized, so CI sees the same
examples; the parser alone gets many more examples than the pages.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import apptests
from explorer.config import (ALL_SPECS, SPECS, VIEW_SPECS, ExperimentConfig, TrainConfig, check, from_query,
                             to_query, view_from_query)
from explorer.presets import PRESETS
from explorer.tour import STEPS
from ui.state import COMPARE_PREFIX, presets_for
from ui.tour import PAGE as TOUR

MODEL_FIELDS = [f.name for f in dataclasses.fields(ExperimentConfig)]
TRAIN_FIELDS = [f.name for f in dataclasses.fields(TrainConfig) if f.name != "model"]
VIEW_FIELDS = list(VIEW_SPECS)
FIELDS = MODEL_FIELDS + TRAIN_FIELDS + VIEW_FIELDS
EMBED = ("embed", "embed_options")  # Streamlit's own: hidden from st.query_params.to_dict()
SCRIPT = "<script>alert(1)</script>"

ADVERSARIAL = [
    "", " ", "abc", "1e308", "-1e308", "1e999", str(10**30), "9" * 400, "-1", "-0", "0", "-2147483649", "2147483648",
    "nan", "NaN", "inf", "-inf", "Infinity", "0x10", "1_000", "+5", " 7 ", "3.0", "2.5", "1e3",
    "١", "²", "１２", "true", "yes", "\u202eevil", "שלום", "🔁💥", "e\u0301\u0301\u0301", "\x00", "a\x00b", "\u200b",
    "\ufeff1", "\u2028", SCRIPT, '"><img src=x onerror=alert(1)>', "[click](https://example.invalid)",
    "![x](https://example.invalid/x.png)", "$\\int_0^1$", "**bold**", "_em_", ":red[x]", ":smile:", "`", "``x``",
    "lstm'--", "rnn;DROP TABLE x", "%00", "%3Cscript%3E", "&amp;", "\\", "\n\n# heading", "a" * 10_000,
    "<script>" * 1250,
]
UNKNOWN_KEYS = [
    "no_such_param", "SEQ_LEN", "seq-len", " seq_len", "Seq_Len", "model", "__class__", "b_", "b_b_seed", "b_preset",
    "b_scale", "b_no_such_param", "embed", "EMBED_OPTIONS", SCRIPT, "x" * 10_000, "\u202e", "🔁", "", "a\x00b",
]
STEP_VALUES = ["1", str(len(STEPS)), "0", str(len(STEPS) + 1), "-1", "01", "١", "１４", "²", "1.0", " 1", "9" * 5000]
CAPS = {"seq_len": 60, "hidden": 16, "batch": 32, "input_size": 8, "steps": 50, "batch_size": 16,
        "record_every": 10}  # valid values drawn small: the pages compute on load

# Markup that Streamlit's Markdown would act on, outside code spans; the app's own wording uses none of it
# (an underscore only inside a word: seq_len, W_hh, EXPLORER_MAX_SEQ_LEN).
MARKUP = re.compile(r"<|&|\$|\*|~|`|\\|\]\(|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])|:[A-Za-z_+-]+[\[:]|\n")


# ------------------------------------------------------------------ strategies

def _valid(name: str) -> st.SearchStrategy[str]:
    """Values the field accepts (numbers drawn small where the pages compute with them)."""
    if name == "preset":
        return st.sampled_from(sorted(PRESETS))
    if name == "step":
        return st.sampled_from(STEP_VALUES)
    spec = ALL_SPECS.get(name) or VIEW_SPECS.get(name)
    if spec is None:
        return st.text(max_size=8)
    if spec.pattern is not None:  # a loaded file's name: the examples, and uploads no session holds
        return st.sampled_from({"weights": ["", "lstm_adding", "rnn_adding", "gru_adding", "sha256:" + "ab" * 32],
                                "input_file": ["", "sha256:" + "cd" * 32]}.get(name, ["", "encoder.rnn", "rnn."]))
    if name == "forget_bias":
        return st.one_of(st.sampled_from(["default", "chrono"]),
                         st.floats(-10, 10, allow_nan=False, allow_subnormal=False).map(repr))
    if spec.choices is not None:
        return st.sampled_from(spec.choices)
    kind = type(getattr(ExperimentConfig(), name, None) if name in SPECS else getattr(TrainConfig(), name))
    if kind is bool:
        return st.sampled_from(["true", "false", "1", "0", "on", "off"])
    if kind is int:
        return st.integers(int(spec.lo), min(int(spec.hi), CAPS.get(name, int(spec.hi)))).map(str)
    return st.floats(spec.lo, spec.hi, allow_nan=False, allow_subnormal=False).map(repr)


TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20)  # no lone surrogates: not UTF-8


def _value(name: str) -> st.SearchStrategy[str]:
    bare = name[len(COMPARE_PREFIX):] if name.startswith(COMPARE_PREFIX) else name
    return st.one_of(_valid(bare), st.sampled_from(ADVERSARIAL), TEXT)


KEYS = st.one_of(
    st.sampled_from(FIELDS),
    st.sampled_from(FIELDS),  # twice: most keys hit a real parser
    st.sampled_from(["preset", "step"] + [COMPARE_PREFIX + f for f in MODEL_FIELDS]),
    st.sampled_from(UNKNOWN_KEYS),
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12),
)


@st.composite
def queries(draw) -> dict[str, Any]:
    """A query: key -> a value, or a list of 2-3 values (a repeated key)."""
    query = {}
    for _ in range(draw(st.integers(1, 6))):
        key = draw(KEYS)
        value = _value(key)
        query[key] = draw(st.one_of(value, value, value, st.lists(value, min_size=2, max_size=3)))
    return query


# ------------------------------------------------------------------ helpers

def _last(value: Any) -> str:
    return value[-1] if isinstance(value, list) else value


def _seen(query: dict[str, Any]) -> dict[str, str]:
    """The query as a page reads it (st.query_params.to_dict()): the last repeat, Streamlit's embed keys hidden."""
    return {k: _last(v) for k, v in query.items() if k.lower() not in EMBED}


def _int(name: str, raw: Any) -> int | None:
    try:
        return check(name, _last(raw))
    except ValueError:
        return None


def _affordable(query: dict[str, Any]) -> dict[str, Any]:
    """The query over apptests.SMALL, with a huge T paired with n = 4 and a huge n with T = 5 (A and B alike),
    so that every example computes in about a second."""
    query = {**apptests.SMALL, **query}
    seq_len = _int("seq_len", query["seq_len"]) or 100  # an invalid value runs at the default
    hidden = _int("hidden", query["hidden"]) or 64
    if seq_len > 200:
        query["hidden"], hidden = "4", 4
    elif hidden > 64:
        query["seq_len"], seq_len = "5", 5
    b_seq_len = _int("seq_len", query.get("b_seq_len", "")) or seq_len
    b_hidden = _int("hidden", query.get("b_hidden", "")) or hidden
    if b_seq_len > 200 and b_hidden > 4:
        query["b_hidden"] = "4"
    elif b_hidden > 64 and b_seq_len > 5:
        query["b_seq_len"] = "5"
    return query


def outside_code(markdown: str) -> str:
    """``markdown`` without its code spans (CommonMark: a backtick run closed by the next run of the same length)."""
    out, i = [], 0
    while i < len(markdown):
        if markdown[i] == "\\":
            out.append(markdown[i:i + 2])
            i += 2
            continue
        if markdown[i] == "`":
            j = i
            while j < len(markdown) and markdown[j] == "`":
                j += 1
            close = re.compile(f"(?<!`){markdown[i:j]}(?!`)").search(markdown, j)
            out.append(" " if close else markdown[i:j])
            i = close.end() if close else j
            continue
        out.append(markdown[i])
        i += 1
    return "".join(out)


def assert_inert(message: str) -> None:
    """A warning shows what the URL gave only inside code spans: nothing of it is read as Markdown or HTML."""
    markup = MARKUP.search(outside_code(message))
    assert markup is None, f"{markup.group()!r} outside a code span in the warning {message!r}"


def _texts(at) -> list[str]:
    return [str(w.value) for w in at.warning]


def _no_script_rendered(at) -> None:
    for kind in ("markdown", "caption", "latex", "title", "header", "subheader", "text", "info", "success",
                 "warning", "error"):
        for element in at.get(kind):
            body = str(getattr(element, "value", ""))
            assert "<script" not in outside_code(body).lower(), (kind, body[:300])


def _check_written_sidebar(written: dict[str, Any], train: bool) -> None:
    """The link a sidebar page writes: valid values only, the full config, a fixed point of the parser."""
    assert all(isinstance(v, str) for v in written.values()), written
    specs = ALL_SPECS if train else SPECS
    own = {k: v for k, v in written.items() if not k.startswith(COMPARE_PREFIX) and k.lower() not in EMBED}
    other = {k[len(COMPARE_PREFIX):]: v for k, v in written.items() if k.startswith(COMPARE_PREFIX)}
    assert set(own) <= set(specs) | set(VIEW_SPECS), f"unexpected keys written: {set(own) - set(specs)}"
    config, warnings = from_query(own, train=train)
    assert not warnings, warnings
    assert not view_from_query(own)[1]
    query = to_query(config)
    assert {k: own.get(k) for k in query} == query, "the written link is not the config it parses to"
    if other:
        assert not train and set(other) <= set(SPECS), other
        _, warnings = from_query({**query, **other})
        assert not warnings, warnings
        assert all(query[k] != v for k, v in other.items()), f"B repeats A: {other}"


def _check_sidebar_page(at, seen: dict[str, str], page: str, train: bool) -> None:
    texts = _texts(at)
    missing = []
    preset = seen.get("preset")
    offered = presets_for(page, train)
    if preset and preset not in offered:
        if not any(t.startswith("preset must be one of") for t in texts):
            missing.append(f"a warning for preset={preset[:60]!r}")
    if not (preset and preset in offered):  # a preset replaces the link's config (its parameters are not read)
        own = {k: v for k, v in seen.items() if not k.startswith(COMPARE_PREFIX) and k != "preset"}
        expected = from_query(own, train=train)[1] + view_from_query(own)[1]
        missing += [w for w in expected if w not in texts]
    written = at.query_params
    _check_written_sidebar(written, train)
    other = {k[len(COMPARE_PREFIX):]: v for k, v in seen.items() if k.startswith(COMPARE_PREFIX)}
    if other and not train and not (preset and preset in offered):  # B: every bad b_ key warns
        base = {k: v for k, v in written.items() if not k.startswith(COMPARE_PREFIX)}
        config = from_query(base)[0]
        missing += [f"B: {w}" for w in from_query({**to_query(config), **other})[1] if f"B: {w}" not in texts]
    assert not missing, f"{page}: missing warnings {missing}; shown {texts}"


def _check_tour(at, seen: dict[str, str]) -> None:
    texts, count = _texts(at), len(STEPS)
    written = at.query_params
    assert all(isinstance(v, str) for v in written.values()), written
    assert set(written) <= {"step", *VIEW_SPECS}, written.keys()
    assert re.fullmatch(r"[0-9]+", written["step"]) and 1 <= int(written["step"]) <= count, written["step"]
    assert not view_from_query(written)[1]
    raw = seen.get("step")
    stepped = [t for t in texts if t.startswith(f"step must be an integer in [1, {count}]")]
    if raw is not None:
        if re.fullmatch(r"[0-9]{1,6}", raw) and 1 <= int(raw) <= count:
            assert not stepped and written["step"] == str(int(raw)), (raw, stepped, written["step"])
        elif not raw.isdecimal():  # "１４" (full-width digits, as int() reads them) may be taken
            assert stepped and written["step"] == "1", (raw[:60], texts)
    missing = [w for w in view_from_query(seen)[1] if w not in texts]
    assert not missing, f"tour: missing warnings {missing}; shown {texts}"


# ------------------------------------------------------------------ the pages

EVERYTHING_BAD = {
    "seq_len": "abc", "hidden": "-5", "init": SCRIPT, "cell": "lstm'--", "gain": "nan", "seed": "1e308", "lag": "inf",
    "dtype": "-inf", "forget_bias": "9" * 400, "residual": "\u202e", "input": "🔁", "activation": "e\u0301",
    "norm": "\x00", "r_max": "[click](https://example.invalid)", "steps": str(10**30), "lr": "-1e308",
    "task": "", "scale": "<b>x</b>", "present": "2", "image": "", "preset": SCRIPT, "step": "²",
    "b_init": SCRIPT, "b_gain": "", "b_seed": "9" * 400, "b_bogus": "1", SCRIPT: "1", "x" * 10_000: "y",
}
REPEATED = {"seq_len": ["5000", "20"], "init": ["orthogonal", SCRIPT], "seed": ["3", "-1"], "step": ["1", "99"],
            "b_gain": ["x", "1.5"], "scale": ["10", "auto", "<i>"], "preset": ["vanishing", "nope"]}
LONG = {"seed": "9" * 10_000, "init": "<script>" * 1250, "step": "9" * 10_000, "b_cell": "a" * 10_000,
        "hidden": "1e308", "seq_len": "1" * 10_000}


@settings(max_examples=8, deadline=None, derandomize=True, database=None, report_multiple_bugs=False,
          suppress_health_check=list(HealthCheck))
@given(query=queries())
@example(query=EVERYTHING_BAD)
@example(query=REPEATED)
@example(query=LONG)
@example(query={"seq_len": "2000", "hidden": "512", "b_hidden": "512", "present": "1", "scale": "2"})
@example(query={"step": "²"})  # found by this test: crashed the tour (str.isdigit holds, int() refuses)
@example(query={"step": "9" * 5000})  # found by this test: crashed the tour (int() refuses 4300+ digits)
@example(query={"b_seed": "", "b_gain": "1.5"})  # found by this test: a blank b_ value was dropped without a warning
@example(query={"init": "[click](https://example.invalid)", "preset": "![x](https://example.invalid/x.png)",
                "step": SCRIPT})  # found by this test: a value from the URL was read as Markdown in its warning
def test_any_url_renders_warns_and_writes_back_a_valid_link(app_page, query):
    query = _affordable(query)
    at = apptests.run(app_page.script, query, timeout=120)
    assert not at.exception, f"{app_page.script} {query!r:.300}: {[e.value for e in at.exception]}"
    for message in _texts(at):
        assert_inert(message)
    _no_script_rendered(at)
    seen = _seen(query)
    state = at.session_state
    page = state["current_page"] if "current_page" in state else None
    if page is None:  # a page that reads no query (the Overview)
        assert not at.warning, _texts(at)
    elif page == TOUR:
        _check_tour(at, seen)
    else:
        _check_sidebar_page(at, seen, page, isinstance(state["pages"][page].config, TrainConfig))


# ------------------------------------------------------------------ the parser alone, with repeated values

@st.composite
def parsed_queries(draw) -> dict[str, list[str] | str]:
    """parse_qs output (each key a list, repeats in order) or st.query_params' (a str), mixed."""
    query = {}
    for _ in range(draw(st.integers(0, 8))):
        key = draw(KEYS)
        value = _value(key)
        query[key] = draw(st.one_of(value, st.lists(value, min_size=1, max_size=3)))
    return query


@settings(max_examples=250, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(query=parsed_queries())
@example(query={"seq_len": ["20", "abc"], "init": ["<script>", "orthogonal"], "seed": ["5", "5"]})
@example(query={"gain": ["nan"], "lr": "1e-7", "hidden": ["9" * 400], "forget_bias": [SCRIPT], "steps": ["1e308"]})
def test_the_parser_never_raises_and_names_every_bad_value(query):
    for train in (False, True):
        specs = ALL_SPECS if train else SPECS
        config, warnings = from_query(query, train=train)
        for message in warnings:
            assert_inert(message)
        for key, value in query.items():
            raw = _last(value)
            if key in specs:
                try:
                    assert check(key, raw) is not None
                except ValueError:
                    assert any(w.startswith(f"{key} must be") and "; using the default " in w for w in warnings), \
                        (key, raw[:60], warnings)
            elif key not in VIEW_SPECS:
                assert any(w.startswith("Unknown parameter") for w in warnings), (key[:60], warnings)
        link = to_query(config)
        assert from_query(link, train=train) == (config, [])
        assert from_query(parse_qs(urlencode(link)), train=train) == (config, [])
    looks, warnings = view_from_query(query)
    for message in warnings:
        assert_inert(message)
    for name, spec in VIEW_SPECS.items():
        assert looks[name] in spec.choices
        if name in query and _last(query[name]).strip() not in spec.choices:
            assert any(w.startswith(f"{name} must be one of") for w in warnings), (name, warnings)


@pytest.mark.parametrize("message", [
    "seed must be an integer in [0, 2147483647], got `'<script>'`; using the default 0.",
    "Unknown parameter ``'a`b'`` ignored.",
])
def test_a_value_in_a_code_span_is_inert(message):
    assert_inert(message)


@pytest.mark.parametrize("message", [
    f"seed must be an integer in [0, 2147483647], got {SCRIPT!r}; using the default 0.",
    "init must be one of pytorch, got '[click](https://example.invalid)'; using the default pytorch.",
    "Unknown parameter '`a' ignored.",
])
def test_a_value_outside_a_code_span_is_caught(message):
    with pytest.raises(AssertionError):
        assert_inert(message)
