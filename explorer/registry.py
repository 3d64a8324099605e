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
    rnn_overlay: bool = True  # its page draws the simple RNN of the same size beside it (its cost: explorer.cost)

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
            "Layer norm divides $a_t$ by its spread over the units, so the overall scale of $W_{{hh}}$ largely "
            "cancels: at gains where the plain RNN's products vanish or explode by tens of decades, they stay within "
            "a few decades of 1 (compare gain 0.5 with and without it)."),
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


_DIAGONAL_CAPTIONS = (
    Caption("map", lambda v: True,
            "The Jacobian is diagonal and does not depend on $h$: each unit carries its gradient on its own, "
            "multiplied at each step by a number set by the input (minGRU, minLSTM) or fixed (LRU), and held "
            "near 1 by construction. Nothing mixes the units, so no product can cancel: the map is the "
            "slowest unit's decay."),
    Caption("steps", lambda v: True,
            "One step's factor is the largest diagonal entry: $\\max_i |d_{{k,i}}| \\le 1$ here, so the "
            "products never explode, and they vanish only as fast as the slowest unit forgets."),
)

_LRU_CAPTIONS = (
    Caption("intro", lambda v: True,
            "The Linear Recurrent Unit keeps a complex state and multiplies it by fixed eigenvalues $\\lambda_j$ "
            "drawn on the ring ${r_min} \\le |\\lambda| \\le {r_max}$: $\\|\\partial h_s/\\partial h_t\\|_2 = "
            "\\max_j |\\lambda_j|^{{s-t}}$ exactly, a memory of about $1/(1 - r_{{\\max}})$ = {timescale} steps."),
    Caption("gated_lag", lambda v: True,
            "The dashed line is the time-scale bound $|\\lambda|_{{\\max}}^k$ with $|\\lambda|_{{\\max}} \\le "
            "r_{{\\max}}$: the LRU's curve lies on it, the simple RNN of the same size falls away geometrically."),
)

_MINGRU_CAPTIONS = (
    Caption("intro", lambda v: True,
            "minGRU drops the GRU's dependence on $h$ from its gates: $z_t = \\sigma(W_z x_t + b_z)$, so "
            "$\\partial h_t/\\partial h_{{t-1}} = \\mathrm{{diag}}(1 - z_t)$ exactly, a diagonal of numbers in "
            "$(0, 1)$ that the input alone sets."),
    Caption("gates", lambda v: True, "$z$ near 0 keeps the state (a copy), near 1 takes the candidate."),
    Caption("gated_lag", lambda v: True,
            "The product is $\\prod_k \\mathrm{{diag}}(1 - z_k)$: it decays only as fast as the units' $1 - z$ "
            "fall below 1, while the simple RNN of the same size decays geometrically."),
)

_MINLSTM_CAPTIONS = (
    Caption("intro", lambda v: True,
            "minLSTM normalises its forget and input gates to sum to 1 and reads them from the input alone: "
            "$\\partial h_t/\\partial h_{{t-1}} = \\mathrm{{diag}}(f_t/(f_t + i_t))$ exactly."),
    Caption("gates", lambda v: True, "$f$ keeps the old state, $i$ takes the candidate; only their ratio matters."),
    Caption("gated_lag", lambda v: True,
            "The product is $\\prod_k \\mathrm{{diag}}(f'_k)$ with $f' = f/(f + i)$: a carousel whose leak the "
            "input sets, beside the simple RNN of the same size."),
)


