"""The training lab against independent references: torch.nn modules, closed-form
gradients, and the orthogonal-group constraint."""
import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from explorer import backend, tasks
from explorer import train as train_mod
from explorer.cells import build_cell
from explorer.config import ExperimentConfig, TrainConfig
from explorer.train import eval_batch, gradient_flow, ortho_penalty, torch_module, train, train_to_json

FIELDS = {"step", "loss", "eval_loss", "grad_norm", "ortho_error", "clipped"}


def small(cell="rnn", task="adding", steps=30, record_every=10, **model):
    base = {"cell": cell, "hidden": 8, "seq_len": 12}
    return TrainConfig(model=ExperimentConfig(**{**base, **model}), task=task, steps=steps,
                       record_every=record_every, batch_size=16)


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---------------------------------------------------------------- orthogonal regulariser

@pytest.mark.parametrize("blocks", [1, 3, 4])
def test_ortho_penalty_gradient_is_closed_form(blocks):
    r"""d/dW_b ||W_b^T W_b - I||_F^2 = 4 W_b (W_b^T W_b - I), per gate block (float64)."""
    n = 6
    W = _randn(blocks * n, n, seed=blocks).requires_grad_()
    lam = 0.37
    (grad,) = torch.autograd.grad(lam * ortho_penalty(W, blocks), W)
    expected = torch.cat([4 * lam * Wb @ (Wb.T @ Wb - torch.eye(n, dtype=W.dtype))
                          for Wb in W.detach().split(n)])
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)
    # and the value itself, from its definition
    value = sum(float(((Wb.T @ Wb - torch.eye(n, dtype=W.dtype)) ** 2).sum()) for Wb in W.detach().split(n))
    assert float(ortho_penalty(W.detach(), blocks)) == pytest.approx(value, rel=1e-12)


def test_regularised_run_becomes_more_orthogonal():
    model = ExperimentConfig(hidden=16, seq_len=10)  # PyTorch init: far from orthogonal
    runs = {lam: train(TrainConfig(model=model, steps=100, record_every=50, lr=1e-2, ortho_reg=lam))
            for lam in (0.0, 0.1)}
    assert np.array_equal(runs[0.0].weights_init["weight_hh_l0"], runs[0.1].weights_init["weight_hh_l0"])
    free, reg = runs[0.0].history[-1]["ortho_error"], runs[0.1].history[-1]["ortho_error"]
    assert reg < 0.1 * free


# ---------------------------------------------------------------- Riemannian (orthogonal group)

@pytest.mark.parametrize("orth_map", ["matrix_exp", "cayley"])
@pytest.mark.parametrize("init", ["orthogonal", "pytorch"])
def test_riemannian_stays_orthogonal_and_moves(orth_map, init):
    config = TrainConfig(model=ExperimentConfig(hidden=16, seq_len=10, init=init), steps=30,
                         record_every=10, lr=1e-2, orthogonal_param=orth_map)
    result = train(config)
    assert len(result.history) == 3
    W0, W1 = result.weights_init["weight_hh_l0"], result.weights_final["weight_hh_l0"]
    eye = np.eye(16)
    assert np.linalg.norm(W0.T.astype(np.float64) @ W0 - eye) < 1e-4  # the start is on the group
    for row in result.history:
        assert row["ortho_error"] < 1e-4
    np.testing.assert_allclose(result.singular_values, 1.0, atol=1e-4)
    assert np.abs(W1 - W0).max() > 1e-2  # it trained
    assert "parametrizations.weight_hh_l0.original" not in result.weights_final


def _count_map_evaluations(monkeypatch) -> list:
    """Each evaluation of the orthogonal map (the parametrisation's forward) appends to the list."""
    calls, real = [], parametrizations.orthogonal

    def counted(module, name, **kw):
        real(module, name, **kw)
        module.parametrizations[name][0].register_forward_hook(lambda *args: calls.append(1))
        return module

    monkeypatch.setattr(train_mod.parametrizations, "orthogonal", counted)
    return calls


