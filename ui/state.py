"""The URL <-> config <-> widgets loop: the page's config from its link, the sidebar that edits it, and the
link it writes back (seed included), so a shared link reproduces the picture."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import parse_qs, urlencode

import streamlit as st

from explorer.config import (ALL_SPECS, VIEW_DEFAULTS, VIEW_SPECS, ExperimentConfig, TrainConfig, check, field_type,
                             fit, flat, format_value, from_query, quoted, to_query, view_from_query)
from explorer import limits
from explorer.backend import freeze_long_lived
from explorer.presets import PRESETS, config_of

from . import models, runlog


def page_setup(title: str, icon: str) -> None:
    runlog.start(title)  # opt-in (EXPLORER_RUN_LOG): the benchmarks' server-side time of each run
    freeze_long_lived()  # the modules' objects out of the full collection Streamlit runs after each run
    st.set_page_config(page_title=f"{title} · RNN Gradient Explorer", page_icon=icon, layout="wide")


def _widget(name: str, key: str, values: dict[str, Any], options: Sequence[str] | None = None) -> None:
    """The widget of one field, built from its Spec; bounds that depend on other fields come from
    ``values``, and a range that has shrunk to one value shows that value, disabled."""
    spec = ALL_SPECS.get(name) or VIEW_SPECS[name]
    text, kind = spec.label or name, None if spec.choices is not None else field_type(name)
    state = st.session_state
    if spec.choices is not None:
        allowed = options or spec.choices
        if state[key] not in allowed:
            state[key] = allowed[0]
        st.selectbox(text, allowed, key=key, help=spec.help, format_func=lambda v: spec.choice_labels.get(v, v))
    elif kind is bool:
        st.toggle(text, key=key, help=spec.help)
    elif kind is str:
        st.text_input(text, key=key, help=spec.help)
    elif kind is int:
        lo, hi = int(spec.lo), int(min(spec.upper(values), limits.ceiling(name) or spec.hi))
        state[key] = min(max(int(state[key]), lo), hi)
        if hi <= lo:  # e.g. the lag of a one-step sequence: nothing to choose
            st.number_input(text, lo, lo, key=key, disabled=True, help=spec.help)
        elif spec.widget == "slider":
            st.slider(text, lo, hi, key=key, help=spec.help)
        else:
            st.number_input(text, lo, hi, step=1, key=key, help=spec.help)
    else:
        st.number_input(text, float(spec.lo), float(spec.hi), step=spec.step, format=spec.number_format, key=key,
                        help=spec.help)


def _pin(values: dict[str, Any], fixed: dict[str, Any], choices: dict[str, Sequence[str]]) -> dict[str, Any]:
    """The page's pinned fields, and its narrowed choices (an outside value falls back to the first); a narrowed
    field absent from ``values`` (hidden for this cell, so no widget changed it) stays absent."""
    values = {**values, **fixed}
    for name, allowed in choices.items():
        if name in values and values[name] not in allowed:
            values[name] = allowed[0]
    return values


@dataclass(frozen=True)
class PageState:
    """What a page last showed: its config, its view settings, a second config B to compare (the fields
    where it differs, as the URL gives them, without the ``b_`` prefix), and the query it wrote."""

    config: Any
    looks: dict[str, str]
    compare: dict[str, str]
    written: dict[str, str]


COMPARE_PREFIX = "b_"


def _split_query(query: dict[str, str]) -> tuple[dict[str, str], dict[str, str], str | None]:
    """(A's parameters, B's (``b_`` stripped), the preset named) of a URL query."""
    own = {k: v for k, v in query.items() if not k.startswith(COMPARE_PREFIX) and k != "preset"}
    other = {k[len(COMPARE_PREFIX):]: v for k, v in query.items() if k.startswith(COMPARE_PREFIX)}
    return own, other, query.get("preset")


def _compare(config, raw: dict[str, str], train: bool) -> tuple[Any, dict[str, str], list[str]]:
    """B: ``config`` with the fields ``raw`` changes (bad ones dropped, with a warning), the changes kept,
    and the warnings."""
    if not raw:
        return None, {}, []
    parsed, warnings = from_query({**to_query(config), **raw}, train=train)
    warnings = [f"B: {w}" for w in warnings]
    base, mine = _every_field(config), _every_field(parsed)  # a link leaves out unset fields (weights): compare all
    kept = {k: v for k, v in mine.items() if base.get(k) != v}
    return (parsed if kept else None), kept, warnings


def _every_field(config) -> dict[str, str]:
    """Every field of a config as its link writes it, the ones a link leaves out at their defaults included."""
    return {k: format_value(v) for k, v in flat(config).items()}


def _apply_preset(page: str, name: str | None, train: bool) -> tuple[dict[str, Any] | None, list[str]]:
    """The values of preset ``name`` for this page, or None with a warning where it is unknown or another page's."""
    if not name:
        return None, []
    preset = PRESETS.get(name)
    if preset is None or preset.page != ("lab" if train else page):
        return None, [f"preset must be one of {', '.join(presets_for(page, train))}, got {quoted(name)}; ignored."]
    st.info(f"Preset **{preset.label}**: {preset.claim}", icon="🎯")
    return flat(config_of(preset)), []


