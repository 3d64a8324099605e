"""Your own model on the pages (AppTest): a shipped example beside its untrained twin, a file held in the session
giving the library's maps, links to files this session does not hold or another page's cell, and the lab's
button that opens a finished run's weights on the analysis page."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from safetensors.torch import save
from streamlit.testing.v1 import AppTest

from explorer import weights
from explorer.analysis import analyze, auto_stride
from explorer.cells import build_cell
from explorer.config import ExperimentConfig, TrainConfig
from explorer.train import train
from tests.apptests import array, titled

ROOT = Path(__file__).resolve().parents[1]
RNN, GATED, LAB = "pages/2_Simple_RNN.py", "pages/3_LSTM_and_GRU.py", "pages/5_Training_Lab.py"


def run(page: str, query: dict[str, str], uploads: dict[str, bytes] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "Overview.py"), default_timeout=120)
    at.query_params.update(query)
    if uploads:
        at.session_state["uploads"] = dict(uploads)
    at.switch_page(page)
    return at.run()


def messages(at: AppTest) -> str:
    return re.sub(r"\\(.)", r"\1", " ".join(w.value for w in at.warning))  # as read: Markdown escapes undone


def test_a_shipped_example_beside_its_untrained_twin():
    at = run(GATED, {"weights": "lstm_adding", "seed": "7", "seq_len": "50", "b_weights": ""})
    assert not at.exception and not messages(at)
    assert at.query_params["weights"] == "lstm_adding" and at.query_params["cell"] == "lstm"
    a, b = titled(at, "A: log10 ‖∂z_s/∂z_t‖₂<br>full state"), titled(at, "B: log10 ‖∂z_s/∂z_t‖₂<br>full state")
    assert a and b
    assert a[0]["data"][0]["zmax"] == b[0]["data"][0]["zmax"]  # one colour scale
    trained = analyze(ExperimentConfig(weights="lstm_adding", seed=7, seq_len=50), stride=auto_stride(
        ExperimentConfig(cell="lstm", hidden=32, seq_len=50)))
    np.testing.assert_allclose(array(a[0]["data"][0]["z"]).T, trained.pairs.log10_spectral["state"], rtol=1e-6,
                               atol=1e-6, equal_nan=True)  # a chart carries float32
    spectra = titled(at, "log10 σ_i of the product")[0]["data"]
    assert {trace["name"] for trace in spectra} >= {"A: lag 50", "B: lag 50"}
    assert any("training run's own initial weights (seed 7)" in info.value for info in at.info)


def test_the_untrained_twin_of_a_lab_file_is_the_runs_own_initial_weights():
    result = train(TrainConfig(model=ExperimentConfig(cell="gru", hidden=6, seq_len=10, seed=5), steps=6,
                               batch_size=4, record_every=3))
    data = weights.lab_file(result)
    trained = weights.load(ExperimentConfig(weights=weights.digest(data), seed=5), {weights.digest(data): data})
    twin = build_cell(trained.config.replace(weights=""))
    for name, value in twin.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), result.weights_init[name])


def test_a_file_held_in_the_session_gives_the_librarys_maps():
    torch.manual_seed(0)
    data = save(dict(torch.nn.RNN(3, 10).state_dict()))
    key = weights.digest(data)
    at = run(RNN, {"weights": key, "seq_len": "40"}, {key: data})
    assert not at.exception and not messages(at), messages(at)
    assert at.query_params["hidden"] == "10" and at.query_params["input_size"] == "3"
    expected = analyze(ExperimentConfig(weights=key, seq_len=40), files={key: data})
    shown = titled(at, "log10 ‖·‖₂ of ∂h_s/∂h_t")[0]
    np.testing.assert_allclose(array(shown["data"][0]["z"]).T, expected.pairs.log10_spectral["state"], rtol=1e-6,
                               atol=1e-6, equal_nan=True)  # a chart carries float32
    assert any("python -m explorer analyze" in c.value and "--weights YOUR_MODEL.safetensors" in c.value
               for c in at.code)


@pytest.mark.parametrize("query, said", [
    ({"weights": "sha256:" + "ab" * 32}, "not loaded here"),  # a link to another session's upload
    ({"weights": "lstm_adding"}, "holds an LSTM"),  # another page's cell
    ({"weights": "../../etc/passwd"}, "weights must be"),  # malformed
    ({"weights": "no_such_model"}, "weights must be a shipped example"),
    ({"weights": "rnn_adding", "layer": "3"}, "layer must be in [0, 0]"),
    ({"input": "file", "input_file": "sha256:" + "cd" * 32}, "input sequence this link names is not loaded here"),
])
def test_a_link_to_a_model_this_page_cannot_open_says_why_and_shows_the_seeded_init(query, said):
    at = run(RNN, {"seq_len": "30", "hidden": "8", **query})
    assert not at.exception
    assert said in messages(at), messages(at)
    assert "weights" not in at.query_params or at.query_params["weights"] == "rnn_adding"
    assert titled(at, "log10 ‖·‖₂ of ∂h_s/∂h_t")


def test_a_bad_file_in_the_session_is_a_warning_on_the_page_and_its_payload_never_runs(tmp_path):
    from tests.test_weights import _bad_files

    for what, data in _bad_files(tmp_path).items():
        key = weights.digest(data)
        at = run(RNN, {"weights": key, "seq_len": "20", "hidden": "4"}, {key: data})
        assert not at.exception, what
        assert "Showing the seeded init instead" in messages(at), (what, messages(at))
        assert "weights" not in at.query_params and titled(at, "log10 ‖·‖₂ of ∂h_s/∂h_t"), what
    assert not (tmp_path / "sentinel").exists(), "a pickle payload ran"


def test_the_labs_button_opens_the_trained_weights_beside_the_untrained(monkeypatch):
    st.cache_data.clear()
    quick = {"task": "adding", "cell": "rnn", "seq_len": "10", "hidden": "8", "steps": "20", "batch_size": "8",
             "record_every": "5", "seed": "3"}
    at = AppTest.from_file(str(ROOT / "Overview.py"), default_timeout=120)
    at.query_params.update(quick)
    at.switch_page(LAB)
    at.run()
    at.button(key="lab_start").click().run()
    assert not at.exception
    at.button(key="lab_open_weights").click().run()
    assert not at.exception, at.exception
    assert at.query_params["weights"].startswith("sha256:") and at.query_params["b_weights"] == ""
    assert titled(at, "A: log10 ‖·‖₂ of ∂h_s/∂h_t") and titled(at, "B: log10 ‖·‖₂ of ∂h_s/∂h_t")
    assert any("training run's own initial weights (seed 3)" in info.value for info in at.info)
    # the round trip: the page's map is that of the run's final weights, analysed directly
    run_config = TrainConfig(model=ExperimentConfig(cell="rnn", seq_len=10, hidden=8, seed=3), steps=20, batch_size=8,
                             record_every=5)
    final = train(run_config).weights_final
    model = run_config.model.replace(input_size=2)
    cell = build_cell(model)
    cell.load_state_dict({k: torch.as_tensor(v) for k, v in final.items() if not k.startswith("readout.")})
    from explorer.analysis import pair_norms
    from explorer.cells import make_inputs

    with torch.no_grad():
        direct = pair_norms(cell, cell.run(make_inputs(model, 1)), model)
    shown = titled(at, "A: log10 ‖·‖₂ of ∂h_s/∂h_t")[0]
    np.testing.assert_allclose(array(shown["data"][0]["z"]).T, direct.log10_spectral["state"], rtol=1e-6, atol=1e-6,
                               equal_nan=True)  # a chart carries float32


def test_the_reproduce_box_reads_uploads_only_and_names_an_example():
    from ui.classroom import command, snippet

    sequence = "sha256:" + "ab" * 32
    both = ExperimentConfig(weights="lstm_adding", cell="lstm", hidden=32, input="file", input_file=sequence, seq_len=40)
    assert "--weights lstm_adding --inputs YOUR_SEQUENCE.csv" in command(both)
    assert f"files={{{sequence!r}: open('YOUR_SEQUENCE.csv', 'rb').read()}}" in snippet(both)  # the example: no file
    upload = ExperimentConfig(weights="sha256:" + "cd" * 32)
    assert "--weights YOUR_MODEL.safetensors" in command(upload) and "YOUR_MODEL.safetensors" in snippet(upload)
