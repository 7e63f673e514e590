"""Teaching controls on the 1D page, driven with Streamlit's AppTest.

run_every never fires in AppTest, so the tests rerun the script until the
training thread has done what a click asked.
"""
import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import shown

APP = str(Path(__file__).resolve().parents[1] / "app.py")
ADVANCED = ("train.batch_size", "train.d_steps", "opt_g.lr", "model.g_hidden")


def text_of(at):
    return " ".join(m.value for m in at.markdown)


def rerun_until(at, predicate, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        at.run()
        if predicate(at):
            return
        time.sleep(0.2)
    raise AssertionError("the page did not get there in time")


def chart_titles(at):
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


@pytest.fixture
def app():
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/gauss1d.py")
    at.run()
    assert not at.exception
    yield at
    stop = at.button(key="gauss1d-stop")
    if not stop.disabled:   # a paused run would hold one of the registry's places
        stop.click().run()


def test_teaching_mode_hides_the_advanced_settings_and_keeps_their_values(app):
    app.number_input(key="train.batch_size").set_value(32).run()     # set up before class
    app.toggle(key="teaching-mode").set_value(True).run()
    assert not app.exception
    keys = {w.key for w in app.number_input} | {w.key for w in app.selectbox}
    assert not keys & set(ADVANCED)
    assert "Settings" not in [e.label for e in app.expander]
    assert app.selectbox(key="g1d-preset").value == "gauss1d"             # the preset stays
    labels = [b.label for b in app.button]
    for label in ("Start", "Step D", "Step G", "Step both", "Next stage (slow motion)"):
        assert label in labels
    assert "**Target** N(4, 1.25²)" in text_of(app) and "**6,000 steps**" in text_of(app)
    app.toggle(key="teaching-mode").set_value(False).run()
    assert app.number_input(key="train.batch_size").value == 32            # nothing was lost


def param(at, name):
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


def test_teach_1_in_a_link_turns_teaching_mode_on_and_the_url_keeps_it_while_on():
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/gauss1d.py")
    at.query_params["teach"] = "1"
    at.run()
    assert not at.exception
    assert at.toggle(key="teaching-mode").value
    assert "turn teaching mode off" in text_of(at)                      # the settings folded
    # The preset's notes fold too, so that the charts start on a projector's first screen.
    about = next(e for e in at.expander if e.label.startswith("About this preset"))
    assert any("Measured on 10 seeds" in c.value for c in about.caption)
    assert sum("Measured on 10 seeds" in c.value for c in at.caption) == 1     # there, and nowhere else
    at.run()
    assert param(at, "teach") == "1"                                    # a reload keeps it on
    at.toggle(key="teaching-mode").set_value(False).run()
    assert param(at, "teach") is None and "turn teaching mode off" not in text_of(at)
    assert "About this preset" not in [e.label for e in at.expander]


def test_slow_motion_button_walks_the_stages_and_the_caption_changes(app):
    app.toggle(key="teaching-mode").set_value(True).run()
    # The gauss1d preset takes k = 2 D steps per G step: the 4 D stages twice, each caption naming
    # its D step, then G's 2 stages.
    walk = [(n, "D step 1 of 2. ") for n in range(1, 5)] + [(n, "D step 2 of 2. ") for n in range(1, 5)] + \
           [(5, ""), (6, "")]
    captions = []
    for number, d_step in walk:
        app.button(key="gauss1d-stage").click().run()
        rerun_until(app, lambda at: f"Stage {number} of 6: " in text_of(at) and d_step in text_of(at))
        captions.append(text_of(app).split(f"Stage {number} of 6", 1)[1])
        titles = chart_titles(app)
        assert any(t.startswith("Step 1 · ") and f"{number}." in t for t in titles)
    assert len(set(captions)) == 10
    assert "Sample real and fake" in captions[0] and "Sample real and fake" in captions[4]
    assert "D's loss is" in captions[2] and "arrows" in captions[8] and "G's update" in captions[9]
    rerun_until(app, lambda at: "step **1** of" in text_of(at))
    assert not app.exception


def test_change_while_training_applies_between_steps(app):
    app.button(key="gauss1d-step-both").click().run()
    rerun_until(app, lambda at: "step **1** of" in text_of(at))
    run_id = app.query_params["run"]
    run_id = run_id[0] if isinstance(run_id, list) else run_id
    key = f"gauss1d-change-{run_id}-"
    app.number_input(key=key + "k").set_value(3)
    app.selectbox(key=key + "loss").set_value("wgan-gp")
    app.button(key=key + "apply").click().run()
    assert "d_steps 2 → 3; loss bce-ns → wgan-gp" in " ".join(s.value for s in app.success)
    rerun_until(app, lambda at: "step 1: d_steps 2 → 3" in shown(at.caption))
    app.number_input(key=key + "lr-g").set_value(-1.0)
    app.button(key=key + "apply").click().run()
    assert "opt_g.lr" in shown(app.error)
    assert not app.exception


def test_change_while_training_names_every_bad_value_at_once(app):
    app.button(key="gauss1d-step-both").click().run()
    rerun_until(app, lambda at: "step **1** of" in text_of(at))
    run_id = app.query_params["run"]
    key = f"gauss1d-change-{run_id[0] if isinstance(run_id, list) else run_id}-"
    app.number_input(key=key + "lr-g").set_value(-1.0)
    app.number_input(key=key + "k").set_value(0)
    app.button(key=key + "apply").click().run()
    (error,) = app.error
    assert "Fix these 2 settings" in error.value
    assert "**G learning rate** (`opt_g.lr`)" in error.value                   # by its label, then its field
    assert "**k (D steps per G step)** (`train.d_steps`)" in error.value
    assert not app.success and not app.exception


def test_the_2d_page_shows_the_stages_in_the_plane():
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/toy2d.py")
    at.run()
    at.toggle(key="teaching-mode").set_value(True).run()
    assert "Settings" not in [e.label for e in at.expander]
    try:
        for number in range(1, 7):
            at.button(key="toy2d-stage").click().run()
            rerun_until(at, lambda a: f"Stage {number} of 6" in text_of(a))
            assert chart_titles(at)[0].startswith(f"Step 1 · {number}. ")
        plane = json.loads(at.get("plotly_chart")[0].proto.spec)
        assert {"D(x)", "generated"} <= {t.get("name") for t in plane["data"]}
        assert not at.exception
    finally:
        at.button(key="toy2d-stop").click().run()


SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(),
                    reason=f"the real MNIST test split is not at {SHARED_DATA}")
