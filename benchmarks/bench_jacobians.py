"""Speed of the Jacobian analysis, as ratios against baselines measured in the same run.

    python benchmarks/bench_jacobians.py            # everything (about 2 minutes on 2 cores)
    python benchmarks/bench_jacobians.py --quick    # skip the slow notebook baseline and the largest size

Targets (issues 2, 3 and 13):
  efficiency   all-pairs map at T=400, n=128 (RNN: torch's default init and gaussian gains 0.9, 1.2, 1.5) and
               n=64 LSTM (state 2n=128) reaches >= 50 % of this machine's batched float32 matmul throughput
  notebook     >= 30x faster than the notebook a careful user writes (torch.func.jacrev per step, then per pair one
               matmul onto the previous product and one matrix_norm(ord=2)), T=200, n=64, gaussian gain 1.2:
               the whole analyze; beside it the older baseline that re-multiplies every factor per pair
  diagonal     a diagonal cell (LRU, minGRU, minLSTM) at T=2000, n=512 (LRU: 256, state 512) at stride 1: < 2 s
  interactive  default config (T=100, n=64) analyses in < 0.2 s (RNN) / < 0.3 s (LSTM); a page rerun < 0.5 s
  largest      T=2000, n=512 at the app's stride: about 5 s at most; plotly payload <= 3 MB
               (and the LSTM/GRU page at its largest GRU: first run and rerun, reported)
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer import backend  # noqa: E402

backend.configure()  # before torch loads: OpenMP's wait policy, torch's threads, flush-denormal

import torch  # noqa: E402

from explorer import ExperimentConfig, analyze  # noqa: E402
from explorer.analysis import auto_stride, pair_norms  # noqa: E402
from explorer.cells import build_cell, make_inputs  # noqa: E402


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def matmul_throughput(n: int, batch: int = 400) -> float:
    """Batched float32 matmul FLOP/s at this size: the machine's reference, measured now."""
    A, B = torch.randn(batch, n, n), torch.randn(batch, n, n)
    torch.bmm(A, B)
    seconds = best_of(lambda: [torch.bmm(A, B) for _ in range(10)], 5) / 10
    return batch * 2 * n**3 / seconds


def cell_and_trace(config: ExperimentConfig):
    cell = build_cell(config)
    with torch.no_grad():
        trace = cell.run(make_inputs(config))
    return cell, trace


