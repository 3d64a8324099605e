"""RNN Gradient Explorer: the library (torch backend, numerics, config, plots).

Never imports streamlit. From a notebook::

    from explorer import ExperimentConfig, analyze
    result = analyze(ExperimentConfig(seq_len=200, init="orthogonal"))
    result.pairs.log10_spectral["state"]  # (T+1, T+1) log10 ||dh_s/dh_t||_2
"""
from . import backend  # noqa: F401  (thread pool and denormal settings first)
from .analysis import Analysis, analyze, auto_stride, to_json
from .config import ExperimentConfig, TrainConfig, from_query

__all__ = ["Analysis", "ExperimentConfig", "TrainConfig", "analyze", "auto_stride", "from_query", "to_json"]
