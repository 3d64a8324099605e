"""One frozen config per experiment, and the one table that drives the URL codec,
the command line, validation and the widgets.

The URL query string, the CLI flags and the ``st.cache_data`` key all come from
:class:`ExperimentConfig`, so a shared link reproduces the exact picture, seed included.
Query-parameter names are the CLI option names with underscores
(``--seq-len`` <-> ``seq_len``). Each field's :class:`Spec` says how it is parsed and
bounded, how its widget reads and when it is shown; the rules between fields live in
:func:`violations`, which the dataclasses, the URL parser, the CLI and the lab all call.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Collection, Mapping

from .registry import CELL_TYPES, cell_type

ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
INITS = ("pytorch", "gaussian", "xavier_uniform", "xavier_normal", "kaiming", "orthogonal", "identity")
INPUTS = ("gaussian", "zeros", "sine", "file")
DTYPES = ("float32", "float64")
GATE_STAGES = ("input", "input,output", "input,forget,output")
NORMS = ("none", "layer", "batch")
TASKS = ("adding", "copy")  # explorer.tasks makes them
OPTIMIZERS = ("adam", "rmsprop", "sgd")
ORTHO_PARAMS = ("none", "matrix_exp", "cayley")
# Batch norm's per-step statistics need every sequence of the batch run forward (and back, for the
# contributions): batch * seq_len * hidden^2 <= 2^33 keeps that to a few seconds (16 at T=2000, n=512).
BATCH_NORM_BUDGET = 2**33

Values = Mapping[str, Any]  # field name -> value: the model's fields and, for a run, the training fields


@dataclass(frozen=True)
class Spec:
    """How one config field is parsed, bounded, explained and shown (URL, CLI, widgets)."""

    choices: tuple[str, ...] | None = None  # allowed strings, for str fields
    words: tuple[str, ...] = ()  # a str field holding one of these words or a number in [lo, hi] (kept as its repr)
    lo: float | None = None  # inclusive bounds, for numbers
    hi: float | None = None
    help: str = ""
    label: str = ""  # the widget's label ("" = the name with spaces)
    choice_labels: Mapping[str, str] = dataclasses.field(default_factory=dict)  # how a choice reads in a selector
    widget: str = ""  # "slider" for a number, else chosen by type ("" )
    visible_if: Callable[[Values], bool] | None = None  # shown only where this holds (always where None)
    # a tighter upper bound that depends on other fields (None where none applies), and why
    hi_for: Callable[[Values], int | None] | None = None
    hi_reason: Callable[[Values], str] | None = None
    pattern: str | None = None  # a str field must match this regular expression in full
    pattern_words: str = ""  # what the pattern allows, in words (for messages)
    number_format: str = "%.8g"  # how a float's widget shows it (printf): 0.99999 must not read "1"
    step: float = 0.05  # a float widget's +/- step

    def shown(self, values: Values) -> bool:
        return self.visible_if is None or bool(self.visible_if(values))

    def upper(self, values: Values) -> float:
        """The upper bound at these values of the other fields."""
        tighter = self.hi_for(values) if self.hi_for is not None else None
        return self.hi if tighter is None else min(self.hi, tighter)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines one analysed recurrent net (a picture on a page)."""

    cell: str = "rnn"  # a cell of explorer.registry: rnn | lstm | gru | ...
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
    bias_std: str = "default"  # simple RNN biases: default (torch's) | sigma_b: b_ih ~ N(0, sigma_b^2), b_hh = 0
    residual: bool = False  # h_t = h_{t-1} + g(a_t)
    norm: str = "none"  # none | layer | batch (normalise a_t)
    batch: int = 16  # sequences in the batch, for --norm batch
    r_min: float = 0.9  # LRU: |lambda| drawn uniformly on the ring r_min <= |lambda| <= r_max
    r_max: float = 0.999
    max_phase: float = 6.283  # LRU: arg(lambda) drawn in [0, max_phase]
    # a trained model instead of the seeded init (explorer.weights): the file decides the cell and its size
    weights: str = ""  # "" (the seeded init above), a shipped example's name, or sha256:<hex> of a loaded file
    layer: int = 0  # which layer of a multi-layer file (0 = the first)
    direction: str = "forward"  # forward | reverse: which direction of a bidirectional layer
    prefix: str = ""  # where the recurrent module sits in a larger model's state dict ("" = the only one)
    input_file: str = ""  # sha256:<hex> of an uploaded input sequence (T x d), read with input=file

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, check(f.name, getattr(self, f.name), SPECS))
        _enforce(self, self.to_dict())

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
        _enforce(self, flat(self))

    def flops(self) -> float:
        """Rough float ops of the run: forward and backward (3x) through T' steps of
        B sequences, each step a (G n x n) matvec per sequence; bounds the app's runs."""
        m = self.model
        blocks = cell_type(m.cell).gate_blocks
        length = m.seq_len + (20 if self.task == "copy" else 0)
        return 3.0 * 2.0 * blocks * m.hidden * (m.hidden + m.input_size) * length * self.batch_size * self.steps

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), **{k: v for k, v in dataclasses.asdict(self).items() if k != "model"}}

    def to_query(self) -> dict[str, str]:
        own = {f.name: format_value(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "model"}
        return {**self.model.to_query(), **own}


def flat(config: ExperimentConfig | TrainConfig) -> dict[str, Any]:
    """Every field by name: a run's model fields beside its training fields."""
    if isinstance(config, TrainConfig):
        return {**config.model.to_dict(), **{k: v for k, v in config.to_dict().items() if k != "model"}}
    return config.to_dict()


def unflat(values: Values, *, train: bool) -> ExperimentConfig | TrainConfig:
    """The config of :func:`flat`'s values (strict: raises ``ValueError``)."""
    model = ExperimentConfig(**{k: v for k, v in values.items() if k in SPECS})
    if not train:
        return model
    return TrainConfig(model=model, **{k: v for k, v in values.items() if k in TRAIN_SPECS})


def max_batch(seq_len: int, hidden: int) -> int:
    """The largest ``batch`` for norm=batch at this size (within the field's own range)."""
    return max(int(SPECS["batch"].lo), min(int(SPECS["batch"].hi), BATCH_NORM_BUDGET // (seq_len * hidden**2)))


def _recurrent(values: Values) -> str:
    """The chosen cell's kind of W_hh (explorer.registry): "square", "stacked" or "none"."""
    return cell_type(values["cell"]).recurrent if values.get("cell") in CELL_TYPES else "stacked"


def _read_by_cell(field: str) -> Callable[[Values], bool]:
    """Shown only where the chosen cell reads the field (its registry entry lists it)."""
    return lambda values: values.get("cell") in CELL_TYPES and field in cell_type(values["cell"]).fields


_STAGE_LABELS = {"input": "1 · input gate only", "input,output": "2 · + output gate",
                 "input,forget,output": "3 · + forget gate (torch.nn.LSTM)"}

SPECS: dict[str, Spec] = {
    "cell": Spec(choices=tuple(CELL_TYPES), help="The recurrent cell", label="cell",
                 choice_labels={name: cell.label for name, cell in CELL_TYPES.items()}),
    "activation": Spec(choices=ACTIVATIONS, help="g in h_t = g(a_t); sup|g′| sets the lecture's bound",
                       label="activation g", visible_if=_read_by_cell("activation")),
    "hidden": Spec(lo=1, hi=512, help="Units n of the state h (the LSTM's state (h, c) has 2n)", label="hidden units n",
                   widget="slider", hi_for=lambda v: cell_type(v["cell"]).max_hidden if v.get("cell") in CELL_TYPES else None,
                   hi_reason=lambda v: f" for cell={v['cell']} (its state has {cell_type(v['cell']).state_units}n units)"),
    "input_size": Spec(lo=1, hi=64, help="Features d of each input x_t", label="input size d"),
    "seq_len": Spec(lo=1, hi=2000, help="Steps T of the unrolled product", label="sequence length T", widget="slider"),
    "init": Spec(choices=INITS, help="How W_hh is drawn (torch.nn.init); each gate block alike for the LSTM and GRU",
                 label="W_hh initialisation", visible_if=lambda v: _recurrent(v) != "none"),
    "gain": Spec(lo=0.0, hi=8.0, help="Scale of the initialisation: σ_w for gaussian, the gain of torch.nn.init",
                 label="gain", visible_if=lambda v: _recurrent(v) != "none"),
    "input": Spec(choices=INPUTS, help="What x_1..x_T are: N(0, 1) noise, zeros (no drive), sines, or an uploaded "
                                       "sequence (file)",
                  label="input signal"),
    "seed": Spec(lo=0, hi=2**31 - 1, help="Seeds the weights and the inputs: a link with it reproduces the picture",
                 label="seed"),
    "dtype": Spec(choices=DTYPES, help="Precision of the forward pass and the products", label="precision"),
    "lag": Spec(lo=1, hi=2000, help="The singular values are those of ∂h_T/∂h_(T−k) for this k", label="lag k",
                widget="slider", hi_for=lambda v: v.get("seq_len"), hi_reason=lambda v: f" (seq_len={v.get('seq_len')})"),
    "gates": Spec(choices=GATE_STAGES, help="The lecture's stages; an absent gate is fixed at 1",
                  label="LSTM stage (gates)", choice_labels=_STAGE_LABELS, visible_if=_read_by_cell("gates")),
    "forget_bias": Spec(help="default (torch's), chrono (Tallec & Ollivier 2018), or a number such as 1",
                        label="forget-gate bias", visible_if=_read_by_cell("forget_bias"), words=("default", "chrono"),
                        lo=-10.0, hi=10.0),
    "bias_std": Spec(help="default (torch's), or σ_b ≥ 0: b_ih ~ N(0, σ_b²) and b_hh = 0, the bias scale of "
                          "mean-field theory", label="bias scale σ_b", visible_if=_read_by_cell("bias_std"),
                     words=("default",), lo=0.0, hi=10.0),
    "residual": Spec(help="h_t = h_(t−1) + g(a_t): the Jacobian becomes I + diag(g′) W_hh",
                     label="residual connection", visible_if=_read_by_cell("residual")),
    "norm": Spec(choices=NORMS, help="Normalise the pre-activation a_t over units (layer) or sequences (batch)",
                 label="normalisation", visible_if=_read_by_cell("norm")),
    "batch": Spec(lo=2, hi=256, help="Sequences whose statistics batch norm uses", label="batch (batch norm)",
                  visible_if=lambda v: _read_by_cell("batch")(v) and v.get("norm") == "batch",
                  hi_for=lambda v: max_batch(v["seq_len"], v["hidden"]) if v.get("norm") == "batch" else None,
                  hi_reason=lambda v: (f" for norm=batch at seq_len={v['seq_len']}, hidden={v['hidden']} "
                                       "(every sequence runs for the batch statistics)")),
    "r_min": Spec(lo=0.0, hi=1.0, help="LRU: the smallest |λ| of the ring its eigenvalues are drawn on",
                  label="LRU ring: r_min", visible_if=_read_by_cell("r_min"), hi_for=lambda v: v.get("r_max"),
                  hi_reason=lambda v: f" (r_max={v.get('r_max')})"),
    "r_max": Spec(lo=0.0, hi=1.0, help="LRU: the largest |λ|; 1/(1 − r_max) steps is its longest memory",
                  label="LRU ring: r_max", visible_if=_read_by_cell("r_max")),
    "max_phase": Spec(lo=0.0, hi=6.283, help="LRU: arg λ drawn in [0, max_phase] (rotation per step)",
                      label="LRU max phase", visible_if=_read_by_cell("max_phase")),
    "weights": Spec(pattern=r"|[a-z0-9_]{1,40}|sha256:[0-9a-f]{64}", label="trained weights",
                    pattern_words="empty, a shipped example's name, or sha256: and 64 hex digits",
                    help="A trained model instead of the seeded init: a shipped example's name, or the sha256 of a "
                         "loaded file (python -m explorer analyze --weights FILE); the file decides the cell and n",
                    visible_if=lambda v: False),
    "layer": Spec(lo=0, hi=15, label="layer", help="Which layer of a multi-layer file (0 = the first; the layers "
                                                   "below it make its inputs)", visible_if=lambda v: False),
    "direction": Spec(choices=("forward", "reverse"), label="direction",
                      help="Which direction of a bidirectional layer (reverse reads the sequence from its last step)",
                      visible_if=lambda v: False),
    "prefix": Spec(pattern=r"[A-Za-z0-9_.\-]{0,200}", label="prefix",
                   pattern_words="letters, digits, underscores, dots and dashes (at most 200)",
                   help="Where the recurrent module sits in a larger model's state dict, e.g. encoder.rnn "
                        "(empty: the only one)", visible_if=lambda v: False),
    "input_file": Spec(pattern=r"|sha256:[0-9a-f]{64}", label="input sequence file",
                       pattern_words="empty, or sha256: and 64 hex digits",
                       help="The sha256 of an uploaded sequence (CSV or NPY, T x d), read with input=file",
                       visible_if=lambda v: False),
}
# the fields a loaded file decides (explorer.weights), not the visitor's to set while one is loaded; the rest describe
# the analysis: T, inputs, seed, precision, lag
FILE_FIELDS = ("cell", "hidden", "input_size", "init", "gain", "gates", "forget_bias", "bias_std", "residual", "norm",
               "batch", "r_min", "r_max", "max_phase")


def _unless_weights(spec: Spec) -> Spec:
    return dataclasses.replace(spec, visible_if=lambda v, shown=spec.shown: not v.get("weights") and shown(v))


SPECS.update({name: _unless_weights(SPECS[name]) for name in FILE_FIELDS})
SELECTION_FIELDS = ("layer", "direction", "prefix")  # which module, layer and direction of the loaded file
SOURCE_FIELDS = ("weights", *SELECTION_FIELDS, "input_file")  # the files a config reads: in a link only when set

TRAIN_SPECS: dict[str, Spec] = {
    "task": Spec(choices=TASKS, help="A task whose answer depends on inputs far in the past",
                 label="task", choice_labels={"adding": "adding problem", "copy": "copy memory"}),
    "steps": Spec(lo=1, hi=20000, help="Optimiser steps of the run", label="training steps"),
    "batch_size": Spec(lo=1, hi=512, help="Sequences per optimiser step", label="batch size"),
    "lr": Spec(lo=1e-6, hi=1.0, help="Step size of the optimiser", label="learning rate", number_format="%.2e", step=1e-4),
    "optimizer": Spec(choices=OPTIMIZERS, help="torch.optim optimiser", label="optimiser"),
    "clip": Spec(lo=0.0, hi=1e3, help="Gradients are rescaled to at most this norm (0 = no clipping)",
                 label="gradient clipping"),
    "ortho_reg": Spec(lo=0.0, hi=100.0, help="λ of the penalty λ‖W_hhᵀW_hh − I‖²_F", label="orthogonal regulariser λ",
                      visible_if=lambda v: _recurrent(v) != "none"),
    "orthogonal_param": Spec(choices=ORTHO_PARAMS, label="Riemannian (orthogonal W_hh)",
                             help="Keep W_hh on the orthogonal group (torch.nn.utils.parametrizations)",
                             visible_if=lambda v: _recurrent(v) == "square"),
    "record_every": Spec(lo=1, hi=1000, help="Record the gradient-flow profile every k steps", label="record every"),
}
ALL_SPECS: dict[str, Spec] = {**SPECS, **TRAIN_SPECS}

# How a page shows an experiment, not what it computes: in the URL and the widgets, never in the cache key.
VIEW_SPECS: dict[str, Spec] = {
    "scale": Spec(choices=("auto", "1", "2", "5", "10", "20", "50", "100", "200", "500"), label="colour scale (± decades)",
                  help="auto fits each map to its data; a fixed range keeps colours comparable between configs "
                       "(lock it while teaching: mild growth then looks mild)"),
    "present": Spec(choices=("0", "1"), label="presentation mode", choice_labels={"0": "off", "1": "on"},
                    help="For a projector: no sidebar or controls, the first chart first, larger type and lines"),
    "image": Spec(choices=("png", "svg"), label="chart image format",
                  help="What a chart's camera button saves: PNG (twice the screen's size) or SVG (vector)"),
}
VIEW_DEFAULTS = {"scale": "auto", "present": "0", "image": "png"}

_TRAIN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name != "model"}
_MODEL_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ExperimentConfig)}
_TYPES = {f.name: type(f.default) for f in dataclasses.fields(ExperimentConfig)}
_TYPES.update({name: type(value) for name, value in _TRAIN_DEFAULTS.items()})


