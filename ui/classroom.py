"""For a teacher at a projector: a page's frame (presentation mode puts the first chart first and hides the
controls), the projector's chart style, a link to copy, and how to reproduce the picture elsewhere."""
from __future__ import annotations

import functools
import glob
import os
import weakref
from typing import Any
from urllib.parse import urlencode

import plotly.graph_objects as go
import streamlit as st

from explorer.config import ExperimentConfig, TrainConfig, to_query
from explorer.memo import shared_figure
from explorer.weights import EXAMPLES, FILE_FIELDS

from .state import view_settings

# Presentation mode: no sidebar (nor its toggle), the page's own padding trimmed so the first chart fits a
# 1024 x 768 projector without scrolling.
PRESENT_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"] {display: none;}
[data-testid="stMainBlockContainer"] {padding-top: 2.2rem; padding-left: 1.5rem; padding-right: 1.5rem; max-width: 100%;}
[data-testid="stHeader"] {height: 1.8rem;}
[data-testid="stMain"] h1 {font-size: 1.5rem; padding: 0.2rem 0;}
</style>"""
PRESENT_HEIGHT = 430  # every chart's height in presentation mode: the first fits under the title bar at 768 px

# A first visit downloads Plotly's bundle (4.7 MB; Streamlit serves it uncompressed, then the browser keeps it for a
# year). Streamlit fetches it only when the page's first chart arrives, i.e. after the analysis; until it has loaded,
# each chart is an empty grey skeleton (the fallback of a lazy element, in a graphic's element container), and then
# an empty box until Plotly has drawn. Two remedies, sent by frame() before the analysis: a message in both kinds of
# empty box, and a <link rel="modulepreload"> so that the browser fetches the bundle while the server computes.
LOADING_CSS = """<style>
.st-key-loading_hints {display: none;}
.stElementContainer.stPrintGraphic > [data-testid="stSkeleton"] {
  height: 100%; min-height: 8rem; display: flex; align-items: center; justify-content: center;}
.stElementContainer.stPrintGraphic > [data-testid="stSkeleton"]::after {
  content: "Loading the charting library…"; opacity: 0.7; font-size: 0.95rem;}
[data-testid="stPlotlyChart"]:not(:has(.main-svg)) {position: relative;}
[data-testid="stPlotlyChart"]:not(:has(.main-svg))::before {
  content: "Drawing the chart…"; position: absolute; inset: 0; display: flex; align-items: center;
  justify-content: center; opacity: 0.7; font-size: 0.95rem; pointer-events: none;}
