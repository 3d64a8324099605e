"""What the pages say under each chart, beside the condition that picks it: no scattered ``if``s.

Each :class:`Caption` names its chart, the condition on the view (the config and what was drawn) under
which it holds, and its text, in Markdown with $..$ maths. The captions that hold for every cell are
here; each cell's own are in its :mod:`explorer.registry` entry. :func:`caption` joins every caption
of a chart whose condition holds. A test renders every cell and normalisation and checks that the words name only
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


CAPTIONS: tuple[Caption, ...] = (
    # what holds for every cell; each cell's own captions are in its registry entry
    Caption("map", _always,
            "Each cell is one partial product $\\partial h_s/\\partial h_t$ of the lecture's sum. **Blue**: the "
            "gradient from step $s$ has shrunk by that many decades when it reaches step $t$ (vanishing); "
            "**red**: it has grown (exploding); white: its size is kept."),
    Caption("lag", lambda v: v["bound"],
            "The measured spectral norm never rises above the dashed bound (the Frobenius norm, up to "
            "$\\sqrt{{n}}$ larger, may). The bound's slope is $\\log_{{10}}$ of {bound_base} per step, with "
            "$\\gamma = \\sup|g'|$; a slope below 0 guarantees vanishing."),
    Caption("steps", _always,
            "Each step multiplies the gradient by $J_k = \\partial h_k/\\partial h_{{k-1}}$: below the grey line "
            "($\\|J_k\\|_2 < 1$) it shrinks, above it grows. The product over many steps is the map above."),
    Caption("contrib", _always,
            "Each bar is one term $C_t$ of the lecture's sum (left axis, log scale). The red line (right axis) "
            "is the share of $\\sum_t\\|C_t\\|$ carried by steps $t$ and later: when the product vanishes only "
            "the last few steps carry weight."),
    Caption("eig", _always,
            "Eigenvalues outside the unit circle grow under repeated multiplication, inside it they shrink. "
            "Orthogonal initialisation puts them all on the circle."),
    Caption("sv", _always,
            "The largest singular value is the spectral norm; the spread shows how many directions survive. "
            "Only directions with $\\sigma_i$ near 1 carry information across the lag."),
    Caption("sv", lambda view: view.get("unresolved", 0) > 0,
            "The {unresolved} smallest lie below the dotted rounding limit: a float64 product of the lag's "
            "Jacobians fixes them only to within its rounding error, so they are not drawn (each one drawn is "
            "within 0.1 % of the exact product's)."),
    Caption("theory", lambda view: view.get("theory", False),
            "Mean-field theory treats $W_{{hh}}$ as a fresh random matrix at every step: the mean squared gradient "
            "then grows by $\\chi = \\sigma_w^2\\,\\mathbb{{E}}[g'(\\sqrt{{q^*}}z)^2]$ per step, with "
            "$\\sigma_w^2$, $\\sigma_b^2$ and the input's variance read from these very weights and inputs. "
            "The dashed line has the theory's slope and passes through the measured curve's last half, where the state's "
            "variance has settled to $q^*$ and the slopes are compared; with one fixed $W_{{hh}}$ of finite $n$ "
            "they differ by a few hundredths per step."),
    Caption("theory", lambda view: not view.get("theory", False),
            "Measured only: {theory_note}"),
    Caption("lyapunov", _always,
            "$\\lambda_i$: the average growth per step of the $i$-th direction of the whole product "
            "$\\partial h_T/\\partial h_0$, by QR re-orthonormalisation along the sequence (float64). "
            "$\\lambda_1$ is the slope of the spectral norm's curve; directions with $\\lambda_i < 0$ vanish."),
    Caption("lyapunov", lambda view: view.get("theory", False),
            "For a large random $W_{{hh}}$, $\\lambda_1 \\to \\tfrac12\\log_{{10}}\\chi$: a typical "
            "vector's norm grows by the square root of the mean square's factor."),
    Caption("gate_spread", _always,
            "The middle half of the units (band) and their median (line) per step. Where a gate sits near 0 "
            "or 1 its derivative $\\sigma' = \\sigma(1 - \\sigma)$ vanishes: {saturated}."),
)


def caption(chart: str, view: View) -> str:
    """Every caption of ``chart`` whose condition holds for ``view``: the general ones, then those of
    the view's cell (its registry entry), joined into one paragraph."""
    from .registry import cell_type

    table = CAPTIONS + cell_type(view["cell"]).captions
    texts = [c.text.format(**view) for c in table if c.chart == chart and c.when(view)]
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
