"""The 2D lab page, driven with AppTest (run_every never fires there, so the test reruns the
script itself while the run trains in its thread)."""
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from conftest import chart_specs, open_app, plotly_array, run_until_ended, shown

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def app(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))   # uploaded points are kept here
    return open_app("pages/toy2d.py")


def trace_names(spec):
    return [t.get("name") for t in spec["data"]]



def shrink(at, steps=100):
    """A run small enough for a test: few steps, small models."""
    at.number_input(key="train.steps").set_value(steps)
    at.number_input(key="model.g_hidden").set_value(32)
    at.number_input(key="model.d_hidden").set_value(32)
    at.selectbox(key="train.device").set_value("cpu")


def test_start_draws_the_plane_with_every_layer_and_the_meters(app):
    labels = [b.label for b in app.button]
    for label in ("Start", "Step D", "Step G", "Step both", "Stop"):
        assert label in labels
    shrink(app)
    app.button(key="toy2d-start").click().run()
    assert "run" in app.query_params
    text = run_until_ended(app)
    assert "[Finished]" in text and "step **100** of 100" in text
    specs = {s["layout"]["title"]["text"].split(" (")[0].split(" ·")[0]: s for s in chart_specs(app)}
    plane = specs["Real and generated points"]
    assert trace_names(plane) == ["D(x)", "G's manifold (a z grid, mapped)", "real", "generated",
                                  "G's push (−∇ of G's loss)"]
    heat = plane["data"][0]
    surface = plotly_array(heat["z"])
    assert heat["type"] == "heatmap" and surface.shape == (60, 60)
    assert surface.min() >= 0 and surface.max() <= 1                # BCE: D's probability
    assert "step 100" in plane["layout"]["title"]["text"]
    assert {"Energy distance to the real points", "Modes", "High-quality samples: within 3σ of the data",
            "Losses"} <= set(specs)
    energy = specs["Energy distance to the real points"]
    steps = plotly_array(energy["data"][0]["x"]).tolist()
    assert steps[0] == 0 and steps[-1] == 100                         # from G's start to the end

    # Each layer switches off on its own.
    app.toggle(key="t2d-layer-surface").set_value(False)
    app.toggle(key="t2d-layer-arrows").set_value(False).run()
    plane = chart_specs(app)[0]
    assert trace_names(plane) == ["G's manifold (a z grid, mapped)", "real", "generated"]


def test_step_both_starts_a_paused_run_on_this_page(app):
    shrink(app)
    app.button(key="toy2d-step-both").click().run()
    assert "run" in app.query_params
    end = time.monotonic() + 60
    while time.monotonic() < end:
        app.run()
        text = " ".join(m.value for m in app.markdown)
        if "[Paused]" in text and "step **1** of" in text:
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"no paused run at step 1: {text[-300:]}")
    app.button(key="toy2d-stop").click().run()


def test_a_bad_csv_gets_a_message_and_a_good_one_is_kept(app, tmp_path):
    app.selectbox(key="toy2d.kind").set_value("csv").run()
    assert not app.error and any("Upload a CSV of points" in i.value for i in app.info)   # a prompt, not an error
    assert app.button(key="toy2d-start").disabled

    app.file_uploader(key="toy2d.csv_path").set_value(("pts.csv", b"x,y\n1,2\n3,four\n", "text/csv")).run()
    errors = " ".join(e.value for e in app.error)
    assert "pts.csv cannot be used" in errors and "line 3, column 2 is not a number" in errors and "four" not in errors
    assert app.button(key="toy2d-start").disabled and not app.exception

    good = "x,y\n" + "".join(f"{i % 7},{i % 5 - 2}\n" for i in range(40))
    app.file_uploader(key="toy2d.csv_path").set_value(("pts.csv", good.encode(), "text/csv")).run()
    assert not app.error and not app.exception
    kept = list((tmp_path / "ganlab" / "points").glob("points-*.csv"))
    assert len(kept) == 1
    assert any("40 points" in c.value and kept[0].name in c.value for c in app.caption)
    assert not app.button(key="toy2d-start").disabled


