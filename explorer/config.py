"""One frozen config per experiment, and the one table that drives the URL codec,
the command line and validation.

The URL query string, the CLI flags and the ``st.cache_data`` key all come from
:class:`ExperimentConfig`, so a shared link reproduces the exact picture, seed included.
Query-parameter names are the CLI option names with underscores
(``--seq-len`` <-> ``seq_len``).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

CELLS = ("rnn", "lstm", "gru")
ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
INITS = ("pytorch", "gaussian", "xavier_uniform", "xavier_normal", "kaiming", "orthogonal", "identity")
INPUTS = ("gaussian", "zeros", "sine")
DTYPES = ("float32", "float64")
GATE_STAGES = ("input", "input,output", "input,forget,output")
NORMS = ("none", "layer", "batch")
TASKS = ("adding", "copy")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
ORTHO_PARAMS = ("none", "matrix_exp", "cayley")
LSTM_MAX_HIDDEN = 256  # the LSTM state (h, c) has 2n units: n <= 256 keeps it within the RNN's 512
# Batch norm's per-step statistics need every sequence of the batch run forward (and back, for the
# contributions): batch * seq_len * hidden^2 <= 2^33 keeps that to a few seconds (16 at T=2000, n=512).
BATCH_NORM_BUDGET = 2**33


def max_batch(seq_len: int, hidden: int) -> int:
    """The largest ``batch`` for norm=batch at this size (within the field's own range)."""
    return max(int(SPECS["batch"].lo), min(int(SPECS["batch"].hi), BATCH_NORM_BUDGET // (seq_len * hidden**2)))


@dataclass(frozen=True)
class Spec:
    """How one config field is parsed, bounded and explained."""

    choices: tuple[str, ...] | None = None  # allowed strings, for str fields
    lo: float | None = None  # inclusive bounds, for numbers
    hi: float | None = None
    help: str = ""


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines one analysed recurrent net (a picture on a page)."""

    cell: str = "rnn"  # rnn | lstm | gru
    activation: str = "tanh"  # g in h_t = g(a_t), simple RNN only
    hidden: int = 64  # n, hidden units
    input_size: int = 2  # d, input features per step
    seq_len: int = 100  # T, steps
    init: str = "pytorch"  # scheme for W_hh (each gate block for LSTM/GRU)
    gain: float = 1.0  # gain of the init scheme
    input: str = "gaussian"  # input signal x_1..x_T
    seed: int = 0  # seeds weights and inputs
    dtype: str = "float32"  # float32 | float64
    lag: int = 50  # lag k for the singular values of dh_T/dh_{T-k}
    gates: str = "input,forget,output"  # LSTM stage: which gates exist (absent = 1)
    forget_bias: str = "default"  # LSTM b_f: default | a number | chrono
    residual: bool = False  # h_t = h_{t-1} + g(a_t)
    norm: str = "none"  # none | layer | batch (normalise a_t)
    batch: int = 16  # sequences in the batch, for --norm batch

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, check(f.name, getattr(self, f.name), SPECS))
        if self.cell == "lstm" and self.hidden > LSTM_MAX_HIDDEN:
            raise ValueError(f"hidden must be in [1, {LSTM_MAX_HIDDEN}] for cell=lstm (its state (h, c) has 2n units), "
                             f"got {self.hidden}")
        if self.norm == "batch" and self.batch > max_batch(self.seq_len, self.hidden):
            raise ValueError(_batch_bound(self.seq_len, self.hidden, self.batch))
        # the default lag may exceed a short sequence: clamp rather than refuse
        object.__setattr__(self, "lag", min(self.lag, self.seq_len))

    def replace(self, **changes: Any) -> "ExperimentConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_query(self) -> dict[str, str]:
        return to_query(self)


@dataclass(frozen=True)
class TrainConfig:
    """A training-lab run: the model (an :class:`ExperimentConfig`) plus the optimisation."""

    model: ExperimentConfig = dataclasses.field(default_factory=lambda: ExperimentConfig(cell="lstm", seq_len=50))
    task: str = "adding"  # adding | copy
    steps: int = 3000  # optimiser steps
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    clip: float = 1.0  # max gradient norm; 0 = off
    ortho_reg: float = 0.0  # lambda in + lambda ||W^T W - I||_F^2
    orthogonal_param: str = "none"  # Riemannian: W_hh kept orthogonal by torch parametrizations
    record_every: int = 25  # record the gradient-flow profile every k steps

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name != "model":
                object.__setattr__(self, f.name, check(f.name, getattr(self, f.name), TRAIN_SPECS))
        if not isinstance(self.model, ExperimentConfig):
            raise ValueError("model must be an ExperimentConfig")
        problem = _train_conflict(self.model, self.task, self.orthogonal_param)
        if problem:
            raise ValueError(problem)

    def flops(self) -> float:
        """Rough float ops of the run: forward and backward (3x) through T' steps of
        B sequences, each step a (G n x n) matvec per sequence; bounds the app's runs."""
        m = self.model
        blocks = {"rnn": 1, "lstm": 4, "gru": 3}[m.cell]
        length = m.seq_len + (20 if self.task == "copy" else 0)
        return 3.0 * 2.0 * blocks * m.hidden * (m.hidden + m.input_size) * length * self.batch_size * self.steps

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), **{k: v for k, v in dataclasses.asdict(self).items() if k != "model"}}

    def to_query(self) -> dict[str, str]:
        own = {f.name: _format(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "model"}
        return {**self.model.to_query(), **own}


SPECS: dict[str, Spec] = {
    "cell": Spec(choices=CELLS, help="recurrent cell"),
    "activation": Spec(choices=ACTIVATIONS, help="activation g of the simple RNN"),
    "hidden": Spec(lo=1, hi=512, help="hidden units n"),
    "input_size": Spec(lo=1, hi=64, help="input features d"),
    "seq_len": Spec(lo=1, hi=2000, help="sequence length T"),
    "init": Spec(choices=INITS, help="initialisation of W_hh"),
    "gain": Spec(lo=0.0, hi=8.0, help="gain of the initialisation"),
    "input": Spec(choices=INPUTS, help="input signal"),
    "seed": Spec(lo=0, hi=2**31 - 1, help="random seed (weights and inputs)"),
    "dtype": Spec(choices=DTYPES, help="floating-point precision"),
    "lag": Spec(lo=1, hi=2000, help="lag k for the singular values of dh_T/dh_(T-k)"),
    "gates": Spec(choices=GATE_STAGES, help="LSTM stage: gates present (absent gates are fixed at 1)"),
    "forget_bias": Spec(help="LSTM forget-gate bias: default, a number in [-10, 10], or chrono"),
    "residual": Spec(help="residual RNN: h_t = h_(t-1) + g(a_t)"),
    "norm": Spec(choices=NORMS, help="normalise the pre-activation a_t"),
    "batch": Spec(lo=2, hi=256, help="batch of sequences for batch-norm statistics"),
}

TRAIN_SPECS: dict[str, Spec] = {
    "task": Spec(choices=TASKS, help="long-range task"),
    "steps": Spec(lo=1, hi=20000, help="optimiser steps"),
    "batch_size": Spec(lo=1, hi=512, help="sequences per step"),
    "lr": Spec(lo=1e-6, hi=1.0, help="learning rate"),
    "optimizer": Spec(choices=OPTIMIZERS, help="optimiser"),
    "clip": Spec(lo=0.0, hi=1e3, help="max gradient norm (0 = no clipping)"),
    "ortho_reg": Spec(lo=0.0, hi=100.0, help="orthogonal regularisation lambda"),
    "orthogonal_param": Spec(choices=ORTHO_PARAMS, help="keep W_hh orthogonal (Riemannian)"),
    "record_every": Spec(lo=1, hi=1000, help="record the gradient-flow profile every k steps"),
}

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ExperimentConfig)}
_TRAIN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name != "model"}
_TYPES = {f.name: type(f.default) for f in dataclasses.fields(ExperimentConfig)}
_TYPES.update({name: type(value) for name, value in _TRAIN_DEFAULTS.items()})


