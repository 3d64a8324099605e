"""LSTM and GRU cells against torch.nn, autograd and exact closed forms."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explorer.analysis import analyze, direct_cell_path
from explorer.cells import Trace, build_cell
from explorer.config import GATE_STAGES, ExperimentConfig
from explorer.cells.gru import GRU
from explorer.cells.lstm import LSTM
from explorer.registry import cell_type

F64 = torch.float64
STAGES = [tuple(s.split(",")) for s in GATE_STAGES]


def random_cell(kind: str, d: int, n: int, seed: int, gates=("input", "forget", "output"), scale=0.6):
    """A float64 cell with N(0, scale^2/n)-ish weights: gates unsaturated, Jacobians nontrivial."""
    gen = torch.Generator().manual_seed(seed)
    cell = LSTM(d, n, gates, dtype=F64) if kind == "lstm" else GRU(d, n, dtype=F64)
    with torch.no_grad():
        for name, p in cell.named_parameters():
            std = scale * 2 / math.sqrt(n) if "weight" in name else scale
            p.copy_(torch.randn(p.shape, generator=gen, dtype=F64) * std)
    return cell


def random_inputs(T: int, B: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(T, B, d, generator=torch.Generator().manual_seed(seed + 1000), dtype=F64)


# --- parameters match torch.nn ------------------------------------------------------------

@pytest.mark.parametrize("kind, ref", [("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU)])
def test_state_dict_matches_torch(kind, ref):
    cell = build_cell(ExperimentConfig(cell=kind, hidden=5, input_size=3))
    theirs = ref(3, 5).state_dict()
    ours = cell.state_dict()
    assert list(ours) == list(theirs)
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    # and back: torch's weights load into ours, strictly
    cell.load_state_dict(theirs)


def built(config, dtype):
    """The uninitialised cell of ``config``, as the registry makes it."""
    return cell_type(config.cell).load().from_config(config, dtype)


def test_registry_builds_gated_cells():
    lstm = built(ExperimentConfig(cell="lstm", hidden=7, input_size=2, gates="input,output"), F64)
    assert (lstm.hidden, lstm.state_size, lstm.gate_blocks) == (7, 14, 4)
    assert lstm.gates == ("input", "output")
    assert lstm.weight_hh_l0.dtype == F64
    gru = built(ExperimentConfig(cell="gru", hidden=7, input_size=2), torch.float32)
    assert (gru.hidden, gru.state_size, gru.gate_blocks) == (7, 7, 3)
    with pytest.raises(ValueError, match="cell must be one of"):
        ExperimentConfig(cell="minimal_gated_unit")  # an unknown cell fails at the config, never later
    with pytest.raises(ValueError):
        LSTM(2, 3, ("input", "reset"))


# --- forward pass against torch.nn.LSTM / torch.nn.GRU --------------------------------------

def _torch_lstm_steps(ref: torch.nn.LSTM, x: torch.Tensor):
    """h_1..h_T and c_1..c_T from torch, one step at a time so every c_t is visible."""
    B, n = x.shape[1], ref.hidden_size
    h = c = torch.zeros(1, B, n, dtype=x.dtype)
    hs, cs = [], []
    for t in range(x.shape[0]):
        _, (h, c) = ref(x[t:t + 1], (h, c))
        hs.append(h[0])
        cs.append(c[0])
    return torch.stack(hs), torch.stack(cs)


def _ours_and_torch(kind: str, seed: int, d: int, n: int, T: int):
    """Our cell and torch.nn.LSTM/GRU with the same weights, run on the same seeded input (T, 3, d)."""
    cell = random_cell(kind, d, n, seed)
    ref = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](d, n, dtype=F64)
    ref.load_state_dict(cell.state_dict())
    x = random_inputs(T, 3, d, seed)
    with torch.no_grad():
        return cell.run(x), ref, x, ref(x)


@pytest.mark.parametrize("seed, d, n, T", [(0, 3, 4, 12), (1, 1, 8, 25), (2, 5, 16, 40)])
def test_lstm_matches_torch(seed, d, n, T):
    trace, ref, x, (out, (h_T, c_T)) = _ours_and_torch("lstm", seed, d, n, T)
    with torch.no_grad():
        h_ref, c_ref = _torch_lstm_steps(ref, x)
    torch.testing.assert_close(trace.h[1:], out, rtol=0, atol=1e-12)
    torch.testing.assert_close(trace.h[1:], h_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(trace.c[1:], c_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(trace.c[-1], c_T[0], rtol=0, atol=1e-12)
    assert torch.all(trace.z[0] == 0)
    assert list(trace.gates) == ["i", "f", "g", "o"]


@pytest.mark.parametrize("gates", STAGES[:-1])
def test_lstm_stage_matches_saturated_torch(gates):
    """A gate fixed at 1 is torch's gate with zero weights and a huge bias: sigmoid(1000) == 1.0 in float64."""
    d, n, T = 3, 6, 20
    cell = random_cell("lstm", d, n, 5, gates)
    ref = torch.nn.LSTM(d, n, dtype=F64)
    state = {k: v.clone() for k, v in cell.state_dict().items()}
    for block, name in ((1, "forget"), (3, "output")):
        if name not in gates:
            rows = slice(block * n, (block + 1) * n)
            state["weight_ih_l0"][rows] = 0
            state["weight_hh_l0"][rows] = 0
            state["bias_ih_l0"][rows] = 1000.0
            state["bias_hh_l0"][rows] = 0
    ref.load_state_dict(state)
    x = random_inputs(T, 3, d, 5)
    with torch.no_grad():
        trace = cell.run(x)
        h_ref, c_ref = _torch_lstm_steps(ref, x)
    torch.testing.assert_close(trace.h[1:], h_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(trace.c[1:], c_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed, d, n, T", [(0, 3, 4, 12), (1, 1, 8, 25), (2, 5, 16, 40)])
def test_gru_matches_torch(seed, d, n, T):
    trace, _, _, (out, h_T) = _ours_and_torch("gru", seed, d, n, T)
    torch.testing.assert_close(trace.h[1:], out, rtol=0, atol=1e-12)
    torch.testing.assert_close(trace.h[-1], h_T[0], rtol=0, atol=1e-12)
    assert trace.c is None
    assert list(trace.gates) == ["r", "z", "n"]


# --- analytic Jacobians against autograd -------------------------------------------------------

def _autograd_jacobians(cell, drive: torch.Tensor, z_prev: torch.Tensor) -> torch.Tensor:
    """dz_k/dz_{k-1} by autograd, per step and sequence: (K, B, m, m).

    The sequences must not interact, so the off-diagonal (b != b') blocks are checked to be zero."""
    out = []
    for k in range(drive.shape[0]):
        J = torch.autograd.functional.jacobian(lambda z: cell.step(drive[k], z)[0], z_prev[k])  # (B, m, B, m)
        B = J.shape[0]
        diag = torch.stack([J[b, :, b, :] for b in range(B)])
        off = J.clone()
        for b in range(B):
            off[b, :, b, :] = 0
        assert torch.all(off == 0)
        out.append(diag)
    return torch.stack(out)


def _check_jacobians(cell, x: torch.Tensor, trace: Trace):
    T = x.shape[0]
    steps = torch.arange(1, T + 1)
    J = cell.jacobians(trace, steps)
    m = cell.state_size
    assert J.shape == (T, x.shape[1], m, m)
    assert not J.requires_grad
    with torch.no_grad():
        drive = cell.input_drive(x)
    ref = _autograd_jacobians(cell, drive.detach(), trace.z[:-1].detach())
    torch.testing.assert_close(J, ref, rtol=1e-12, atol=1e-13)
    # a shuffled subset of steps picks the same matrices
    sub = torch.tensor([T, 1, T // 2])
    torch.testing.assert_close(cell.jacobians(trace, sub), J[sub - 1], rtol=0, atol=0)


@pytest.mark.parametrize("gates", STAGES)
@pytest.mark.parametrize("seed", [0, 1])
def test_lstm_jacobians_match_autograd(gates, seed):
    d, n, T = 3, 5, 8
    cell = random_cell("lstm", d, n, seed, gates)
    x = random_inputs(T, 2, d, seed)
    with torch.no_grad():
        trace = cell.run(x)
    assert trace.c.abs().max() > 0.1  # the c-dependent terms are exercised
    _check_jacobians(cell, x, trace)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gru_jacobians_match_autograd(seed):
    d, n, T = 3, 6, 8
    cell = random_cell("gru", d, n, seed)
    x = random_inputs(T, 2, d, seed)
    with torch.no_grad():
        trace = cell.run(x)
    _check_jacobians(cell, x, trace)


@pytest.mark.parametrize("kind, gates", [("lstm", s) for s in STAGES] + [("gru", STAGES[-1])])
def test_jacobians_at_random_states(kind, gates):
    """Teacher-forced at arbitrary states (large |c|, h far from a run's), all steps in one batched call."""
    d, n, T, B = 2, 4, 5, 1
    cell = random_cell(kind, d, n, 7, gates, scale=1.0)
    gen = torch.Generator().manual_seed(3)
    x = random_inputs(T, B, d, 7)
    z_prev = 2.0 * torch.randn(T, B, cell.state_size, generator=gen, dtype=F64)
    with torch.no_grad():
        z_next, aux = cell.step(cell.input_drive(x), z_prev)  # leading step dim, as analysis uses it
    trace = Trace(x=x, z=torch.cat([z_prev, z_next[-1:]]), hidden=n, aux=aux)
    _check_jacobians(cell, x, trace)


# --- exact oracles -------------------------------------------------------------------------------

def test_stage_input_has_unit_forget_gate_and_identity_cell_path():
    config = ExperimentConfig(cell="lstm", gates="input", hidden=6, seq_len=40, dtype="float64", init="orthogonal")
    cell = build_cell(config)
    x = random_inputs(config.seq_len, 2, config.input_size, 0)
    with torch.no_grad():
        trace = cell.run(x)
    gates = trace.gates
    assert torch.all(gates["f"] == 1.0) and torch.all(gates["o"] == 1.0)
    assert not torch.all(gates["i"] == 1.0)
    # stage 1: h_t = tanh(c_t) and c_t = c_{t-1} + i_t g_t, exactly
    assert torch.equal(trace.h[1:], torch.tanh(trace.c[1:]))
    assert torch.equal(trace.c[1:], trace.c[:-1] + gates["i"] * gates["g"])
    n = config.hidden
    J = cell.jacobians(trace, torch.arange(1, config.seq_len + 1))
    eye = torch.eye(n, dtype=F64).expand(2, n, n)
    P = eye.clone()
    for k in range(config.seq_len):
        assert torch.equal(J[k, :, n:, n:], eye)  # dc_k/dc_{k-1} = diag(f_k) = I
        P = J[k, :, n:, n:] @ P
    assert torch.equal(P, eye)
    path = direct_cell_path(np.log10(gates["f"][:, 0].numpy()))
    assert np.all(path["log10_spectral"] == 0) and np.all(path["log10_frobenius"] == 0.5 * np.log10(n))


@pytest.mark.parametrize("gates", [("input", "forget"), ("input", "forget", "output")])
def test_forget_product_is_sigmoid_power_without_recurrence(gates):
    """No recurrent weights into the gates and zero input: f_k = sigmoid(b_f) at every step, so
    prod_k f_k = sigmoid(b_f)^k and the c -> c block of dz_k/dz_0 is diag(sigmoid(b_f)^k)."""
    n, T = 5, 60
    cell = random_cell("lstm", 2, n, 11, gates)
    b = torch.linspace(-3.0, 4.0, n, dtype=F64)
    with torch.no_grad():
        cell.weight_hh_l0.zero_()
        cell.bias_ih_l0[n:2 * n] = b
        cell.bias_hh_l0[n:2 * n] = 0
    x = torch.zeros(T, 1, 2, dtype=F64)
    with torch.no_grad():
        trace = cell.run(x)
    f = trace.gates["f"][:, 0]  # (T, n)
    k = torch.arange(1, T + 1, dtype=F64)[:, None]
    expected = torch.sigmoid(b) ** k  # (T, n)
    torch.testing.assert_close(torch.cumprod(f, dim=0), expected, rtol=1e-13, atol=0)
    J = cell.jacobians(trace, torch.arange(1, T + 1))[:, 0]
    P = torch.eye(2 * n, dtype=F64)
    for t in range(T):
        P = J[t] @ P
    torch.testing.assert_close(P[n:, n:], torch.diag(expected[-1]), rtol=1e-13, atol=0)
    assert torch.all(P[n:, :n] == 0)  # nothing reaches c through h without W_hh
    path = direct_cell_path(np.log10(f.numpy()))
    lags = path["lags"]
    np.testing.assert_allclose(path["log10_spectral"], lags * math.log10(float(torch.sigmoid(b.max()))),
                               rtol=1e-12, atol=1e-13)


def test_direct_cell_path_stays_finite_where_forget_gates_underflow_float32():
    """b_f = -200: f = sigmoid(-200) ~ 1e-87 is 0 in float32, but log f is finite: the direct path
    over k steps is k log10 sigmoid(-200), read from the pre-activation in float64."""
    n, T = 3, 40
    cell = random_cell("lstm", 2, n, 12).float()
    with torch.no_grad():
        cell.weight_hh_l0.zero_()
        cell.bias_ih_l0[n:2 * n] = -200.0
        cell.bias_hh_l0[n:2 * n] = 0
        trace = cell.run(torch.zeros(T, 1, 2))
    assert torch.all(trace.gates["f"] == 0)  # the float32 gate underflows
    log_f = cell.log_forget(trace)[:, 0]
    per_step = -200.0 - math.log1p(math.exp(-200.0))  # log sigmoid(-200), exactly
    torch.testing.assert_close(log_f, torch.full((T, n), per_step, dtype=torch.float64), rtol=1e-15, atol=0)
    path = direct_cell_path(log_f.numpy() / math.log(10))
    np.testing.assert_allclose(path["log10_spectral"], path["lags"] * per_step / math.log(10), rtol=1e-12)
    assert np.isfinite(path["log10_frobenius"]).all()


@pytest.mark.parametrize("seq_len", [1, 2, 3, 10, 500])
def test_chrono_forget_bias(seq_len):
    config = ExperimentConfig(cell="lstm", hidden=64, seq_len=seq_len, forget_bias="chrono", dtype="float64")
    cell = build_cell(config)
    n, t_max = config.hidden, max(seq_len, 3)
    b_f, b_i = cell.bias_ih_l0[n:2 * n].detach(), cell.bias_ih_l0[:n].detach()
    assert torch.all(b_f >= 0.0) and torch.all(b_f <= math.log(t_max - 1))
    assert torch.equal(b_i, -b_f)
    assert torch.all(cell.bias_hh_l0[:2 * n] == 0)
    # g and o keep torch's default
    bound = 1 / math.sqrt(n)
    assert torch.all(cell.bias_hh_l0[2 * n:].abs() <= bound) and torch.any(cell.bias_hh_l0[2 * n:] != 0)
    if seq_len == 500:  # a spread of time scales, not a constant
        assert b_f.max() - b_f.min() > 1.0
    again = build_cell(config)
    assert torch.equal(again.bias_ih_l0, cell.bias_ih_l0)


@pytest.mark.parametrize("value, expected", [("2.0", 2.0), ("-1.5", -1.5), ("0", 0.0), ("10", 10.0)])
def test_constant_forget_bias(value, expected):
    config = ExperimentConfig(cell="lstm", hidden=8, forget_bias=value)
    cell = build_cell(config)
    n = config.hidden
    assert torch.all(cell.bias_ih_l0[n:2 * n] == expected)
    assert torch.all(cell.bias_hh_l0[n:2 * n] == 0)
    default = build_cell(config.replace(forget_bias="default"))
    # only the f block differs from torch's default draw
    for name in ("bias_ih_l0", "bias_hh_l0"):
        ours, theirs = getattr(cell, name).detach(), getattr(default, name).detach()
        assert torch.equal(ours[:n], theirs[:n]) and torch.equal(ours[2 * n:], theirs[2 * n:])


def test_default_forget_bias_is_torch_default():
    config = ExperimentConfig(cell="lstm", hidden=16)
    cell = build_cell(config)
    bound = 1 / math.sqrt(config.hidden)
    for name in ("bias_ih_l0", "bias_hh_l0"):
        p = getattr(cell, name).detach()
        assert torch.all(p.abs() <= bound) and torch.any(p[16:32] != 0)


def test_forget_bias_is_the_lstms_alone():
    """Only the LSTM reads forget_bias (its registry entry lists it); the GRU's weights ignore it."""
    assert "forget_bias" in cell_type("lstm").fields and "forget_bias" not in cell_type("gru").fields
    plain = build_cell(ExperimentConfig(cell="gru", hidden=4, seed=3)).state_dict()
    biased = build_cell(ExperimentConfig(cell="gru", hidden=4, seed=3, forget_bias="3.0")).state_dict()
    assert all(torch.equal(plain[k], biased[k]) for k in plain)


# --- initialisation through build_cell --------------------------------------------------------

@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_orthogonal_blocks(kind, gain):
    config = ExperimentConfig(cell=kind, init="orthogonal", hidden=32, gain=gain)
    cell = build_cell(config)
    n = config.hidden
    blocks = cell.recurrent_blocks()
    assert blocks.shape == (cell.gate_blocks, n, n)
    eye = torch.eye(n)
    for W in blocks:
        torch.testing.assert_close(W @ W.T, gain**2 * eye, rtol=0, atol=1e-5)
    assert not torch.allclose(blocks[0], blocks[1])  # one draw per gate


# --- the pipeline runs on gated cells --------------------------------------------------------

@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_analyze_smoke(kind):
    result = analyze(ExperimentConfig(cell=kind, hidden=8, seq_len=12, lag=5), device="cpu")
    m = 16 if kind == "lstm" else 8
    assert result.h.shape == (13, 8)
    assert (result.c is None) == (kind == "gru")
    assert result.singular_values.shape == (m,)
    assert set(result.gates) == ({"i", "f", "g", "o"} if kind == "lstm" else {"r", "z", "n"})
    assert np.all(np.isfinite(result.contributions))
    if kind == "lstm":
        assert set(result.pairs.log10_spectral) == {"state", "cell"}
        assert "direct_cell_path" in result.extras
