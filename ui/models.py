"""Your own model on a page: a shipped example or an uploaded file (held in this session's memory only, never
written to disk), the layer and direction to analyse, an uploaded input sequence, and the untrained twin as B.

The config names the file by its sha256 (``weights``), so the cache key and the link come from the config; the
bytes live in ``st.session_state`` and reach the analysis beside the key (:func:`files`).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import streamlit as st

from explorer import limits, weights
from explorer.config import SELECTION_FIELDS, SPECS, ExperimentConfig
from explorer.registry import cell_type, cells_on
from explorer.weights import EXAMPLES, WeightsError

UPLOADS = "uploads"  # session_state: "sha256:<hex>" -> bytes, this session's files only
COMPARES = ("rnn", "gated")  # the pages that draw a second config B beside A
SOURCE_DEFAULTS = {name: getattr(ExperimentConfig(), name) for name in ("weights", *SELECTION_FIELDS)}
UNSELECTED = {name: None for name in SELECTION_FIELDS}  # a link's selection inside a file, removed


def files() -> dict[str, bytes]:
    """This session's loaded files by digest (memory only)."""
    return st.session_state.setdefault(UPLOADS, {})


def needs_files(config: Any) -> bool:
    return isinstance(config, ExperimentConfig) and bool(config.weights or config.input == "file")


def plain(text: str) -> str:
    """A message that quotes a file (its name, its tensors' keys, a reader's error) as plain text: every character
    Markdown or LaTeX would act on is escaped, so nothing in a file becomes a link, an image or a formula."""
    return re.sub(r"([\\`*_{}\[\]()<>#!|~$&+\-])", r"\\\1", text)


def fit(config: Any, page: str) -> tuple[Any, list[str]]:
    """``config`` fitted to the file it names (the file decides the cell and its size), or, where the file cannot be
    opened here (not uploaded in this session, another page's cell, a bad file), the seeded init with a message."""
    if not needs_files(config):
        return config, []
    messages = []
    if config.weights:
        quoting = str  # a link's own words (an example's, or a file this session does not hold) need no escaping
        try:
            cells = cells_on(page)
            if not cells:
                raise WeightsError("this page analyses seeded inits only: open a trained model on the Simple RNN or "
                                   "LSTM and GRU page")
            data = weights.resolve(config, files())
            quoting = str if config.weights in EXAMPLES else plain  # an upload's names are the uploader's
            loaded = weights.load_bytes(config, data, weights.file_label(config), cells)
            if loaded.config.hidden > limits.LIMITS.max_hidden:  # a file's n cannot be lowered like a slider's
                raise WeightsError(f"the file's {cell_type(loaded.config.cell).label} has n = {loaded.config.hidden} "
                                   f"units; this server analyses at most {limits.LIMITS.max_hidden} "
                                   "(EXPLORER_MAX_HIDDEN): use python -m explorer analyze --weights FILE")
            config, messages = loaded.config, [quoting(note) for note in loaded.notes]
        except WeightsError as err:
            config = config.replace(**SOURCE_DEFAULTS)
            messages.append(f"{quoting(str(err))}. Showing the seeded init instead.")
    if config.input == "file" and config.input_file not in files():
        config = config.replace(input="gaussian", input_file="")
        messages.append("The input sequence this link names is not loaded here (an upload lives only in the session "
                        "that uploaded it): using gaussian inputs. Upload it again to use it.")
    return config, messages


def page_title(page: str) -> str:
    """A page's title as the sidebar shows it, from its file (pages/2_Simple_RNN.py: "Simple RNN")."""
    from .sweeps import PAGE_FILES

    return Path(PAGE_FILES[page]).stem.split("_", 1)[1].replace("_", " ")


def _go(changes: dict[str, str | None]) -> None:
    """Rewrite the page's query (None removes a parameter) and run again: the sidebar reads the link."""
    query = st.query_params.to_dict()
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    st.query_params.from_dict(query)
    st.rerun()


def _take_upload(page: str, config: ExperimentConfig, upload) -> None:
    """A new upload: checked (one line on failure), kept in memory, and named in the link."""
    data = upload.getvalue()
    try:
        loaded = weights.load_bytes(config.replace(**SOURCE_DEFAULTS), data, upload.name)
        if loaded.config.cell not in cells_on(page):
            raise WeightsError(f"{upload.name} holds {weights.article(cell_type(loaded.config.cell).label)} "
                               f"({loaded.source['module']}): open it on the "
                               f"{page_title(cell_type(loaded.config.cell).page)} page")
    except WeightsError as err:
        st.warning(plain(str(err)), icon="⚠️")
        return
    key = weights.digest(data)
    files()[key] = data
    seed = loaded.source.get("trained_from_seed")  # a lab file: its untrained twin is the run's own init
    _go({"weights": key, **UNSELECTED, "prefix": loaded.config.prefix or None,
         **({"seed": str(seed)} if seed is not None else {})})


def _take_sequence(config: ExperimentConfig, upload) -> None:
    data = upload.getvalue()
    try:
        fitted, _ = weights.sequence_config(config, data, upload.name)
    except WeightsError as err:
        st.warning(plain(str(err)), icon="⚠️")
        return
    files()[fitted.input_file] = data
    _go({"input": "file", "input_file": fitted.input_file, "seq_len": str(fitted.seq_len)})


