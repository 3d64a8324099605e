r"""Sweeps: one measured number per config over a grid of configs, on one core, a process pool or a Ray cluster.

A sweep is a base :class:`~explorer.config.ExperimentConfig` and one or more axes ``FIELD=LO:HI:N`` (any numeric
field, ``gain`` and the word-or-number fields such as ``bias_std`` included). The grid is the product of the axes
in their order, the last varying fastest; each row is :func:`row` of its config, a pure function of the config
(seeded by it, computed on one thread), so the same sweep gives the same numbers bit for bit on any executor:

* the simple RNN (and every cell without a cell state): ``measured_log10_rate``, the least-squares slope per step
  of :math:`\log_{10}(\|\partial h_T/\partial h_{T-k}\|_F^2 / n)` over the last T/2 lags (:func:`measured_log10_rate`),
  beside ``theory_log10_chi``, mean-field theory's :math:`\log_{10}\chi` (:mod:`explorer.theory`; null where it
  does not apply);
* the LSTM: ``measured_log10_cell``, :math:`\log_{10}\|\partial c_T/\partial c_0\|_2` (:func:`measured_log10_cell`).

Rows are cached on disk by their config (:func:`cache_dir`), so a repeated sweep is read back at once.

From a notebook::

    from explorer import ExperimentConfig
    from explorer.sweep import Sweep, parse_axis, run_sweep
    base = ExperimentConfig(activation="tanh", hidden=256, seq_len=100, input="zeros", init="gaussian", dtype="float64")
    result = run_sweep(Sweep(base, (parse_axis("gain=0.5:2.5:9"), parse_axis("bias_std=0:0.4:3"))), workers=2)
    result.to_json()["rows"]

and ``python -m explorer sweep --sweep gain=0.5:2.5:9 --sweep bias_std=0:0.4:3 --json`` from a shell. Ray is
imported only by ``executor="ray"``.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from .config import SPECS, ExperimentConfig, check, field_type, from_dict, quoted
from .theory import slope

VERSION = "sweep-1"  # part of every cache key: bump it when a row's numbers change
MAX_ROWS = 4096  # rows of one sweep (64 x 64); each row is bounded by its config's own bounds
MAX_AXES = 4
RATE, CELL, THEORY = "measured_log10_rate", "measured_log10_cell", "theory_log10_chi"
EXECUTORS = ("local", "ray")
# A sweep's own defaults where its base config does not say: sigma_w is the gain of a gaussian W_hh, and float64
# keeps the forward pass of a linear or exploding cell finite much longer (1e308 against float32's 3e38).
SWEEP_DEFAULTS = {"init": "gaussian", "dtype": "float64"}


# --- axes and the grid -------------------------------------------------------------------------------------------

def sweepable(name: str) -> bool:
    """A config field an axis may vary: an int or float field, or a word-or-number field (``bias_std``)."""
    if name not in SPECS:
        return False
    spec, kind = SPECS[name], field_type(name)
    return (kind in (int, float) and spec.lo is not None) or bool(spec.words)


@dataclass(frozen=True)
class Axis:
    """One axis ``field=lo:hi:count``: ``count`` values evenly spaced from ``lo`` to ``hi`` (both included)."""

    field: str
    lo: float
    hi: float
    count: int

    def values(self) -> list[Any]:
        """The values as the config holds them: ints for int fields (distinct), floats, or a number's repr as a
        string for a word-or-number field (``"0.2"``); each checked against the field's bounds (``ValueError``)."""
        raw = [self.lo] if self.count == 1 else np.linspace(self.lo, self.hi, self.count).tolist()
        kind = field_type(self.field)
        if kind is int:
            out = [int(round(v)) for v in raw]
            if len(set(out)) != len(out):
                raise ValueError(f"axis {self}: {self.field} is an integer and {self.count} values from {self.lo:g} "
                                 f"to {self.hi:g} repeat some; use fewer")
        else:
            out = [float(f"{v:.12g}") for v in raw]  # 0.30000000000000004 -> 0.3: short in links and JSON
            if kind is str:
                out = [repr(v) for v in out]
        return [check(self.field, v, SPECS) for v in out]

    def numbers(self) -> np.ndarray:
        """The values as floats (a word-or-number field's strings read back)."""
        return np.array([float(v) for v in self.values()])

    def __str__(self) -> str:
        return f"{self.field}={self.lo:g}:{self.hi:g}:{self.count}"

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "lo": self.lo, "hi": self.hi, "count": self.count, "values": self.values()}


