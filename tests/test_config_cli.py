"""The config round-trips through the URL and the CLI; bad input is a message, never a traceback."""
import ast
import json
import pathlib
import subprocess
import sys
from urllib.parse import parse_qs, urlencode

import pytest

from explorer.cli import main
from explorer.config import ExperimentConfig, TrainConfig, from_dict, from_query, max_batch, to_query

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_query_round_trip_is_exact():
    cfg = ExperimentConfig(cell="gru", hidden=37, seq_len=1234, init="xavier_normal", gain=0.1 + 0.2,
                           input="sine", seed=2**31 - 1, dtype="float64", lag=77, residual=True, norm="layer")
    url = urlencode(to_query(cfg))
    back, warnings = from_query(parse_qs(url))
    assert back == cfg and warnings == []
    assert back.gain == 0.1 + 0.2  # repr round-trip: bit-exact float
    assert "seed=2147483647" in url  # the seed always travels


def test_train_config_round_trip():
    cfg = TrainConfig(model=ExperimentConfig(cell="rnn", init="orthogonal", seq_len=80), task="copy",
                      steps=123, lr=3e-4, ortho_reg=0.1, orthogonal_param="none", record_every=7)
    back, warnings = from_query(to_query(cfg), train=True)
    assert back == cfg and warnings == []
    assert from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_config_is_frozen_and_hashable():
    cfg = ExperimentConfig()
    with pytest.raises(Exception):
        cfg.hidden = 3
    assert hash(cfg) == hash(ExperimentConfig()) and {cfg: 1}[ExperimentConfig()] == 1


@pytest.mark.parametrize("query,field", [
    ({"seq_len": "abc"}, "seq_len"), ({"seq_len": "0"}, "seq_len"), ({"seq_len": "2001"}, "seq_len"),
    ({"hidden": "99999"}, "hidden"), ({"hidden": "1.5"}, "hidden"), ({"gain": "nan"}, "gain"),
    ({"gain": "inf"}, "gain"), ({"init": "nonsense"}, "init"), ({"residual": "maybe"}, "residual"),
    ({"forget_bias": "banana"}, "forget_bias"), ({"seed": "-1"}, "seed"), ({"dtype": "float16"}, "dtype"),
])
def test_bad_query_values_warn_and_fall_back(query, field):
    cfg, warnings = from_query({**query, "seed": query.get("seed", "5")})
    assert getattr(cfg, field) == getattr(ExperimentConfig(), field)
    assert any(w.startswith(field) and "default" in w for w in warnings)
    if field != "seed":
        assert cfg.seed == 5  # the good values survive


def test_unknown_key_and_lag_beyond_seq_len():
    cfg, warnings = from_query({"bogus": "1", "seq_len": "20", "lag": "50"})
    assert cfg.seq_len == 20 and cfg.lag == 20
    assert any("bogus" in w for w in warnings) and any(w.startswith("lag") for w in warnings)


def test_strict_constructor_names_field_and_range():
    with pytest.raises(ValueError, match=r"seq_len must be an integer in \[1, 2000\], got 0"):
        ExperimentConfig(seq_len=0)
    with pytest.raises(ValueError, match="hidden must be in \\[1, 256\\] for cell=lstm"):
        ExperimentConfig(cell="lstm", hidden=300)


def test_batch_norm_batch_is_bounded_by_the_work_it_makes():
    """Batch statistics run every sequence: batch * seq_len * hidden^2 is bounded (16 at the largest)."""
    assert max_batch(2000, 512) == 16 and max_batch(100, 64) == 256
    ExperimentConfig(norm="batch", seq_len=2000, hidden=512, batch=16)
    ExperimentConfig(norm="none", seq_len=2000, hidden=512, batch=256)  # unused without batch norm
    with pytest.raises(ValueError, match=r"batch must be in \[2, 16\] for norm=batch at seq_len=2000, hidden=512"):
        ExperimentConfig(norm="batch", seq_len=2000, hidden=512, batch=17)
    cfg, warnings = from_query({"norm": "batch", "seq_len": "2000", "hidden": "512", "batch": "256"})
    assert (cfg.norm, cfg.seq_len, cfg.hidden, cfg.batch) == ("batch", 2000, 512, 16)
    assert any(w.startswith("batch must be in [2, 16]") and w.endswith("using 16.") for w in warnings), warnings
    proc = run_cli("analyze", "--norm", "batch", "--seq-len", "2000", "--hidden", "512", "--batch", "64")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "batch must be in [2, 16]" in proc.stderr, proc.stderr