def field_type(name: str) -> type:
    """The Python type of a config field (model or training)."""
    return _TYPES[name]


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def check(name: str, value: Any, specs: Mapping[str, Spec]) -> Any:
    """Coerce ``value`` (a string or a Python value) to the field's type and check its bounds.

    Raises ``ValueError`` naming the field and its allowed range.
    """
    spec, kind = specs[name], _TYPES[name]
    try:
        if kind is bool:
            value = _parse_bool(value) if isinstance(value, str) else value
            if not isinstance(value, bool):
                raise ValueError
        elif kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            value = int(str(value).strip()) if isinstance(value, str) else int(value)
        elif kind is float:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError
        else:
            value = str(value).strip()
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {_describe(name, spec)}, got {value!r}") from None
    if name == "forget_bias":
        return _check_forget_bias(value)
    if spec.choices is not None and value not in spec.choices:
        raise ValueError(f"{name} must be {_describe(name, spec)}, got {value!r}")
    if spec.lo is not None and not (spec.lo <= value <= spec.hi):
        raise ValueError(f"{name} must be {_describe(name, spec)}, got {value!r}")
    return value


def _check_forget_bias(value: str) -> str:
    if value in ("default", "chrono"):
        return value
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and -10.0 <= number <= 10.0):
        raise ValueError(f"forget_bias must be default, chrono or a number in [-10, 10], got {value!r}")
    return repr(number)