def parse_axis(text: str) -> Axis:
    """``"FIELD=LO:HI:N"`` (``N`` >= 1 values from LO to HI) as an :class:`Axis`; ``ValueError`` in one line."""
    name, sep, rest = str(text).partition("=")
    name = name.strip().replace("-", "_")
    parts = rest.split(":")
    if not sep or len(parts) != 3:
        raise ValueError(f"--sweep must read FIELD=LO:HI:N (e.g. gain=0.5:2.5:9), got {quoted(text)}")
    if not sweepable(name):
        numeric = ", ".join(n for n in SPECS if sweepable(n))
        raise ValueError(f"--sweep field must be one of {numeric}, got {quoted(name)}")
    try:
        lo, hi = float(parts[0]), float(parts[1])
        count = int(parts[2])
    except ValueError:
        raise ValueError(f"--sweep {quoted(text)}: LO and HI must be numbers and N an integer") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or not 1 <= count <= MAX_ROWS:
        raise ValueError(f"--sweep {quoted(text)}: LO and HI must be finite and N in [1, {MAX_ROWS}]")
    if count == 1 and lo != hi:
        raise ValueError(f"--sweep {quoted(text)}: one value needs LO = HI")
    axis = Axis(name, lo, hi, count)
    axis.values()  # bounds and repeats, now
    return axis


@dataclass(frozen=True)
class Sweep:
    """A base config and its axes; :meth:`configs` is the grid in order (the last axis fastest)."""

    base: ExperimentConfig
    axes: tuple[Axis, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "axes", tuple(self.axes))
        if not 1 <= len(self.axes) <= MAX_AXES:
            raise ValueError(f"a sweep needs 1 to {MAX_AXES} axes, got {len(self.axes)}")
        names = [a.field for a in self.axes]
        if len(set(names)) != len(names):
            raise ValueError(f"each field may be swept once, got {', '.join(names)}")
        if self.size > MAX_ROWS:
            raise ValueError(f"a sweep has at most {MAX_ROWS} rows, got {self.size} "
                             f"({' x '.join(str(a.count) for a in self.axes)})")
        if "gain" in names and self.base.init == "pytorch":
            raise ValueError("--sweep gain has no effect with init=pytorch (torch's default ignores the gain): "
                             "use --init gaussian (sigma_w) or another scheme")

    @property
    def size(self) -> int:
        return math.prod(a.count for a in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.count for a in self.axes)

    def points(self) -> list[dict[str, Any]]:
        """The axis values of every row, in grid order."""
        names = [a.field for a in self.axes]
        return [dict(zip(names, combo)) for combo in itertools.product(*(a.values() for a in self.axes))]

    def configs(self) -> list[ExperimentConfig]:
        """Every row's config, in grid order (strict: a combination that breaks a rule between fields raises)."""
        base = self.base.to_dict()
        return [ExperimentConfig(**{**base, **point}) for point in self.points()]

    @property
    def quantity(self) -> str:
        """What a row measures: ``measured_log10_cell`` for a cell with a cell state (the LSTM), else the rate."""
        return quantity(self.base)


def quantity(config: ExperimentConfig) -> str:
    from .registry import cell_type

    return CELL if "cell" in cell_type(config.cell).views else RATE


