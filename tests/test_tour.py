"""The lecture tour: fourteen steps in the lecture's order, each config valid and drawable on its page, and
each step's claim measured on its real result (the two training steps run their short runs)."""
from __future__ import annotations

import functools
import math

import pytest

from explorer.analysis import analyze
from explorer.config import ExperimentConfig, TrainConfig, from_query, to_query
from explorer.presets import Measurement
from explorer.registry import cell_type
from explorer.tour import CHARTS, PAGE_CHARTS, STEPS, TourStep, compute, step

TITLES = (
    "The simple RNN",
    "The unrolled product",
    "Vanishing gradients (‖J‖ < 1)",
    "Exploding gradients (‖J‖ > 1)",
    "Residual connections",
    "Normalisation",
    "Xavier initialisation",
    "Orthogonal initialisation",
    "Orthogonal regularisation",
    "Riemannian optimisation",
    "LSTM: input gate only (the constant error carousel)",
    "LSTM: + output gate",
    "LSTM: + forget gate",
    "GRU",
)


@functools.lru_cache(maxsize=None)
def result(number: int):
    """The step's result as the page computes it, once per test session."""
    return compute(number)


def test_fourteen_steps_in_the_lectures_order():
    assert [s.number for s in STEPS] == list(range(1, 15))
    assert tuple(s.title for s in STEPS) == TITLES
    assert all(step(s.number) is s for s in STEPS)
    assert [s.number for s in STEPS if s.page == "lab"] == [9, 10]
    assert [s.number for s in STEPS if s.page == "gated"] == [11, 12, 13, 14]


@pytest.mark.parametrize("number", [0, 15, -1, True])
def test_a_step_out_of_range_is_a_clear_error(number):
    with pytest.raises(ValueError, match="steps 1 to 14"):
        step(number)


@pytest.mark.parametrize("s", STEPS, ids=[str(s.number) for s in STEPS])
def test_each_step_is_complete_and_its_config_valid_on_its_page(s: TourStep):
    assert s.equation and s.claim and s.text.count(". ") + 1 in (2, 3)  # two or three sentences
    assert 1 <= len(s.charts) <= 2 and set(s.charts) <= set(PAGE_CHARTS[s.page]) <= set(CHARTS)
    train = s.page == "lab"
    assert isinstance(s.config, TrainConfig if train else ExperimentConfig)
    model = s.config.model if train else s.config
    if not train:
        assert cell_type(model.cell).page == s.page
    if "cell_map" in s.charts:
        assert "cell" in cell_type(model.cell).views
    again, warnings = from_query(to_query(s.config), train=train)  # the link a page writes gives it back
    assert again == s.config and warnings == []


@pytest.mark.parametrize("number", range(1, 15))
def test_each_claim_holds_on_the_steps_real_result(number):
    s = step(number)
    m = s.measure(result(number))
    assert isinstance(m, Measurement) and isinstance(m.value, float) and math.isfinite(m.value) and m.text
    assert m.holds, f"step {number} ({s.title}): {s.claim} -- measured {m.text}"


def test_the_measures_read_the_numbers():
    """An identity's measure fails where the identity does not apply; a regime's fails on the other regime."""
    assert not step(3).measure(result(4)).holds  # exploding factors are not below 1
    assert not step(4).measure(result(3)).holds
    assert not step(11).measure(result(13)).holds  # with a forget gate the direct path is not I
    # ||J_k||_2 = max|g'| needs W_h W_h^T = I: a gaussian W_h breaks it
    gaussian = analyze(step(8).config.replace(init="gaussian"))
    assert not step(8).measure(gaussian).holds


def test_the_training_steps_show_their_point():
    regularised, riemannian = result(9), result(10)
    assert regularised.config.ortho_reg > 0 and riemannian.config.orthogonal_param == "matrix_exp"
    errors = [row["ortho_error"] for row in regularised.history]
    assert errors[-1] < errors[0]  # falls over the run, not only against the start
    assert max(row["ortho_error"] for row in riemannian.history) < 1e-5
