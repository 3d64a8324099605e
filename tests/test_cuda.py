"""The backend on CUDA gives the CPU's numbers: every cell's maps, contributions, gradient norms, singular values
and overflow step, in float64 (to 1e-9 in log10) and float32 (to 1e-4), and a short training run's losses.
Skipped where no CUDA device is present (CI); run on a GPU machine with ``python -m pytest tests/test_cuda.py``."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from explorer import ExperimentConfig, TrainConfig, analyze
from explorer.registry import CELL_TYPES

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device here: the cuda backend is checked on a GPU machine")

CONFIGS = [ExperimentConfig(cell=name, seq_len=40, hidden=16) for name in CELL_TYPES] + [
    ExperimentConfig(seq_len=40, hidden=16, activation="relu", init="orthogonal", gain=1.1),
    ExperimentConfig(seq_len=40, hidden=16, residual=True, init="gaussian", gain=1.3),
    ExperimentConfig(seq_len=40, hidden=16, norm="layer"),
    ExperimentConfig(seq_len=40, hidden=16, norm="batch"),
]
TOLERANCE = {"float64": 1e-9, "float32": 1e-4}  # log10 units


def _close(a, b, tol: float, what: str) -> None:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, what
    assert np.array_equal(np.isfinite(a), np.isfinite(b)), f"{what}: finite entries differ"
    finite = np.isfinite(a)
    worst = float(np.max(np.abs(a[finite] - b[finite]), initial=0.0))
    assert worst <= tol, f"{what}: largest difference {worst:.3g} > {tol:g}"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.cell}-{c.activation}-{c.norm}-res{int(c.residual)}")
def test_cuda_gives_the_cpus_numbers(config, dtype):
    config = config.replace(dtype=dtype)
    on_cpu, on_cuda = analyze(config, device="cpu"), analyze(config, device="cuda")
    tol = TOLERANCE[dtype]
    for view in on_cpu.pairs.log10_spectral:
        _close(on_cuda.pairs.log10_spectral[view], on_cpu.pairs.log10_spectral[view], tol, f"{view} spectral map")
        _close(on_cuda.pairs.log10_frobenius[view], on_cpu.pairs.log10_frobenius[view], tol, f"{view} Frobenius map")
    _close(on_cuda.contributions, on_cpu.contributions, tol, "contributions")
    _close(on_cuda.grad_norms, on_cpu.grad_norms, tol, "gradient norms")
    # each singular value drawn is within 0.1 % of the exact product's (tests/test_edges.py), on either device;
    # which ones are drawn may differ at the rounding limit
    both = np.isfinite(on_cuda.singular_values) & np.isfinite(on_cpu.singular_values)
    assert both[0] and abs(int(np.isfinite(on_cuda.singular_values).sum()) - int(both.sum())) <= 2
    _close(on_cuda.singular_values[both], on_cpu.singular_values[both], 1e-3, "singular values")
    scale = max(1.0, float(np.nanmax(np.abs(on_cpu.h))))  # float32 rounding is relative to the states' size
    _close(on_cuda.h, on_cpu.h, (1e-12 if dtype == "float64" else 1e-5) * scale, "states")
    assert on_cuda.overflow_step == on_cpu.overflow_step


def test_an_overflow_on_cuda_is_found_at_the_cpus_step():
    config = ExperimentConfig(activation="relu", init="gaussian", gain=3.0, seq_len=300, hidden=16)
    on_cpu, on_cuda = analyze(config, device="cpu"), analyze(config, device="cuda")
    assert on_cpu.overflow_step is not None and on_cuda.overflow_step == on_cpu.overflow_step
    assert np.array_equal(np.isnan(on_cuda.pairs.log10_spectral["state"]), np.isnan(on_cpu.pairs.log10_spectral["state"]))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_training_on_cuda_follows_the_cpu(cell, monkeypatch):
    from explorer.train import train

    config = TrainConfig(model=ExperimentConfig(cell=cell, seq_len=20, hidden=16, dtype="float64"), steps=30,
                         batch_size=8, record_every=5)
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    on_cpu = train(config)
    monkeypatch.setenv("EXPLORER_DEVICE", "cuda")
    on_cuda = train(config)
    assert len(on_cpu.history) == len(on_cuda.history) > 1
    for key in ("loss", "eval_loss", "grad_norm"):
        np.testing.assert_allclose([r[key] for r in on_cuda.history], [r[key] for r in on_cpu.history], rtol=1e-8,
                                   err_msg=key)
    np.testing.assert_allclose(on_cuda.grad_flow, on_cpu.grad_flow, atol=1e-8)


def test_the_backend_picks_cuda_when_present(monkeypatch):
    from explorer import backend

    monkeypatch.delenv("EXPLORER_DEVICE", raising=False)
    assert backend.device().type == "cuda"
    result = analyze(ExperimentConfig(seq_len=20, hidden=8))
    assert dataclasses.is_dataclass(result) and np.isfinite(result.pairs.log10_spectral["state"]).any()
