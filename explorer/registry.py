"""Every recurrent cell the app knows, declared once: what varies by cell is looked up here, never
switched on by name (torch's ``nn.RNNBase`` keeps its mode table the same way).

A :class:`CellType` names the module that implements the cell (imported when first built, so this
table stays light: the config imports it), the config fields only it reads, its state size and gates,
the structure of its Jacobian (which decides the products' path), its cost in the stride's budget, the
``torch.nn`` module the lab can train it with, its equation and its page text. Adding a cell is its own
module in ``explorer/cells/`` plus one entry in ``CELL_TYPES``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .text import Caption

Values = Mapping[str, Any]  # a config's fields by name


@dataclass(frozen=True)
class Gate:
    """A gate the forward pass records (torch's name), on [0, 1], or on [-1, 1] when ``signed`` (a tanh candidate)."""

    name: str
    signed: bool = False


@dataclass(frozen=True)
class CellType:
    name: str  # the config's cell value, e.g. "lstm"
    label: str  # how it reads in a selector
    factory: str  # "module:Class" of its RecurrentCell, imported on first use
    page: str  # the page that offers it: "rnn", "gated" or "modern"
    fields: tuple[str, ...] = ()  # config fields only this cell reads: shown only for it
    state_units: int = 1  # m = state_units * n: the LSTM's (h, c), the LRU's (Re h, Im h)
    gate_blocks: int = 1  # n-row blocks that its input weights stack
    max_hidden: int = 512  # keeps m * (its cost) within the budget of the simple RNN's 512
    gates: tuple[Gate, ...] = ()
    # W_hh: "square" (n x n: can be kept orthogonal), "stacked" (gate blocks), or "none" (no recurrent matrix)
    recurrent: str = "stacked"
    # "dense": J_k (m, m) full; "diagonal_columns": columns from n on are diagonal blocks (the LSTM's dz/dc);
    # "diagonal": J_k diagonal (a diagonal recurrence), norms of products in O(m) per pair
    jacobian: str = "dense"
    jacobian_cost: float = 0.05  # building one J_k, in m x m matmul-equivalents (measured)
    views: tuple[str, ...] = ("state",)  # "cell": also the c -> c block of the full-state map
    torch_module: Callable[[Values], str | None] = lambda values: None  # the torch.nn module that computes it
    describe: Callable[[Values], str] | None = None  # a run's short name (default: the label)
    equations: Callable[[Values], tuple[str, ...]] = lambda values: ()  # LaTeX lines of the recurrence (its stage)
    lag_equation: str = ""  # LaTeX under the lag chart: what carries the gradient
    captions: tuple[Caption, ...] = ()  # what to look at under each chart, for this cell (explorer.text)

    def load(self) -> type:
        """The cell's class (imported now)."""
        module, name = self.factory.split(":")
        return getattr(importlib.import_module(module), name)

    def short_name(self, values: Values) -> str:
        return self.describe(values) if self.describe else self.label


def _rnn_module(values: Values) -> str | None:
    plain = values["activation"] in ("tanh", "relu") and not values["residual"] and values["norm"] == "none"
    return "RNN" if plain else None


def _rnn_plain(view: Values) -> bool:
    return view["norm"] == "none" and not view["residual"]


_RNN_CAPTIONS = (
    Caption("map", _rnn_plain,
            "Along a diagonal the lag $s - t$ is fixed: a steady change of colour away from the diagonal is the "
            "geometric decay (or growth) that the bound predicts."),
    Caption("map", lambda v: v["residual"],
            "With the residual connection $h_t = h_{{t-1}} + g(a_t)$ each factor is "
            "$\\partial h_t/\\partial h_{{t-1}} = I + \\mathrm{{diag}}(g')\\,W_{{hh}}$: the identity carries the "
            "gradient past every step, so the products no longer vanish; the added term can make them grow "
            "(red) instead."),
    Caption("map", lambda v: v["norm"] == "layer",
            "Layer norm divides $a_t$ by its spread over the units, so the scale of $W_{{hh}}$ cancels: the "
            "products stay within a few decades of 1 whatever the gain."),
    Caption("map", lambda v: v["norm"] == "batch",
            "Batch norm divides each unit by its spread over the batch at that step (statistics held fixed), "
            "which cancels the scale of $W_{{hh}}$ too."),
    Caption("lag", lambda v: not v["bound"],
            "No bound is drawn: normalisation's Jacobian depends on the statistics of each step, so "
            "$\\gamma\\,\\sigma_{{\\max}}(W_{{hh}})$ does not bound it."),
    Caption("steps", lambda v: v["residual"],
            "With the residual connection $J_k = I + \\mathrm{{diag}}(g')W_{{hh}}$ sits at or above 1: the "
            "lecture's $\\partial y/\\partial x = I + \\partial f/\\partial x$."),
)

_LSTM_STAGES = {
    "input": r"c_t = c_{t-1} + i_t \odot g_t,\qquad h_t = \tanh(c_t)",
    "input,output": r"c_t = c_{t-1} + i_t \odot g_t,\qquad h_t = o_t \odot \tanh(c_t)",
    "input,forget,output": r"c_t = f_t \odot c_{t-1} + i_t \odot g_t,\qquad h_t = o_t \odot \tanh(c_t)",
}

_LSTM_CAPTIONS = (
    Caption("map", lambda v: "forget" in v["gates"],
            "For the LSTM the state is $z = (h, c)$. At torch's default forget bias ($f \\approx 0.5$) the cell "
            "forgets quickly; a forget bias of 1–2 or chrono keeps the cell path near 0 (white) over long lags. "
            "Compare with the simple RNN page."),
    Caption("map", lambda v: "forget" not in v["gates"],
            "For the LSTM the state is $z = (h, c)$. Without a forget gate the cell path is the identity, so "
            "no product falls far below 1: the gradient is carried, and may grow where the gates feed $c$ "
            "back. Compare with the simple RNN page."),
    Caption("gates", lambda v: True,
            "Dark (near 0) closes a gate, bright (near 1) opens it; $g$ is the candidate on $[-1, 1]$. "
            "A gate absent from the stage is exactly 1."),
    Caption("intro", lambda v: v["gates"] == "input",
            "Stage 1: only the input gate. The cell path is additive, so $\\partial c_t/\\partial c_{{t-1}} = I$ "
            "exactly: the **constant error carousel**. Nothing can be forgotten, and $c$ may grow without bound."),
    Caption("intro", lambda v: v["gates"] == "input,output",
            "Stage 2: the output gate decides how much of the cell state is shown. The carousel is unchanged: "
            "$\\partial c_t/\\partial c_{{t-1}} = I$ along the cell path."),
    Caption("intro", lambda v: v["gates"] == "input,forget,output",
            "Stage 3: the forget gate scales the carousel: $\\partial c_t/\\partial c_{{t-1}} = "
            "\\mathrm{{diag}}(f_t)$ along the cell path. This is `torch.nn.LSTM`; a forget bias of 1 or chrono "
            "keeps $f$ near 1 at the start."),
    Caption("gated_lag", lambda v: True,
            "The simple RNN of the same size decays geometrically; the LSTM's direct cell path "
            "$\\prod_k \\mathrm{{diag}}(f_k)$ is exactly 0 (norm 1) without a forget gate, and decays only "
            "as fast as $\\prod_k f_k$ with one."),
)

_GRU_CAPTIONS = (
    Caption("map", lambda v: True,
            "For the GRU, $\\partial h_t/\\partial h_{{t-1}} \\approx \\mathrm{{diag}}(z_t)$ where the update "
            "gate $z_t$ is near 1: those units copy their state and carry the gradient. Compare with the "
            "simple RNN page."),
    Caption("intro", lambda v: True,
            "The GRU interpolates between the old state and a candidate: where $z_t \\approx 1$ the state is copied "
            "and $\\partial h_t/\\partial h_{{t-1}} \\approx \\mathrm{{diag}}(z_t)$, a gated carousel without a "
            "separate cell."),
    Caption("gates", lambda v: True,
            "$r$ decides how much of $h_{{t-1}}$ the candidate $n$ sees; $z$ near 1 keeps the old state "
            "(a copy), near 0 takes the candidate."),
    Caption("gated_lag", lambda v: True,
            "The simple RNN of the same size decays geometrically; the GRU's state decays only where its "
            "update gates $z_k$ fall below 1."),
)


CELL_TYPES: dict[str, CellType] = {cell.name: cell for cell in (
    CellType(
        "rnn", "simple RNN", "explorer.cells.rnn:SimpleRNN", "rnn", fields=("activation", "residual", "norm", "batch"),
        recurrent="square", torch_module=_rnn_module, describe=lambda v: f"{v['activation']} RNN",
        equations=lambda v: (r"h_t = " + (r"h_{t-1} + " if v["residual"] else "")
                             + r"g(a_t),\ a_t = W_{ih}x_t + b_{ih} + W_{hh}h_{t-1} + b_{hh}",),
        captions=_RNN_CAPTIONS),
    CellType(
        "lstm", "LSTM", "explorer.cells.lstm:LSTM", "gated", fields=("gates", "forget_bias"), state_units=2,
        gate_blocks=4, max_hidden=256, jacobian="diagonal_columns", jacobian_cost=0.25, views=("state", "cell"),
        gates=(Gate("i"), Gate("f"), Gate("g", signed=True), Gate("o")),
        torch_module=lambda v: "LSTM" if v["gates"] == "input,forget,output" else None,
        equations=lambda v: (r"i_t = \sigma(W^i_x x_t + W^i_h h_{t-1} + b^i),\; g_t = \tanh(W^g_x x_t + W^g_h h_{t-1} + b^g),"
                             r"\; f_t, o_t = \sigma(\cdot)\ \text{(or 1 when absent)}", _LSTM_STAGES[v["gates"]]),
        lag_equation=r"\frac{\partial c_t}{\partial c_{t-1}}\Big|_{\text{direct}} = \mathrm{diag}(f_t)",
        captions=_LSTM_CAPTIONS),
    CellType(
        "gru", "GRU", "explorer.cells.gru:GRU", "gated", gate_blocks=3, jacobian_cost=0.35,
        gates=(Gate("r"), Gate("z"), Gate("n", signed=True)), torch_module=lambda v: "GRU",
        equations=lambda v: (r"r_t = \sigma(\cdot),\; z_t = \sigma(\cdot),\; n_t = \tanh(W_{in}x_t + b_{in} + r_t \odot "
                             r"(W_{hn}h_{t-1} + b_{hn})),\; h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}",),
        lag_equation=r"\frac{\partial h_t}{\partial h_{t-1}} \approx \mathrm{diag}(z_t)", captions=_GRU_CAPTIONS),
)}


def cell_type(name: str) -> CellType:
    """The registered cell ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return CELL_TYPES[name]
    except KeyError:
        raise ValueError(f"cell must be one of {', '.join(CELL_TYPES)}, got {name!r}") from None


def cells_on(page: str) -> tuple[str, ...]:
    """The cells a page offers, in registry order."""
    return tuple(name for name, cell in CELL_TYPES.items() if cell.page == page)


def owner(field_name: str) -> CellType | None:
    """The one cell that reads a cell-specific field, or None for a field every cell reads."""
    for cell in CELL_TYPES.values():
        if field_name in cell.fields:
            return cell
    return None
