r"""Your own model: one trained recurrent layer from its weights, loaded safely, as a config and its tensors.

A file arrives as bytes (held in memory: a hosted upload is never written to disk) and is read as

* **safetensors** (the default): a JSON header and raw tensors; nothing in it is executed, and its offsets are
  checked against its length before a tensor is made;
* **torch.save** output, through ``torch.load(..., weights_only=True)`` only: tensors, dicts, lists and numbers are
  rebuilt, and a pickle that asks for any other callable (a ``__reduce__`` payload) is refused before it runs.

Its tensors are searched for the parameter names of ``torch.nn.RNN``/``LSTM``/``GRU``
(``weight_ih_l{k}[_reverse]``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``) under any prefix, so a state
dict inside a larger model is found. One layer and direction is picked, its shapes are checked against the cell
they imply, and its tensors are renamed to the single-layer names of :mod:`explorer.cells`. The layers below it
run in ``torch.nn``'s own module to make its inputs, as they do in the network; the reverse direction reads the
sequence from its last step. A file the Training Lab saved (:func:`lab_file`) carries its cell's config in the
safetensors metadata, so every cell of the registry (residual, normalised, staged, the LRU) round-trips.

Every failure is a :class:`WeightsError`: one line that names what does not fit.
"""
from __future__ import annotations

import hashlib
import io
import json
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from . import limits
from .config import FILE_FIELDS, SPECS, ExperimentConfig
from .registry import CELL_TYPES, cell_type

# a lab file's model and training configs, as JSON, in the safetensors metadata: one key, since safetensors writes
# several in no fixed order, and the same run must give the same bytes (the same sha256)
META_KEY = "explorer"
EXAMPLES_DIR = Path(__file__).parent / "examples"
PARAM = re.compile(r"^(?P<prefix>(?:.*\.)?)(?P<param>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)"
                   r"_l(?P<layer>\d+)(?P<reverse>_reverse)?$")
FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class WeightsError(ValueError):
    """A file that cannot be analysed, and why, in one line."""


@dataclass(frozen=True)
class Example:
    """A trained model the repository ships, with the command that made it."""

    name: str
    label: str
    page: str  # the page that opens it ("rnn" or "gated")
    command: str  # reproduces the file exactly (seeded)

    @property
    def path(self) -> Path:
        return EXAMPLES_DIR / f"{self.name}.safetensors"


EXAMPLES: dict[str, Example] = {e.name: e for e in (
    Example("lstm_adding", "LSTM, n = 32, trained on the adding problem (T = 50)", "gated",
            "python -m explorer train --cell lstm --hidden 32 --seq-len 50 --steps 1500 --lr 0.01 --seed 7 "
            "--save explorer/examples/lstm_adding.safetensors"),
    Example("gru_adding", "GRU, n = 32, trained on the adding problem (T = 50)", "gated",
            "python -m explorer train --cell gru --hidden 32 --seq-len 50 --steps 1500 --lr 0.01 --seed 7 "
            "--save explorer/examples/gru_adding.safetensors"),
    Example("rnn_adding", "tanh RNN, n = 32, trained on the adding problem (T = 20)", "rnn",
            "python -m explorer train --cell rnn --hidden 32 --seq-len 20 --steps 3000 --lr 0.003 --seed 7 "
            "--init orthogonal --save explorer/examples/rnn_adding.safetensors"),
)}


def digest(data: bytes) -> str:
    """The name a file's bytes go by in a config: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def max_bytes() -> int:
    return int(limits.LIMITS.max_upload_mb * 2**20)


def check_size(size: int, name: str, limit: str = "this server's limit") -> None:
    """A WeightsError for a file of ``size`` bytes over this deployment's limit (before or after reading it)."""
    if size > max_bytes():
        raise WeightsError(f"{name} is {size / 2**20:.1f} MB, over {limit} of {max_bytes() / 2**20:.0f} MB "
                           "(EXPLORER_MAX_UPLOAD_MB)")


def not_loaded(what: str, key: str) -> WeightsError:
    """The error for a config naming an upload (``key``) that this session does not hold."""
    return WeightsError(f"{what} {key[:19]}… is not loaded here: an upload lives only in the session that uploaded "
                        "it. Upload it again")


