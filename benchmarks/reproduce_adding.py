"""The adding problem at T = 50 (Arjovsky et al. 2016 §4.2; Le et al. 2015) for four nets.

    python benchmarks/reproduce_adding.py [--steps 3000] [--seeds 0 1 2] [--record-every 250]

Hidden 64, batch 64, Adam 1e-3, gradient clipping at 1, 3000 steps; three seeds each of

* LSTM (PyTorch default init),
* tanh RNN with an orthogonal W_hh,
* IRNN: relu RNN with W_hh = I (Le, Jaitly & Hinton 2015),
* tanh RNN at PyTorch's default init, U(-1/sqrt(n), 1/sqrt(n)).

Prints the final eval MSE (256 fixed sequences; predicting 1 always scores 1/6 ~ 0.167),
whether it fell below 0.05, and the total time. Records every 250 steps: the
gradient-flow probe is not what is being measured here. Results also go to
benchmarks/results/reproduce_adding.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from explorer import backend  # noqa: E402

backend.configure()  # before torch loads: OpenMP's wait policy, torch's threads, flush-denormal

from explorer.config import ExperimentConfig, TrainConfig  # noqa: E402
from explorer.train import train  # noqa: E402

MODELS = {
    "LSTM": dict(cell="lstm"),
    "tanh RNN, orthogonal": dict(cell="rnn", activation="tanh", init="orthogonal"),
    "IRNN (relu, W=I)": dict(cell="rnn", activation="relu", init="identity"),
    "tanh RNN, default": dict(cell="rnn", activation="tanh", init="pytorch"),
}
SOLVED = 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--record-every", type=int, default=250)
    parser.add_argument("--seq-len", type=int, default=50)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = []
    print(f"adding problem, T={args.seq_len}, hidden 64, batch 64, Adam 1e-3, clip 1, {args.steps} steps "
          f"(baseline MSE 1/6 = 0.1667; solved = eval MSE < {SOLVED})")
    print(f"{'model':24s} {'seed':>4s} {'eval MSE':>9s} {'min MSE':>8s} {'solved':>6s} {'1st step<0.05':>13s} {'s':>6s}")
    for name, model in MODELS.items():
        for seed in args.seeds:
            config = TrainConfig(
                model=ExperimentConfig(hidden=64, seq_len=args.seq_len, seed=seed, **model),
                steps=args.steps, batch_size=64, lr=1e-3, optimizer="adam", clip=1.0,
                record_every=args.record_every)
            result = train(config)
            evals = [(r["step"], r["eval_loss"]) for r in result.history]
            final = evals[-1][1]
            first_solved = next((s for s, e in evals if e < SOLVED), None)
            rows.append({"model": name, "seed": seed, "final_eval_mse": final,
                         "min_eval_mse": min(e for _, e in evals), "solved": final < SOLVED,
                         "first_step_below": first_solved, "events": len(result.events),
                         "seconds": result.seconds, "eval_curve": evals})
            print(f"{name:24s} {seed:4d} {final:9.4f} {rows[-1]['min_eval_mse']:8.4f} "
                  f"{'yes' if final < SOLVED else 'no':>6s} {str(first_solved or '-'):>13s} {result.seconds:6.1f}",
                  flush=True)
    total = time.perf_counter() - start
    print("\nsummary (seeds solved):")
    for name in MODELS:
        mine = [r for r in rows if r["model"] == name]
        print(f"  {name:24s} {sum(r['solved'] for r in mine)}/{len(mine)}  "
              f"mean final MSE {sum(r['final_eval_mse'] for r in mine) / len(mine):.4f}")
    print(f"total time {total:.1f} s")
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "reproduce_adding.json"), "w") as f:
        json.dump({"args": vars(args), "rows": rows, "total_seconds": total}, f, indent=1)


if __name__ == "__main__":
    main()