def presets_for(page: str, train: bool) -> list[str]:
    """The presets a page offers: those made for it (the lab's, in the lab)."""
    return [name for name, preset in PRESETS.items() if preset.page == ("lab" if train else page)]


def _pick_preset(page: str) -> None:
    """The preset selector's callback: apply the choice on this run, then show the selector empty again."""
    state = st.session_state
    state[f"{page}_apply_preset"] = state[f"{page}_preset"]
    state[f"{page}_preset"] = "—"


def config_sidebar(page: str, fields: Sequence[str], *, choices: dict[str, Sequence[str]] | None = None,
                   fixed: dict[str, Any] | None = None, train: bool = False, view: Sequence[str] = ()) -> Any:
    """Sidebar widgets for those of ``fields`` whose Spec shows them, two-way bound to the URL; returns
    the page's config (an ``ExperimentConfig``, or a ``TrainConfig`` with ``train=True``). The ``view``
    settings (``VIEW_SPECS``: how the page draws, never what it computes) get widgets and travel in the
    URL too; :func:`view_settings` reads them. A preset (``?preset=NAME`` or the selector) fills the
    config and the URL becomes the full config; ``b_`` parameters describe a second config B
    (:func:`compared`).

    Where the config comes from, in order: a preset; the URL, when the page is entered with a query (a
    shared link, back or forward) or its query is not the one this page wrote last; on entering from
    another page through the sidebar (Streamlit drops the query), this page's own last config with
    the settings it shares with the last page seen carried over; else the widgets. Widget keys are
    ``<page>_<field>``, one set per page: Streamlit ties a widget's identity to its page, so keys
    shared across pages lose their values. ``fixed`` pins fields; ``choices`` narrows a field's options.
    """
    choices, fixed = choices or {}, fixed or {}
    state = st.session_state
    memory: dict[str, PageState] = state.setdefault("pages", {})
    shared = state.setdefault("shared", {})  # field -> value, as last shown on any page
    query = st.query_params.to_dict()
    own = memory.get(page)
    arriving = state.get("current_page") != page
    state["current_page"] = page
    default = TrainConfig() if train else ExperimentConfig()
    url_values, url_compare, url_preset = _split_query(query)
    preset_values, warnings = _apply_preset(page, state.pop(f"{page}_apply_preset", None) or url_preset, train)
    # Streamlit's sidebar link may record the new page's address with the old page's query: that query
    # is another page's config, not a link to this one
    foreign = any(other.written == query for name, other in memory.items() if name != page)
    compare = own.compare if own else {}
    if preset_values is not None:
        values, compare, reset = {**preset_values, **(own.looks if own else VIEW_DEFAULTS)}, {}, True
    elif query and not foreign and (arriving or own is None or query != own.written):
        config, more = from_query(url_values, train=train)
        looks, view_warnings = view_from_query(url_values)
        values, compare, reset = {**flat(config), **looks}, url_compare, True
        warnings += more + view_warnings
    elif arriving or own is None:
        mine = {**flat(own.config), **own.looks} if own else {**flat(default), **VIEW_DEFAULTS}
        values = {**mine, **{k: v for k, v in shared.items() if _carried(k, v, fields, view, choices)}}
        reset = True
    else:  # a rerun; after a change the deployment's limits lowered (below), the widgets take the lowered values
        values, reset = {**flat(own.config), **own.looks}, state.pop(f"{page}_replan", False)
    looks = {name: values.get(name, VIEW_DEFAULTS[name]) for name in view}
    unshown = [name for name in ALL_SPECS if name not in fields]  # their fixes need no word on this page
    config, clamped = fit(default, unshown, **_pin({k: v for k, v in values.items() if k in ALL_SPECS}, fixed,
                                                  choices))
    config, limited = _within_limits(config, page)
    reset = reset or bool(limited)
    for message in state.pop(f"{page}_limited", []) + warnings + clamped + limited:
        st.warning(message, icon="⚠️")
    current = {**flat(config), **looks}
    if reset:  # the widgets take the config's values
        for name in [*fields, *view]:
            state[f"{page}_{name}"] = current[name]
        state[f"{page}_compare"] = urlencode(compare)
    shown = []
    with st.sidebar:
        names = presets_for(page, train)
        if names:
            state.setdefault(f"{page}_preset", "—")
            st.selectbox("preset", ["—", *names], key=f"{page}_preset", on_change=_pick_preset, args=(page,),
                         help="Named configurations of the lecture's cases; the link then holds the full config")
        for title, group in (("Training" if train else "Experiment", fields), ("View", view)):
            if group:
                st.subheader(title)
            for name in group:
                key = f"{page}_{name}"
                state.setdefault(key, current[name])
                current[name] = state[key]
                spec = ALL_SPECS.get(name) or VIEW_SPECS[name]
                if spec.shown(current):
                    _widget(name, key, current, choices.get(name))
                    current[name] = state[key]
                    shown.append(name)
        if not train:
            st.text_input("compare with B (settings that differ)", key=f"{page}_compare",
                          placeholder="e.g. init=orthogonal&gain=1.0",
                          help="A second configuration drawn beside this one (A): the settings where it differs, "
                               "as in a URL. In the link they read b_init=orthogonal&b_gain=1.0.")
    changes = {}
    for name in (n for n in shown if n in ALL_SPECS):
        try:
            changes[name] = check(name, state[f"{page}_{name}"])
        except ValueError as err:  # e.g. a forget bias typed as text: keep the last good value
            st.sidebar.error(str(err))
    config, clamped = fit(config, unshown, **_pin(changes, fixed, choices))
    config, limited = _within_limits(config, page)
    for message in clamped:
        st.warning(message, icon="⚠️")
    looks = {name: current[name] for name in view}
    # blank values kept: b_gain= is a bad value, to be named in a warning like A's gain=, not dropped without a word
    typed = ({k: v[-1] for k, v in parse_qs(state.get(f"{page}_compare", ""), keep_blank_values=True).items()}
             if not train else {})
    _, compare, more = _compare(config, typed, train)
    for message in more:
        st.warning(message, icon="⚠️")
    shared.update({name: flat(config)[name] for name in shown if name in ALL_SPECS} | looks)
    written = {**to_query(config), **looks, **{COMPARE_PREFIX + k: v for k, v in compare.items()}}
    memory[page] = PageState(config, looks, compare, written)
    st.query_params.from_dict(written)
    if limited:  # a widget asked for more than this deployment runs: once more, the widgets showing what runs
        state[f"{page}_limited"], state[f"{page}_replan"] = limited, True
        st.rerun()
    return config