# --- one row -----------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """One intra-op thread, in this thread, and the library's LAPACK halves run inline (as in one half of its own
    split): a row's numbers then do not depend on the machine's core count, and N workers use N cores."""
    from . import backend
    from .jacobian import workers

    before = getattr(workers._in_sweep, "active", False)
    workers._in_sweep.active = True
    try:
        with backend.threads(1):
            yield
    finally:
        workers._in_sweep.active = before


def _traced(config: ExperimentConfig):
    """The seeded cell on the CPU, set up for analysis as :func:`explorer.analysis.analyze` does, and its trace."""
    import torch

    from .cells import build_cell, make_inputs

    cell = build_cell(config, "cpu")
    cell.frozen_statistics = True
    cell.requires_grad_(False)
    x = make_inputs(config, config.batch if config.norm == "batch" else 1, "cpu")
    with torch.no_grad():
        return cell, cell.run(x)


def log_frobenius_to_the_end(config: ExperimentConfig) -> tuple[np.ndarray, np.ndarray]:
    r"""(lags k = 0..T, log10 \|\partial z_T/\partial z_{T-k}\|_F) of sequence 0, exact and in log space: the
    backward chain P(T-k-1, T) = P(T-k, T) J_{T-k} of :func:`explorer.jacobian.to_the_end`, renormalised at every
    step, without its spectral certificates (the Frobenius norm is the chain's log scale). NaN from lag 1 on where
    the forward pass overflowed (every lag passes J_T), -inf from an exact zero on."""
    import torch

    from .analysis import undefined_from
    from .jacobian import LOG10E, scaled

    cell, trace = _traced(config)
    T, m = config.seq_len, cell.state_size
    out = np.full(T + 1, np.nan)
    out[0] = 0.5 * math.log10(m)
    if undefined_from(cell, trace) is not None:
        return np.arange(T + 1), out
    first = trace.sequence(0)

    def jac(steps):
        J, logs = cell.scaled_jacobians(first, steps)
        return J[:, 0], logs[:, 0]

    dtype = trace.z.dtype
    chunk = max(1, min(64, (4 * 2**20) // (m * m * torch.empty((), dtype=dtype).element_size())))
    P = torch.eye(m, dtype=dtype)
    log_scale = 0.0
    for k1 in range(T, 0, -chunk):  # steps k1, k1 - 1, ..., built a cache-sized chunk at a time
        k0 = max(1, k1 - chunk + 1)
        J, logs = scaled(jac, torch.arange(k0, k1 + 1))
        logs = logs.tolist()
        for i in range(J.shape[0] - 1, -1, -1):
            k = k0 + i
            if log_scale > -math.inf:
                P = P @ J[i].to(dtype)
                norm = float(torch.linalg.matrix_norm(P))
                if norm == 0.0:
                    log_scale = -math.inf
                else:
                    P = P / norm
                    log_scale += math.log(norm) + logs[i]
            out[T - k + 1] = log_scale * LOG10E
    return np.arange(T + 1), out


def fit_lags(seq_len: int) -> slice:
    """The lags of the fit, as a slice of 0..T: the last T/2 lags, k = floor(T/2) .. T."""
    return slice(seq_len // 2, seq_len + 1)


def measured_log10_rate(config: ExperimentConfig) -> float:
    r"""The measured per-step growth of the mean squared gradient: the least-squares slope per step of
    :math:`\log_{10}(\|\partial z_T/\partial z_{T-k}\|_F^2 / m)` over the last T/2 lags (m = n for the simple RNN),
    comparable with mean-field theory's :math:`\log_{10}\chi`. NaN where the forward pass overflowed, -inf where
    the product is exactly zero (e.g. relu with every unit off)."""
    lags, log_fro = log_frobenius_to_the_end(config)
    part = fit_lags(config.seq_len)
    m = 10 ** (2 * log_fro[0])  # ||I||_F^2 = m
    return slope(lags[part], 2 * log_fro[part] - math.log10(m))


def measured_log10_cell(config: ExperimentConfig) -> float:
    r""":math:`\log_{10}\|\partial c_T/\partial c_0\|_2` of a cell with a cell state (the LSTM): the c -> c block of
    the full-state product over all T steps, certified like the analysis's map (its pair (0, T)); NaN where the
    forward pass overflowed, -inf for an exact zero."""
    from .analysis import pair_norms

    cell, trace = _traced(config)
    pairs = pair_norms(cell, trace, config, stride=config.seq_len)
    if "cell" not in pairs.log10_spectral:
        raise ValueError(f"cell={config.cell} has no cell state: sweep its rate instead")
    return float(pairs.log10_spectral["cell"][0, -1])


def theory_log10_chi(config: ExperimentConfig) -> float | None:
    """Mean-field theory's log10 chi of the cell ``config`` builds (:func:`explorer.theory.theory`); None where the
    theory does not apply (gated, normalised, residual cells...), -inf where chi = 0."""
    from . import theory

    result = theory.theory(config)
    return None if result is None else float(result.log10_chi)


def _number(value: float | None) -> float | None:
    """A finite float, else None (JSON's null: NaN undefined, -inf exactly zero, +inf without bound)."""
    return float(value) if value is not None and math.isfinite(value) else None


def row(config: ExperimentConfig) -> dict[str, Any]:
    """One row of a sweep: {measured_log10_rate or measured_log10_cell, theory_log10_chi, seconds}, finite or None.
    Pure in ``config`` (seeded by it, on one thread): the same numbers in any process, on any executor."""
    start = time.perf_counter()
    with single_thread():
        if quantity(config) == CELL:
            out = {CELL: _number(measured_log10_cell(config)), THEORY: None}
        else:
            out = {RATE: _number(measured_log10_rate(config)), THEORY: _number(theory_log10_chi(config))}
    out["seconds"] = time.perf_counter() - start
    return out


# --- what a sweep costs, and its command line ---------------------------------------------------------------------

# Seconds of one row on one thread of the reference machine (2 cores, measured by benchmarks/bench_sweep.py's
# calibration at n = 16..256, T = 50..200, within about 1.5x): a fixed part (the cell, its forward pass, the theory),
# a part per step (the Jacobians; the LSTM's pair certificate), and the chain's float ops (the LSTM's c-columns
# are diagonal: half a product per step, of its 2n-wide state).
ROW_FIXED = 0.003
ROW_PER_STEP = {RATE: 2.5e-5, CELL: 3.0e-4}
ROW_FLOP_RATE = {RATE: 45e9, CELL: 20e9}  # float64 flops per second; float32 runs at about twice the rate


def row_seconds(config: ExperimentConfig) -> float:
    """Predicted seconds of :func:`row` for ``config`` on one thread of the reference machine."""
    from .registry import cell_type

    what = quantity(config)
    m = config.hidden * cell_type(config.cell).state_units
    flops = 2.0 * config.seq_len * m**3 * (0.5 if what == CELL else 1.0)
    rate = ROW_FLOP_RATE[what] * (2.0 if config.dtype == "float32" else 1.0)
    return ROW_FIXED + ROW_PER_STEP[what] * config.seq_len + flops / rate


def predicted_seconds(sweep: Sweep, workers: int = 1) -> float:
    """Predicted seconds of the whole sweep on ``workers`` cores (rows shared evenly; no cache)."""
    return sum(row_seconds(c) for c in sweep.configs()) / max(1, workers)


def command(sweep: Sweep, executor: str = "local") -> str:
    """The command line that runs ``sweep`` (every base field that differs from the sweep's defaults, the seed,
    and the axes), printing its JSON."""
    from .config import to_query

    defaults = to_query(ExperimentConfig(**SWEEP_DEFAULTS))
    mine = to_query(sweep.base)
    swept = {a.field for a in sweep.axes}
    flags = [f"--{k.replace('_', '-')} {mine[k]}" for k in mine
             if k not in swept and k != "lag" and (mine[k] != defaults[k] or k in ("cell", "seed"))]
    axes = [f"--sweep {a}" for a in sweep.axes]
    return " ".join(["python -m explorer sweep", *flags, *axes, f"--executor {executor}", "--json"])


# --- the disk cache ----------------------------------------------------------------------------------------------

def cache_dir() -> Path:
    """``$EXPLORER_CACHE_DIR/sweep`` where that is set, else ``$XDG_CACHE_HOME`` (default ``~/.cache``)
    ``/rnn-gradient-explorer/sweep``."""
    root = os.environ.get("EXPLORER_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "sweep"
    home = os.environ.get("XDG_CACHE_HOME") or Path("~").expanduser() / ".cache"
    return Path(home) / "rnn-gradient-explorer" / "sweep"


def _key_text(config: ExperimentConfig) -> str:
    return json.dumps({"version": VERSION, "config": config.to_dict()}, sort_keys=True)


def cache_key(config: ExperimentConfig) -> str:
    """The row's file name: a hash of its config's JSON and :data:`VERSION`."""
    return hashlib.sha256(_key_text(config).encode()).hexdigest()


class DiskCache:
    """Rows by config, one small JSON file each (``<dir>/<key[:2]>/<key>.json``), written atomically; a file that
    does not read back as this config's row counts as missing."""

    def __init__(self, directory: Path | str | None = None):
        self.directory = Path(directory) if directory is not None else cache_dir()

    def _path(self, config: ExperimentConfig) -> Path:
        key = cache_key(config)
        return self.directory / key[:2] / f"{key}.json"

    def get(self, config: ExperimentConfig) -> dict[str, Any] | None:
        try:
            data = json.loads(self._path(config).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != json.loads(_key_text(config)):
            return None
        return data.get("row")

    def put(self, config: ExperimentConfig, result: Mapping[str, Any]) -> None:
        path = self._path(config)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"key": json.loads(_key_text(config)), "row": dict(result)}, allow_nan=False))
            os.replace(tmp, path)
        except OSError:  # a read-only or full disk: the sweep still runs, uncached
            pass


# --- executors -----------------------------------------------------------------------------------------------------

Progress = Callable[[int, int], None]  # (rows done, rows in all)


def _worker_init() -> None:
    """A pool worker: the library's settings, one torch thread (workers x threads <= cores)."""
    from . import backend

    backend.configure()
    import torch

    torch.set_num_threads(1)


def _row_of_dict(values: dict[str, Any]) -> dict[str, Any]:
    """:func:`row` of a config given as its dict (what crosses a process or the network)."""
    return row(from_dict(values))


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def _local(configs: Sequence[ExperimentConfig], workers: int, done: Callable[[int, dict], None]) -> None:
    if workers <= 1 or len(configs) <= 1:
        for i, config in enumerate(configs):
            done(i, row(config))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: a fork of a process whose torch already runs threads may hang; the workers import the library anew
    with ProcessPoolExecutor(max_workers=min(workers, len(configs)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_init) as pool:
        futures = {pool.submit(_row_of_dict, c.to_dict()): i for i, c in enumerate(configs)}
        try:
            for future in as_completed(futures):
                done(futures[future], future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _ray_runtime_env() -> dict[str, Any]:
    """The library shipped to the Ray workers (a cluster's nodes need not have this checkout)."""
    return {"py_modules": [str(Path(__file__).resolve().parent)]}


def _ray(configs: Sequence[ExperimentConfig], workers: int | None, address: str | None,
         done: Callable[[int, dict], None]) -> None:
    try:
        import ray
    except ImportError:
        raise RuntimeError("executor=ray needs Ray: pip install -r requirements-dev.txt (or pip install ray)") from None
    import logging

    started = False
    if not ray.is_initialized():  # else: the caller's Ray (a notebook's, a test's), left running
        quiet = {"runtime_env": _ray_runtime_env(), "log_to_driver": False, "logging_level": logging.WARNING}
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(num_cpus=workers or default_workers(), include_dashboard=False, **quiet)
        started = True
    try:
        task = ray.remote(num_cpus=1)(_row_of_dict)
        refs = {task.remote(c.to_dict()): i for i, c in enumerate(configs)}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                done(refs[ref], ray.get(ref))
    finally:
        if started:  # a local Ray stops; a cluster stays up, this driver disconnects
            ray.shutdown()


@dataclass
class SweepResult:
    """A sweep's rows in grid order: each the axis values, the measured number, theory's and the seconds."""

    sweep: Sweep
    rows: list[dict[str, Any]]
    cached: int = 0  # rows read from the disk cache
    seconds: float = 0.0

    def array(self, key: str) -> np.ndarray:
        """One column as an array of the grid's shape (NaN for null)."""
        values = [math.nan if r.get(key) is None else float(r[key]) for r in self.rows]
        return np.array(values, dtype=np.float64).reshape(self.sweep.shape)

    def to_json(self) -> dict[str, Any]:
        out = {"version": VERSION, "config": self.sweep.base.to_dict(), "quantity": self.sweep.quantity,
               "axes": [a.to_json() for a in self.sweep.axes], "rows": [dict(r) for r in self.rows]}
        if self.sweep.quantity == RATE:
            out["agreement"] = agreement(self)
        return out


AGREEMENT_TOLERANCE = 0.03  # decades per step between the measured rate and log10 chi
NEAR_CRITICAL = 0.05  # |log10 chi| below this: too close to the critical line to compare a slope with


def _why(config: ExperimentConfig, theory: float) -> str:
    """Why a row's measured rate can differ from theory's log10 chi by more than the tolerance (issue 12's report)."""
    driven = config.input != "zeros" or config.bias_std not in ("0.0", "default")
    if not driven:
        return (f"no bias and no input: the state stays exactly 0, so every J_k is the same sigma_w W_hh, and the "
                f"slope is that one matrix's (its top eigenvalues), not the average over fresh matrices the theory "
                f"takes; at n = {config.hidden} they differ by a few per cent (finite n)")
    if abs(theory) < 2 * NEAR_CRITICAL:
        return (f"close to the critical line chi = 1: the transient to q* lasts about xi steps, long against T = "
                f"{config.seq_len}, so the slope over the last T/2 lags still carries it (finite T)")
    if theory < 0:
        return (f"ordered phase: the state settles to a fixed point, so J_k tends to one constant matrix, whose top "
                f"eigenvalues at n = {config.hidden} set the slope instead of sqrt(chi) (finite n)")
    return (f"one W_hh of n = {config.hidden}: an eigenvalue outside the bulk can capture the state (finite n)")


def agreement(result: "SweepResult") -> dict[str, Any]:
    """The measured rate against theory's log10 chi over the rows where both exist and |log10 chi| > NEAR_CRITICAL:
    how many hold within AGREEMENT_TOLERANCE, and each that does not, with its axis values, the gap and why."""
    fields = [a.field for a in result.sweep.axes]
    compared, exceptions = 0, []
    for config, row in zip(result.sweep.configs(), result.rows):
        measured, theory = row.get(RATE), row.get(THEORY)
        if measured is None or theory is None or abs(theory) <= NEAR_CRITICAL:
            continue
        compared += 1
        gap = measured - theory
        if abs(gap) >= AGREEMENT_TOLERANCE:
            exceptions.append({**{f: row.get(f) for f in fields}, RATE: measured, THEORY: theory,
                               "difference": gap, "why": _why(config, theory)})
    return {"tolerance": AGREEMENT_TOLERANCE, "near_critical": NEAR_CRITICAL, "compared": compared,
            "held": compared - len(exceptions), "exceptions": exceptions}


def run_sweep(sweep: Sweep, *, executor: str = "local", workers: int | None = None, address: str | None = None,
              progress: Progress | None = None, cache: DiskCache | bool | None = True) -> SweepResult:
    """Every row of ``sweep`` in grid order: from the disk cache where it holds them (``cache``: True for
    :func:`cache_dir`, a :class:`DiskCache`, or False/None for none), the rest on ``executor``: "local" (``workers``
    processes, default the cores; 1: in this process) or "ray" (a Ray task per row: on the cluster at ``address``,
    else on a local Ray of ``workers`` CPUs that this call starts and stops). ``progress(done, total)`` after each row."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    start = time.perf_counter()
    store = DiskCache() if cache is True else (cache or None)
    configs, points = sweep.configs(), sweep.points()
    results: list[dict[str, Any] | None] = [None] * len(configs)
    if store is not None:
        for i, config in enumerate(configs):
            results[i] = store.get(config)
    cached = sum(r is not None for r in results)
    todo = [i for i, r in enumerate(results) if r is None]
    count = [cached]
    if progress is not None:
        progress(cached, len(configs))

    def done(j: int, result: dict[str, Any]) -> None:
        i = todo[j]
        results[i] = result
        if store is not None:
            store.put(configs[i], result)
        count[0] += 1
        if progress is not None:
            progress(count[0], len(configs))

    if todo:
        chosen = [configs[i] for i in todo]
        if executor == "local":
            _local(chosen, workers or default_workers(), done)
        else:
            _ray(chosen, workers, address, done)
    rows = [{**point, **result} for point, result in zip(points, results)]
    return SweepResult(sweep, rows, cached=cached, seconds=time.perf_counter() - start)


# --- reading a sweep's JSON back -------------------------------------------------------------------------------------

MAX_UPLOAD_BYTES = 4 * 2**20  # a 64 x 64 sweep's JSON is about 0.6 MB


def from_json(data: Any) -> SweepResult:
    """A sweep's JSON (:meth:`SweepResult.to_json`, the CLI's ``--json``) read back and checked: the config, the
    axes, every row's axis values in grid order and every number finite or null. ``ValueError`` in one line."""
    if not isinstance(data, Mapping):
        raise ValueError("a sweep's JSON must be an object with config, axes and rows")
    for key in ("config", "axes", "rows"):
        if key not in data:
            raise ValueError(f"a sweep's JSON needs {key!r}")
    try:
        base = from_dict(data["config"]) if isinstance(data["config"], Mapping) else None
    except (TypeError, ValueError) as err:
        raise ValueError(f"config: {str(err).splitlines()[0]}") from None
    if not isinstance(base, ExperimentConfig):
        raise ValueError("config must be a model config (the fields of ExperimentConfig)")
    axes_data = data["axes"]
    if not isinstance(axes_data, list) or not axes_data:
        raise ValueError("axes must be a non-empty list")
    axes = []
    for item in axes_data:
        if not isinstance(item, Mapping) or not {"field", "lo", "hi", "count"} <= set(item):
            raise ValueError("each axis needs field, lo, hi and count")
        if isinstance(item["count"], bool) or not isinstance(item["count"], int):
            raise ValueError(f"axis {quoted(item.get('field'))}: count must be an integer")
        if not all(isinstance(item[k], (int, float)) and not isinstance(item[k], bool) for k in ("lo", "hi")):
            raise ValueError(f"axis {quoted(item['field'])}: lo and hi must be numbers")
        axes.append(parse_axis(f"{item['field']}={item['lo']!r}:{item['hi']!r}:{item['count']}"))
    sweep = Sweep(base, tuple(axes))
    rows = data["rows"]
    if not isinstance(rows, list) or len(rows) != sweep.size:
        raise ValueError(f"rows must be a list of {sweep.size} rows (the axes' grid), got "
                         f"{len(rows) if isinstance(rows, list) else type(rows).__name__}")
    wanted = sweep.quantity
    clean = []
    for i, (point, got) in enumerate(zip(sweep.points(), rows)):
        if not isinstance(got, Mapping):
            raise ValueError(f"row {i} is not an object")
        for name, value in point.items():
            if got.get(name) != value and not _same_number(got.get(name), value):
                raise ValueError(f"row {i}: {name} should be {value!r} (grid order, the last axis fastest), "
                                 f"got {quoted(got.get(name))}")
        out = dict(point)
        for key in (wanted, THEORY, "seconds"):
            value = got.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise ValueError(f"row {i}: {key} must be a finite number or null, got {quoted(value)}")
            out[key] = None if value is None else float(value)
        clean.append(out)
    return SweepResult(sweep, clean)


def _same_number(a: Any, b: Any) -> bool:
    try:
        return not isinstance(a, bool) and float(a) == float(b)
    except (TypeError, ValueError):
        return False


def loads(text: str | bytes) -> SweepResult:
    """:func:`from_json` of a file's text (at most :data:`MAX_UPLOAD_BYTES`)."""
    if len(text) > MAX_UPLOAD_BYTES:
        raise ValueError(f"a sweep's JSON is at most {MAX_UPLOAD_BYTES // 2**20} MB, got {len(text) / 2**20:.1f} MB")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"not JSON: {str(err).splitlines()[0]}") from None
    return from_json(data)


# --- the critical line of theory ----------------------------------------------------------------------------------

def critical_line(activation: str, v_x: float = 0.0, sigma_b_max: float = 10.0, points: int = 400
                  ) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean-field theory's critical line \chi = 1 as (\sigma_w, \sigma_b) points, \sigma_b from 0 to ``sigma_b_max``,
    for biases N(0, \sigma_b^2) and an input drive of second moment v_x, from the theory's closed form with the
    nominal \sigma_w and \sigma_b (not a built cell's statistics), parametrised by the fixed point q*:

    .. math::
        \sigma_w^2 = 1 / \mathbb{E}[g'(\sqrt{q^*} z)^2],\qquad
        \sigma_b^2 = q^* - \sigma_w^2\, \mathbb{E}[g(\sqrt{q^*} z)^2] - v_x

    (chi = 1 and q* = F(q*) solved for sigma_w and sigma_b; both expectations from :func:`explorer.theory.second_moments`).
    Linear and relu cells have E[g'^2] = 1 and 1/2 whatever q*: the vertical lines sigma_w = 1 and sqrt 2 (relu's
    holds where anything drives it: at sigma_b = 0 without input its state stays 0, where torch's relu'(0) = 0)."""
    from .theory import second_moments

    if activation in ("linear", "relu"):
        width = 1.0 if activation == "linear" else math.sqrt(2.0)
        return np.array([width, width]), np.array([0.0, sigma_b_max])

    def point(q: float) -> tuple[float, float] | None:
        g2, dg2 = second_moments(activation, q)
        if dg2 <= 0.0:
            return None
        return 1.0 / dg2, q - g2 / dg2 - v_x  # sigma_w^2, sigma_b^2

    sigma_w, sigma_b, below = [], [], None  # below: the last q whose sigma_b^2 < 0 (the drive alone is too much)
    for q in np.concatenate([[0.0], np.geomspace(1e-6, 1e4, points)]).tolist():
        found = point(q)
        if found is None:
            continue
        w2, b2 = found
        if b2 < 0.0:
            below = q
            continue
        if not sigma_b and below is not None:  # where the line meets sigma_b = 0: bisect sigma_b^2(q) = 0
            lo, hi = below, q
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if point(mid)[1] < 0.0 else (lo, mid)
            sigma_w.append(math.sqrt(point(hi)[0]))
            sigma_b.append(0.0)
        sigma_w.append(math.sqrt(w2))
        sigma_b.append(math.sqrt(b2))
        if sigma_b[-1] > sigma_b_max:
            break
    return np.array(sigma_w), np.array(sigma_b)


def drive_moment(config: ExperimentConfig) -> float:
    """v_x = mean (W_ih x_t)^2 of the cell and inputs ``config`` builds (W_ih and x do not depend on the gain or
    sigma_b): what theory adds to the pre-activations' variance; 0 for input zeros."""
    if config.input == "zeros":
        return 0.0
    import torch

    from .cells import build_cell, make_inputs

    cell = build_cell(config, "cpu")
    x = make_inputs(config, 1, "cpu").double()
    with torch.no_grad():
        return float(torch.mean((x @ cell.weight_ih_l0.detach().double().T) ** 2))