@pytest.mark.parametrize("page, expander, kept, summary", [
    ("mnist", "Settings", "train.batch_size", ["**Model** MNIST, quick DCGAN",
                                                         "BCE, non-saturating"]),
    ("autoencoders", "Settings", "train.batch_size", ["**Model** MNIST, autoencoder (seed 002)",
                                                                "lr 0.001"]),
    ("compare", "Shared settings", "cmp:train.seed", ["**Target** 1D Gaussian (converges)", "**6,000 steps**"]),
])
def test_teaching_mode_folds_every_labs_settings_into_one_line(monkeypatch, page, expander, kept, summary):
    monkeypatch.setenv("GANLAB_DATA", str(SHARED_DATA))
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(f"pages/{page}.py")
    at.run()
    at.number_input(key=kept).set_value(7).run()                    # set up before class
    at.toggle(key="teaching-mode").set_value(True).run()
    assert not at.exception
    assert expander not in [e.label for e in at.expander]
    assert kept not in {w.key for w in at.number_input}
    text = text_of(at)
    assert all(part in text for part in summary) and "turn teaching mode off" in text, text[:600]
    if page == "compare":
        assert "non-saturating" not in text.split("turn teaching mode off")[0].split("**Target**")[1]  # each run has its own loss
    at.toggle(key="teaching-mode").set_value(False).run()
    assert at.number_input(key=kept).value == 7                      # nothing was lost
