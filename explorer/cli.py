"""``python -m explorer``: the same analysis and training as the app, as JSON.

Flags come from the config table (``--seq-len`` is the query parameter ``seq_len``).
Any bad flag or value gives a one-line error and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from . import backend
from .config import SOURCE_FIELDS, SPECS, TRAIN_SPECS, ExperimentConfig, TrainConfig, check, describe
from .registry import cell_type
from .sweep import EXECUTORS, SWEEP_DEFAULTS

FILE_FLAGS = ("weights", "input_file")  # given as files (--weights FILE, --inputs FILE), never as hashes
SEEDED_SPECS = {k: v for k, v in SPECS.items() if k not in SOURCE_FIELDS}  # train and sweep load no model


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, status 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_fields(parser: argparse.ArgumentParser, specs, defaults) -> None:
    for name, spec in specs.items():
        default = defaults[name]
        text = f"{spec.help} ({describe(name)}; default {default})"
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None, metavar="VALUE", help=text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m explorer", description="RNN Gradient Explorer from the command line.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    model_defaults = ExperimentConfig().to_dict()
    analyze = sub.add_parser("analyze", help="all-pairs Jacobian norms and the other views of one config")
    _add_fields(analyze, {k: v for k, v in SPECS.items() if k not in FILE_FLAGS}, model_defaults)
    analyze.add_argument("--weights", dest="weights_file", default=None, metavar="FILE",
                         help="a trained torch.nn.RNN/LSTM/GRU state dict (safetensors, or torch.save read with "
                              "weights_only=True), or a shipped example's name; the file decides the cell and n")
    analyze.add_argument("--inputs", dest="inputs_file", default=None, metavar="FILE",
                         help="an input sequence, T x d (CSV or NPY); T becomes seq_len")
    analyze.add_argument("--stride", type=int, default=1, help="keep every stride-th time index in the map (default 1: all)")
    analyze.add_argument("--lyapunov", type=int, default=0, metavar="K",
                         help="also the top K Lyapunov exponents, log10 per step (default 0: off; the app uses 32)")
    analyze.add_argument("--json", action="store_true", help="print the full JSON contract (default: a summary)")
    train = sub.add_parser("train", help="train on a long-range task and record the gradient flow")
    train_model = TrainConfig().model.to_dict()
    _add_fields(train, {k: v for k, v in SEEDED_SPECS.items() if k not in ("lag",)}, train_model)
    _add_fields(train, TRAIN_SPECS, TrainConfig().to_dict())
    train.add_argument("--json", action="store_true", help="print the full JSON (default: a summary)")
    train.add_argument("--save", default=None, metavar="FILE",
                       help="write the final weights as safetensors (the analysis opens them with --weights FILE)")
    sweep = sub.add_parser("sweep", help="one measured number per config over a grid of configs (explorer.sweep)",
                           description="Rows in grid order (the last --sweep varies fastest), each cached on disk "
                                       "by its config ($EXPLORER_CACHE_DIR or ~/.cache/rnn-gradient-explorer).")
    sweep_defaults = {**model_defaults, **SWEEP_DEFAULTS}
    _add_fields(sweep, SEEDED_SPECS, sweep_defaults)
    sweep.add_argument("--sweep", dest="axes", action="append", default=[], metavar="FIELD=LO:HI:N",
                       help="an axis: N values from LO to HI of a numeric field (repeat for more axes)")
    sweep.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="local: a process pool; ray: a Ray task per row (default local)")
    sweep.add_argument("--workers", type=int, default=None,
                       help="processes (local) or CPUs of the local Ray (default: the cores)")
    sweep.add_argument("--address", default=None, help="a Ray cluster to join (ray only; default: start a local Ray)")
    sweep.add_argument("--no-cache", dest="cache", action="store_false", help="compute every row, read and write no cache")
    sweep.add_argument("--json", action="store_true", help="print the full JSON (default: a table)")
    return parser


def _values(args: argparse.Namespace, specs) -> dict:
    return {k: check(k, getattr(args, k), specs) for k in specs if getattr(args, k, None) is not None}


def main(argv: Sequence[str] | None = None) -> int:
    backend.configure()  # the process-wide torch settings, before anything imports torch
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "sweep":
            return _sweep(parser, args)
        if args.command == "analyze":
            config, files = _loaded(args)
            file_name = os.path.basename(args.weights_file) if args.weights_file else None
            if not 1 <= args.stride <= config.seq_len:
                raise ValueError(f"stride must be in [1, seq_len={config.seq_len}], got {args.stride}")
            states = config.hidden * cell_type(config.cell).state_units
            if not 0 <= args.lyapunov <= states:
                raise ValueError(f"lyapunov must be in [0, {states}] (the state's size), got {args.lyapunov}")
        else:
            model = TrainConfig().model.replace(**_values(args, {k: v for k, v in SEEDED_SPECS.items() if k != "lag"}))
            config = TrainConfig(model=model, **_values(args, TRAIN_SPECS))
    except (ValueError, TypeError) as err:
        parser.exit(2, f"{parser.prog} {args.command}: error: {err}\n")
    if args.command == "analyze":
        return _analyze(config, args.stride, args.json, args.lyapunov, files, file_name)
    return _train(config, args.json, args.save)


def _read(path: str, flag: str) -> bytes:
    """A file's bytes, its size checked before it is read (explorer.weights.max_bytes)."""
    from .weights import check_size

    try:
        check_size(os.path.getsize(path), f"{flag} {path}", "the limit")
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as err:
        raise ValueError(f"{flag} {path}: {err.strerror or err}") from None