def article(label: str) -> str:
    """"an LSTM", "a GRU", "a simple RNN": an acronym read letter by letter takes "an" before a vowel sound."""
    first = label.split()[0]
    vowel = first[0] in "AEIOUaeiou" or (first.isupper() and first[0] in "FHLMNRSX")
    return f"{'an' if vowel else 'a'} {label}"


def _first_line(err: BaseException, limit: int = 160) -> str:
    text = (str(err).strip().splitlines() or [type(err).__name__])[0].strip()
    if len(text) < 12:  # a bare key or number says nothing alone
        text = f"{type(err).__name__}: {text}"
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --- reading a file -------------------------------------------------------------------------------------------------

def read_tensors(data: bytes, name: str = "the file") -> tuple[dict[str, Tensor], dict[str, str]]:
    """Every tensor of a safetensors or ``torch.save`` file by its (dotted) name, and the safetensors metadata.

    Raises :class:`WeightsError` for a file over the limit, truncated, malformed, or asking to run code."""
    check_size(len(data), name)
    if len(data) == 0:
        raise WeightsError(f"{name} is empty")
    if len(data) > 8 and data[8:9] == b"{":  # safetensors: an 8-byte header length, then its JSON
        return _read_safetensors(data, name)
    return _read_torch(data, name), {}


