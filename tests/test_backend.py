"""Importing the library changes nothing; backend.configure() makes the process-wide settings explicit;
the worker pools start on first use; the jacobian package's modules import in one direction."""
import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_fresh(code: str, **env: str) -> str:
    """``code`` in a fresh interpreter at the repository root; its stdout."""
    environ = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "EXPLORER_THREADS")}
    environ.update(env)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=environ, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_importing_explorer_starts_no_thread_and_changes_no_torch_setting():
    # EXPLORER_THREADS differs from torch's default, so a set_num_threads(THREADS) on import would show
    out = run_fresh("""
        import os, threading
        import torch
        threads, active = torch.get_num_threads(), threading.active_count()
        import explorer
        from explorer import backend
        assert "torch" not in vars(backend), "backend imports torch on first use only"
        import explorer.analysis, explorer.cli, explorer.config, explorer.jacobian, explorer.train
        from explorer.jacobian import certificates, chains, pairs, workers
        from explorer import ExperimentConfig, analyze
        assert backend.THREADS != threads, (backend.THREADS, threads)
        assert torch.get_num_threads() == threads, torch.get_num_threads()
        assert threading.active_count() == active, [t.name for t in threading.enumerate()]
        assert "OMP_WAIT_POLICY" not in os.environ
        assert (torch.tensor([1e-323], dtype=torch.float64) * 1.0).item() != 0.0  # subnormals not flushed
        assert not workers._pools
        print("ok")
    """, EXPLORER_THREADS="1" if _default_threads() != 1 else "3")
    assert out.strip() == "ok"


def _default_threads() -> int:
    return int(run_fresh("import torch; print(torch.get_num_threads())"))


def test_importing_explorer_does_not_load_torch():
    """So that an entry point can call backend.configure() first: OpenMP reads its wait policy when torch loads."""
    out = run_fresh("""
        import sys
        import explorer
        from explorer import backend
        print("torch" in sys.modules)
    """)
    assert out.strip() == "False"


def test_configure_applies_the_settings_and_is_idempotent():
    out = run_fresh("""
        import os, threading
        from explorer import backend
        backend.configure()
        import torch
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
        assert torch.get_num_threads() == backend.THREADS == 3, torch.get_num_threads()
        assert (torch.tensor([1e-323], dtype=torch.float64) * 1.0).item() == 0.0  # flushed to zero
        backend.configure()
        assert torch.get_num_threads() == 3
        assert threading.active_count() == 1
        print("ok")
    """, EXPLORER_THREADS="3")
    assert out.strip() == "ok"
    # a wait policy the environment sets is kept
    out = run_fresh("""
        import os
        from explorer import backend
        backend.configure()
        print(os.environ["OMP_WAIT_POLICY"])
    """, OMP_WAIT_POLICY="ACTIVE")
    assert out.strip() == "ACTIVE"


def test_worker_pools_start_on_first_use_single_threaded():
    out = run_fresh("""
        import threading
        from explorer import backend
        backend.configure()
        import torch
        from explorer.jacobian import all_pairs, batched_lapack, workers
        assert not workers._pools and threading.active_count() == 1
        all_pairs(lambda steps: torch.eye(4).expand(len(steps), 4, 4).clone(), 40, 4)
        names = sorted(t.name for t in threading.enumerate() if t.name.startswith("explorer-"))
        assert names and all(name.startswith("explorer-pairs") for name in names), names
        seen = workers._pool("pairs").submit(lambda: (torch.get_num_threads(),
                                                      (torch.tensor([1e-323], dtype=torch.float64) * 1.0).item()))
        assert seen.result() == (1, 0.0), seen.result()  # one thread, flush-to-zero: the workers' own
        batched_lapack(torch.linalg.eigvalsh, torch.eye(3).expand(8, 3, 3).clone())
        assert set(workers._pools) == {"pairs", "lapack"}
        print("ok")
    """, EXPLORER_THREADS="2")
    assert out.strip() == "ok"


def test_jacobian_modules_import_in_one_direction():
    """workers <- certificates <- chains <- pairs: each imports only those before it (no cycle)."""
    order = ["workers", "certificates", "chains", "pairs"]
    package = ROOT / "explorer" / "jacobian"
    assert sorted(p.stem for p in package.glob("*.py")) == sorted(order + ["__init__"])
    for i, name in enumerate(order):
        tree = ast.parse((package / f"{name}.py").read_text())
        local = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1}
        assert local <= set(order[:i]), (name, local)
        above = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level > 1}
        assert not above, (name, above)  # nothing from the rest of the library


def test_release_memory_hands_freed_heap_pages_back():
    """The server trims after each new result: freed small blocks (below glibc's mmap threshold, so on the heap)
    stop counting as resident memory."""
    import platform

    from explorer.backend import release_memory

    def rss_mb() -> float:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * 4096 / 2**20

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        assert release_memory() in (True, False)
        return
    release_memory()
    blocks = [bytearray(64 * 1024) for _ in range(3000)]  # ~190 MB in heap-sized blocks, touched
    for block in blocks:
        block[::4096] = b"x" * len(block[::4096])
    held = rss_mb()
    survivors = blocks[::10]  # a few blocks stay alive between the freed ones: glibc's own trim of the heap's
    del blocks, block  # top gives back nothing (measured: 0 MB of 190), malloc_trim the pages between them
    assert rss_mb() > held - 50
    assert release_memory() is True
    assert rss_mb() < held - 100
    assert len(survivors) == 300


def test_long_lived_objects_are_frozen_once_per_burst_of_imports():
    """Streamlit runs a full collection (gc.collect(2)) after every script run; with torch and plotly loaded
    that walks ~270,000 objects, 0.15 s of the server's CPU per run. The modules' objects, frozen out of the
    collector's reach, are walked no more: a freeze after each burst of new imports, none in between, and
    cyclic garbage made afterwards is still collected."""
    out = run_fresh("""
        import gc, sys, time, types, weakref
        from explorer.backend import freeze_long_lived
        import torch, plotly.graph_objects
        print(freeze_long_lived(), freeze_long_lived())
        frozen = gc.get_freeze_count()
        sys.modules["explorer_test_new_module"] = types.ModuleType("explorer_test_new_module")
        print(freeze_long_lived(), gc.get_freeze_count() >= frozen)

        class Node:
            pass

        refs = []
        for _ in range(1000):  # cycles made after the freeze
            a, b = Node(), Node()
            a.other, b.other = b, a
            refs.append(weakref.ref(a))
        del a, b
        gc.collect()
        print(all(ref() is None for ref in refs))
        start = time.perf_counter()
        gc.collect(2)
        print(frozen > 50000, time.perf_counter() - start < 0.05)
    """)
    assert out.split() == ["True", "False", "True", "True", "True", "True", "True"], out