def _loaded(args: argparse.Namespace) -> tuple[ExperimentConfig, dict[str, bytes]]:
    """The analysis's config, with ``--weights`` and ``--inputs`` read (every problem a ValueError, one line)."""
    from .weights import EXAMPLES, digest, load, sequence_config

    values, files = _values(args, {k: v for k, v in SPECS.items() if k not in FILE_FLAGS}), {}
    if args.weights_file:
        if args.weights_file in EXAMPLES and not os.path.exists(args.weights_file):
            values["weights"] = args.weights_file
        else:
            data = _read(args.weights_file, "--weights")
            values["weights"] = digest(data)
            files[values["weights"]] = data
    config = ExperimentConfig(**values)
    if config.weights:  # an explicit --cell is a check on the file; the file decides the rest
        cells = (config.cell,) if args.cell is not None else None
        config = load(config, files, os.path.basename(args.weights_file), cells=cells).config
    if args.inputs_file:
        data = _read(args.inputs_file, "--inputs")
        config, _ = sequence_config(config, data, os.path.basename(args.inputs_file))
        files[config.input_file] = data
    return config, files


def _analyze(config: ExperimentConfig, stride: int, as_json: bool, lyapunov: int = 0,
             files: dict[str, bytes] | None = None, file_name: str | None = None) -> int:
    from .analysis import analyze, to_json

    result = analyze(config, stride=stride, lyapunov=lyapunov, files=files)
    if result.source is not None and file_name:
        result.source["file"] = file_name  # the library knows the bytes only by their hash
    if as_json:
        json.dump(to_json(result), sys.stdout, allow_nan=False)
        sys.stdout.write("\n")
        return 0
    lags, spec, _ = result.lag_curve()
    print(f"config: {json.dumps(config.to_dict())}")
    print(f"analysed in {result.seconds:.3f} s; grid stride {result.stride}; spectral norms: "
          f"{result.pairs.certified} certified to rtol {result.pairs.rtol:g}, {result.pairs.exact} by an eigen-solve")
    for k in sorted({1, 10, 50, 100, config.seq_len} & set(lags.tolist())):
        print(f"  log10 ||dh_T/dh_(T-{k})||_2 = {spec[list(lags).index(k)]:.4f}")
    if result.theory is not None:
        print(f"mean-field theory: log10 chi = {result.theory.log10_chi:.4f} per step, q* = {result.theory.q_star:.4g}")
    if len(result.lyapunov):
        print("Lyapunov exponents (log10 per step): " + ", ".join(f"{v:.4f}" for v in result.lyapunov))
    return 0


