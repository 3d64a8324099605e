"""The adding and copy-memory tasks against their definitions (Arjovsky et al. 2016)."""
import math

import pytest
import torch
from torch.nn import functional as F

from explorer import backend, tasks


def gen(seed=0):
    return backend.generator(seed, 2)


@pytest.mark.parametrize("T", [2, 7, 50])
def test_adding_shapes_and_markers(T):
    B = 500
    x, y = tasks.adding(T, B, gen())
    assert x.shape == (T, B, 2) and y.shape == (B,) and x.dtype == torch.float32
    values, marker = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(marker.unique().tolist()) <= {0.0, 1.0}
    half = T // 2  # floor split: first half [0, T//2), second half [T//2, T)
    assert (marker[:half].sum(0) == 1).all()
    assert (marker[half:].sum(0) == 1).all()
    # target = sum of the two marked values, recomputed independently
    torch.testing.assert_close(y, (values * marker).sum(0))


def test_adding_markers_cover_both_halves():
    T, B = 9, 4000
    x, _ = tasks.adding(T, B, gen())
    first = x[: T // 2, :, 1].argmax(0)
    second = x[T // 2:, :, 1].argmax(0) + T // 2
    assert set(first.tolist()) == set(range(T // 2))
    assert set(second.tolist()) == set(range(T // 2, T))


def test_adding_needs_two_steps():
    with pytest.raises(ValueError):
        tasks.adding(1, 3, gen())


def test_adding_baseline_is_one_sixth():
    r"""E[(u_a + u_b - 1)^2] = 1/6. (S - 1) is triangular on [-1, 1], so
    Var((S - 1)^2) = E(S-1)^4 - 1/36 = 1/15 - 1/36 = 7/180 and the standard error of the
    mean over N samples is sqrt(7/180 / N); we allow 5 standard errors."""
    N, T = 200_000, 10
    x, y = tasks.make_batch("adding", T, N, gen(3), dtype=torch.float64)
    mse = float(((y - 1.0) ** 2).mean())
    assert tasks.baseline("adding", T) == pytest.approx(1 / 6, abs=1e-15)
    assert abs(mse - 1 / 6) < 5 * math.sqrt(7 / 180 / N)


@pytest.mark.parametrize("T", [1, 5, 30])
def test_copy_layout(T):
    B = 64
    x, target = tasks.copy_memory(T, B, gen())
    L = T + 20
    assert x.shape == (L, B, 10) and target.shape == (L, B) and target.dtype == torch.int64
    assert (x.sum(-1) == 1).all()  # one-hot
    classes = x.argmax(-1)
    symbols = classes[:10]
    assert ((symbols >= 1) & (symbols <= 8)).all()
    assert (classes[10:10 + T - 1] == 0).all()  # T - 1 blanks
    assert (classes[T + 9] == 9).all()  # the delimiter
    assert (classes[T + 10:] == 0).all()  # 10 blanks while recalling
    assert (classes == 9).sum() == B  # exactly one delimiter per sequence
    assert (target[:T + 10] == 0).all()
    assert torch.equal(target[T + 10:], symbols)


def test_copy_symbols_uniform():
    _, target = tasks.copy_memory(3, 20_000, gen())
    counts = torch.bincount(target[-10:].flatten(), minlength=10)
    assert counts[0] == 0 and counts[9] == 0
    freq = counts[1:9].double() / counts.sum()
    # 200k draws: the sd of each frequency is sqrt(p(1-p)/N) ~ 7e-4
    assert (freq - 1 / 8).abs().max() < 5e-3


@pytest.mark.parametrize("T", [1, 10, 100])
def test_copy_baseline_cross_entropy(T):
    """The memoryless predictor (blank for T + 10 steps, uniform over 1..8 for the last 10)
    scores exactly 10 ln 8 / (T + 20) on any sample."""
    B = 256
    _, target = tasks.make_batch("copy", T, B, gen(1))
    L = T + 20
    logits = torch.full((L, B, 10), -1e4, dtype=torch.float64)
    logits[:T + 10, :, 0] = 0.0
    logits[T + 10:, :, 1:9] = 0.0
    ce = F.cross_entropy(logits.reshape(-1, 10), target.reshape(-1))
    assert float(ce) == pytest.approx(10 * math.log(8) / (T + 20), rel=1e-12)
    assert tasks.baseline("copy", T) == pytest.approx(10 * math.log(8) / (T + 20), rel=1e-15)


def test_loss_matches_torch_reference():
    g = torch.Generator().manual_seed(0)
    n, B = 5, 7

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    W, b = randn(1, n), randn(1)
    h = randn(6, B, n)
    _, y = tasks.make_batch("adding", 6, B, gen(), dtype=torch.float64)
    ref = F.mse_loss(h[-1] @ W.T + b, y[:, None])
    torch.testing.assert_close(tasks.loss("adding", h, W, b, y), ref)
    Wc, bc = randn(10, n), randn(10)
    hc = randn(23, B, n)
    _, yc = tasks.make_batch("copy", 3, B, gen())
    ref = F.cross_entropy((hc @ Wc.T + bc).permute(1, 2, 0), yc.T)  # (B, C, L) vs (B, L)
    torch.testing.assert_close(tasks.loss("copy", hc, Wc, bc, yc), ref)
    # "sum" is over sequences, so chunks add up to B times the mean
    for task, hh, WW, bb, yy in (("adding", h, W, b, y), ("copy", hc, Wc, bc, yc)):
        parts = tasks.loss(task, hh[:, :3], WW, bb, yy[..., :3], "sum") + tasks.loss(task, hh[:, 3:], WW, bb, yy[..., 3:], "sum")
        torch.testing.assert_close(parts / B, tasks.loss(task, hh, WW, bb, yy))


def test_sizes_and_seeding():
    assert (tasks.input_size("adding"), tasks.output_size("adding")) == (2, 1)
    assert (tasks.input_size("copy"), tasks.output_size("copy")) == (10, 10)
    assert tasks.sequence_length("adding", 50) == 50 and tasks.sequence_length("copy", 50) == 70
    a = tasks.make_batch("adding", 20, 8, gen(5))
    b = tasks.make_batch("adding", 20, 8, gen(5))
    c = tasks.make_batch("adding", 20, 8, gen(6))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    state = torch.get_rng_state()
    tasks.make_batch("copy", 20, 8, gen(5))
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is never touched
    with pytest.raises(ValueError):
        tasks.input_size("parity")
