"""The app's limits for a hosted deployment, in one place, each overridable by an environment variable.

=========================  =====================================================================  =========
variable                   what it bounds                                                          default
=========================  =====================================================================  =========
EXPLORER_MAX_SEQ_LEN       T on every page (the command line keeps the config's own bounds)        2000
EXPLORER_MAX_HIDDEN        n on every page                                                         512
EXPLORER_ANALYSIS_SECONDS  one analysis, in seconds of the reference machine (explorer.cost):      6
                           the stride follows from it; beyond it at the coarsest stride the lag,
                           then T, is lowered
EXPLORER_LAB_MAX_STEPS     optimiser steps of one Training Lab run                                 20000
EXPLORER_LAB_FLOPS         float ops of one Training Lab run                                       1.6e12
EXPLORER_CONCURRENT        computations at once; the rest queue (ui.gate)                          cores / threads
EXPLORER_CACHE_MB          megabytes of results kept in the shared caches (a quarter more for      256
                           figures: explorer.memo)
EXPLORER_MAX_UPLOAD_MB     megabytes of a loaded weights or sequence file (held in memory only)    16
=========================  =====================================================================  =========

A deployment can lower them; a request beyond them is clamped, with a message that names the variable. A value
that is not a positive number is ignored with a warning (``Limits.problems``), never a crash.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Mapping

from . import backend

if TYPE_CHECKING:
    from .config import ExperimentConfig

MIN_GRID = 16  # grid points of the coarsest map the app shows


@dataclass(frozen=True)
class Limits:
    max_seq_len: int = 2000
    max_hidden: int = 512
    analysis_seconds: float = 6.0
    lab_max_steps: int = 20000
    lab_flops: float = 1.6e12  # about 1.5x the lab's default run (adding, T = 50, LSTM n = 64, 3000 steps)
    concurrent: int = max(1, (os.cpu_count() or 1) // backend.THREADS)
    cache_mb: int = 256  # a T = 2000 analysis holds 10-70 MB: a few of the largest, or dozens of the usual
    max_upload_mb: float = 16.0  # a loaded weights or sequence file (explorer.weights); .streamlit's maxUploadSize too
    problems: tuple[str, ...] = ()  # what was wrong with the environment's values (ignored)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "Limits":
        """The defaults, with each ``EXPLORER_<FIELD>`` of ``environ`` (default ``os.environ``) that is a positive
        number; a deployment may only lower T and n (the config's own bounds stay the ceiling)."""
        environ = os.environ if environ is None else environ
        base, values, problems = cls(), {}, []
        for f in fields(cls):
            if f.name == "problems":
                continue
            name = f"EXPLORER_{f.name.upper()}"
            if name not in environ:
                continue
            kind = type(getattr(base, f.name))
            try:
                value = kind(float(environ[name])) if kind is int else float(environ[name])
                if not value > 0 or value != value or value == float("inf"):
                    raise ValueError
            except (TypeError, ValueError, OverflowError):
                problems.append(f"{name}={environ[name]!r} is not a positive number: using {getattr(base, f.name)}")
                continue
            if f.name in ("max_seq_len", "max_hidden", "max_upload_mb"):
                value = min(value, getattr(base, f.name))
            values[f.name] = value
        return replace(base, **values, problems=tuple(problems))


LIMITS = Limits.from_environ()


OVER_BUDGET = 1.3  # a config whose coarsest map still needs more than this times the budget is lowered (the model errs by up to 1.35x)


@dataclass(frozen=True)
class Plan:
    """How the app runs a config: the config itself (lowered where it asked too much), the map's stride, the
    predicted seconds (reference machine), whether the simple RNN is drawn beside it at once, and the messages."""

    config: "ExperimentConfig"
    stride: int
    seconds: float
    overlay: bool
    messages: tuple[str, ...] = ()


def _stride_and_overlay(config, budget: float) -> tuple[int, float, bool]:
    """The smallest stride whose analysis, with the simple RNN beside it where its page draws one, fits ``budget``;
    the overlay is left for a click when even the coarsest map and it together exceed ``OVER_BUDGET`` budgets."""
    from .cost import overlay_seconds, stride_within
    from .registry import cell_type

    extra = overlay_seconds(config) if cell_type(config.cell).rnn_overlay else 0.0
    if extra:
        stride, predicted = stride_within(config, budget - extra, MIN_GRID)
        if predicted + extra <= OVER_BUDGET * budget:
            return stride, predicted + extra, True
    stride, predicted = stride_within(config, budget, MIN_GRID)
    return stride, predicted, False


def stride_for(config, limits: Limits | None = None) -> int:
    """The app's stride for ``config`` (as it is: see :func:`plan` for the lowering); depends on the config and
    the deployment's budget alone, so a shared link gives the same picture."""
    return _stride_and_overlay(config, (limits or LIMITS).analysis_seconds)[0]


def ceiling(field: str, limits: Limits | None = None) -> int | None:
    """This deployment's maximum of a config field that it bounds (T, n, the lab's steps), else None."""
    limits = limits or LIMITS
    return {"seq_len": limits.max_seq_len, "hidden": limits.max_hidden, "steps": limits.lab_max_steps}.get(field)


def _largest(fits, lo: int, hi: int) -> int:
    """The largest value in [lo, hi] for which ``fits`` holds (``fits(lo)`` assumed), by bisection."""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def plan(config, limits: Limits | None = None) -> Plan:
    """``config`` within this deployment's limits: T and n at most their maxima, then, where even the coarsest
    map would need more than ``OVER_BUDGET`` times the analysis budget, the lag lowered, then T; with a message
    for each change. The command line applies none of this."""
    from .config import fit
    from .cost import stride_within

    limits = limits or LIMITS
    messages: list[str] = []
    changes = {}
    if config.seq_len > limits.max_seq_len:
        changes["seq_len"] = limits.max_seq_len
        messages.append(f"This deployment runs T ≤ {limits.max_seq_len} (EXPLORER_MAX_SEQ_LEN); using "
                        f"{limits.max_seq_len}.")
    if config.hidden > limits.max_hidden:
        changes["hidden"] = limits.max_hidden
        messages.append(f"This deployment runs n ≤ {limits.max_hidden} (EXPLORER_MAX_HIDDEN); using "
                        f"{limits.max_hidden}.")
    if changes:
        config, more = fit(config, **changes)
        messages += more
    budget = limits.analysis_seconds
    stride, predicted, overlay = _stride_and_overlay(config, budget)
    if predicted > OVER_BUDGET * budget:
        asked = predicted

        def fits(**change) -> bool:
            return stride_within(config.replace(**change), budget, MIN_GRID)[1] <= OVER_BUDGET * budget

        lowered = []
        if config.lag > 1 and fits(lag=1):
            config = config.replace(lag=_largest(lambda lag: fits(lag=lag), 1, config.lag))
            lowered.append(f"the lag k is lowered to {config.lag}")
        elif config.seq_len > 1 and fits(seq_len=1, lag=1):
            lag_before = config.lag
            T = _largest(lambda T: fits(seq_len=T, lag=min(config.lag, T)), 1, config.seq_len)
            config = config.replace(seq_len=T, lag=min(config.lag, T))
            lowered.append(f"T is lowered to {T}" + (f" (the lag k to {config.lag})" if config.lag != lag_before else ""))
        stride, predicted, overlay = _stride_and_overlay(config, budget)
        if lowered:  # a config that no lowering brings within the budget runs as it is, without a message per run
            messages.append(f"These settings need about {asked:.2g} s of computing per visit; this deployment allows "
                            f"about {budget:g} s (EXPLORER_ANALYSIS_SECONDS), so {' and '.join(lowered)}. The command "
                            "line has no limit: `python -m explorer analyze` with the same settings.")
    return Plan(config, stride, predicted, overlay, tuple(messages))


def plan_training(config, limits: Limits | None = None):
    """A Training Lab config within this deployment's limits: the model's T and n, and the steps, at most their
    maxima; returns (config, messages). Its float ops are checked when it runs (``Limits.lab_flops``)."""
    from .config import fit

    limits = limits or LIMITS
    model, messages = config.model, []
    for field, symbol, variable in (("seq_len", "T", "EXPLORER_MAX_SEQ_LEN"), ("hidden", "n", "EXPLORER_MAX_HIDDEN")):
        most = ceiling(field, limits)
        if getattr(model, field) > most:
            model, more = fit(model, **{field: most})
            messages += [f"This deployment runs {symbol} ≤ {most} ({variable}); using {most}.", *more]
    if config.steps > limits.lab_max_steps:
        messages.append(f"This deployment trains at most {limits.lab_max_steps} steps (EXPLORER_LAB_MAX_STEPS); "
                        f"using {limits.lab_max_steps}.")
        config = config.replace(steps=limits.lab_max_steps)
    return (config.replace(model=model) if model is not config.model else config), messages