def _describe(name: str, spec: Spec) -> str:
    kind = _TYPES[name]
    if name == "forget_bias":
        return "default, chrono or a number in [-10, 10]"
    if spec.choices is not None:
        return "one of " + ", ".join(spec.choices)
    if kind is bool:
        return "true or false"
    if spec.lo is not None:
        word = "an integer" if kind is int else "a number"
        lo, hi = (int(spec.lo), int(spec.hi)) if kind is int else (spec.lo, spec.hi)
        return f"{word} in [{lo}, {hi}]"
    return "text"


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def to_query(config: ExperimentConfig | TrainConfig) -> dict[str, str]:
    """Every field as a string (the seed always included); ``TrainConfig`` adds its own after the model's."""
    if isinstance(config, TrainConfig):
        return config.to_query()
    return {f.name: _format(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _first(value: Any) -> str:
    # st.query_params gives str; parse_qs gives lists: the last repeat wins, as in Streamlit
    return str(value[-1]) if isinstance(value, (list, tuple)) and value else str(value)


def _parse_fields(
    query: Mapping[str, Any], specs: Mapping[str, Spec], defaults: Mapping[str, Any], warnings: list[str]
) -> dict[str, Any]:
    values = {}
    for name in specs:
        if name not in query:
            continue
        raw = _first(query[name])
        try:
            values[name] = check(name, raw, specs)
        except ValueError as err:
            warnings.append(f"{err}; using the default {_format(defaults[name])}.")
    return values


def from_query(query: Mapping[str, Any], *, train: bool = False) -> tuple[ExperimentConfig | TrainConfig, list[str]]:
    """Parse a URL query (``st.query_params`` or ``parse_qs`` output) into a config.

    Never raises: each malformed or out-of-range value becomes a warning and falls back
    to its default, so a page always renders.
    """
    warnings: list[str] = []
    known = set(SPECS) | (set(TRAIN_SPECS) if train else set())
    for key in query:
        if key not in known:
            warnings.append(f"Unknown parameter {key!r} ignored.")
    base = TrainConfig().model if train else ExperimentConfig()
    values = _parse_fields(query, SPECS, base.to_dict(), warnings)
    seq_len = values.get("seq_len", base.seq_len)
    if values.get("lag", 0) > seq_len:
        warnings.append(f"lag must be in 1..seq_len={seq_len}, got {values['lag']}; using {seq_len}.")
    model, more = fit(base, **values)
    warnings += more
    if not train:
        return model, warnings
    train_values = _parse_fields(query, TRAIN_SPECS, _TRAIN_DEFAULTS, warnings)
    task = train_values.get("task", _TRAIN_DEFAULTS["task"])
    ortho = train_values.get("orthogonal_param", _TRAIN_DEFAULTS["orthogonal_param"])
    problem = _train_conflict(model, task, ortho)
    if problem:
        warnings.append(f"{problem}; using orthogonal_param=none and seq_len >= 2.")
        train_values["orthogonal_param"] = "none"
        model = model.replace(seq_len=max(2, model.seq_len))
    return TrainConfig(model=model, **train_values), warnings


def _train_conflict(model: ExperimentConfig, task: str, orthogonal_param: str) -> str | None:
    if orthogonal_param != "none" and model.cell != "rnn":
        return (f"orthogonal_param={orthogonal_param} needs cell=rnn (a square W_hh); the {model.cell.upper()}'s "
                "W_hh stacks gate blocks: use ortho_reg instead")
    if task == "adding" and model.seq_len < 2:
        return "the adding problem needs seq_len >= 2 (one marker in each half)"
    return None


def fit(config: ExperimentConfig, **changes: Any) -> tuple[ExperimentConfig, list[str]]:
    """``config.replace(**changes)``, resolving the cross-field bounds (an LSTM's hidden size,
    batch norm's batch) by clamping, with a warning, instead of raising."""
    merged = {**config.to_dict(), **changes}
    warnings = []
    if merged["cell"] == "lstm" and merged["hidden"] > LSTM_MAX_HIDDEN:
        warnings.append(f"hidden must be in [1, {LSTM_MAX_HIDDEN}] for cell=lstm, got {merged['hidden']}; "
                        f"using {LSTM_MAX_HIDDEN}.")
        merged["hidden"] = LSTM_MAX_HIDDEN
    cap = max_batch(merged["seq_len"], merged["hidden"])
    if merged["norm"] == "batch" and merged["batch"] > cap:
        warnings.append(f"{_batch_bound(merged['seq_len'], merged['hidden'], merged['batch'])}; using {cap}.")
        merged["batch"] = cap
    return ExperimentConfig(**merged), warnings


def _batch_bound(seq_len: int, hidden: int, batch: int) -> str:
    return (f"batch must be in [{int(SPECS['batch'].lo)}, {max_batch(seq_len, hidden)}] for norm=batch at seq_len={seq_len}, hidden={hidden} "
            f"(every sequence runs for the batch statistics), got {batch}")


def from_dict(data: Mapping[str, Any]) -> ExperimentConfig | TrainConfig:
    """Inverse of ``to_dict`` (strict: raises ``ValueError`` on bad values)."""
    if "model" in data:
        rest = {k: v for k, v in data.items() if k != "model"}
        return TrainConfig(model=ExperimentConfig(**data["model"]), **rest)
    return ExperimentConfig(**data)
