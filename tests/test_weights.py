"""Your own model (explorer.weights): trained torch.nn weights loaded safely, checked against torch.nn's own modules,
every bad file one line (and exit 2 in the CLI), and the lab's saved run giving the maps of its final weights."""
from __future__ import annotations

import io
import json
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save

from explorer import weights
from explorer.analysis import analyze, pair_norms, to_json, traced
from explorer.cells import build_cell, make_inputs
from explorer.cli import main
from explorer.config import ExperimentConfig, TrainConfig, from_query
from explorer.weights import WeightsError, digest, load_bytes

ROOT = Path(__file__).resolve().parents[1]


def torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def loaded_run(data: bytes, **fields):
    """(the fitted config, the traced run) of a file's bytes analysed in float64."""
    config = ExperimentConfig(weights=digest(data), dtype="float64", **fields)
    run = traced(config, "cpu", {config.weights: data})
    return run.config, run


@pytest.mark.parametrize("layer", [1, 2])
def test_layer_of_a_three_layer_lstm_equals_torch(layer):
    torch.manual_seed(3)
    net = torch.nn.LSTM(3, 6, num_layers=3, dtype=torch.float64)
    data = torch_bytes(net.state_dict())  # torch.save format, read with weights_only=True
    config, run = loaded_run(data, layer=layer, seq_len=25, lag=10)
    assert (config.cell, config.hidden, config.input_size) == ("lstm", 6, 3)
    x = make_inputs(config, 1, "cpu")  # the network's input; the layers below make the layer's own
    upto = torch.nn.LSTM(3, 6, num_layers=layer + 1, dtype=torch.float64)
    upto.load_state_dict({k: v for k, v in net.state_dict().items() if int(k.split("_l")[1][0]) <= layer})
    with torch.no_grad():
        out, (h_n, c_n) = upto(x)
    h, c = run.trace.h[1:, 0], run.trace.c[1:, 0]
    torch.testing.assert_close(h, out[:, 0], rtol=0, atol=1e-14)
    torch.testing.assert_close(c[-1], c_n[layer, 0], rtol=0, atol=1e-14)


@pytest.mark.parametrize("layer", [0, 1])
def test_reverse_direction_of_a_bidirectional_gru_equals_torch(layer):
    torch.manual_seed(4)
    net = torch.nn.GRU(2, 5, num_layers=2, bidirectional=True, dtype=torch.float64)
    data = save({f"encoder.rnn.{k}": v.contiguous() for k, v in net.state_dict().items()})  # inside a larger model
    config, run = loaded_run(data, layer=layer, direction="reverse", seq_len=20, lag=5)
    assert config.prefix == "encoder.rnn." and config.cell == "gru"
    x = make_inputs(config, 1, "cpu")
    upto = torch.nn.GRU(2, 5, num_layers=layer + 1, bidirectional=True, dtype=torch.float64)
    upto.load_state_dict({k: v for k, v in net.state_dict().items() if int(k.split("_l")[1][0]) <= layer})
    with torch.no_grad():
        out, _ = upto(x)
    reverse = out[:, 0, 5:]  # torch's reverse half at time t has read x_T .. x_t
    torch.testing.assert_close(run.trace.h[1:, 0], reverse.flip(0), rtol=0, atol=1e-14)
    assert run.source["direction"] == "reverse" and run.source["layer"] == layer


def test_rnn_without_bias_and_relu_equals_torch():
    torch.manual_seed(5)
    net = torch.nn.RNN(4, 7, nonlinearity="relu", bias=False, dtype=torch.float64)
    data = save(dict(net.state_dict()))
    config, run = loaded_run(data, activation="relu", seq_len=15, lag=5, input_size=1)
    assert (config.cell, config.activation, config.input_size) == ("rnn", "relu", 4)
    with torch.no_grad():
        out, _ = net(make_inputs(config, 1, "cpu"))
    torch.testing.assert_close(run.trace.h[1:, 0], out[:, 0], rtol=0, atol=1e-14)


def test_the_maps_of_a_loaded_layer_equal_autograd_products():
    torch.manual_seed(6)
    net = torch.nn.LSTM(2, 4, num_layers=2, dtype=torch.float64)
    data = save(dict(net.state_dict()))
    config, run = loaded_run(data, layer=1, seq_len=8, lag=3)
    pairs = pair_norms(run.cell, run.trace, config)
    # the layer's full-state Jacobian product from t = 2 to s = 7, by autograd through torch.nn.LSTMCell
    cell = torch.nn.LSTMCell(4, 4, dtype=torch.float64)
    cell.load_state_dict({k.replace("_l1", ""): v for k, v in net.state_dict().items() if "_l1" in k})
    xs = run.x[:, 0]

    def advance(z):
        h, c = z[:4], z[4:]
        for k in range(2, 7):
            h, c = cell(xs[k][None], (h[None], c[None]))
            h, c = h[0], c[0]
        return torch.cat([h, c])

    J = torch.autograd.functional.jacobian(advance, run.trace.z[2, 0])
    expected = np.log10(float(torch.linalg.matrix_norm(J, ord=2)))
    assert abs(pairs.log10_spectral["state"][2, 7] - expected) < 1e-9