def field_type(name: str) -> type:
    """The Python type of a config field (model or training)."""
    return _TYPES[name]


def label(name: str) -> str:
    return ALL_SPECS[name].label or name.replace("_", " ")


@dataclass(frozen=True)
class Violation:
    """A rule between fields that ``field`` breaks, and the nearest value that keeps it."""

    field: str
    value: Any
    message: str
    silent: bool = False  # resolved without a word, even by the strict constructor


def violations(values: Values) -> list[Violation]:
    """Every rule between fields that ``values`` break (the one home of those rules).

    Bounds that depend on other fields come from each :class:`Spec`'s ``hi_for`` (an LSTM's
    hidden size, batch norm's batch, the lag); a run adds its own (a Riemannian W_hh needs a
    square one, the adding problem two steps). The lag beyond a short sequence is silent: the
    default lag exceeds it.
    """
    found = []
    for name, spec in ALL_SPECS.items():
        if name not in values or spec.hi_for is None:
            continue
        top = spec.upper(values)
        if values[name] > top:
            reason = spec.hi_reason(values) if spec.hi_reason else ""
            kind = _TYPES[name]
            found.append(Violation(name, kind(top), f"{name} must be in [{kind(spec.lo)}, {kind(top)}]{reason}, "
                                                    f"got {values[name]}", silent=name == "lag"))
    recurrent = _recurrent(values)
    if values.get("orthogonal_param", "none") != "none" and recurrent != "square":
        found.append(Violation("orthogonal_param", "none",
                               f"orthogonal_param={values['orthogonal_param']} needs a square W_hh (cell=rnn); the "
                               f"{cell_type(values['cell']).label}'s " + ("W_hh stacks gate blocks: use ortho_reg instead"
                                                                          if recurrent == "stacked" else "has no W_hh")))
    if values.get("ortho_reg", 0.0) > 0 and recurrent == "none":
        found.append(Violation("ortho_reg", 0.0, f"ortho_reg needs a recurrent matrix W_hh; the "
                                                 f"{cell_type(values['cell']).label} has none"))
    if not values.get("weights", ""):  # selecting inside a file means nothing without one: back to the defaults
        for name in SELECTION_FIELDS:
            default = _MODEL_DEFAULTS[name]
            if values.get(name, default) != default:
                found.append(Violation(name, default, f"{name} selects inside a loaded file (weights), and none is "
                                                      "loaded", silent=True))
    if values.get("input") == "file" and not values.get("input_file"):
        found.append(Violation("input", "gaussian", "input=file needs an uploaded sequence (input_file)"))
    if values.get("input", "file") != "file" and values.get("input_file"):
        found.append(Violation("input_file", "", "input_file is read only with input=file", silent=True))
    if values.get("input") == "file" and values.get("norm") == "batch":
        found.append(Violation("norm", "none", "batch norm needs a batch of sequences; an uploaded sequence is one"))
    if "task" in values and values.get("weights"):
        found.append(Violation("weights", "", "the Training Lab trains from the seeded init, not a loaded file"))
    if "task" in values and values.get("input") == "file":
        found.append(Violation("input", "gaussian", "the Training Lab's task makes its own inputs, not a file"))
    if values.get("task") == "adding" and values.get("seq_len", 2) < 2:
        found.append(Violation("seq_len", 2, "the adding problem needs seq_len >= 2 (one marker in each half)"))
    return found


