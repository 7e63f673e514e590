"""The 1D page, driven with Streamlit's AppTest (run_every never fires there,
so the test reruns the script itself while the run trains in its thread)."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from conftest import chart_specs, plotly_array, run_until_ended, shown
from ganlab.presets import get_preset

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def new_app():
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/gauss1d.py")
    return at


def trace_names(spec):
    return {t.get("name") for t in spec["data"]}



@pytest.fixture
def app():
    at = new_app()
    at.run()
    assert not at.exception
    return at


def test_page_shows_controls_and_sidebar(app):
    labels = [b.label for b in app.button]
    for label in ("Start", "Pause", "Step D", "Step G", "Step both", "Stop"):
        assert label in labels
    sidebar = " ".join(c.value for c in app.sidebar.caption)
    assert "Device:" in sidebar and "Data folder:" in sidebar


def test_start_trains_in_the_background_and_draws_the_charts(app):
    app.number_input(key="train.steps").set_value(300)
    app.button(key="gauss1d-start").click().run()
    assert "run" in app.query_params
    text = run_until_ended(app)
    assert "[Finished]" in text and "step **300** of 300" in text
    specs = chart_specs(app)
    assert len(specs) == 5
    density = specs[0]
    assert {"generated (histogram)", "target pdf", "D(x)", "optimal D*(x)"} <= trace_names(density)
    assert "step 300" in density["layout"]["title"]["text"]
    loss = specs[1]
    assert {"D loss", "G loss"} <= trace_names(loss)
    steps = plotly_array([t for t in loss["data"] if t["name"] == "D loss"][0]["x"])   # plotly 7: typed arrays
    assert steps[-1] == 300


def test_a_reload_reattaches_to_the_run_in_the_url(app):
    app.number_input(key="train.steps").set_value(200)
    app.button(key="gauss1d-start").click().run()
    run_id = app.query_params["run"][0] if isinstance(app.query_params["run"], list) else app.query_params["run"]
    run_until_ended(app)
    reloaded = new_app()
    reloaded.query_params["run"] = run_id
    reloaded.run()
    text = " ".join(m.value for m in reloaded.markdown)
    assert "[Finished]" in text and "step **200** of 200" in text
    assert len(chart_specs(reloaded)) == 5


def test_the_pause_button_shows_what_a_click_will_do_at_once(app):
    # The buttons are drawn in the click's own rerun, before the training thread has seen it.
    app.number_input(key="train.steps").set_value(1_000_000)
    app.button(key="gauss1d-step-d").click().run()      # stepping starts a paused run
    assert app.button(key="gauss1d-pause").label == "Resume"
    app.button(key="gauss1d-pause").click().run()
    assert app.button(key="gauss1d-pause").label == "Pause"
    app.button(key="gauss1d-pause").click().run()
    assert app.button(key="gauss1d-pause").label == "Resume"
    app.button(key="gauss1d-stop").click().run()
    assert app.button(key="gauss1d-pause").disabled


def test_a_link_to_a_run_this_server_no_longer_has_says_so():
    at = new_app()
    at.query_params["run"] = "feedbeef0000"
    at.run()
    assert "not on this server" in " ".join(w.value for w in at.warning)
    assert "run" not in at.query_params and not at.exception
    assert [b for b in at.button if b.label == "Start"]            # a fresh page to start from


def test_bad_settings_show_a_message_and_disable_start(app):
    app.number_input(key="opt_g.lr").set_value(-0.001).run()
    errors = shown(app.error)
    assert "**G optimizer: learning rate** (`opt_g.lr`)" in errors and "(0, 10]" in errors   # as the page says it
    app.number_input(key="opt_g.lr").set_value(0.0002)
    app.number_input(key="train.seed").set_value(-1).run()
    assert "**seed** (`train.seed`) must be in [0, 2⁶³ − 1], got -1" in shown(app.error)
    assert app.button(key="gauss1d-start").disabled
    assert not app.exception


def test_the_real_label_is_a_setting_with_its_bounds(app):
    # One-sided label smoothing from the page: the widget sets loss.real_label, checked like any field.
    app.number_input(key="loss.real_label").set_value(0.3).run()
    errors = shown(app.error)
    assert "**real label (BCE, LSGAN)** (`loss.real_label`)" in errors and "[0.5, 1.0]" in errors
    assert app.button(key="gauss1d-start").disabled
    app.number_input(key="loss.real_label").set_value(0.9).run()
    assert not app.error and not app.button(key="gauss1d-start").disabled


def message_under(at, key):
    """What is drawn right under the widget with this key, in its column: an error's or a
    prompt's text, or None when nothing is."""
    def walk(block):
        nodes = list(block.children.values())
        for node, after in zip(nodes, nodes[1:] + [None]):
            if getattr(node, "key", None) == key:
                return after.value if after is not None and after.type in ("alert", "error", "info") else None
            if hasattr(node, "children"):
                found = walk(node)
                if found != "":
                    return found
        return ""
    found = walk(at._tree)
    assert found != "", f"no widget with key {key!r}"
    return found