def test_bad_settings_show_a_message_and_disable_start(app):
    app.number_input(key="toy2d.std").set_value(0.0).run()
    errors = " ".join(e.value for e in app.error)
    assert "toy2d.std" in errors
    assert app.button(key="toy2d-start").disabled
    app.number_input(key="toy2d.std").set_value(0.02)
    app.number_input(key="opt_d.lr").set_value(-1.0).run()
    assert "opt_d.lr" in " ".join(e.value for e in app.error)
    assert not app.exception


def test_every_2d_preset_opens(app):
    for slug in ("toy2d-ring-wgan-gp", "toy2d-grid", "toy2d-moons"):
        app.selectbox(key="t2d-preset").set_value(slug).run()
        assert not app.exception and not app.error


def test_the_loss_lab_runs_the_losses_on_a_2d_target_and_shows_the_2d_meters():
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/compare.py")
    at.run()
    at.selectbox(key="cmp-target").set_value("toy2d-ring").run()
    assert "the same points" in " ".join(m.value for m in at.markdown)     # the 2D reading notes
    at.number_input(key="cmp:train.steps").set_value(20)
    at.multiselect(key="cmp-losses").set_value(["bce-ns", "wgan-gp"])
    at.button(key="cmp-start").click().run()
    assert not at.exception, at.exception
    end = time.monotonic() + 120
    while " ".join(m.value for m in at.markdown).count("[Finished]") < 2:
        assert time.monotonic() < end, "the comparison did not finish in time"
        time.sleep(0.5)
        at.run()
    specs = {s["layout"]["title"]["text"]: s for s in chart_specs(at)}
    planes = [s for t, s in specs.items() if ", step 20" in t]
    assert len(planes) == 2
    assert [t["name"] for t in planes[0]["data"]] == ["D(x)", "real", "generated"]
    assert [t["name"] for t in planes[1]["data"]] == ["critic f(x)", "real", "generated"]
    for title in ("Energy distance", "Modes covered", "High-quality samples"):
        chart = next(s for t, s in specs.items() if t.startswith(title))
        assert {t["name"] for t in chart["data"]} == {"BCE non-saturating", "WGAN-GP"}
    assert any("reference settings" in c.value for c in at.caption)          # each loss with its paper's k


def test_the_2d_lab_saves_a_run_and_offers_its_files(app, tmp_path, monkeypatch):
    from ganlab import checkpoints
    monkeypatch.setenv("GANLAB_SAVES", str(tmp_path / "saves"))
    assert not [e for e in app.expander if e.label == "Save & download"]     # nothing to save yet
    shrink(app, steps=40)
    app.button(key="toy2d-start").click().run()
    run_until_ended(app)
    [save] = [b for b in app.button if b.label == "Save a checkpoint"]
    save.click().run()
    assert not app.exception, app.exception
    [folder] = (tmp_path / "saves").iterdir()
    assert checkpoints.load(folder).step == 40 and checkpoints.load(folder).cfg.task == "toy2d"
    assert {"config.json", "weights.pt", "metrics.csv", "all (zip)"} <= {b.label for b in app.get("download_button")}


def test_the_csv_uploader_takes_any_file_and_says_one_thing_about_the_latest(app):
    app.selectbox(key=K + "kind").set_value("csv").run()
    # A type filter would make the browser refuse a file itself and keep it listed, with its own
    # error, beside the next upload: every file comes to the page instead, which checks it.
    assert list(app.file_uploader(key=K + "csv").proto.type) == []
    app.file_uploader(key=K + "csv").set_value(("notes.pdf", b"%PDF-1.4 \xff\xfe", "application/pdf")).run()
    assert "notes.pdf cannot be used: the file is not a text (UTF-8) CSV file" in shown(app.error)
    app.file_uploader(key=K + "csv").set_value(("pts.csv", b"x,y\n1,2\n3,four\n", "text/csv")).run()
    assert len(app.error) == 1 and "pts.csv cannot be used" in shown(app.error) and "notes.pdf" not in shown(app.error)
