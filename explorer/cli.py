"""``python -m explorer``: the same analysis and training as the app, as JSON.

Flags come from the config table (``--seq-len`` is the query parameter ``seq_len``).
Any bad flag or value gives a one-line error and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from . import backend
from .config import SPECS, TRAIN_SPECS, ExperimentConfig, TrainConfig, check, describe


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
    _add_fields(analyze, SPECS, model_defaults)
    analyze.add_argument("--stride", type=int, default=1, help="keep every stride-th time index in the map (default 1: all)")
    analyze.add_argument("--json", action="store_true", help="print the full JSON contract (default: a summary)")
    train = sub.add_parser("train", help="train on a long-range task and record the gradient flow")
    train_model = TrainConfig().model.to_dict()
    _add_fields(train, {k: v for k, v in SPECS.items() if k not in ("lag",)}, train_model)
    _add_fields(train, TRAIN_SPECS, TrainConfig().to_dict())
    train.add_argument("--json", action="store_true", help="print the full JSON (default: a summary)")
    return parser


def _values(args: argparse.Namespace, specs) -> dict:
    return {k: check(k, getattr(args, k), specs) for k in specs if getattr(args, k, None) is not None}


def main(argv: Sequence[str] | None = None) -> int:
    backend.configure()  # the process-wide torch settings, before anything imports torch
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "analyze":
            config = ExperimentConfig(**_values(args, SPECS))
            if not 1 <= args.stride <= config.seq_len:
                raise ValueError(f"stride must be in [1, seq_len={config.seq_len}], got {args.stride}")
        else:
            model = TrainConfig().model.replace(**_values(args, {k: v for k, v in SPECS.items() if k != "lag"}))
            config = TrainConfig(model=model, **_values(args, TRAIN_SPECS))
    except (ValueError, TypeError) as err:
        parser.exit(2, f"{parser.prog} {args.command}: error: {err}\n")
    if args.command == "analyze":
        return _analyze(config, args.stride, args.json)
    return _train(config, args.json)


def _analyze(config: ExperimentConfig, stride: int, as_json: bool) -> int:
    from .analysis import analyze, to_json

    result = analyze(config, stride=stride)
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
    return 0


def _train(config: TrainConfig, as_json: bool) -> int:
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
