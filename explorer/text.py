"""What the pages say under each chart, beside the condition that picks it: one table, no scattered ``if``s.

Each :class:`Caption` names its chart, the condition on the view (the config and what was drawn) under
which it holds, and its text, in Markdown with $..$ maths. :func:`caption` joins every caption of a chart
whose condition holds. A test renders every cell and normalisation and checks that the words name only
what is drawn (no "dashed bound" without a bound, no forget gate on a GRU).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

View = dict[str, Any]  # the config's fields, plus what the page drew: "bound" (a bound line), "stride", ...


@dataclass(frozen=True)
class Caption:
    chart: str
    when: Callable[[View], bool]
    text: str  # may use {fields} of the view


def _always(view: View) -> bool:
    return True


def _rnn_plain(view: View) -> bool:
    return view["cell"] == "rnn" and view["norm"] == "none" and not view["residual"]


CAPTIONS: tuple[Caption, ...] = (
    # --- Simple RNN: the all-pairs map
    Caption("map", _always,
            "Each cell is one partial product $\\partial h_s/\\partial h_t$ of the lecture's sum. **Blue**: the "
            "gradient from step $s$ has shrunk by that many decades when it reaches step $t$ (vanishing); "
            "**red**: it has grown (exploding); white: its size is kept."),
    Caption("map", _rnn_plain,
            "Along a diagonal the lag $s - t$ is fixed: a steady change of colour away from the diagonal is the "
            "geometric decay (or growth) that the bound predicts."),
    Caption("map", lambda v: v["cell"] == "rnn" and v["residual"],
            "With the residual connection $h_t = h_{{t-1}} + g(a_t)$ each factor is "
            "$\\partial h_t/\\partial h_{{t-1}} = I + \\mathrm{{diag}}(g')\\,W_{{hh}}$: the identity carries the "
            "gradient past every step, so the products no longer vanish; the added term can make them grow "
            "(red) instead."),
    Caption("map", lambda v: v["cell"] == "rnn" and v["norm"] == "layer",
            "Layer norm divides $a_t$ by its spread over the units, so the scale of $W_{{hh}}$ cancels: the "
            "products stay within a few decades of 1 whatever the gain."),
    Caption("map", lambda v: v["cell"] == "rnn" and v["norm"] == "batch",
            "Batch norm divides each unit by its spread over the batch at that step (statistics held fixed), "
            "which cancels the scale of $W_{{hh}}$ too."),
    # --- LSTM and GRU: the all-pairs map
    Caption("map", lambda v: v["cell"] == "lstm" and "forget" in v["gates"],
            "For the LSTM the state is $z = (h, c)$. At torch's default forget bias ($f \\approx 0.5$) the cell "
            "forgets quickly; a forget bias of 1–2 or chrono keeps the cell path near 0 (white) over long lags. "
            "Compare with the simple RNN page."),
    Caption("map", lambda v: v["cell"] == "lstm" and "forget" not in v["gates"],
            "For the LSTM the state is $z = (h, c)$. Without a forget gate the cell path is the identity, so "
            "no product falls far below 1: the gradient is carried, and may grow where the gates feed $c$ "
            "back. Compare with the simple RNN page."),
    Caption("map", lambda v: v["cell"] == "gru",
            "For the GRU, $\\partial h_t/\\partial h_{{t-1}} \\approx \\mathrm{{diag}}(z_t)$ where the update "
            "gate $z_t$ is near 1: those units copy their state and carry the gradient. Compare with the "
            "simple RNN page."),
    # --- Simple RNN: the lag curve
    Caption("lag", lambda v: v["bound"],
            "The measured spectral norm never rises above the dashed bound (the Frobenius norm, up to "
            "$\\sqrt{{n}}$ larger, may). The bound's slope is $\\log_{{10}}$ of {bound_base} per step, with "
            "$\\gamma = \\sup|g'|$; a slope below 0 guarantees vanishing."),
    Caption("lag", lambda v: v["cell"] == "rnn" and not v["bound"],
            "No bound is drawn: normalisation's Jacobian depends on the statistics of each step, so "
            "$\\gamma\\,\\sigma_{{\\max}}(W_{{hh}})$ does not bound it."),
    # --- the single step
    Caption("steps", _always,
            "Each step multiplies the gradient by $J_k = \\partial h_k/\\partial h_{{k-1}}$: below the grey line "
            "($\\|J_k\\|_2 < 1$) it shrinks, above it grows. The product over many steps is the map above."),
    Caption("steps", lambda v: v["cell"] == "rnn" and v["residual"],
            "With the residual connection $J_k = I + \\mathrm{{diag}}(g')W_{{hh}}$ sits at or above 1: the "
            "lecture's $\\partial y/\\partial x = I + \\partial f/\\partial x$."),
    # --- contributions
    Caption("contrib", _always,
            "Each bar is one term $C_t$ of the lecture's sum (left axis, log scale). The red line (right axis) "
            "is the share of $\\sum_t\\|C_t\\|$ carried by steps $t$ and later: when the product vanishes only "
            "the last few steps carry weight."),
    # --- eigenvalues and singular values
    Caption("eig", _always,
            "Eigenvalues outside the unit circle grow under repeated multiplication, inside it they shrink. "
            "Orthogonal initialisation puts them all on the circle."),
    Caption("sv", _always,
            "The largest singular value is the spectral norm; the spread shows how many directions survive. "
            "Only directions with $\\sigma_i$ near 1 carry information across the lag."),
    # --- LSTM and GRU: gates and the carousel
    Caption("gates", lambda v: v["cell"] == "lstm",
            "Dark (near 0) closes a gate, bright (near 1) opens it; $g$ is the candidate on $[-1, 1]$. "
            "A gate absent from the stage is exactly 1."),
    Caption("gates", lambda v: v["cell"] == "gru",
            "$r$ decides how much of $h_{{t-1}}$ the candidate $n$ sees; $z$ near 1 keeps the old state "
            "(a copy), near 0 takes the candidate."),
    Caption("gate_spread", _always,
            "The middle half of the units (band) and their median (line) per step. Where a gate sits near 0 "
            "or 1 its derivative $\\sigma' = \\sigma(1 - \\sigma)$ vanishes: {saturated}."),
    Caption("intro", lambda v: v["cell"] == "lstm" and v["gates"] == "input",
            "Stage 1: only the input gate. The cell path is additive, so $\\partial c_t/\\partial c_{{t-1}} = I$ "
            "exactly: the **constant error carousel**. Nothing can be forgotten, and $c$ may grow without bound."),
    Caption("intro", lambda v: v["cell"] == "lstm" and v["gates"] == "input,output",
            "Stage 2: the output gate decides how much of the cell state is shown. The carousel is unchanged: "
            "$\\partial c_t/\\partial c_{{t-1}} = I$ along the cell path."),
    Caption("intro", lambda v: v["cell"] == "lstm" and v["gates"] == "input,forget,output",
            "Stage 3: the forget gate scales the carousel: $\\partial c_t/\\partial c_{{t-1}} = "
            "\\mathrm{{diag}}(f_t)$ along the cell path. This is `torch.nn.LSTM`; a forget bias of 1 or chrono "
            "keeps $f$ near 1 at the start."),
    Caption("intro", lambda v: v["cell"] == "gru",
            "The GRU interpolates between the old state and a candidate: where $z_t \\approx 1$ the state is copied "
            "and $\\partial h_t/\\partial h_{{t-1}} \\approx \\mathrm{{diag}}(z_t)$, a gated carousel without a "
            "separate cell."),
    Caption("gated_lag", lambda v: v["cell"] == "lstm",
            "The simple RNN of the same size decays geometrically; the LSTM's direct cell path "
            "$\\prod_k \\mathrm{{diag}}(f_k)$ is exactly 0 (norm 1) without a forget gate, and decays only "
            "as fast as $\\prod_k f_k$ with one."),
    Caption("gated_lag", lambda v: v["cell"] == "gru",
            "The simple RNN of the same size decays geometrically; the GRU's state decays only where its "
            "update gates $z_k$ fall below 1."),
)


def caption(chart: str, view: View) -> str:
    """Every caption of ``chart`` whose condition holds for ``view``, joined into one paragraph."""
    texts = [c.text.format(**view) for c in CAPTIONS if c.chart == chart and c.when(view)]
    if not texts:
        raise KeyError(f"no caption for chart {chart!r}")
    return " ".join(texts)


def ordinal(k: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, ..."""
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def saturation_summary(shares: dict, low: float = 0.05, high: float = 0.95) -> str:
    """How saturated the gates are, in words, from the share of saturated units per gate and step."""
    peaks = {name: (float(np.nanmax(share)), int(np.nanargmax(share)) + 1) for name, share in shares.items()
             if share.size and np.isfinite(share).any()}
    if not peaks or max(p for p, _ in peaks.values()) == 0:
        return f"at this config no unit of any gate is saturated (below {low} or above {high}) at any step"
    name, (peak, step) = max(peaks.items(), key=lambda item: item[1][0])
    return f"at most {peak:.0%} of the units are saturated (gate {name}, step {step}; below {low} or above {high})"
