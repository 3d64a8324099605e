"""Downloadable data for every chart: CSV for lines and bars, NPZ for maps, JSON for configs."""
from __future__ import annotations

import csv
import io
import json
from typing import Any, Mapping

import numpy as np


def csv_bytes(columns: Mapping[str, Any]) -> bytes:
    """Equal-length columns as CSV (full precision; -inf, nan written as such)."""
    names = list(columns)
    arrays = [np.asarray(columns[k]).ravel() for k in names]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(names)
    for row in zip(*arrays):
        writer.writerow([repr(float(v)) if isinstance(v, (float, np.floating)) else v for v in row])
    return buf.getvalue().encode()


def npz_bytes(**arrays: Any) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, indent=2, allow_nan=False).encode()


def pairs_npz(result) -> bytes:
    """Full-resolution all-pairs maps of an :class:`~explorer.analysis.Analysis`, with the grid
    and the config: log10_spectral_<view>[i, j] is the pair (grid[i], grid[j])."""
    pairs = result.pairs
    maps = {f"log10_spectral_{k}": v for k, v in pairs.log10_spectral.items()}
    maps.update({f"log10_frobenius_{k}": v for k, v in pairs.log10_frobenius.items()})
    return npz_bytes(grid=pairs.grid, spectral_rtol=pairs.rtol, config=json.dumps(result.config.to_dict()), **maps)