def test_every_bad_setting_shows_at_once_each_under_its_widget(app):
    app.number_input(key="opt_g.lr").set_value(-0.001)
    app.number_input(key="train.seed").set_value(-1)
    app.number_input(key="model.g_hidden").set_value(0).run()
    errors = shown(app.error)
    assert "Fix these 3 settings to start" in errors
    for named in ("**G optimizer: learning rate** (`opt_g.lr`)", "**seed** (`train.seed`)",
                  "**G width** (`model.g_hidden`)"):   # each by its widget's label
        assert named in errors
    assert "must be in (0, 10" in message_under(app, "opt_g.lr") and "got -0.001" in message_under(app, "opt_g.lr")
    assert "got -1" in message_under(app, "train.seed")
    assert "got 0" in message_under(app, "model.g_hidden")
    assert message_under(app, "opt_d.lr") is None and message_under(app, "train.steps") is None
    assert app.button(key="gauss1d-start").disabled and not app.exception
    app.number_input(key="model.g_hidden").set_value(64).run()
    assert "Fix these 2 settings" in shown(app.error) and message_under(app, "model.g_hidden") is None


def test_another_preset_or_model_starts_its_widgets_afresh(app, monkeypatch):
    from ganlab.models import MLP, MODELS, ModelSpec, mlp1d
    monkeypatch.setitem(MODELS, "throwaway1d", ModelSpec("throwaway1d", "gauss1d", "Throwaway", mlp1d.build,
                                                         settings=MLP))
    app.number_input(key="train.steps").set_value(777)
    app.number_input(key="model.g_hidden").set_value(24).run()
    app.selectbox(key="g1d-preset").set_value("gauss1d-wgan-gp").run()
    wgan = get_preset("gauss1d-wgan-gp").config
    assert app.number_input(key="train.steps").value == wgan.train.steps
    assert app.number_input(key="model.g_hidden").value == wgan.model.g_hidden
    assert "cfg" not in app.query_params                       # the page shows that preset, as it is
    app.number_input(key="opt_g.lr").set_value(3e-4)          # a field outside the model section stays
    app.number_input(key="model.d_hidden").set_value(7).run()
    app.selectbox(key="model.name").set_value("throwaway1d").run()   # no preset: the model's defaults
    assert app.number_input(key="model.d_hidden").value == 64 and app.number_input(key="opt_g.lr").value == 3e-4


def test_a_typo_in_a_mixture_list_is_named(app):
    app.selectbox(key="target.kind").set_value("mixture").run()
    assert app.text_input(key="target.means").value == "-2, 2"      # numbers as typed, not "-3.0"
    app.text_input(key="target.means").set_value("abc, 3").run()
    errors = shown(app.error)
    assert "target.means" in errors and "'abc' is not a number" in errors and "length" not in errors
    assert app.button(key="gauss1d-start").disabled
    assert app.number_input(key="train.seed")                  # the settings after it are still drawn


def test_seed000_preset_warns_that_it_does_not_converge(app):
    app.selectbox(key="g1d-preset").set_value("gauss1d-seed000").run()
    assert any("does not converge" in w.value for w in app.warning)