</style>"""


@functools.lru_cache(maxsize=1)
def plotly_bundle() -> str | None:
    """The installed Streamlit's Plotly chunk, relative to the app's root ("static/js/PlotlyChart.<hash>.js"), or
    None where this Streamlit has no single such file (then nothing is preloaded)."""
    try:
        from streamlit import file_util

        found = glob.glob(os.path.join(file_util.get_static_dir(), "static", "js", "PlotlyChart.*.js"))
    except Exception:  # noqa: BLE001 - a layout this code does not know: no preload, nothing else changes
        return None
    return f"static/js/{os.path.basename(found[0])}" if len(found) == 1 else None


def loading_hints() -> None:
    """The loading messages' CSS and the Plotly bundle's preload (relative to the page, so a baseUrlPath holds): one
    Markdown element at the foot of the sidebar, hidden by its own CSS. Streamlit renders HTML in Markdown lazily (a
    190 kB chunk fetched when the first such element arrives; a grey bar meanwhile, hence the sidebar's foot), so on
    a busy machine a chart that arrives soon after (a small or cached config) can show its grey box for a moment
    before the message. (st.html, a smaller chunk but rendered in the event container, came later still when
    measured, and drops <link>.)"""
    bundle = plotly_bundle()
    preload = f'<link rel="modulepreload" crossorigin href="./{bundle}">' if bundle else ""
    st.sidebar.container(key="loading_hints").markdown(LOADING_CSS + preload, unsafe_allow_html=True)


def presenting(page: str) -> bool:
    return view_settings(page).get("present") == "1"


def _leave_presentation(page: str) -> None:
    st.session_state[f"{page}_present"] = "0"


def frame(page: str, title: str) -> tuple[Any, Any]:
    """The page's title, then two containers: (intro, main). The intro (equations, metrics, notes) comes
    above the charts; in presentation mode below them, so the first chart opens the page. Also says "Loading the
    charting library…" in each chart's box until Plotly has loaded, and preloads it (``loading_hints``)."""
    loading_hints()
    if not presenting(page):
        st.title(title)
        return st.container(), st.container()
    st.markdown(PRESENT_CSS, unsafe_allow_html=True)
    bar = st.container(horizontal=True, vertical_alignment="center")
    bar.title(title)
    bar.button("✕ leave presentation", key=f"{page}_leave", on_click=_leave_presentation, args=(page,),
               type="tertiary", help="Show the sidebar and the controls again")
    main = st.container()
    return st.container(), main


# id(figure) -> (the figure, its projector copy): Plotly figures are unhashable, so no WeakKeyDictionary
_PRESENTED: dict[int, tuple[weakref.ref, Any]] = {}


def style(fig, page: str):
    """A figure as this page draws it: on a projector (presentation mode) larger type, thicker lines and
    colour bars, and a height that fits the screen; else as it is. The projector's is a copy, made once per
    figure: the analysis pages' figures are shared by every visitor (``explorer.memo``) and never changed."""
    if not presenting(page):
        return fig
    known = _PRESENTED.get(id(fig))
    if known is not None and known[0]() is fig:
        return known[1]
    styled = shared_figure(_projector(go.Figure(fig)))  # shared by every presenting visitor, never changed
    if len(_PRESENTED) > 256:  # forget the figures no longer alive
        for key in [key for key, (ref, _) in _PRESENTED.items() if ref() is None]:
            _PRESENTED.pop(key, None)
    _PRESENTED[id(fig)] = (weakref.ref(fig), styled)
    return styled


def _projector(fig):
    fig.update_layout(font=dict(size=20), height=min(fig.layout.height or PRESENT_HEIGHT, PRESENT_HEIGHT),
                      title=dict(font=dict(size=22)), legend=dict(font=dict(size=18)))
    fig.update_xaxes(tickfont=dict(size=18), title_font=dict(size=20))
    fig.update_yaxes(tickfont=dict(size=18), title_font=dict(size=20))
    for trace in fig.data:
        line = getattr(trace, "line", None)
        if line is not None and trace.type == "scatter":
            trace.line.width = 1.6 * (line.width or 2)
        if trace.type == "heatmap":
            trace.colorbar.thickness = 30
            trace.colorbar.tickfont = dict(size=18)
    return fig


def link(page: str) -> str:
    """The exact link of what the page shows: its address and the query it wrote (page, config, seed,
    view settings, B)."""
    own = st.session_state.get("pages", {}).get(page)
    query = urlencode(own.written) if own else ""
    return f"{st.context.url}?{query}" if query else st.context.url


def command(config: ExperimentConfig | TrainConfig, stride: int | None = None) -> str:
    """The command line that computes the same numbers (every field that differs from its default, and the seed)."""
    train = isinstance(config, TrainConfig)
    base = to_query(TrainConfig() if train else ExperimentConfig())
    mine = to_query(config)
    files = _file_flags(config)
    skip = set(FILE_FIELDS) | {"weights"} if not train and config.weights else set()  # the file decides them
    if not train and config.input == "file":
        skip |= {"input", "input_file", "seq_len"}  # the sequence's own length
    flags = [f"--{k.replace('_', '-')} {mine[k]}" for k in mine
             if k not in skip and (mine[k] != base.get(k) or k == "seed")]
    extra = ([f"--stride {stride}"] if stride and stride > 1 else []) + files
    return " ".join(["python -m explorer", "train" if train else "analyze", *flags, *extra, "--json"])


MODEL_FILE, SEQUENCE_FILE = "YOUR_MODEL.safetensors", "YOUR_SEQUENCE.csv"  # what a visitor's uploads stand as


def _uploads(config: ExperimentConfig | TrainConfig) -> dict[str, str]:
    """The uploads a config reads (its sha256 names -> the file each stands as): a shipped example is no upload."""
    if isinstance(config, TrainConfig):
        return {}
    out = {config.weights: MODEL_FILE} if config.weights and config.weights not in EXAMPLES else {}
    return out | ({config.input_file: SEQUENCE_FILE} if config.input == "file" else {})


def _file_flags(config: ExperimentConfig | TrainConfig) -> list[str]:
    """``--weights`` and ``--inputs`` of a config that loads files: a shipped example by name, an upload as the
    file the visitor holds (the config names it only by its sha256)."""
    if isinstance(config, TrainConfig):
        return []
    flags = [f"--weights {config.weights if config.weights in EXAMPLES else MODEL_FILE}"] if config.weights else []
    return flags + (["--inputs " + SEQUENCE_FILE] if config.input == "file" else [])


def snippet(config: ExperimentConfig | TrainConfig, stride: int | None = None) -> str:
    """Three lines of Python with the library."""
    train = isinstance(config, TrainConfig)
    if train:
        model = _arguments(config.model, ExperimentConfig(cell="lstm", seq_len=50))
        own = _arguments(config, TrainConfig(), skip=("model",))
        return (f"from explorer import ExperimentConfig, TrainConfig\nfrom explorer.train import train\n"
                f"run = train(TrainConfig(model=ExperimentConfig({model}){', ' + own if own else ''}))")
    strided = f", stride={stride}" if stride and stride > 1 else ""
    uploads = _uploads(config)
    if uploads:  # an example needs no file: the library finds it by name
        files = ", ".join(f"{key!r}: open({path!r}, 'rb').read()" for key, path in uploads.items())
        strided += f", files={{{files}}}"
    return (f"from explorer import ExperimentConfig, analyze\n"
            f"result = analyze(ExperimentConfig({_arguments(config, ExperimentConfig())}){strided})\n"
            f'result.pairs.log10_spectral["state"]  # log10 ||dh_s/dh_t||_2, every pair of the grid')


def _arguments(config, default, skip: tuple[str, ...] = ()) -> str:
    mine, base = config.to_dict(), default.to_dict()
    return ", ".join(f"{k}={v!r}" for k, v in mine.items() if k not in skip and (v != base.get(k) or k == "seed"))


def share(page: str, config: ExperimentConfig | TrainConfig, stride: int | None = None) -> None:
    """In the sidebar, one click away: the exact link (the code box's copy button copies it), and how to reproduce
    the picture. In a popover, whose content the browser builds when it opens: Streamlit's code boxes load a
    syntax highlighter (1.6 MB of JavaScript) that every first visit paid for before any chart was drawn."""
    with st.sidebar.popover("Share this view", icon=":material/link:", width="stretch"):
        st.caption("The exact link (page, config, seed, view, B): copy it with the box's button.")
        st.code(link(page), language=None, wrap_lines=True)
        with st.expander("reproduce: command line and Python"):
            st.code(command(config, stride), language="bash", wrap_lines=True)
            st.code(snippet(config, stride), language="python")


def heatmaps(report, maps: dict[str, tuple[Any, Any]], *, title: str, quantity: str, explanation: str, key: str,
             downloads=()) -> None:
    """One all-pairs map, or A's and B's side by side on one colour scale (the locked one, or the larger
    of the two data ranges), each in its half of the page."""
    import numpy as np

    from explorer import plots

    from .state import colour_limit

    limit = colour_limit(report.page)
    if limit is None and len(maps) > 1:
        finite = [np.abs(m[np.isfinite(m)]).max() for _, m in maps.values() if np.isfinite(m).any()]
        limit = float(max(finite)) if finite else None
    if len(maps) == 1:
        (grid, values), = maps.values()
        report.chart(plots.jacobian_heatmap(grid, values, title=title, quantity=quantity, limit=limit), explanation,
                     list(downloads), key=key)
        return
    columns = st.columns(len(maps))
    for column, (name, (grid, values)) in zip(columns, maps.items()):
        with column:
            half = title.replace(", ", "<br>", 1)  # half the width: a long title takes two lines, not a cut
            report.chart(plots.jacobian_heatmap(grid, values, title=f"{name}: {half}", quantity=quantity, limit=limit),
                         explanation if name == "A" else "The same colour scale as A's.",
                         list(downloads) if name == "A" else [], key=f"{key}_{name}")


def comparison_note(differences: list[str], note: str | None = None) -> None:
    st.info("Comparing **A**, this page's config, with **B**, which differs in " + "; ".join(f"`{d}`" for d in differences)
            + ". The maps share one colour scale; the lag curves and the singular spectra are drawn together."
            + (f" {note}" if note else ""), icon="⚖️")