CELL_TYPES: dict[str, CellType] = {cell.name: cell for cell in (
    CellType(
        "rnn", "simple RNN", "explorer.cells.rnn:SimpleRNN", "rnn", fields=("activation", "residual", "norm", "batch", "bias_std"),
        recurrent="square", torch_module=_rnn_module, describe=lambda v: f"{v['activation']} RNN", rnn_overlay=False,
        equations=lambda v: (r"h_t = " + (r"h_{t-1} + " if v["residual"] else "")
                             + r"g(a_t),\ a_t = W_{ih}x_t + b_{ih} + W_{hh}h_{t-1} + b_{hh}",),
        captions=_RNN_CAPTIONS),
    CellType(
        "lstm", "LSTM", "explorer.cells.lstm:LSTM", "gated", fields=("gates", "forget_bias"), state_units=2,
        gate_blocks=4, max_hidden=256, jacobian="diagonal_columns", jacobian_cost=0.25, views=("state", "cell"),
        gates=(Gate("i"), Gate("f"), Gate("g", signed=True), Gate("o")),
        torch_module=lambda v: "LSTM" if v["gates"] == "input,forget,output" else None,
        equations=lambda v: (r"i_t = \sigma(W^i_x x_t + W^i_h h_{t-1} + b^i),", r"g_t = \tanh(W^g_x x_t + W^g_h h_{t-1} + b^g),",
                             r"f_t, o_t = \sigma(\cdot)\ \text{(or 1 when absent)}", _LSTM_STAGES[v["gates"]]),
        lag_equation=r"\frac{\partial c_t}{\partial c_{t-1}}\Big|_{\text{direct}} = \mathrm{diag}(f_t)",
        captions=_LSTM_CAPTIONS),
    CellType(
        "gru", "GRU", "explorer.cells.gru:GRU", "gated", gate_blocks=3, jacobian_cost=0.35,
        gates=(Gate("r"), Gate("z"), Gate("n", signed=True)), torch_module=lambda v: "GRU",
        equations=lambda v: (r"r_t = \sigma(\cdot),\; z_t = \sigma(\cdot),",
                             r"n_t = \tanh(W_{in}x_t + b_{in} + r_t \odot (W_{hn}h_{t-1} + b_{hn})),",
                             r"h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}",),
        lag_equation=r"\frac{\partial h_t}{\partial h_{t-1}} \approx \mathrm{diag}(z_t)", captions=_GRU_CAPTIONS),
    CellType(
        "lru", "LRU (linear recurrent unit)", "explorer.cells.lru:LRU", "modern", fields=("r_min", "r_max", "max_phase"),
        state_units=2, max_hidden=256, recurrent="none", jacobian="diagonal", jacobian_cost=0.0,
        describe=lambda v: f"LRU |λ| in [{v['r_min']:g}, {v['r_max']:g}]",
        equations=lambda v: (r"h_t = \lambda \odot h_{t-1} + \gamma \odot (B x_t),",
                             r"\lambda_j = e^{-e^{\nu_j} + i e^{\theta_j}},\quad \gamma_j = \sqrt{1 - |\lambda_j|^2}",),
        lag_equation=r"\Big\|\frac{\partial h_s}{\partial h_t}\Big\|_2 = \max_j |\lambda_j|^{s-t}",
        captions=_DIAGONAL_CAPTIONS + _LRU_CAPTIONS),
    CellType(
        "mingru", "minGRU", "explorer.cells.minimal:MinGRU", "modern", gate_blocks=2, recurrent="none",
        jacobian="diagonal", jacobian_cost=0.0, gates=(Gate("z"),),
        equations=lambda v: (r"z_t = \sigma(W_z x_t + b_z),\ \tilde h_t = W_h x_t + b_h,",
                             r"h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t",),
        lag_equation=r"\frac{\partial h_t}{\partial h_{t-1}} = \mathrm{diag}(1 - z_t)",
        captions=_DIAGONAL_CAPTIONS + _MINGRU_CAPTIONS),
    CellType(
        "minlstm", "minLSTM", "explorer.cells.minimal:MinLSTM", "modern", gate_blocks=3, recurrent="none",
        jacobian="diagonal", jacobian_cost=0.0, gates=(Gate("f"), Gate("i")),
        equations=lambda v: (r"f_t = \sigma(W_f x_t + b_f),\ i_t = \sigma(W_i x_t + b_i),",
                             r"f'_t = \frac{f_t}{f_t + i_t},\ i'_t = \frac{i_t}{f_t + i_t},",
                             r"h_t = f'_t \odot h_{t-1} + i'_t \odot (W_h x_t + b_h)",),
        lag_equation=r"\frac{\partial h_t}{\partial h_{t-1}} = \mathrm{diag}\Big(\frac{f_t}{f_t + i_t}\Big)",
        captions=_DIAGONAL_CAPTIONS + _MINLSTM_CAPTIONS),
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