def _enforce(config: ExperimentConfig | TrainConfig, values: Values) -> None:
    """The strict constructors: raise on a broken rule, resolve the silent ones in place."""
    target = config.model if isinstance(config, TrainConfig) else config
    for problem in violations(values):
        if not problem.silent:
            raise ValueError(problem.message)
        if isinstance(config, ExperimentConfig):
            object.__setattr__(target, problem.field, problem.value)


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def check(name: str, value: Any, specs: Mapping[str, Spec] = ALL_SPECS) -> Any:
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
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be {describe(name)}, got {quoted(value)}") from None
    if spec.words:
        return _check_word_or_number(name, value, spec)
    if spec.choices is not None and value not in spec.choices:
        raise ValueError(f"{name} must be {describe(name)}, got {quoted(value)}")
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        raise ValueError(f"{name} must be {describe(name)}, got {quoted(value)}")
    if spec.lo is not None and not (spec.lo <= value <= spec.hi):
        raise ValueError(f"{name} must be {describe(name)}, got {quoted(value)}")
    return value


def quoted(value: Any) -> str:
    """A bad value as a message quotes it: repr, cut short (a URL can carry anything), and anything but a number
    as a Markdown code span, since the pages show these messages as Markdown: text from a link is shown as it is,
    never read as HTML, a link, an image, maths or emphasis."""
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..." + text[-1].strip("0123456789")  # a str keeps its quote
    if isinstance(value, (int, float)):
        return text
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)  # longer than any run inside
    return f"{fence}{text}{fence}"