@pytest.mark.parametrize("orth_map", ["matrix_exp", "cayley"])
@pytest.mark.parametrize("model", [{}, {"activation": "sigmoid"}])  # torch.nn.RNN's kernel; our cell.run
def test_riemannian_evaluates_the_map_once_per_step(monkeypatch, orth_map, model):
    """The map is evaluated once per optimiser step (its backward once too), not at each of the T'
    steps of the sequence: one W_hh serves the whole unrolled forward. Plus one per weights snapshot
    (the initial weights and each record)."""
    calls = _count_map_evaluations(monkeypatch)
    config = small(steps=12, record_every=4, **model).replace(orthogonal_param=orth_map)
    result = train(config)
    assert len(result.history) == 3
    assert len(calls) == config.steps + 1 + len(result.history)
    assert not parametrize._cache_enabled  # no process-global cache was switched on


@pytest.mark.parametrize("orth_map", ["matrix_exp", "cayley"])
def test_riemannian_fused_kernel_equals_our_cell(monkeypatch, orth_map):
    """A Riemannian tanh RNN trains through torch.nn.RNN's kernel with the map's W_hh substituted;
    our cell's run with the same W_hh gives the same run."""
    config = small(steps=10, record_every=5, init="orthogonal").replace(orthogonal_param=orth_map, lr=1e-2)
    model = train_mod._Model(config, torch.device("cpu"))
    assert isinstance(model.engine.core, nn.RNN)
    fast = train(config)
    monkeypatch.setattr(train_mod, "torch_module", lambda model: None)
    assert isinstance(train_mod._Model(config, torch.device("cpu")).engine.core, train_mod.RecurrentCell)
    slow = train(config)
    for a, b in zip(fast.history, slow.history):
        assert a["eval_loss"] == pytest.approx(b["eval_loss"], rel=1e-4)
        assert a["ortho_error"] < 1e-4 and b["ortho_error"] < 1e-4
    np.testing.assert_allclose(fast.weights_final["weight_hh_l0"], slow.weights_final["weight_hh_l0"], atol=1e-4)
    assert np.abs(fast.weights_final["weight_hh_l0"] - fast.weights_init["weight_hh_l0"]).max() > 1e-3


def test_riemannian_forward_uses_the_maps_value():
    """The forward's h is the cell run with W_hh = B phi(A) as the parametrisation evaluates it, and
    the gradient reaches the parametrisation's original tensor."""
    config = small(init="orthogonal").replace(orthogonal_param="matrix_exp")
    model = train_mod._Model(config, torch.device("cpu"))
    with torch.no_grad():  # move A off zero, so that W_hh = B exp(A) differs from its base
        model.cell.parametrizations.weight_hh_l0.original.add_(0.1 * _randn(8, 8).float())
    x, _ = tasks.make_batch("adding", 12, 16, backend.generator(4, 2))
    h, W = model.forward(x)
    reference = build_cell(model.model_config)
    reference.load_state_dict({k: v for k, v in model.tensors().items() if not k.startswith("readout.")})
    torch.testing.assert_close(W.detach(), model.tensors()["weight_hh_l0"])
    torch.testing.assert_close(h.detach(), reference.run(x).h[1:], rtol=1e-5, atol=1e-6)
    h.sum().backward()
    assert model.cell.parametrizations.weight_hh_l0.original.grad.abs().max() > 0


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_riemannian_refuses_gated_cells(cell):
    with pytest.raises(ValueError, match="rnn"):  # from TrainConfig validation or from train()
        train(small(cell).replace(orthogonal_param="cayley"))


# ---------------------------------------------------------------- recorded fields

@pytest.mark.parametrize("cell,task", [("rnn", "adding"), ("lstm", "adding"), ("gru", "adding"),
                                       ("lstm", "copy"), ("rnn", "copy")])
