"""The recurrent cells, one module each, found through :mod:`explorer.registry`.

``build_cell(config)`` makes the seeded cell a config describes; every cell keeps torch.nn's
parameter names, so its weights copy to and from ``torch.nn.RNN``/``LSTM``/``GRU``.
"""
from __future__ import annotations

import torch

from ..config import ExperimentConfig
from ..registry import cell_type
from .base import RecurrentCell, Trace, first_nonfinite, init_recurrent, make_inputs, reset_default

__all__ = ["RecurrentCell", "Trace", "build_cell", "first_nonfinite", "init_recurrent", "make_inputs", "reset_default"]


def build_cell(config: ExperimentConfig, device: torch.device | str = "cpu") -> RecurrentCell:
    """The seeded cell a config describes, on ``device``. Weights are drawn on the CPU
    from a private generator, so CPU and GPU runs see identical numbers."""
    from ..backend import DTYPES, generator

    cell = cell_type(config.cell).load().from_config(config, DTYPES[config.dtype])
    cell.initialise(config, generator(config.seed, 0))
    return cell.to(device)