def _read_safetensors(data: bytes, name: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors.torch import load

    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise WeightsError(f"{name}: truncated or not safetensors: its header claims {size} bytes, "
                           f"{len(data) - 8} follow")
    try:
        header = json.loads(data[8:8 + size])
    except (ValueError, UnicodeDecodeError) as err:
        raise WeightsError(f"{name}: a safetensors header that is not JSON ({_first_line(err)})") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    meta = {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}
    try:
        tensors = load(data)  # checks every offset against the buffer before it makes a tensor
    except Exception as err:  # safetensors raises its own error types: a lying header, a truncated body
        raise WeightsError(f"{name}: not a valid safetensors file ({_first_line(err)})") from None
    return tensors, meta


def _read_torch(data: bytes, name: str) -> dict[str, Tensor]:
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are not the reader's business
            warnings.simplefilter("ignore")
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # the restricted unpickler refused: it names what the file asked for
        asked = [line.strip() for line in str(err).splitlines() if "GLOBAL" in line or "Unsupported" in line]
        raise WeightsError(f"{name}: refused: it asks to run code, and only tensors are loaded (weights_only=True)"
                           + (f": {asked[0].split(' was not')[0].split('error: ')[-1][:120]}" if asked else "")) from None
    except Exception as err:  # a bad zip, a truncated stream, not a torch file at all
        raise WeightsError(f"{name}: not a safetensors or torch.save file ({_first_line(err)})") from None
    tensors: dict[str, Tensor] = {}
    _flatten(obj, "", tensors, depth=0)
    if not tensors:
        raise WeightsError(f"{name} holds no tensors")
    return tensors


def _flatten(obj: Any, prefix: str, out: dict[str, Tensor], depth: int) -> None:
    """Tensors of nested dicts and lists under dotted names (a checkpoint's ``{"state_dict": {...}}``)."""
    if depth > 16:
        return
    if isinstance(obj, Tensor):
        out[prefix.rstrip(".")] = obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            _flatten(value, f"{prefix}{key}.", out, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _flatten(value, f"{prefix}{i}.", out, depth + 1)


# --- the recurrent modules inside ----------------------------------------------------------------------------------

def _torch_cells() -> dict[int, str]:
    """Gate blocks -> the registry's cell that ``torch.nn`` computes with them (RNN 1, GRU 3, LSTM 4)."""
    defaults = ExperimentConfig().to_dict()
    return {ct.gate_blocks: name for name, ct in CELL_TYPES.items() if ct.torch_module({**defaults, "cell": name})}


@dataclass(frozen=True)
class Recurrent:
    """A ``torch.nn.RNN``/``LSTM``/``GRU`` found in a file, under ``prefix``."""

    prefix: str
    cell: str  # the registry's name
    input_size: int
    hidden: int
    layers: int
    bidirectional: bool
    bias: bool

    @property
    def module(self) -> str:
        kind = cell_type(self.cell).torch_module({**ExperimentConfig().to_dict(), "cell": self.cell})
        extra = (f", num_layers={self.layers}" if self.layers > 1 else "") + (
            ", bidirectional=True" if self.bidirectional else "") + ("" if self.bias else ", bias=False")
        return f"torch.nn.{kind}({self.input_size}, {self.hidden}{extra})"

    def describe(self) -> str:
        return f"{self.prefix or '(top level)'}: {self.module}"


def find_recurrent(tensors: Mapping[str, Tensor], name: str = "the file") -> list[Recurrent]:
    """Every recurrent module of ``torch.nn``'s naming in ``tensors``, its shapes checked layer by layer."""
    groups: dict[str, dict[tuple[str, int, bool], Tensor]] = {}
    for key, value in tensors.items():
        match = PARAM.match(key)
        if match:
            groups.setdefault(match["prefix"], {})[(match["param"], int(match["layer"]), bool(match["reverse"]))] = value
    found = []
    blocks_to_cell = _torch_cells()
    for prefix, params in sorted(groups.items()):
        where = prefix or "(top level)"
        if any(param == "weight_hr" for param, _, _ in params):
            raise WeightsError(f"{name}: {where} is an LSTM with proj_size (weight_hr_l*), which this app does not analyse")
        for key, value in params.items():
            if value.dtype not in FLOATS:
                raise WeightsError(f"{name}: {prefix}{_key(*key)} is {value.dtype}, not a floating-point tensor")
        if ("weight_hh", 0, False) not in params or ("weight_ih", 0, False) not in params:
            raise WeightsError(f"{name}: {where} has no weight_ih_l0 and weight_hh_l0")
        w_hh = params[("weight_hh", 0, False)]
        if w_hh.ndim != 2 or w_hh.shape[1] == 0 or w_hh.shape[0] % w_hh.shape[1] \
                or w_hh.shape[0] // w_hh.shape[1] not in blocks_to_cell:
            raise WeightsError(f"{name}: {prefix}weight_hh_l0 has shape {tuple(w_hh.shape)}, not the (G·n, n) of "
                               "torch.nn.RNN (G = 1), GRU (G = 3) or LSTM (G = 4)")
        n = w_hh.shape[1]
        blocks = w_hh.shape[0] // n
        layers = 1 + max(layer for _, layer, _ in params)
        reverse = any(rev for _, _, rev in params)
        bias = ("bias_ih", 0, False) in params
        d = params[("weight_ih", 0, False)].shape[-1]
        for layer in range(layers):
            for rev in ((False, True) if reverse else (False,)):
                expect = {"weight_ih": (blocks * n, d if layer == 0 else n * (1 + reverse)),
                          "weight_hh": (blocks * n, n)}
                if bias:
                    expect.update(bias_ih=(blocks * n,), bias_hh=(blocks * n,))
                for param, shape in expect.items():
                    got = params.get((param, layer, rev))
                    if got is None:
                        raise WeightsError(f"{name}: {prefix}{_key(param, layer, rev)} is missing "
                                           f"(a {layers}-layer {'bidirectional ' if reverse else ''}module needs it)")
                    if tuple(got.shape) != shape:
                        raise WeightsError(f"{name}: {prefix}{_key(param, layer, rev)} has shape {tuple(got.shape)}; "
                                           f"the {cell_type(blocks_to_cell[blocks]).label} with n = {n} and d = {d} "
                                           f"needs {shape}")
        found.append(Recurrent(prefix, blocks_to_cell[blocks], d, n, layers, reverse, bias))
    return found


def _key(param: str, layer: int, reverse: bool) -> str:
    return f"{param}_l{layer}{'_reverse' if reverse else ''}"


# --- one layer, as a config and a cell ------------------------------------------------------------------------------

@dataclass
class Loaded:
    """One layer of a file, ready to analyse: the config it fits, its tensors under single-layer names, the
    ``torch.nn`` module of the layers below it (None for the first), and where it came from."""

    config: ExperimentConfig
    state: dict[str, Tensor]
    layer_input_size: int
    below: nn.Module | None = None
    reverse: bool = False
    source: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    modules: list[Recurrent] = field(default_factory=list)  # every torch.nn module in the file (a page's choices)

    def build(self, device: torch.device | str = "cpu"):
        """The cell of :attr:`config` with this layer's weights (cast to the config's precision), on ``device``.
        A layer above the first reads the outputs of the one below (n per direction), not the net's d features."""
        from .backend import DTYPES

        dtype = DTYPES[self.config.dtype]
        cell = cell_type(self.config.cell).load().from_config(self.config, dtype, input_size=self.layer_input_size)
        try:
            cell.load_state_dict({k: v.to(dtype) for k, v in self.state.items()})
        except RuntimeError as err:
            raise WeightsError(f"the file's tensors do not fit the {cell_type(self.config.cell).label}: "
                               f"{_first_line(err)}") from None
        return cell.to(device)

    def layer_inputs(self, x: Tensor) -> Tensor:
        """The picked layer's inputs from the network's: x (T, B, d) -> (T, B, d_layer), through the layers below
        (``torch.nn``'s module, in x's precision) and, for the reverse direction, read from the last step."""
        if self.below is not None:
            below = self.below.to(device=x.device, dtype=x.dtype)
            with torch.no_grad():
                x = below(x)[0]
        return x.flip(0) if self.reverse else x


def resolve(config: ExperimentConfig, files: Mapping[str, bytes] | None = None) -> bytes:
    """The bytes ``config.weights`` names: a shipped example, or a file of ``files`` by its digest."""
    name = config.weights
    if name in EXAMPLES:
        return EXAMPLES[name].path.read_bytes()
    if name.startswith("sha256:"):
        if files and name in files:
            return files[name]
        raise not_loaded("the file", name)
    raise WeightsError(f"weights must be a shipped example ({', '.join(EXAMPLES)}) or a loaded file, got {name!r}")


def load(config: ExperimentConfig, files: Mapping[str, bytes] | None = None, name: str | None = None,
         cells: tuple[str, ...] | None = None) -> Loaded:
    """The layer of the file ``config.weights`` names (``config.prefix``, ``layer``, ``direction``), with the
    config fitted to it (:data:`FILE_FIELDS` from the file; T, inputs, seed, precision and lag from ``config``);
    ``cells``, where given, are the cells the caller takes (a page's, or the CLI's explicit ``--cell``)."""
    return load_bytes(config, resolve(config, files), name or file_label(config), cells)


def file_label(config: ExperimentConfig) -> str:
    """How messages name the file a config loads: a shipped example by its file, an upload as "the file"."""
    return f"{config.weights}.safetensors" if config.weights in EXAMPLES else "the file"


def load_bytes(config: ExperimentConfig, data: bytes, name: str = "the file",
               cells: tuple[str, ...] | None = None) -> Loaded:
    """:func:`load` of a file's bytes."""
    loaded = _load_bytes(config, data, name)
    if cells is not None and loaded.config.cell not in cells:
        raise WeightsError(f"{name} holds {article(cell_type(loaded.config.cell).label)} ({loaded.source['module']}), "
                           "not " + " or ".join(article(cell_type(c).label) for c in cells))
    return loaded


def _load_bytes(config: ExperimentConfig, data: bytes, name: str) -> Loaded:
    tensors, meta = read_tensors(data, name)
    source = {"weights": config.weights or digest(data), "sha256": hashlib.sha256(data).hexdigest(), "file": name}
    if META_KEY in meta:
        return _lab_layer(config, tensors, meta[META_KEY], name, source)
    found = find_recurrent(tensors, name)
    if not found:
        raise WeightsError(f"{name}: no torch.nn.RNN, LSTM or GRU weights in it (looked for weight_ih_l0, "
                           "weight_hh_l0, ...)")
    module = _pick(found, config.prefix, name)
    if config.layer >= module.layers:
        raise WeightsError(f"layer must be in [0, {module.layers - 1}] for {module.describe()}, got {config.layer}")
    if config.direction == "reverse" and not module.bidirectional:
        raise WeightsError(f"direction=reverse needs a bidirectional module; {module.describe()} is not")
    notes = []
    defaults = ExperimentConfig()
    values = {k: getattr(defaults, k) for k in FILE_FIELDS}
    values.update(cell=module.cell, hidden=module.hidden, input_size=module.input_size, prefix=module.prefix)
    if cell_type(module.cell).torch_module({**config.to_dict(), **values}) is None:  # torch.nn.RNN: tanh or relu
        notes.append(f"{module.module.split('(')[0]} computes tanh or relu, not {config.activation}: using tanh")
        values["activation"] = "tanh"
    fitted = _fitted(config, values, name)
    rev = config.direction == "reverse"
    pick = {f"{module.prefix}{_key(p, config.layer, rev)}": f"{p}_l0" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    state = {short: tensors[full].detach().to(torch.float64) for full, short in pick.items() if full in tensors}
    if not module.bias:  # bias=False: the biases are zero
        rows = state["weight_hh_l0"].shape[0]
        state.update(bias_ih_l0=torch.zeros(rows, dtype=torch.float64), bias_hh_l0=torch.zeros(rows, dtype=torch.float64))
    below = _below(module, config.layer, tensors, fitted) if config.layer > 0 else None
    layer_d = module.input_size if config.layer == 0 else module.hidden * (1 + module.bidirectional)
    source.update(prefix=module.prefix, layer=config.layer, direction=config.direction, module=module.module)
    return Loaded(fitted, state, layer_d, below, rev, source, notes, found)


def _pick(found: list[Recurrent], prefix: str, name: str) -> Recurrent:
    wanted = prefix.rstrip(".") + "." if prefix else ""
    if prefix:
        for module in found:
            if module.prefix == wanted:
                return module
        raise WeightsError(f"prefix {prefix!r} names no recurrent module in {name}; it has "
                           + "; ".join(m.describe() for m in found))
    if len(found) == 1 or found[0].prefix == "":
        return found[0]
    raise WeightsError(f"{name} holds {len(found)} recurrent modules: pick one with prefix ("
                       + "; ".join(m.describe() for m in found) + ")")


def _fitted(config: ExperimentConfig, values: dict[str, Any], name: str) -> ExperimentConfig:
    """``config`` with the file's fields, or a WeightsError naming the bound the file's model exceeds."""
    try:
        return config.replace(**values)
    except ValueError as err:
        raise WeightsError(f"{name}: its model does not fit this app: {_first_line(err)}") from None


def _below(module: Recurrent, layer: int, tensors: Mapping[str, Tensor], config: ExperimentConfig) -> nn.Module:
    """``torch.nn``'s module of the layers under ``layer`` (both directions), with the file's weights, float64."""
    kind = getattr(nn, module.module.split(".")[-1].split("(")[0])
    kw = {"nonlinearity": config.activation} if kind is nn.RNN else {}
    net = kind(module.input_size, module.hidden, num_layers=layer, bidirectional=module.bidirectional,
               bias=module.bias, dtype=torch.float64, device="meta", **kw).to_empty(device="cpu")
    own = {name for name, _ in net.named_parameters()}
    net.load_state_dict({name: tensors[module.prefix + name].detach().to(torch.float64) for name in own})
    return net.requires_grad_(False)


def _lab_layer(config: ExperimentConfig, tensors: dict[str, Tensor], meta: str, name: str, source: dict) -> Loaded:
    """A Training Lab file: its model config from the metadata, every tensor of its cell checked by name and shape."""
    try:
        saved = json.loads(meta)["config"]
        values = {k: saved[k] for k in FILE_FIELDS + ("activation",) if k in saved}
    except (ValueError, TypeError, KeyError) as err:
        raise WeightsError(f"{name}: its {META_KEY} metadata is not a config ({_first_line(err)})") from None
    if config.layer != 0 or config.direction != "forward" or config.prefix:
        raise WeightsError(f"layer must be in [0, 0] and direction forward for {name}: a Training Lab file holds one "
                           "cell, at the top level")
    fitted = _fitted(config, values, name)
    probe = cell_type(fitted.cell).load().from_config(fitted, torch.float64)
    state = {}
    for key, expected in probe.state_dict().items():
        got = tensors.get(key)
        if got is None:
            raise WeightsError(f"{name}: {key} is missing for its {cell_type(fitted.cell).label}")
        if got.dtype not in FLOATS:
            raise WeightsError(f"{name}: {key} is {got.dtype}, not a floating-point tensor")
        if tuple(got.shape) != tuple(expected.shape):
            raise WeightsError(f"{name}: {key} has shape {tuple(got.shape)}; its "
                               f"{cell_type(fitted.cell).label} needs {tuple(expected.shape)}")
        state[key] = got.detach().to(torch.float64)
    source.update(prefix="", layer=0, direction="forward", module=f"Training Lab {cell_type(fitted.cell).label}",
                  trained_from_seed=saved.get("seed"))
    return Loaded(fitted, state, fitted.input_size, None, False, source, [])


# --- saving (the lab) and input sequences ---------------------------------------------------------------------------

def lab_file(result: Any) -> bytes:
    """A safetensors file of a Training Lab run's final weights (``TrainResult``: torch.nn names + ``readout.*``),
    with its model config (the task's input size filled in) and its training config in the metadata, so that
    :func:`load` rebuilds the very cell, and its untrained twin is the seeded init of that config."""
    from safetensors.torch import save

    from .tasks import input_size

    model = result.config.model.replace(input_size=input_size(result.config.task))
    train = {k: v for k, v in result.config.to_dict().items() if k != "model"}
    meta = {META_KEY: json.dumps({"config": model.to_dict(), "train": train,
                                  "final_step": result.history[-1]["step"] if result.history else 0})}
    return save({k: torch.as_tensor(np.asarray(v)).contiguous() for k, v in result.weights_final.items()},
                metadata=meta)


def read_sequence(data: bytes, name: str, input_size: int, max_len: int) -> np.ndarray:
    """An input sequence (T, d) from a CSV (numbers, commas; a header line is allowed) or an NPY file
    (``allow_pickle=False``), checked against d and the T bound; float64."""
    check_size(len(data), name)
    try:
        if data[:6] == b"\x93NUMPY":
            array = np.load(io.BytesIO(data), allow_pickle=False)
        else:
            text = data.decode("utf-8")
            lines = [line for line in text.splitlines() if line.strip()]
            if lines and not _numeric(lines[0]):
                lines = lines[1:]  # a header
            array = np.array([[float(v) for v in line.split(",")] for line in lines], dtype=np.float64)
    except (ValueError, UnicodeDecodeError, EOFError, OSError) as err:
        raise WeightsError(f"{name}: not a CSV of numbers or an NPY array ({_first_line(err)})") from None
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.dtype.kind not in "fiu":
        raise WeightsError(f"{name}: a sequence must be a T × d array of numbers, got shape {array.shape}")
    T, d = array.shape
    if d != input_size:
        raise WeightsError(f"{name} has d = {d} features per step; the model reads d = {input_size}")
    if not 1 <= T <= max_len:
        raise WeightsError(f"{name} has T = {T} steps; this app takes 1 to {max_len} (EXPLORER_MAX_SEQ_LEN)")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise WeightsError(f"{name} holds a value that is not finite")
    return array


def _numeric(line: str) -> bool:
    try:
        [float(v) for v in line.split(",")]
        return True
    except ValueError:
        return False


def sequence_config(config: ExperimentConfig, data: bytes, name: str) -> tuple[ExperimentConfig, np.ndarray]:
    """``config`` reading the uploaded sequence (input=file, input_file its digest, T its length)."""
    array = read_sequence(data, name, config.input_size, min(int(SPECS["seq_len"].hi), limits.LIMITS.max_seq_len))
    return config.replace(input="file", input_file=digest(data), seq_len=len(array)), array


__all__ = ["EXAMPLES", "Example", "FILE_FIELDS", "Loaded", "Recurrent", "WeightsError", "digest",
           "find_recurrent", "lab_file", "load", "load_bytes", "read_sequence", "read_tensors", "resolve",
           "sequence_config"]
