"""The URL <-> config <-> widgets loop: the page's config from its link, the sidebar that edits it, and the
link it writes back (seed included), so a shared link reproduces the picture."""
from __future__ import annotations

from typing import Any, Sequence

import streamlit as st

from explorer.config import (ALL_SPECS, VIEW_DEFAULTS, VIEW_SPECS, ExperimentConfig, TrainConfig, check, field_type,
                             fit, flat, from_query, to_query, view_from_query)


def page_setup(title: str, icon: str) -> None:
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
        lo, hi = int(spec.lo), int(spec.upper(values))
        state[key] = min(max(int(state[key]), lo), hi)
        if hi <= lo:  # e.g. the lag of a one-step sequence: nothing to choose
            st.number_input(text, lo, lo, key=key, disabled=True, help=spec.help)
        elif spec.widget == "slider":
            st.slider(text, lo, hi, key=key, help=spec.help)
        else:
            st.number_input(text, lo, hi, step=1, key=key, help=spec.help)
    else:
        fmt, step = ("%.2e", 1e-4) if name == "lr" else ("%.4g", 0.05)
        st.number_input(text, float(spec.lo), float(spec.hi), step=step, format=fmt, key=key, help=spec.help)


def _pin(values: dict[str, Any], fixed: dict[str, Any], choices: dict[str, Sequence[str]]) -> dict[str, Any]:
    """The page's pinned fields, and its narrowed choices (an outside value falls back to the first)."""
    values = {**values, **fixed}
    for name, allowed in choices.items():
        if values[name] not in allowed:
            values[name] = allowed[0]
    return values


def config_sidebar(page: str, fields: Sequence[str], *, choices: dict[str, Sequence[str]] | None = None,
                   fixed: dict[str, Any] | None = None, train: bool = False, view: Sequence[str] = ()) -> Any:
    """Sidebar widgets for those of ``fields`` whose Spec shows them, two-way bound to the URL; returns
    the page's config (an ``ExperimentConfig``, or a ``TrainConfig`` with ``train=True``). The ``view``
    settings (``VIEW_SPECS``: how the page draws, never what it computes) get widgets and travel in the
    URL too; :func:`view_settings` reads them.

    Where the config comes from, in order: the URL, when the page is entered with a query (a shared
    link, back or forward) or its query is not the one this page wrote last; on entering from
    another page through the sidebar (Streamlit drops the query), this page's own last config with
    the settings it shares with the last page seen carried over; else the widgets. Widget keys are
    ``<page>_<field>``, one set per page: Streamlit ties a widget's identity to its page, so keys
    shared across pages lose their values. ``fixed`` pins fields; ``choices`` narrows a field's options.
    """
    choices, fixed = choices or {}, fixed or {}
    state = st.session_state
    memory = state.setdefault("pages", {})  # page -> (its config, its view settings, the query it wrote)
    shared = state.setdefault("shared", {})  # field -> value, as last shown on any page
    query = st.query_params.to_dict()
    own = memory.get(page)
    arriving = state.get("current_page") != page
    state["current_page"] = page
    default = TrainConfig() if train else ExperimentConfig()
    warnings: list[str] = []
    # Streamlit's sidebar link may record the new page's address with the old page's query: that query
    # is another page's config, not a link to this one
    foreign = any(written == query for name, (_, _, written) in memory.items() if name != page)
    if query and not foreign and (arriving or own is None or query != own[2]):
        config, warnings = from_query(query, train=train)
        looks, more = view_from_query(query)
        values, warnings, reset = {**flat(config), **looks}, warnings + more, True
    elif arriving or own is None:
        mine = {**flat(own[0]), **own[1]} if own else {**flat(default), **VIEW_DEFAULTS}
        values = {**mine, **{k: v for k, v in shared.items() if k in fields or k in view}}
        reset = True
    else:
        values, reset = {**flat(own[0]), **own[1]}, False
    looks = {name: values.get(name, VIEW_DEFAULTS[name]) for name in view}
    config, clamped = fit(default, **_pin({k: v for k, v in values.items() if k in ALL_SPECS}, fixed, choices))
    for message in warnings + clamped:
        st.warning(message, icon="⚠️")
    current = {**flat(config), **looks}
    if reset:  # the widgets take the config's values
        for name in [*fields, *view]:
            state[f"{page}_{name}"] = current[name]
    shown = []
    with st.sidebar:
        for title, names in (("Training" if train else "Experiment", fields), ("View", view)):
            if names:
                st.subheader(title)
            for name in names:
                key = f"{page}_{name}"
                state.setdefault(key, current[name])
                current[name] = state[key]
                spec = ALL_SPECS.get(name) or VIEW_SPECS[name]
                if spec.shown(current):
                    _widget(name, key, current, choices.get(name))
                    current[name] = state[key]
                    shown.append(name)
    changes = {}
    for name in (n for n in shown if n in ALL_SPECS):
        try:
            changes[name] = check(name, state[f"{page}_{name}"])
        except ValueError as err:  # e.g. a forget bias typed as text: keep the last good value
            st.sidebar.error(str(err))
    config, clamped = fit(config, **_pin(changes, fixed, choices))
    for message in clamped:
        st.warning(message, icon="⚠️")
    looks = {name: current[name] for name in view}
    shared.update({name: flat(config)[name] for name in shown if name in ALL_SPECS} | looks)
    written = {**to_query(config), **looks}
    memory[page] = (config, looks, written)
    st.query_params.from_dict(written)
    return config


def view_settings(page: str) -> dict[str, str]:
    """The page's view settings (``VIEW_SPECS``) as its sidebar last set them."""
    memory = st.session_state.get("pages", {}).get(page)
    return {**VIEW_DEFAULTS, **(memory[1] if memory else {})}


def colour_limit(page: str) -> float | None:
    """The locked colour range of the page's maps in decades, or None to fit each map."""
    scale = view_settings(page)["scale"]
    return None if scale == "auto" else float(scale)
