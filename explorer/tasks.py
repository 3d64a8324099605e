r"""Long-range synthetic tasks of Arjovsky, Shah & Bengio (2016), seeded and batched.

Both generators take a private ``torch.Generator`` (``backend.generator(seed, 2)`` or one
derived from it; never the global RNG, sessions run concurrently) and return
``(x, target)`` with x time-major, (T', B, d), as ``torch.nn.RNN(batch_first=False)`` wants.

**Adding problem** (§4.2). x is (T, B, 2): channel 0 holds values u_t ~ U[0, 1], channel 1 a
marker that is 1 at exactly one step a in [0, floor(T/2)) and one step b in
[floor(T/2), T), 0 elsewhere. The target is y = u_a + u_b, shape (B,), predicted from the
last step; the loss is the mean squared error. Predicting y = 1 always scores

.. math:: E[(u_a + u_b - 1)^2] = \mathrm{Var}(u_a + u_b) = 2 \cdot \tfrac{1}{12} = \tfrac16.

**Copy memory** (§4.1). Classes: 0 blank, 1..8 symbols, 9 delimiter. The input is
T' = T + 20 steps: 10 symbols s_1..s_10 ~ U{1..8}, then T - 1 blanks, the delimiter, and 10
blanks; one-hot, so x is (T + 20, B, 10). The target, (T + 20, B) int64, is blank except
its last 10 steps, which are s_1..s_10. The loss is the cross-entropy averaged over all
T + 20 steps and the batch. The memoryless baseline predicts blank with certainty for the
first T + 10 steps and a uniform symbol for the last 10:

.. math:: \mathrm{CE} = \frac{10 \ln 8}{T + 20}.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from .config import TASKS

COPY_SYMBOLS = 8  # symbols 1..8
COPY_LENGTH = 10  # symbols to remember
COPY_CLASSES = COPY_SYMBOLS + 2  # + blank (0) + delimiter (9)
BLANK, DELIMITER = 0, COPY_CLASSES - 1


def _check(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")


def input_size(task: str) -> int:
    """d: 2 for adding (value, marker), 10 for copy (one-hot classes)."""
    _check(task)
    return 2 if task == "adding" else COPY_CLASSES


def output_size(task: str) -> int:
    """Read-out width: 1 for adding (a regression), 10 for copy (class logits)."""
    _check(task)
    return 1 if task == "adding" else COPY_CLASSES


def sequence_length(task: str, T: int) -> int:
    """T': the number of input steps, T for adding and T + 20 for copy."""
    _check(task)
    return T if task == "adding" else T + 2 * COPY_LENGTH


def baseline(task: str, T: int) -> float:
    """Loss of the best memoryless predictor: 1/6 (adding, MSE) or 10 ln 8 / (T + 20) (copy, CE)."""
    _check(task)
    if task == "adding":
        return 1.0 / 6.0
    return COPY_LENGTH * math.log(COPY_SYMBOLS) / (T + 2 * COPY_LENGTH)


def adding(T: int, batch: int, gen: torch.Generator, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """Adding-problem batch: x (T, B, 2) and target (B,). Needs T >= 2 (one marker per half)."""
    if T < 2:
        raise ValueError(f"the adding problem needs seq_len >= 2 (one marker per half), got {T}")
    half = T // 2
    values = torch.rand(T, batch, generator=gen, dtype=torch.float64)
    first = torch.randint(0, half, (batch,), generator=gen)
    second = torch.randint(half, T, (batch,), generator=gen)
    marker = torch.zeros(T, batch, dtype=torch.float64)
    cols = torch.arange(batch)
    marker[first, cols] = 1.0
    marker[second, cols] = 1.0
    target = values[first, cols] + values[second, cols]
    # drawn in float64 so float32 and float64 runs see the same numbers
    return torch.stack([values, marker], dim=-1).to(dtype), target.to(dtype)


def copy_memory(T: int, batch: int, gen: torch.Generator, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """Copy-memory batch: one-hot x (T + 20, B, 10) and int64 target (T + 20, B)."""
    if T < 1:
        raise ValueError(f"the copy task needs seq_len >= 1, got {T}")
    L = T + 2 * COPY_LENGTH
    symbols = torch.randint(1, COPY_SYMBOLS + 1, (COPY_LENGTH, batch), generator=gen)
    classes = torch.full((L, batch), BLANK, dtype=torch.int64)
    classes[:COPY_LENGTH] = symbols
    classes[T + COPY_LENGTH - 1] = DELIMITER  # after the 10 symbols and T - 1 blanks
    target = torch.full((L, batch), BLANK, dtype=torch.int64)
    target[-COPY_LENGTH:] = symbols
    return F.one_hot(classes, COPY_CLASSES).to(dtype), target


def make_batch(task: str, T: int, batch: int, gen: torch.Generator, dtype=torch.float32,
               device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """(x (T', B, d), target) for ``task``, drawn on the CPU from ``gen``, then moved to ``device``."""
    _check(task)
    x, target = (adding if task == "adding" else copy_memory)(T, batch, gen, dtype)
    return x.to(device), target.to(device)


def loss(task: str, h: Tensor, readout_weight: Tensor, readout_bias: Tensor, target: Tensor,
         reduction: str = "mean") -> Tensor:
    r"""The task loss from hidden states h (T', B, n) and a linear read-out y = W h + b.

    Adding: MSE of (W h_{T'} + b) (B,) against target (B,). Copy: cross-entropy of the
    logits W h_t + b (T', B, 10) against target (T', B), averaged over steps and batch.
    ``reduction="sum"`` sums over sequences instead (averaging over steps for copy), so a
    batch split into chunks adds up to B times the mean.
    """
    _check(task)
    if task == "adding":
        pred = F.linear(h[-1], readout_weight, readout_bias).squeeze(-1)  # (B,)
        err = (pred - target) ** 2
        return err.mean() if reduction == "mean" else err.sum()
    logits = F.linear(h, readout_weight, readout_bias)  # (T', B, 10)
    ce = F.cross_entropy(logits.reshape(-1, COPY_CLASSES), target.reshape(-1), reduction="sum")
    steps, batch = target.shape
    return ce / (steps * batch) if reduction == "mean" else ce / steps
