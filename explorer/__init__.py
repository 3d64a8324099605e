"""RNN Gradient Explorer: the library (torch backend, numerics, config, plots).

Never imports streamlit. From a notebook::

    from explorer import ExperimentConfig, analyze
    result = analyze(ExperimentConfig(seq_len=200, init="orthogonal"))
    result.pairs.log10_spectral["state"]  # (T+1, T+1) log10 ||dh_s/dh_t||_2

Importing the package sets nothing and starts no thread; the names below are imported on first
use, so that an entry point can call :func:`explorer.backend.configure` before torch loads.
"""
from __future__ import annotations

import importlib
import importlib.util

_HOMES = {"Analysis": "analysis", "analyze": "analysis", "auto_stride": "analysis", "to_json": "analysis",
          "ExperimentConfig": "config", "TrainConfig": "config", "from_query": "config"}

__all__ = ["Analysis", "ExperimentConfig", "TrainConfig", "analyze", "auto_stride", "from_query", "to_json"]


def __getattr__(name: str):
    """The names of ``__all__`` and the submodules (``explorer.analysis``), imported on first use."""
    home = _HOMES.get(name)
    if home is not None:
        value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    elif not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