def efficiency(config: ExperimentConfig, rounds: int = 5) -> dict:
    """All-pairs maps exactly as the analysis computes them (every view; the LSTM's structured
    products), against batched matmul throughput measured just before and just after each run
    (their geometric mean): on a shared machine the speed drifts (this VM's peak has read
    74..199 GFLOP/s within minutes), so each ratio pairs measurements that bracket the run,
    and the median of ``rounds`` ratios is reported."""
    cell, trace = cell_and_trace(config)
    m, T = cell.state_size, config.seq_len
    useful = T * (T + 1) / 2 * 2 * m**3  # one m x m product per pair
    pair_norms(cell, trace, config)
    rounds_out = []
    after = matmul_throughput(m)
    for _ in range(rounds):
        before = after
        t0 = time.perf_counter()
        result = pair_norms(cell, trace, config)
        seconds = time.perf_counter() - t0
        after = matmul_throughput(m)
        peak = (before * after) ** 0.5
        rounds_out.append({"seconds": seconds, "bmm_peak_GFLOPs": peak / 1e9, "ratio": useful / seconds / peak,
                           "bmm_before_after_GFLOPs": (before / 1e9, after / 1e9)})
    rounds_out.sort(key=lambda r: r["ratio"])
    median = rounds_out[len(rounds_out) // 2]
    return {"config": f"{config.cell} T={T} m={m}", **median, "achieved_GFLOPs": useful / median["seconds"] / 1e9,
            "ratios": [r["ratio"] for r in rounds_out], "target": 0.5, "tally": vars(result.tally),
            "peaks_GFLOPs": [x for r in rounds_out for x in r["bmm_before_after_GFLOPs"]]}


def notebook_baseline(config: ExperimentConfig) -> float:
    """What a notebook does: autograd Jacobian per step, then for every pair its own product
    and torch.linalg.matrix_norm(ord=2)."""
    cell = build_cell(config)
    x = make_inputs(config)
    t0 = time.perf_counter()
    with torch.no_grad():
        trace = cell.run(x)
    drive = cell.input_drive(x)
    J = [torch.autograd.functional.jacobian(lambda z: cell.step(drive[k], z[None])[0][0], trace.z[k, 0])
         for k in range(config.seq_len)]  # J[k] = dz_{k+1}/dz_k
    eye = torch.eye(cell.state_size)
    for t in range(config.seq_len + 1):
        for s in range(t, config.seq_len + 1):
            factors = J[t:s][::-1]
            P = eye if not factors else (factors[0] if len(factors) == 1 else torch.linalg.multi_dot(factors))
            torch.linalg.matrix_norm(P, ord=2)
    return time.perf_counter() - t0


def careful_notebook(config: ExperimentConfig) -> float:
    """What a careful user writes: Jacobians with torch.func.jacrev per step, then for each start t one matmul
    onto the previous product and one matrix_norm(ord=2) per pair (no re-multiplication of every factor)."""
    cell = build_cell(config)
    x = make_inputs(config)
    t0 = time.perf_counter()
    with torch.no_grad():
        trace = cell.run(x)
    drive = cell.input_drive(x).detach()
    J = [torch.func.jacrev(lambda z, k=k: cell.step(drive[k], z[None])[0][0])(trace.z[k, 0].detach())
         for k in range(config.seq_len)]  # J[k] = dz_{k+1}/dz_k
    for t in range(config.seq_len + 1):
        P = torch.eye(cell.state_size)
        for s in range(t + 1, config.seq_len + 1):
            P = J[s - 1] @ P
            torch.linalg.matrix_norm(P, ord=2)
    return time.perf_counter() - t0


def ours_all_pairs(config: ExperimentConfig) -> float:
    """The same quantities (plus Frobenius norms), from the forward pass on."""
    def run():
        cell, trace = cell_and_trace(config)
        pair_norms(cell, trace, config)
    run()
    return best_of(run, 3)


def page_rerun(page: str, query: dict) -> dict:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / page), default_timeout=300)
    at.query_params.update(query)
    t0 = time.perf_counter()
    at.run()
    first = time.perf_counter() - t0
    assert not at.exception, at.exception
    t0 = time.perf_counter()
    at.run()
    rerun = time.perf_counter() - t0
    payload = sum(len(chart.proto.spec) for chart in at.get("plotly_chart"))
    return {"page": page, "query": query, "first_run_s": first, "rerun_s": rerun, "plotly_payload_MB": payload / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    results = {"threads": torch.get_num_threads(), "device": str(backend.device())}

    regimes = [{}, {"init": "gaussian", "gain": 0.9}, {"init": "gaussian", "gain": 1.2}, {"init": "gaussian", "gain": 1.5}]
    results["efficiency"] = [efficiency(ExperimentConfig(seq_len=400, hidden=128, **regime)) for regime in regimes]
    results["efficiency"].append(efficiency(ExperimentConfig(cell="lstm", seq_len=400, hidden=64)))
    for regime, r in zip(regimes + [{"cell": "lstm"}], results["efficiency"]):
        r["regime"] = regime or {"init": "pytorch"}
    for r in results["efficiency"]:
        print(f"[efficiency] {r['config']} {r['regime']}: {r['achieved_GFLOPs']:.1f} GFLOP/s of {r['bmm_peak_GFLOPs']:.1f} "
              f"(batched matmul, before and after) = {r['ratio']:.0%}, median of "
              f"{', '.join(f'{x:.0%}' for x in r['ratios'])} (target >= 50%); {r['seconds']:.2f} s; "
              f"the peak read {min(r['peaks_GFLOPs']):.0f}..{max(r['peaks_GFLOPs']):.0f} GFLOP/s over its rounds; {r['tally']}")

    small = ExperimentConfig(seq_len=200, hidden=64)
    ours = ours_all_pairs(small)
    chaotic = ExperimentConfig(seq_len=200, hidden=64, init="gaussian", gain=1.2)
    analyze(chaotic)
    whole = best_of(lambda: analyze(chaotic), 5)
    careful = careful_notebook(chaotic)
    results["careful_notebook"] = {"baseline_s": careful, "analyze_s": whole, "speedup": careful / whole, "target": 30}
    print(f"[notebook] careful notebook (jacrev, one matmul and matrix_norm per pair), T=200 n=64 gain 1.2: "
          f"{careful:.2f} s; our whole analyze {whole:.3f} s: {careful / whole:.1f}x faster (target >= 30x)")
    if not args.quick:
        base = notebook_baseline(small)
        results["notebook"] = {"baseline_s": base, "ours_s": ours, "speedup": base / ours}
        print(f"[notebook] re-multiplying notebook (multi_dot per pair), T=200 n=64: baseline {base:.2f} s, our maps "
              f"{ours:.3f} s: {base / ours:.0f}x faster")

    for cell, n in (("lru", 256), ("mingru", 512), ("minlstm", 512)):
        cfg = ExperimentConfig(cell=cell, hidden=n, seq_len=2000)
        analyze(cfg)
        seconds = best_of(lambda: analyze(cfg), 3)
        results.setdefault("diagonal", []).append({"cell": cell, "hidden": n, "analyze_s": seconds, "target_s": 2.0})
        print(f"[diagonal] {cell} T=2000 n={n} at stride 1 ({2001 * 2000 // 2} pairs): analyze {seconds:.2f} s "
              "(target < 2 s)")

    for cfg, target in ((ExperimentConfig(), 0.2), (ExperimentConfig(cell="lstm"), 0.3), (ExperimentConfig(cell="gru"), 0.3)):
        analyze(cfg)
        seconds = best_of(lambda: analyze(cfg), 5)
        results.setdefault("interactive", []).append({"cell": cfg.cell, "analyze_s": seconds, "target_s": target})
        print(f"[interactive] default {cfg.cell} (T=100, n=64): analyze {seconds:.3f} s (target < {target} s)")
    for page in ("pages/2_Simple_RNN.py", "pages/3_LSTM_and_GRU.py"):
        r = page_rerun(page, {})
        results.setdefault("pages", []).append(r)
        print(f"[interactive] {page}: first run {r['first_run_s']:.2f} s, rerun {r['rerun_s']:.3f} s (target < 0.5 s), "
              f"payload {r['plotly_payload_MB']:.2f} MB")

    if not args.quick:
        big = ExperimentConfig(seq_len=2000, hidden=512)
        stride = auto_stride(big)
        t0 = time.perf_counter()
        result = analyze(big, stride=stride)
        seconds = time.perf_counter() - t0
        r = page_rerun("pages/2_Simple_RNN.py", {"seq_len": "2000", "hidden": "512"})
        results["largest"] = {"stride": stride, "grid": len(result.pairs.grid), "analyze_s": seconds, **r}
        print(f"[largest] T=2000 n=512: stride {stride} ({len(result.pairs.grid)} grid points), analyze {seconds:.2f} s "
              f"(target about 5 s); page first run {r['first_run_s']:.2f} s, payload {r['plotly_payload_MB']:.2f} MB "
              f"(target <= 3 MB)")
        big_lstm = ExperimentConfig(cell="lstm", seq_len=2000, hidden=256)
        t0 = time.perf_counter()
        analyze(big_lstm, stride=auto_stride(big_lstm))
        print(f"[largest] LSTM T=2000 n=256 (state 512): stride {auto_stride(big_lstm)}, "
              f"analyze {time.perf_counter() - t0:.2f} s")
        r = page_rerun("pages/3_LSTM_and_GRU.py", {"cell": "gru", "seq_len": "2000", "hidden": "512"})
        results["largest_gated_page"] = r
        print(f"[largest] pages/3_LSTM_and_GRU.py, GRU T=2000 n=512 (and its simple-RNN overlay): first run "
              f"{r['first_run_s']:.2f} s, rerun {r['rerun_s']:.3f} s, payload {r['plotly_payload_MB']:.2f} MB")

    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_jacobians.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