def test_short_run_records_every_field(cell, task):
    config = small(cell, task, steps=25, record_every=10)
    seen = []
    result = train(config, progress=lambda partial: seen.append(partial))
    T_prime, n = tasks.sequence_length(task, 12), 8
    assert [r["step"] for r in result.history] == [10, 20, 25]
    assert [len(p.history) for p in seen] == [1, 2, 3]
    assert seen[0].grad_flow.shape == (1, T_prime)
    for row in result.history:
        assert set(row) == FIELDS
        assert all(math.isfinite(row[k]) for k in FIELDS)
        assert 0 <= row["clipped"] <= 10
    assert result.grad_flow.shape == (3, T_prime) and np.isfinite(result.grad_flow).all()
    assert result.singular_values.shape == (3, n)
    assert (np.diff(result.singular_values, axis=1) <= 0).all()  # descending
    assert result.baseline == tasks.baseline(task, 12)
    assert not result.stopped and result.events == [] and result.seconds > 0
    # weights by torch.nn names and shapes
    d = tasks.input_size(task)
    kind = torch_module(config.model)
    ref = getattr(nn, kind)(d, n, device="meta").state_dict()
    for name, tensor in ref.items():
        assert result.weights_init[name].shape == tuple(tensor.shape)
        assert result.weights_final[name].shape == tuple(tensor.shape)
    assert result.weights_final["readout.weight"].shape == (tasks.output_size(task), n)
    # singular values of the last record are those of the final W_hh
    np.testing.assert_allclose(result.singular_values[-1],
                               np.linalg.svd(result.weights_final["weight_hh_l0"].astype(np.float64),
                                             compute_uv=False), rtol=1e-10)
    payload = train_to_json(result)
    json.dumps(payload, allow_nan=False)
    assert set(payload) == {"config", "baseline", "history", "grad_flow", "singular_values",
                            "weights_init", "weights_final", "events"}
    assert len(payload["grad_flow"]) == 3 and len(payload["grad_flow"][0]) == T_prime


def test_recording_schedule_and_history_means():
    config = small(steps=7, record_every=3).replace(clip=1e-6)  # every step clips
    result = train(config)
    assert [r["step"] for r in result.history] == [3, 6, 7]
    assert [r["clipped"] for r in result.history] == [3, 3, 1]
    unclipped = train(config.replace(clip=0.0))
    assert all(r["clipped"] == 0 and r["grad_norm"] > 0 for r in unclipped.history)


def test_reproducible_and_private_rng():
    config = small("lstm", steps=12, record_every=4)
    state = torch.get_rng_state()
    a, b = train(config), train(config)
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is never drawn from
    assert a.history == b.history
    np.testing.assert_array_equal(a.grad_flow, b.grad_flow)
    for name in a.weights_final:
        np.testing.assert_array_equal(a.weights_final[name], b.weights_final[name])
    other = train(config.replace(model=config.model.replace(seed=1)))
    assert other.history != a.history


# ---------------------------------------------------------------- gradient-flow profile

def _reference_flow(config, weights):
    """log10 ||dL/dh_t|| from an unrolled float64 torch.nn module, one call per step, by
    torch.autograd.grad of the eval loss w.r.t. each h_t (an independent implementation)."""
    model = config.model
    d, n = tasks.input_size(config.task), model.hidden
    kind = torch_module(model)
    kw = {"nonlinearity": model.activation} if kind == "RNN" else {}
    net = getattr(nn, kind)(d, n, device="meta", dtype=torch.float64, **kw).to_empty(device="cpu")
    net.load_state_dict({k: torch.from_numpy(v).double() for k, v in weights.items() if not k.startswith("readout.")})
    readout = nn.Linear(n, tasks.output_size(config.task), device="meta", dtype=torch.float64).to_empty(device="cpu")
    readout.load_state_dict({"weight": torch.from_numpy(weights["readout.weight"]).double(),
                             "bias": torch.from_numpy(weights["readout.bias"]).double()})
    x, y = eval_batch(config)
    B = x.shape[1]
    h = torch.zeros(1, B, n, dtype=torch.float64)
    state = (h, torch.zeros_like(h)) if kind == "LSTM" else h
    hs = []
    for t in range(x.shape[0]):
        _, state = net(x[t:t + 1], state)
        hs.append(state[0] if kind == "LSTM" else state)
    H = torch.cat(hs)  # (T', B, n)
    if config.task == "adding":
        loss = ((readout(H[-1]).squeeze(-1) - y) ** 2).mean()
    else:
        loss = nn.functional.cross_entropy(readout(H).reshape(-1, 10), y.reshape(-1))
    grads = torch.autograd.grad(loss, hs)
    return float(loss.detach()), np.array([math.log10(float(g.norm())) for g in grads])


@pytest.mark.parametrize("cell,task", [("rnn", "adding"), ("rnn", "copy"), ("lstm", "adding"), ("gru", "copy")])
def test_grad_flow_matches_unrolled_torch_reference(cell, task):
    config = small(cell, task, steps=3, record_every=3)
    result = train(config)
    loss, ref = _reference_flow(config, result.weights_final)
    assert result.history[-1]["eval_loss"] == pytest.approx(loss, rel=1e-10)
    np.testing.assert_allclose(result.grad_flow[-1], ref, rtol=0, atol=1e-10)