# --- bad files: one line each, in the library and the CLI ---------------------------------------------------------

class Payload:
    """Unpickling this would create the sentinel file: a weights file must never run it."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _lying_header(shape=(4, 4), end: int = 64) -> bytes:
    """A safetensors header promising ``shape`` float32 in bytes [0, end) over a body of 16 bytes."""
    header = json.dumps({"weight_hh_l0": {"dtype": "F32", "shape": list(shape), "data_offsets": [0, end]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * 16


def _bad_files(tmp: Path) -> dict[str, bytes]:
    lstm = torch.nn.LSTM(2, 4)
    good = save(dict(lstm.state_dict()))
    wrong_shape = dict(lstm.state_dict())
    wrong_shape["weight_hh_l0"] = torch.zeros(16, 5)
    return {
        "wrong shapes": save(wrong_shape),
        "wrong cell type": save({"weight_ih_l0": torch.zeros(8, 2), "weight_hh_l0": torch.zeros(8, 4)}),  # 2 blocks
        "truncated safetensors": good[:len(good) // 2],
        "truncated torch.save": torch_bytes(lstm.state_dict())[:300],
        "pickle payload in torch.save": torch_bytes({"weight_hh_l0": Payload(tmp / "sentinel")}),
        "plain pickle payload": pickle.dumps(Payload(tmp / "sentinel")),
        "lying safetensors header": _lying_header(),
        "header longer than the file": struct.pack("<Q", 10**9) + b"{}",
        "shape that disagrees with its offsets": _lying_header(shape=[8, 8], end=16),
        "integer weights": save({"weight_ih_l0": torch.zeros(4, 2, dtype=torch.int32),
                                 "weight_hh_l0": torch.zeros(4, 4, dtype=torch.int32)}),
        "no recurrent module": save({"linear.weight": torch.zeros(3, 3)}),
        "not a model": b"hello, world\n" * 10,
    }


def test_every_bad_file_is_one_line_and_no_payload_runs(tmp_path):
    for what, data in _bad_files(tmp_path).items():
        with pytest.raises(WeightsError) as err:
            load_bytes(ExperimentConfig(), data, what)
        message = str(err.value)
        assert "\n" not in message and len(message) < 400, (what, message)
    assert not (tmp_path / "sentinel").exists(), "a pickle payload ran"


def test_a_file_over_the_limit_is_refused_before_reading(monkeypatch, tmp_path):
    monkeypatch.setattr(weights.limits, "LIMITS", weights.limits.Limits(max_upload_mb=0.001))
    data = save({"weight_ih_l0": torch.zeros(400, 2), "weight_hh_l0": torch.zeros(400, 100)})
    with pytest.raises(WeightsError, match="over this server's limit of 0 MB .EXPLORER_MAX_UPLOAD_MB"):
        load_bytes(ExperimentConfig(), data)


def _cli(args: list[str], capsys) -> tuple[int, str]:
    """``python -m explorer analyze ...`` in this process: (exit status, stderr)."""
    try:
        status = main(["analyze", "--seq-len", "5", *args])
    except SystemExit as stop:
        status = stop.code
    return status, capsys.readouterr().err


def test_cli_bad_files_exit_2_one_line_and_no_payload_runs(tmp_path, capsys, monkeypatch):
    lstm = tmp_path / "lstm.safetensors"
    lstm.write_bytes(save(dict(torch.nn.LSTM(2, 4).state_dict())))
    cases = []
    for what, data in _bad_files(tmp_path).items():
        path = tmp_path / (what.replace(" ", "_") + ".bin")
        path.write_bytes(data)
        cases.append(["--weights", str(path)])
    cases += [["--weights", str(lstm), "--cell", "gru"],  # a wrong cell type for the one asked
              ["--weights", str(lstm), "--layer", "1"], ["--weights", str(lstm), "--direction", "reverse"],
              ["--weights", str(lstm), "--prefix", "encoder"], ["--weights", str(tmp_path / "missing.pt")],
              ["--weights", "no_such_example"], ["--weights", str(lstm), "--inputs", str(lstm)]]
    for args in cases:
        status, err = _cli(args, capsys)
        assert status == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, (args, err)
    big = tmp_path / "big.safetensors"
    big.write_bytes(b"\0" * (2 * 2**20))
    monkeypatch.setattr(weights.limits, "LIMITS", weights.limits.Limits(max_upload_mb=1))
    status, err = _cli(["--weights", str(big)], capsys)
    assert status == 2 and "over the limit of 1 MB" in err
    assert not (tmp_path / "sentinel").exists(), "a pickle payload ran"


def test_a_real_process_refuses_a_payload_in_one_line(tmp_path):
    path = tmp_path / "payload.pt"
    path.write_bytes(torch_bytes({"weight_hh_l0": Payload(tmp_path / "sentinel")}))
    proc = subprocess.run([sys.executable, "-m", "explorer", "analyze", "--weights", str(path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "refused" in proc.stderr
    assert not (tmp_path / "sentinel").exists(), "a pickle payload ran"


# --- the lab's run, saved and opened again --------------------------------------------------------------------------

@pytest.mark.parametrize("model", [ExperimentConfig(cell="lstm", hidden=6, seq_len=12),
                                   ExperimentConfig(cell="rnn", hidden=5, seq_len=12, residual=True, norm="layer")])
def test_a_lab_run_saved_and_loaded_gives_the_maps_of_its_final_weights(model, tmp_path, capsys):
    from explorer.train import train

    result = train(TrainConfig(model=model, steps=12, batch_size=8, record_every=6, lr=0.05))
    data = weights.lab_file(result)
    assert weights.lab_file(result) == data  # the same run, the same bytes (the same sha256)
    analysed = ExperimentConfig(seq_len=30, lag=10, seed=3)
    # the lab's final weights analysed directly: the run's cell, its state dict copied in
    direct_config = result.config.model.replace(input_size=2, seq_len=30, lag=10, seed=3)
    cell = build_cell(direct_config)
    cell.load_state_dict({k: torch.as_tensor(v) for k, v in result.weights_final.items() if not k.startswith("readout.")})
    cell.frozen_statistics = True
    cell.requires_grad_(False)
    with torch.no_grad():
        trace = cell.run(make_inputs(direct_config, 1))
    direct = pair_norms(cell, trace, direct_config)
    # through the library, by the file's hash
    via_file = analyze(analysed.replace(weights=digest(data)), files={digest(data): data})
    assert via_file.config.cell == model.cell and via_file.config.residual == model.residual
    for view in direct.log10_spectral:
        np.testing.assert_array_equal(via_file.pairs.log10_spectral[view], direct.log10_spectral[view])
    # through the CLI, from the saved file
    path = tmp_path / "run.safetensors"
    path.write_bytes(data)
    assert main(["analyze", "--weights", str(path), "--seq-len", "30", "--lag", "10", "--seed", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"]["sha256"] == digest(data)[7:] and out["config"]["weights"] == digest(data)
    expected = np.array(to_json(via_file)["jacobian"]["log10_spectral"], dtype=float)
    np.testing.assert_array_equal(np.array(out["jacobian"]["log10_spectral"], dtype=float), expected)


def test_shipped_examples_load_and_name_their_command():
    for example in weights.EXAMPLES.values():
        assert example.path.stat().st_size < 400_000
        result = analyze(ExperimentConfig(weights=example.name, seq_len=40, lag=20))
        assert result.source["weights"] == example.name and np.isfinite(result.pairs.log10_spectral["state"][0, -1])
        meta = json.loads(weights.read_tensors(example.path.read_bytes())[1][weights.META_KEY])
        assert f"--cell {meta['config']['cell']}" in example.command
        assert f"--steps {meta['train']['steps']}" in example.command and example.path.name in example.command


def test_the_json_names_no_source_for_the_seeded_init_and_links_omit_the_file_fields():
    assert to_json(analyze(ExperimentConfig(seq_len=5, hidden=3)))["source"] is None
    query = ExperimentConfig().to_query()
    assert not {"weights", "layer", "direction", "prefix", "input_file"} & set(query)
    config, warnings = from_query({"weights": "../../etc/passwd", "layer": "99"})
    assert config.weights == "" and config.layer == 0 and len(warnings) == 2


# --- input sequences ------------------------------------------------------------------------------------------------

def test_an_uploaded_sequence_is_the_input(tmp_path):
    sequence = np.random.default_rng(0).normal(size=(17, 2))
    csv = ("x1,x2\n" + "\n".join(f"{float(a)!r},{float(b)!r}" for a, b in sequence)).encode()
    buffer = io.BytesIO()
    np.save(buffer, sequence)
    for data in (csv, buffer.getvalue()):
        config, array = weights.sequence_config(ExperimentConfig(dtype="float64"), data, "seq")
        assert config.seq_len == 17 and config.input == "file"
        result = analyze(config, files={config.input_file: data})
        np.testing.assert_array_equal(result.inputs, sequence)
    for bad, match in ((np.zeros((5, 3)), "d = 3"), (np.zeros((2001, 2)), "T = 2001"),
                       (np.array([object()] * 4), "not a CSV of numbers or an NPY")):
        buffer = io.BytesIO()
        np.save(buffer, bad, allow_pickle=True)
        with pytest.raises(WeightsError, match=match):
            weights.sequence_config(ExperimentConfig(), buffer.getvalue(), "seq")