def _check_word_or_number(name: str, value: str, spec: Spec) -> str:
    """One of ``spec.words``, or a finite number in [lo, hi] written as its repr ("1" -> "1.0")."""
    if value in spec.words:
        return value
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and spec.lo <= number <= spec.hi):
        raise ValueError(f"{name} must be {describe(name)}, got {quoted(value)}")
    return repr(number)


def describe(name: str) -> str:
    """The allowed values of a field, in words."""
    spec, kind = ALL_SPECS[name], _TYPES[name]
    if spec.words:
        return f"{', '.join(spec.words)} or a number in [{spec.lo:g}, {spec.hi:g}]"
    if spec.choices is not None:
        return "one of " + ", ".join(spec.choices)
    if spec.pattern is not None:
        return spec.pattern_words
    if kind is bool:
        return "true or false"
    if spec.lo is not None:
        word = "an integer" if kind is int else "a number"
        lo, hi = (int(spec.lo), int(spec.hi)) if kind is int else (spec.lo, spec.hi)
        return f"{word} in [{lo}, {hi}]"
    return "text"


def format_value(value: Any) -> str:
    """A field's value as a link writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def to_query(config: ExperimentConfig | TrainConfig) -> dict[str, str]:
    """Every field as a string (the seed always included); ``TrainConfig`` adds its own after the model's."""
    if isinstance(config, TrainConfig):
        return config.to_query()
    return {f.name: format_value(getattr(config, f.name)) for f in dataclasses.fields(config)
            if f.name not in SOURCE_FIELDS or getattr(config, f.name) != f.default}