def test_grad_flow_below_float32_range():
    """A contracting tanh RNN over 150 steps: dL/dh_1 is far below float32's smallest
    number (~1e-45), yet finite, and still matches the reference."""
    config = small(steps=1, record_every=1, seq_len=150, init="gaussian", gain=0.2)
    result = train(config)
    flow = result.grad_flow[-1]
    assert np.isfinite(flow).all() and flow[0] < -60
    assert (np.diff(flow) > 0).all()  # monotone decay into the past
    _, ref = _reference_flow(config, result.weights_final)
    np.testing.assert_allclose(flow, ref, rtol=0, atol=1e-9)


def _copy_probe_case(config, seed: int, sequences: int):
    """A float64 cell for the copy task, a random read-out (10 x 8) and the first eval sequences."""
    cell = build_cell(config.model.replace(input_size=10, dtype="float64"))
    g = backend.generator(seed, 3)
    W = torch.rand(10, 8, generator=g, dtype=torch.float64) - 0.5
    b = torch.rand(10, generator=g, dtype=torch.float64) - 0.5
    x, y = eval_batch(config)
    return cell, W, b, x[:, :sequences], y[:, :sequences]


@pytest.mark.parametrize("fused", [True, False])
def test_grad_flow_chunks_agree(monkeypatch, fused):
    cell, W, b, x, y = _copy_probe_case(small("lstm", "copy"), seed=9, sequences=23)
    whole = gradient_flow(cell, W, b, "copy", x, y, fused=fused)
    per_sequence = x.shape[0] * cell.state_size * train_mod._PROBE_SAVED
    monkeypatch.setattr(train_mod, "PROBE_BYTES", 5 * per_sequence)  # chunks of 5, 5, 5, 5, 3
    calls = []
    unroll = train_mod._unroll
    monkeypatch.setattr(train_mod, "_unroll", lambda c, xs, *rest: calls.append(xs.shape[1]) or unroll(c, xs, *rest))
    chunked = gradient_flow(cell, W, b, "copy", x, y, fused=fused)
    assert calls == [5, 5, 5, 5, 3]
    assert chunked[0] == pytest.approx(whole[0], rel=1e-12)
    np.testing.assert_allclose(chunked[1], whole[1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("model", [{"cell": "rnn"}, {"cell": "rnn", "activation": "relu", "init": "identity"},
                                   {"cell": "lstm"}, {"cell": "gru"}])
def test_fused_probe_equals_cell_step_probe(model):
    """torch's fused cell kernels and our cell.step give the same profile (float64)."""
    cell, W, b, x, y = _copy_probe_case(small(task="copy", **model), seed=2, sequences=32)
    fused, plain = gradient_flow(cell, W, b, "copy", x, y), gradient_flow(cell, W, b, "copy", x, y, fused=False)
    assert train_mod._fused_step(cell) is not None
    assert fused[0] == pytest.approx(plain[0], rel=1e-12)
    np.testing.assert_allclose(fused[1], plain[1], rtol=0, atol=1e-10)


def test_exact_zero_gradient_is_minus_inf_and_none():
    """A relu RNN with W_hh = 0 and an input drive that is negative everywhere: every
    h_t = 0 with zero slope, so dL/dh_t = 0 exactly for t < T."""
    cell = build_cell(ExperimentConfig(hidden=4, activation="relu", init="identity", gain=0.0, dtype="float64"))
    with torch.no_grad():
        cell.weight_ih_l0.zero_()
        cell.bias_ih_l0.fill_(-1.0)
        cell.bias_hh_l0.zero_()
    x, y = tasks.make_batch("adding", 6, 5, backend.generator(0, 2), dtype=torch.float64)
    _, flow = gradient_flow(cell, torch.ones(1, 4, dtype=torch.float64), torch.zeros(1, dtype=torch.float64),
                            "adding", x, y)
    assert np.isneginf(flow[:-1]).all() and np.isfinite(flow[-1])


# ---------------------------------------------------------------- fast path = our cell

@pytest.mark.parametrize("model", [
    {"cell": "rnn", "activation": "tanh"}, {"cell": "rnn", "activation": "relu", "init": "identity"},
    {"cell": "lstm", "forget_bias": "chrono"}, {"cell": "gru", "init": "orthogonal"}])
def test_torch_fast_path_equals_our_cell(model):
    config = small(**model)
    fast = train_mod._Model(config, torch.device("cpu"))
    assert fast.fast is not None
    x, y = tasks.make_batch("adding", 12, 16, backend.generator(4, 2))
    h_fast, _ = fast.forward(x)
    h_cell = fast.cell.run(x).h[1:]
    torch.testing.assert_close(h_fast, h_cell, rtol=1e-5, atol=1e-6)
    l_fast = tasks.loss("adding", h_fast, fast.readout.weight, fast.readout.bias, y)
    l_cell = tasks.loss("adding", h_cell, fast.readout.weight, fast.readout.bias, y)
    assert float(l_fast.detach()) == pytest.approx(float(l_cell.detach()), rel=1e-5)


def test_fast_and_cell_training_agree(monkeypatch):
    config = small("lstm", steps=10, record_every=5)
    fast = train(config)
    monkeypatch.setattr(train_mod, "torch_module", lambda model: None)
    slow = train(config)
    for a, b in zip(fast.history, slow.history):
        assert a["eval_loss"] == pytest.approx(b["eval_loss"], rel=1e-4)
    np.testing.assert_allclose(fast.weights_final["weight_hh_l0"], slow.weights_final["weight_hh_l0"], atol=1e-4)


def test_torch_module_rule():
    assert torch_module(ExperimentConfig(activation="relu")) == "RNN"
    assert torch_module(ExperimentConfig(activation="sigmoid")) is None
    assert torch_module(ExperimentConfig(residual=True)) is None
    assert torch_module(ExperimentConfig(norm="layer")) is None
    assert torch_module(ExperimentConfig(cell="lstm", gates="input,output")) is None
    assert torch_module(ExperimentConfig(cell="gru")) == "GRU"


@pytest.mark.parametrize("model", [{"norm": "layer"}, {"residual": True}, {"activation": "sigmoid"},
                                   {"cell": "lstm", "gates": "input"}, {"norm": "batch"}])
def test_cell_path_variants_train(model):
    result = train(small(steps=6, record_every=3, **model))
    assert len(result.history) == 2 and np.isfinite(result.grad_flow).all()


# ---------------------------------------------------------------- NaN / inf, stopping

def test_injected_inf_is_an_event(monkeypatch):
    real = tasks.make_batch
    calls = []

    def poisoned(task, T, batch, gen, dtype=torch.float32, device="cpu"):
        x, y = real(task, T, batch, gen, dtype, device)
        calls.append(batch)
        if len(calls) == 4:  # call 1 is the eval batch, so this is training step 3
            y = y.clone()
            y[0] = math.inf
        return x, y

    monkeypatch.setattr(tasks, "make_batch", poisoned)
    result = train(small(steps=8, record_every=4))
    assert result.events == [{"step": 3, "kind": "nonfinite_loss"}]
    assert [r["step"] for r in result.history] == [4, 8]
    assert all(np.isfinite(v).all() for v in result.weights_final.values())
    assert math.isfinite(result.history[0]["loss"])  # the bad step is left out of the mean


def test_huge_learning_rate_does_not_crash():
    config = small(steps=12, record_every=4, activation="relu", init="identity", gain=2.0)
    result = train(config.replace(optimizer="sgd", lr=1.0, clip=0.0))
    assert result.events and all(e["kind"] in ("nonfinite_loss", "nonfinite_grad") for e in result.events)
    assert [r["step"] for r in result.history] == [4, 8, 12]
    payload = train_to_json(result)
    json.dumps(payload, allow_nan=False)  # NaN / inf became None
    assert any(v is None for row in payload["history"] for v in row.values())


def test_should_stop_ends_early():
    polls = []

    def stop():
        polls.append(1)
        return len(polls) >= 7

    result = train(small(steps=100, record_every=5), should_stop=stop)
    assert result.stopped
    assert [r["step"] for r in result.history] == [5, 7]
    assert result.grad_flow.shape[0] == 2


@pytest.mark.parametrize("optimizer", ["rmsprop", "sgd"])
def test_other_optimizers(optimizer):
    result = train(small(steps=6, record_every=6).replace(optimizer=optimizer, lr=1e-2))
    assert len(result.history) == 1 and math.isfinite(result.history[0]["eval_loss"])