def test_forget_bias_is_normalised():
    assert ExperimentConfig(forget_bias="1").forget_bias == "1.0"
    assert ExperimentConfig(forget_bias="chrono").forget_bias == "chrono"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


@pytest.mark.parametrize("args", [["analyze", "--seq-len", "3000"], ["analyze", "--bogus"], ["analyze", "--hidden", "x"],
                                  ["analyze", "--stride", "0"], ["frobnicate"], ["train", "--lr", "-1"], []])
def test_cli_bad_flags_one_line_exit_2(args):
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_cli_help_lists_options():
    proc = run_cli("analyze", "--help")
    assert proc.returncode == 0
    for flag in ("--cell", "--activation", "--hidden", "--input-size", "--seq-len", "--init", "--gain", "--input",
                 "--seed", "--dtype", "--json"):
        assert flag in proc.stdout


def test_cli_json_contract(capsys):
    assert main(["analyze", "--seq-len", "12", "--hidden", "5", "--input-size", "3", "--init", "orthogonal",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"] == ExperimentConfig(seq_len=12, hidden=5, input_size=3, init="orthogonal").to_dict()
    w = data["weights"]
    assert list(w) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert len(w["weight_ih_l0"]) == 5 and len(w["weight_ih_l0"][0]) == 3 and len(w["weight_hh_l0"][0]) == 5
    assert len(data["inputs"]) == 12 and len(data["inputs"][0]) == 3
    assert len(data["h"]) == 13 and data["h"][0] == [0.0] * 5
    spec, fro = data["jacobian"]["log10_spectral"], data["jacobian"]["log10_frobenius"]
    assert len(spec) == 13 and all(len(row) == 13 for row in spec)
    for t in range(13):
        assert abs(spec[t][t]) < 1e-12 and abs(fro[t][t] - 0.5 * __import__("math").log10(5)) < 1e-12
        assert all(spec[t][s] is None for s in range(t))  # t > s is null
        assert all(isinstance(spec[t][s], float) for s in range(t, 13))


def test_cli_json_matches_library_call(capsys):
    from explorer import analyze, to_json

    main(["analyze", "--seq-len", "9", "--hidden", "4", "--seed", "11", "--json"])
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(to_json(analyze(ExperimentConfig(seq_len=9, hidden=4, seed=11)))))


def test_explorer_never_imports_streamlit():
    for path in (ROOT / "explorer").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, (ast.Import, ast.ImportFrom)) else []
            module = node.module if isinstance(node, ast.ImportFrom) else ""
            assert not any(n.split(".")[0] == "streamlit" for n in names + [module or ""]), path
    code = "import sys, explorer, explorer.plots, explorer.cli, explorer.export; print('streamlit' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr


def test_pages_stay_thin():
    for page in [ROOT / "Overview.py", *(ROOT / "pages").glob("*.py")]:
        assert len(page.read_text().splitlines()) <= 150, page


def test_cli_train_json_contract(capsys):
    assert main(["train", "--task", "copy", "--cell", "gru", "--hidden", "8", "--seq-len", "5", "--steps", "6",
                 "--batch-size", "4", "--record-every", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["task"] == "copy" and data["config"]["model"]["cell"] == "gru"
    assert abs(data["baseline"] - 10 * __import__("math").log(8) / 25) < 1e-12
    assert [h["step"] for h in data["history"]] == [3, 6]
    assert set(data["history"][0]) == {"step", "loss", "eval_loss", "grad_norm", "ortho_error", "clipped"}
    assert len(data["grad_flow"]) == 2 and len(data["grad_flow"][0]) == 25  # T + 20 steps of the copy task
    assert len(data["singular_values"]) == 2 and len(data["singular_values"][0]) == 8
    assert "weight_hh_l0" in data["weights_init"] and "weight_hh_l0" in data["weights_final"]


def test_cli_train_rejects_riemannian_gated_cell():
    proc = run_cli("train", "--cell", "lstm", "--orthogonal-param", "cayley", "--steps", "2")
    assert proc.returncode == 2 and "orthogonal_param" in proc.stderr and "Traceback" not in proc.stderr