def _first(value: Any) -> str:
    # st.query_params gives str; parse_qs gives lists: the last repeat wins, as in Streamlit
    return str(value[-1]) if isinstance(value, (list, tuple)) and value else str(value)


def from_query(query: Mapping[str, Any], *, train: bool = False) -> tuple[ExperimentConfig | TrainConfig, list[str]]:
    """Parse a URL query (``st.query_params`` or ``parse_qs`` output) into a config.

    Never raises: each malformed or out-of-range value becomes a warning and falls back
    to its default, so a page always renders.
    """
    warnings: list[str] = []
    specs = ALL_SPECS if train else SPECS
    for key in query:
        if key not in specs and key not in VIEW_SPECS:
            warnings.append(f"Unknown parameter {quoted(str(key))} ignored.")
    base = TrainConfig() if train else ExperimentConfig()
    defaults = flat(base)
    values = {}
    for name in specs:
        if name in query:
            try:
                values[name] = check(name, _first(query[name]))
            except ValueError as err:
                warnings.append(f"{err}; using the default {format_value(defaults[name]) or '(none)'}.")
    config, more = fit(base, **values)
    return config, warnings + more


def view_from_query(query: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The view settings of a URL query (``VIEW_SPECS``), each bad one a warning and its default."""
    values, warnings = dict(VIEW_DEFAULTS), []
    for name, spec in VIEW_SPECS.items():
        if name in query:
            raw = _first(query[name]).strip()
            if raw in spec.choices:
                values[name] = raw
            else:
                warnings.append(f"{name} must be one of {', '.join(spec.choices)}, got {quoted(raw)}; "
                                f"using the default {VIEW_DEFAULTS[name]}.")
    return values, warnings


def fit(config: ExperimentConfig | TrainConfig, quiet: Collection[str] = (), **changes: Any) -> tuple[Any, list[str]]:
    """``config`` with ``changes`` (already checked one by one), each broken rule between fields
    (:func:`violations`) resolved by its nearest allowed value, with a warning, instead of raising; fields
    in ``quiet`` (those a page does not show) are resolved without a word."""
    values = {**flat(config), **changes}
    warnings = []
    for _ in range(len(ALL_SPECS)):  # a fix may break a later rule (hidden bounds batch): settle them all
        problems = violations(values)
        if not problems:
            break
        for problem in problems:
            # the default lag beyond a short T, or a field this page does not show: no word
            if (not problem.silent or problem.field in changes) and problem.field not in quiet:
                warnings.append(f"{problem.message}; using {format_value(problem.value)}.")
            values[problem.field] = problem.value
    return unflat(values, train=isinstance(config, TrainConfig)), warnings


def from_dict(data: Mapping[str, Any]) -> ExperimentConfig | TrainConfig:
    """Inverse of ``to_dict`` (strict: raises ``ValueError`` on bad values)."""
    if "model" in data:
        rest = {k: v for k, v in data.items() if k != "model"}
        return TrainConfig(model=ExperimentConfig(**data["model"]), **rest)
    return ExperimentConfig(**data)
