"""Riemannian training (W_hh kept orthogonal by torch's parametrisation) against plain training
of the same config, in the same process, and where a step's time goes.

    python benchmarks/bench_riemannian.py [--steps 300] [--rounds 3] [--seq-len 50] [--hidden 64]
                                          [--batch 64] [--record-every 25] [--torch-profile]

1. Per-step time of ``train(config)`` (recording included: one float64 gradient-flow probe on the
   256-sequence eval batch every ``record_every`` steps) for orthogonal_param = none, matrix_exp
   and cayley: a simple tanh RNN, adding problem, otherwise the lab's defaults. The three alternate
   ``--rounds`` times; medians and the ratios to plain training are printed.
2. A step taken apart, per variant, on one thread as ``train`` runs: the map alone (one evaluation
   of the parametrisation, forward and backward, timed on its own), the forward (map + unrolled
   sequence + loss), the backward, clipping + the optimiser, the batch, and the recording of the
   gradient flow (amortised over ``record_every`` steps).
3. ``--torch-profile``: torch.profiler's table of the ops a matrix_exp step spends its time in.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from explorer import backend  # noqa: E402

backend.configure()  # before torch loads: OpenMP's wait policy, torch's threads, flush-denormal

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils import parametrize  # noqa: E402

from explorer import tasks  # noqa: E402
from explorer import train as train_mod  # noqa: E402
from explorer.cells import build_cell  # noqa: E402
from explorer.config import ExperimentConfig, TrainConfig  # noqa: E402

VARIANTS = ("none", "matrix_exp", "cayley")


def config_for(args: argparse.Namespace, param: str, steps: int) -> TrainConfig:
    model = ExperimentConfig(cell="rnn", seq_len=args.seq_len, hidden=args.hidden)
    return TrainConfig(model=model, steps=steps, batch_size=args.batch, record_every=args.record_every,
                       orthogonal_param=param)


def per_step(config: TrainConfig) -> float:
    """Seconds per step of ``train(config)``, setup excluded (from the first record to the last)."""
    stamps: list[tuple[int, float]] = []
    train_mod.train(config, progress=lambda r: stamps.append((r.history[-1]["step"], time.perf_counter())))
    (s0, t0), (s1, t1) = stamps[0], stamps[-1]
    return (t1 - t0) / max(1, s1 - s0)


def phases(config: TrainConfig, steps: int, warmup: int = 10) -> dict[str, float]:
    """Seconds per step of each part of ``explorer.train``'s step (same model, data, optimiser)."""
    dev = torch.device("cpu")
    model = train_mod._Model(config, dev)
    params = model.parameters()
    opt = torch.optim.Adam(params, lr=config.lr)
    gen, (x_eval, y_eval) = train_mod._data(config)
    probe = build_cell(model.model_config.replace(dtype="float64"), dev)
    probe.requires_grad_(False)
    cell = model.cell
    riemannian = parametrize.is_parametrized(cell, "weight_hh_l0")
    T = config.model.seq_len
    out: dict[str, float] = defaultdict(float)
    with backend.threads(1), torch.enable_grad():
        for step in range(1, warmup + steps + 1):
            if step == warmup + 1:
                out.clear()
            t0 = time.perf_counter()
            x, y = tasks.make_batch(config.task, T, config.batch_size, gen, device=dev)
            t1 = time.perf_counter()
            out["batch"] += t1 - t0
            if riemannian:  # the map on its own: one evaluation, forward then backward
                original = cell.parametrizations.weight_hh_l0.original
                W = cell.weight_hh_l0
                t2 = time.perf_counter()
                torch.autograd.grad(W, original, torch.ones_like(W))
                t3 = time.perf_counter()
                out["map forward (alone)"] += t2 - t1
                out["map backward (alone)"] += t3 - t2
            t3 = time.perf_counter()
            h, W_hh = model.forward(x)
            loss = tasks.loss(config.task, h, model.readout.weight, model.readout.bias, y)
            t4 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            t5 = time.perf_counter()
            nn.utils.clip_grad_norm_(params, config.clip)
            opt.step()
            float(loss.detach())
            t6 = time.perf_counter()
            out["forward (map + unrolled sequence + loss)"] += t4 - t3
            out["backward"] += t5 - t4
            out["clip + optimiser"] += t6 - t5
            if step % config.record_every == 0:
                tensors = model.tensors()
                probe.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("readout.")})
                train_mod.gradient_flow(probe, tensors["readout.weight"].double(), tensors["readout.bias"].double(),
                                        config.task, x_eval, y_eval)
                torch.linalg.svdvals(tensors["weight_hh_l0"].double())
                out["recording (amortised)"] += time.perf_counter() - t6
    return {k: v / steps for k, v in out.items()}