def _sweep(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``python -m explorer sweep``: every bad flag or axis is one line and status 2 before anything runs."""
    from .sweep import Sweep, parse_axis, run_sweep

    def fail(message: str) -> int:
        parser.exit(2, f"{parser.prog} sweep: error: {message}\n")
        return 2  # pragma: no cover

    try:
        base = ExperimentConfig(**{**SWEEP_DEFAULTS, **_values(args, SPECS)})
        if not args.axes:
            raise ValueError("give at least one --sweep FIELD=LO:HI:N")
        sweep = Sweep(base, tuple(parse_axis(text) for text in args.axes))
        sweep.configs()  # every combination within the rules between fields, now
    except (ValueError, TypeError) as err:
        return fail(str(err).splitlines()[0])
    if args.workers is not None and args.workers < 1:
        return fail(f"--workers must be at least 1, got {args.workers}")
    if args.address and args.executor != "ray":
        return fail("--address joins a Ray cluster: use it with --executor ray")
    bar = _Bar(sweep.size)
    try:
        result = run_sweep(sweep, executor=args.executor, workers=args.workers, address=args.address,
                           progress=bar.update, cache=args.cache)
    except RuntimeError as err:  # Ray missing, or a cluster that cannot be joined
        bar.close()
        return fail(str(err).splitlines()[0] if str(err) else type(err).__name__)
    bar.close(f"{result.cached} from the cache, {result.seconds:.1f} s")
    if args.json:
        json.dump(result.to_json(), sys.stdout, allow_nan=False)
        sys.stdout.write("\n")
        return 0
    keys = [a.field for a in sweep.axes] + [sweep.quantity, "theory_log10_chi", "seconds"]
    print("  ".join(f"{k:>18}" for k in keys))
    for row in result.rows:
        print("  ".join(f"{_cell(row.get(k)):>18}" for k in keys))
    return 0


def _cell(value) -> str:
    if value is None:
        return "null"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


class _Bar:
    """A progress bar on stderr: rows done of all, redrawn at most ten times a second."""

    def __init__(self, total: int, width: int = 30):
        import time

        self.total, self.width, self.clock = total, width, time.perf_counter
        self.start, self.shown = self.clock(), -1.0

    def update(self, done: int, total: int) -> None:
        now = self.clock()
        if done < total and now - self.shown < 0.1:
            return
        self.shown = now
        filled = int(self.width * done / max(total, 1))
        sys.stderr.write(f"\rsweep [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} rows "
                         f"{now - self.start:.1f} s")
        sys.stderr.flush()

    def close(self, note: str = "") -> None:
        sys.stderr.write(f" {note}\n" if note else "\n")
        sys.stderr.flush()


def _train(config: TrainConfig, as_json: bool, save: str | None = None) -> int:
    try:
        from .train import train, train_to_json
    except ImportError as err:  # pragma: no cover
        print(f"python -m explorer train: error: {err}", file=sys.stderr)
        return 2
    try:
        result = train(config)
    except ValueError as err:
        print(f"python -m explorer train: error: {err}", file=sys.stderr)
        return 2
    if save:
        from .weights import lab_file

        try:
            with open(save, "wb") as handle:
                handle.write(lab_file(result))
        except OSError as err:
            print(f"python -m explorer train: error: --save {save}: {err.strerror or err}", file=sys.stderr)
            return 2
    if as_json:
        json.dump(train_to_json(result), sys.stdout, allow_nan=False)
        sys.stdout.write("\n")
    else:
        last = result.history[-1]
        print(f"trained {last['step']} steps in {result.seconds:.1f} s; eval loss {last['eval_loss']:.4g} "
              f"(baseline {result.baseline:.4g}); orthogonality error {last['ortho_error']:.3g}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
