"""Cost of the training lab's recording, against a plain torch.nn.LSTM training loop.

    python benchmarks/bench_train.py [--steps 500] [--rounds 3] [--skip-default]

1. The default run, ``train(TrainConfig())`` (adding, T = 50, LSTM n = 64, batch 64, 3000
   Adam steps, clip 1, a record every 25 steps): time to the first record and in total.
   It runs first, in a fresh process, so it pays torch's one-off lazy imports (the first
   ``torch.optim`` optimiser imports ``torch._dynamo``, about a second).
2. Per-step cost, our ``train`` with recording on (the float64 gradient-flow probe on the
   256-sequence eval batch every 25 steps, the SVD, the history) over a plain loop: the
   same nn.LSTM + nn.Linear, task, batch, Adam and clipping, no recording. Our per-step
   time is taken between the first and the last record (setup excluded, every probe in
   between included). Both alternate ``--rounds`` times in this process, same settings.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from explorer import backend  # noqa: E402

backend.configure()  # before torch loads: OpenMP's wait policy, torch's threads, flush-denormal

import torch  # noqa: E402
from torch import nn  # noqa: E402

from explorer import tasks  # noqa: E402
from explorer.config import TrainConfig  # noqa: E402
from explorer.train import _Model, train  # noqa: E402


def timed_train(config: TrainConfig) -> tuple[float, float, float]:
    """(seconds to the first record, seconds per step between first and last record, total)."""
    stamps: list[tuple[int, float]] = []
    start = time.perf_counter()
    result = train(config, progress=lambda r: stamps.append((r.history[-1]["step"], time.perf_counter())))
    total = time.perf_counter() - start
    (s0, t0), (s1, t1) = stamps[0], stamps[-1]
    return t0 - start, (t1 - t0) / max(1, s1 - s0), total, result


def plain_loop(config: TrainConfig, steps: int, warmup: int = 10) -> float:
    """Seconds per step of a bare torch.nn.LSTM training loop (same init, data, optimiser)."""
    model = _Model(config, torch.device("cpu"))  # for its seeded weights only
    lstm = nn.LSTM(2, config.model.hidden, device="meta").to_empty(device="cpu")
    lstm.load_state_dict(model.cell.state_dict())
    readout = model.readout
    params = list(lstm.parameters()) + list(readout.parameters())
    opt = torch.optim.Adam(params, lr=config.lr)
    gen = backend.generator(config.model.seed, 2)
    T, B = config.model.seq_len, config.batch_size
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        x, y = tasks.make_batch("adding", T, B, gen)
        out, _ = lstm(x)
        loss = nn.functional.mse_loss(readout(out[-1]).squeeze(-1), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, config.clip)
        opt.step()
        loss.item()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="steps per timed run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-default", action="store_true", help="skip the 3000-step default run")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, device {backend.device()}, threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")

    default = TrainConfig()
    if not args.skip_default:
        first, per_step, total, result = timed_train(default)
        print(f"default run ({default.steps} steps, record every {default.record_every}): "
              f"first record {first:.2f} s (cold process), total {total:.1f} s, "
              f"{per_step * 1e3:.2f} ms/step, final eval MSE {result.history[-1]['eval_loss']:.4f}")

    config = default.replace(steps=args.steps)
    ours, plain, firsts = [], [], []
    for r in range(args.rounds):
        with backend.threads(1):  # the thread count train() uses: the fair (and faster) setting
            p = plain_loop(config, args.steps)
        first, o, _, _ = timed_train(config)
        plain.append(p)
        ours.append(o)
        firsts.append(first)
        print(f"round {r + 1}: plain nn.LSTM {p * 1e3:.2f} ms/step, ours with recording {o * 1e3:.2f} ms/step, "
              f"ratio {o / p:.2f}, first record {first:.2f} s")
    ratio = statistics.median(o / p for o, p in zip(ours, plain))
    print(f"median ratio (ours with recording / plain nn.LSTM loop): {ratio:.2f} "
          f"[plain {statistics.median(plain) * 1e3:.2f} ms/step, ours {statistics.median(ours) * 1e3:.2f} ms/step; "
          f"warm first record {statistics.median(firsts):.2f} s]")


if __name__ == "__main__":
    main()
