"""Downloadable data for every chart: CSV for lines and bars, NPZ for maps, JSON for configs.

Every data file carries the config that made it (a ``# config: {...}`` first line in a CSV, a
``config`` entry in an NPZ), and is named by page, quantity and the key settings
(:func:`file_name`), so a folder of downloads stays readable and each file reproduces.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Any, Mapping

import numpy as np

from .config import ExperimentConfig, TrainConfig

CONFIG_PREFIX = "# config: "


def file_stem(config: ExperimentConfig | TrainConfig) -> str:
    """The page, the cell and the key settings: ``lstm_T100_n64_seed0``, ``lab_adding_rnn_T50_n64_seed0``."""
    if isinstance(config, TrainConfig):
        return f"lab_{config.task}_{file_stem(config.model)}"
    return f"{config.cell}_T{config.seq_len}_n{config.hidden}_seed{config.seed}"


def file_name(config: ExperimentConfig | TrainConfig, quantity: str, ext: str) -> str:
    """``<stem>_<quantity>.<ext>``, e.g. ``lstm_T100_n64_seed0_maps.npz``."""
    return f"{file_stem(config)}_{quantity}.{ext}"


def csv_bytes(columns: Mapping[str, Any], config: ExperimentConfig | TrainConfig | None = None) -> bytes:
    """Equal-length columns as CSV (full precision; -inf, nan written as such), after a
    ``# config: <json>`` line when ``config`` is given (``pandas.read_csv(comment="#")`` skips it)."""
    names = list(columns)
    arrays = [np.asarray(columns[k]).ravel() for k in names]
    buf = io.StringIO()
    if config is not None:
        buf.write(CONFIG_PREFIX + json.dumps(config.to_dict()) + "\n")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for row in zip(*arrays):
        writer.writerow([repr(float(v)) if isinstance(v, (float, np.floating)) else v for v in row])
    return buf.getvalue().encode()


def npz_bytes(config: ExperimentConfig | TrainConfig | None = None, **arrays: Any) -> bytes:
    """Compressed NPZ of ``arrays``, plus ``config`` (its JSON, a string array) when given."""
    buf = io.BytesIO()
    if config is not None:
        arrays["config"] = json.dumps(config.to_dict())
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, indent=2, allow_nan=False).encode()


def pairs_arrays(result) -> dict[str, Any]:
    """Full-resolution all-pairs maps of an :class:`~explorer.analysis.Analysis` with the grid:
    log10_spectral_<view>[i, j] is the pair (grid[i], grid[j])."""
    pairs = result.pairs
    maps = {f"log10_spectral_{k}": v for k, v in pairs.log10_spectral.items()}
    maps.update({f"log10_frobenius_{k}": v for k, v in pairs.log10_frobenius.items()})
    return {"grid": pairs.grid, "spectral_rtol": pairs.rtol, **maps}