def panel(page: str, config: ExperimentConfig, comparing: bool) -> None:
    """The page's "your own model" expander: shipped examples, an upload, the layer and direction, the sequence,
    and the untrained-versus-trained comparison (B = the seeded init of the same cell: ``b_weights=``)."""
    state = st.session_state
    with st.expander("🧩 Your own model: analyse trained weights", expanded=bool(config.weights)):
        examples = [e for e in EXAMPLES.values() if e.page == page]
        for example in examples:  # one per line: side by side, their labels were cut at 1024 px
            if st.button(f"Open: {example.label}", key=f"{page}_example_{example.name}"):
                seed = weights.load(ExperimentConfig(weights=example.name)).source["trained_from_seed"]
                _go({"weights": example.name, **UNSELECTED, "seed": str(seed)})
        if examples:
            st.caption("Shipped examples, trained by the Training Lab's own code; each file is reproduced byte for "
                       "byte by " + "; ".join(f"`{e.command}`" for e in examples) + ".")
        upload = st.file_uploader(
            "or load a state dict of torch.nn.RNN, LSTM or GRU (safetensors, or torch.save: only tensors are read)",
            type=["safetensors", "pt", "pth", "bin", "ckpt"], key=f"{page}_weights_upload",
            help=f"Held in this session's memory only, never written to disk; at most "
                 f"{weights.max_bytes() / 2**20:.0f} MB. A multi-layer or bidirectional module: pick the layer and "
                 "direction below. Inside a larger model: the prefix.")
        if upload is not None and state.get(f"{page}_weights_seen") != upload.file_id:
            state[f"{page}_weights_seen"] = upload.file_id
            _take_upload(page, config, upload)
        if not config.weights:
            return
        _loaded_controls(page, config, comparing)


def _loaded_controls(page: str, config: ExperimentConfig, comparing: bool) -> None:
    state = st.session_state
    loaded = weights.load(config, files())
    source = loaded.source
    name = EXAMPLES[config.weights].label if config.weights in EXAMPLES else f"file sha256 {source['sha256'][:12]}…"
    st.success(f"Analysing **{name}**: {source['module']}, layer {config.layer}, {config.direction}"
               + (f", prefix {plain(config.prefix)}" if config.prefix else "") + "."
               + (" The reverse direction reads the sequence from its end: step 1 of every chart is the input's last "
                  "step." if config.direction == "reverse" else "")
               + (f" Its inputs are the outputs of layers 0–{config.layer - 1}, run in torch.nn's own module."
                  if config.layer > 0 else ""), icon="🧩")
    for note in loaded.notes:
        st.info(plain(note), icon="ℹ️")
    modules = loaded.modules
    module = next((m for m in modules if m.prefix == config.prefix), None)
    columns = st.columns(3)
    if len(modules) > 1:
        prefixes = [m.prefix for m in modules]
        choice = columns[0].selectbox("module (prefix)", prefixes, index=prefixes.index(config.prefix),
                                      key=f"{page}_prefix_pick")
        if choice != config.prefix:
            _go({**UNSELECTED, "prefix": choice or None})
    if module is not None and module.layers > 1:
        layer = columns[1].selectbox("layer", list(range(module.layers)), index=config.layer, key=f"{page}_layer_pick",
                                     help="The layers below it run in torch.nn's module to make its inputs")
        if layer != config.layer:
            _go({"layer": str(layer)})
    if module is not None and module.bidirectional:
        directions = SPECS["direction"].choices
        direction = columns[2].selectbox("direction", directions, index=directions.index(config.direction),
                                         key=f"{page}_direction_pick", help=SPECS["direction"].help)
        if direction != config.direction:
            _go({"direction": direction})
    sequence = st.file_uploader(f"input sequence (optional): CSV or NPY, T × {config.input_size}",
                                type=["csv", "npy"], key=f"{page}_sequence_upload",
                                help="Each row one step x_t; T becomes the sequence length. Memory only.")
    if sequence is not None and state.get(f"{page}_sequence_seen") != sequence.file_id:
        state[f"{page}_sequence_seen"] = sequence.file_id
        _take_sequence(config, sequence)
    left, right = st.columns(2)
    if page in COMPARES and not comparing and left.button("Compare with the untrained model (A/B)", key=f"{page}_untrained",
                                     help="B: the same cell at its seeded initialisation: both maps on one colour "
                                          "scale, both lag curves and both singular spectra"):
        _go({"b_weights": ""})
    if right.button("Back to the seeded init", key=f"{page}_unload"):
        _go({"weights": None, **UNSELECTED, "b_weights": None})


def untrained_note(config: ExperimentConfig) -> str | None:
    """What B is when it is A's untrained twin (a caption), or None."""
    if not config.weights:
        return None
    try:
        source = weights.load(config, files()).source
    except WeightsError:
        return None
    if source.get("trained_from_seed") == config.seed:
        where = f"the training run's own initial weights (seed {config.seed})"
    else:
        where = f"the seeded initialisation of the same cell (seed {config.seed})"
    if config.layer > 0:
        where += "; it reads the network's inputs directly, not the outputs of the layers below"
    return f"B is the untrained model: {where}."


__all__ = ["fit", "files", "needs_files", "panel", "untrained_note"]
