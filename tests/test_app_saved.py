"""The Saved runs page and the lab pages' "Save & download", driven with AppTest."""
import io
import time
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import chart_specs, open_app, plotly_array, shown, tiny
from ganlab import checkpoints
from ganlab.runs import FINISHED, RunRegistry

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def saves(tmp_path, monkeypatch):
    root = tmp_path / "saves"
    monkeypatch.setenv("GANLAB_SAVES", str(root))
    return root


@pytest.fixture
def one_saved(saves):
    """A finished 100-step 1D run, saved."""
    run = RunRegistry().create(tiny(100), name="tiny-1d")
    assert run.join(60) and run.status == FINISHED
    return checkpoints.save(run, saves / "tiny-1d-step100")


def open_saved_page():
    return open_app("pages/saved.py")


def text_of(elements):
    return shown(elements)




def values(field):
    """A plotly array from a chart's JSON, as a list."""
    return plotly_array(field).tolist()


def run_until(at, words, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        at.run()
        text = text_of(at.markdown)
        if words in text:
            # One more run to settle, as conftest.run_until_ended does: a run that ends during a
            # script run makes the page rerun itself, and AppTest can then keep a stale copy of a
            # button, so that the next click is lost (seen under CPU load).
            at.run()
            return text_of(at.markdown)
        time.sleep(0.5)
    raise AssertionError(f"never saw {words!r}")


def test_an_empty_saves_folder_says_so(saves):
    at = open_saved_page()
    assert "No checkpoints yet" in text_of(at.info)


def test_the_list_shows_each_checkpoint_and_explore_draws_the_saved_generator(one_saved):
    at = open_saved_page()
    table = at.dataframe[0].value
    assert list(table["name"]) == ["tiny-1d"] and list(table["step"]) == [100]
    assert list(table["model"]) == ["mlp1d"] and list(table["loss"]) == ["BCE non-saturating"]
    assert "step **100** of 100" in text_of(at.markdown)
    at.toggle(key="saved-explore").set_value(True).run()
    assert not at.exception
    density = chart_specs(at)[0]
    assert "step 100" in density["layout"]["title"]["text"]
    assert {"generated (histogram)", "target pdf"} <= {t.get("name") for t in density["data"]}
    assert "W1 to the target" in text_of(at.caption)


def test_resume_opens_the_lab_page_on_a_run_that_carries_on(one_saved):
    at = open_saved_page()
    assert at.number_input(key="saved-until-tiny-1d-step100").value == 200   # a finished run: go on to 2x
    at.button(key="saved-resume").click().run()
    assert not at.exception, at.exception
    run_id = at.query_params["run"]
    run_id = run_id[0] if isinstance(run_id, list) else run_id
    assert run_id and at.title[0].value == "1D Gaussian lab"
    at.switch_page("pages/gauss1d.py")     # AppTest's later runs stay on the page it was told
    text = run_until(at, "[Finished]")
    assert "step **200** of 200" in text
    loss = chart_specs(at)[1]
    steps = values([t for t in loss["data"] if t["name"] == "D loss"][0]["x"])
    assert steps[0] == 1 and steps[-1] == 200            # the saved history came along, and goes on


def test_a_corrupt_upload_is_an_error_and_adds_nothing(saves, one_saved):
    at = open_saved_page()
    at.file_uploader(key="saved-upload").set_value(("mine.zip", b"this is not a zip", "application/zip")).run()
    assert "not a usable checkpoint: the upload is not a zip file" in text_of(at.error)
    assert not at.exception

    tampered = io.BytesIO()
    with zipfile.ZipFile(tampered, "w") as z:
        z.writestr("x/config.json", (one_saved / "config.json").read_text())
        z.writestr("x/weights.pt", b"\x80\x04 not really weights")
    at.file_uploader(key="saved-upload").set_value(("x.zip", tampered.getvalue(), "application/zip")).run()
    assert "weights.pt is corrupt or truncated" in text_of(at.error)
    assert sorted(p.name for p in saves.iterdir()) == ["tiny-1d-step100"]


def test_the_uploader_takes_any_file_and_says_one_thing_about_the_latest(saves):
    at = open_saved_page()
    # A type filter would make the browser refuse a file itself and keep it listed, with its own
    # error, beside the next upload: every file comes to the page instead, which checks it.
    assert list(at.file_uploader(key="saved-upload").proto.type) == []
    at.file_uploader(key="saved-upload").set_value(("notes.txt", b"hello", "text/plain")).run()
    assert "not a usable checkpoint: the upload is not a zip file" in text_of(at.error)
    at.file_uploader(key="saved-upload").set_value(("x.zip", b"PK\x03\x04 cut short", "application/zip")).run()
    assert len(at.error) == 1 and not at.exception


def test_a_good_upload_is_imported_and_picked(saves, one_saved):
    at = open_saved_page()
    data = checkpoints.zip_folder(one_saved)
    at.file_uploader(key="saved-upload").set_value(("shared.zip", data, "application/zip")).run()
    assert not at.error and "Imported as" in text_of(at.success)
    assert len(at.dataframe[0].value) == 2
    assert at.selectbox(key="saved-pick").value != "tiny-1d-step100"   # the imported copy


def test_a_broken_folder_is_listed_with_its_problem(saves, one_saved):
    broken = saves / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{ not json")
    at = open_saved_page()
    table = at.dataframe[0].value
    assert "config.json is corrupt" in " ".join(table["problem"].dropna())
    # What a broken folder cannot say is missing, and the browser draws a dash for it, never None.
    assert at.dataframe[0].proto.placeholder == "—"
    assert table.set_index("folder").loc["broken", ["task", "model", "loss", "step", "saved"]].isna().all()
    at.selectbox(key="saved-pick").set_value("broken").run()
    assert "This checkpoint cannot be used: config.json is corrupt" in text_of(at.error)


def test_the_1d_page_saves_a_run_and_offers_its_files(saves):
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/gauss1d.py")
    at.run()
    at.number_input(key="train.steps").set_value(100)
    at.button(key="gauss1d-start").click().run()
    run_until(at, "[Finished]")
    assert [n.value for n in at.number_input if n.label.startswith("Save automatically")] == [0]
    [save] = [b for b in at.button if b.label == "Save a checkpoint"]
    save.click().run()
    assert not at.exception
    [folder] = saves.iterdir()
    assert folder.name.startswith("gauss1d-") and folder.name.endswith("-step100")
    assert checkpoints.load(folder).step == 100
    labels = {b.label for b in at.get("download_button")}
    assert {"config.json", "metrics.csv", "weights.pt", "all (zip)",
            "Training script (PyTorch, no ganlab needed)"} <= labels


@pytest.fixture
def ae_saved(saves, mnist_dir, monkeypatch):
    """A finished 20-step autoencoder run on synthetic digits, saved as the AE & VAE lab saves it."""
    from ganlab.presets import get_preset
    monkeypatch.setenv("GANLAB_DATA", str(mnist_dir))    # the AE & VAE lab opens only where there is data
    cfg = get_preset("mnist-ae-seed002").config.replace(train={
        "steps": 20, "batch_size": 16, "device": "cpu", "data_dir": str(mnist_dir), "snapshot_every": 10})
    run = RunRegistry().create(cfg, name="tiny-ae", page="autoencoders")
    assert run.join(60) and run.status == FINISHED
    return checkpoints.save(run, saves / "tiny-ae-step20"), run


def test_an_autoencoder_checkpoint_is_listed_explored_and_resumed_on_its_page(ae_saved):
    folder, run = ae_saved
    at = open_saved_page()
    table = at.dataframe[0].value
    assert list(table["name"]) == ["tiny-ae"] and list(table["model"]) == ["ae"] and list(table["step"]) == [20]
    assert list(table["loss"]) == ["MSE reconstruction"]          # not the GAN loss its config carries unused
    assert table["problem"].isna().all()
    at.toggle(key="saved-explore").set_value(True).run()
    assert not at.exception, at.exception
    specs = chart_specs(at)
    grid = specs[0]
    assert grid["data"][0]["type"] == "image" and "decoded by the saved AE" in grid["layout"]["title"]["text"]
    assert "step 20" in grid["layout"]["title"]["text"]
    assert {"reconstruction"} <= {t.get("name") for s in specs for t in s["data"]}   # its own curve, no D loss

    at.button(key="saved-resume").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "AE & VAE lab"
    at.switch_page("pages/autoencoders.py")
    text = run_until(at, "[Finished]")
    assert "step **40** of 40" in text
    recon = next(s for s in chart_specs(at) if s["layout"]["title"]["text"].startswith("Reconstruction loss"))
    steps = values([t for t in recon["data"] if t["name"] == "reconstruction"][0]["x"])
    assert steps[0] == 1 and steps[-1] == 40            # the saved history came along, and goes on