def torch_profile(config: TrainConfig, steps: int) -> None:
    from torch.profiler import ProfilerActivity, profile

    model = train_mod._Model(config, torch.device("cpu"))
    params = model.parameters()
    opt = torch.optim.Adam(params, lr=config.lr)
    gen = backend.generator(config.model.seed, 2)

    def step() -> None:
        x, y = tasks.make_batch(config.task, config.model.seq_len, config.batch_size, gen)
        h, _ = model.forward(x)
        loss = tasks.loss(config.task, h, model.readout.weight, model.readout.bias, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, config.clip)
        opt.step()

    with backend.threads(1), torch.enable_grad():
        for _ in range(5):
            step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="steps per timed run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seq-len", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--record-every", type=int, default=25)
    parser.add_argument("--torch-profile", action="store_true", help="print torch.profiler's op table")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, device {backend.device()}, cpus {os.cpu_count()}, "
          f"tanh RNN T={args.seq_len} n={args.hidden} batch {args.batch}, record every {args.record_every}")

    for param in VARIANTS:  # lazy imports and first-call costs out of the way
        train_mod.train(config_for(args, param, 2 * args.record_every))

    times: dict[str, list[float]] = {p: [] for p in VARIANTS}
    for r in range(args.rounds):
        for param in VARIANTS:
            times[param].append(per_step(config_for(args, param, args.steps)))
        print(f"round {r + 1}: " + ", ".join(f"{p} {times[p][-1] * 1e3:.2f} ms/step" for p in VARIANTS)
              + ", ratios " + ", ".join(f"{p} {times[p][-1] / times['none'][-1]:.2f}x" for p in VARIANTS[1:]))
    med = {p: statistics.median(v) for p, v in times.items()}
    print("median per step (train, recording included): "
          + ", ".join(f"{p} {med[p] * 1e3:.2f} ms" for p in VARIANTS)
          + "; Riemannian / plain: " + ", ".join(f"{p} {med[p] / med['none']:.2f}x" for p in VARIANTS[1:]))

    print("\nwhere a step's time goes (ms per step, one thread, median of the rounds):")
    rows: dict[str, dict[str, list[float]]] = {p: defaultdict(list) for p in VARIANTS}
    for _ in range(args.rounds):
        for param in VARIANTS:
            for k, v in phases(config_for(args, param, args.steps), args.steps).items():
                rows[param][k].append(v)
    names = list(dict.fromkeys(k for p in VARIANTS for k in rows[p]))
    print(f"{'':44s}" + "".join(f"{p:>12s}" for p in VARIANTS))
    for name in names:
        print(f"{name:44s}" + "".join(f"{statistics.median(rows[p][name]) * 1e3 if rows[p][name] else 0.0:12.3f}"
                                      for p in VARIANTS))
    total = {p: sum(statistics.median(v) for k, v in rows[p].items() if "alone" not in k) for p in VARIANTS}
    print(f"{'step total (the map alone not counted)':44s}" + "".join(f"{total[p] * 1e3:12.3f}" for p in VARIANTS))

    if args.torch_profile:
        print("\ntorch.profiler, matrix_exp step (no recording):")
        torch_profile(config_for(args, "matrix_exp", 50), 50)


if __name__ == "__main__":
    main()