def _carried(name: str, value: Any, fields: Sequence[str], view: Sequence[str],
             choices: dict[str, Sequence[str]]) -> bool:
    """Whether a setting last shown on another page carries over to this one: a field this page shows, at a
    value it offers (the LRU chosen on Modern Recurrences leaves the LSTM page's own GRU, not its default)."""
    return (name in fields or name in view) and (name not in choices or value in choices[name])


def _within_limits(config, page: str) -> tuple[Any, list[str]]:
    """``config`` as this deployment runs it: fitted to the trained model it loads (:mod:`.models`: the file decides
    the cell and its size), then within :mod:`explorer.limits` (T and n bounded, a costly config lowered), with a
    message per change; the URL then holds the config that runs."""
    if isinstance(config, TrainConfig):
        return limits.plan_training(config)
    config, messages = models.fit(config, page)
    planned = limits.plan(config)
    return planned.config, messages + (list(planned.messages) if planned.config != config else [])


def compared(page: str) -> tuple[Any, list[str]] | None:
    """The second config B of the page (from its ``b_`` parameters) and the differences, in words; None without one."""
    own = st.session_state.get("pages", {}).get(page)
    if own is None or not own.compare:
        return None
    other, kept, _ = _compare(own.config, own.compare, isinstance(own.config, TrainConfig))
    if other is None:
        return None
    base = _every_field(own.config)
    return other, [f"{k}: {base.get(k) or '(none)'} → {v or '(none)'}" for k, v in kept.items()]


def view_settings(page: str) -> dict[str, str]:
    """The page's view settings (``VIEW_SPECS``) as its sidebar last set them."""
    memory = st.session_state.get("pages", {}).get(page)
    return {**VIEW_DEFAULTS, **(memory.looks if memory else {})}


def colour_limit(page: str) -> float | None:
    """The locked colour range of the page's maps in decades, or None to fit each map."""
    scale = view_settings(page)["scale"]
    return None if scale == "auto" else float(scale)
