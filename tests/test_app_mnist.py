"""The MNIST page, driven with AppTest: a tiny run on real digits, and the no-data path."""
import json
from pathlib import Path

import pytest
from conftest import open_app, run_until_ended, shown

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
SHARED_DATA = ROOT.parent / "shared" / "data"


def open_mnist_page(monkeypatch, data_dir):
    monkeypatch.setenv("GANLAB_DATA", str(data_dir))
    return open_app("pages/mnist.py", timeout=120)


def test_without_data_the_page_says_where_to_put_it(monkeypatch, tmp_path):
    at = open_mnist_page(monkeypatch, tmp_path / "empty")
    text = " ".join(w.value for w in at.warning)
    assert "No MNIST data" in text and "t10k-images-idx3-ubyte.gz" in text
    assert any("Download MNIST" in b.label for b in at.button)
    assert not at.get("plotly_chart")            # never an empty chart


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(),
                    reason=f"the real MNIST test split is not at {SHARED_DATA}")
@pytest.mark.parametrize("preset", ["mnist-mlp-seed003", "mnist-cgan"])
def test_a_tiny_run_draws_the_sample_grid_and_curves(monkeypatch, preset):
    at = open_mnist_page(monkeypatch, SHARED_DATA)
    at.selectbox(key="mn-preset").set_value(preset).run()
    at.number_input(key="train.steps").set_value(30)
    at.number_input(key="train.batch_size").set_value(32)
    at.button(key="mnist-start").click().run()
    text = run_until_ended(at, timeout=180)
    assert "[Finished]" in text and "step **30** of 30" in text
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    grid = specs[0]
    assert grid["data"][0]["type"] == "image"
    assert "step 30" in grid["layout"]["title"]["text"]
    names = {t.get("name") for spec in specs for t in spec["data"]}
    assert {"D loss", "G loss", "mean D(real), held out", "mean D(fake)", "Fréchet distance",
            "digits covered (of 10)"} <= names
    assert "confident share (clearly a digit)" in names
    assert any("p ≥ 0.9" in c.value and "of held-out real digits" in c.value for c in at.caption)
    bars = [spec for spec in specs if spec["data"] and spec["data"][0]["type"] == "bar"]
    assert bars and len(bars[0]["data"][0]["y"]) == 11          # the digit histogram, and "not a digit"
    # The calibration: what the meters read on real digits, a collapse and junk, on the page.
    calibration = [df.value for df in at.dataframe if df.value.index.name == "images"]
    assert calibration, "the calibration table is missing"
    table = calibration[0]
    assert table.loc["real digits (held out)", "digits covered (of 10)"] == 10
    assert table.loc["one digit only (all 1s)", "digits covered (of 10)"] == 1
    assert table.loc["uniform noise", "digits covered (of 10)"] == 0
    assert table.loc["blank (all black)", "confident share (clearly a digit)"] == 0
    # How far one reading of 1,000 samples can be trusted: sqrt(0.7 * 0.3 / 1000) = 1.45 points.
    assert any("±1.4 points at 70% and ±1.3 at 80%" in c.value for c in at.caption)
    if preset == "mnist-cgan":
        assert "row r asks for digit r" in grid["layout"]["title"]["text"]
        at.button(key="mn-gen-digit").click().run()
        titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
        assert "Twenty 0s" in titles
    at.button(key="mn-interp").click().run()
    assert not at.exception
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert "From z A to z B" in titles


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(),
                    reason=f"the real MNIST test split is not at {SHARED_DATA}")
def test_a_budget_in_epochs_must_be_positive(monkeypatch):
    at = open_mnist_page(monkeypatch, SHARED_DATA)
    at.selectbox(key="mn-preset").set_value("mnist-mlp-seed003").run()
    at.radio(key="mn-budget-unit").set_value("epochs").run()
    for bad in (0.0, -3.0):
        at.number_input(key="train.steps#epochs").set_value(bad).run()
        assert "epochs" in shown(at.error) and "must be > 0" in shown(at.error)
        assert at.button(key="mnist-start").disabled and at.button(key="mnist-step-d").disabled
        assert at.number_input(key="train.seed").value == 0   # the settings after it are still drawn
    at.number_input(key="train.steps#epochs").set_value(2.0).run()
    assert not at.error and not at.button(key="mnist-start").disabled
    assert any("= 100 steps of 200 on 10,000 images" in c.value for c in at.caption)
