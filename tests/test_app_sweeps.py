"""The Sweeps page, driven with AppTest: tiny sweeps started from the page on a local Ray (one per test
session: conftest's ray_session), drawn from their results, stopped, opened as a run; a sweep read
back from the run store; bad settings named in words before anything starts."""
import numpy as np
import pytest

from conftest import chart_specs, open_app, plotly_array, shown, wait_for
from ganlab.sweeps import TRIAL_ENDED
from pages import ui

PAGE = "pages/sweeps.py"


@pytest.fixture
def board(app_registry):
    """The page's sweeps (ui.sweeps), emptied for this test; every sweep it started is stopped after."""
    ui.sweeps.clear()
    yield ui.sweeps()
    for sweep in ui.sweeps().values():
        sweep.stop()
        sweep.join(300)
    ui.sweeps.clear()


def query(at, key):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


def set_axis(at, i, field, kind, low, high, n, preset="gauss1d"):
    at.selectbox(key=f"sw-field-{i}").set_value(field).run()
    key = f"sw-{i}-{preset}-{field}"
    at.selectbox(key=f"{key}-kind").set_value(kind)
    at.number_input(key=f"{key}-low").set_value(low)
    at.number_input(key=f"{key}-high").set_value(high)
    at.number_input(key=f"{key}-n").set_value(n)
    at.run()
    assert not at.exception, at.exception


def heatmap(at) -> dict:
    """The map's cells as the browser gets them: {(x, y): (value, words)}."""
    (spec,) = [s for s in chart_specs(at) if any(t["type"] == "heatmap" for t in s["data"])]
    heat = [t for t in spec["data"] if t["type"] == "heatmap" and t.get("showscale") is not False][0]
    back = [t for t in spec["data"] if t["type"] == "heatmap" and t.get("showscale") is False][0]   # no value: grey
    z = plotly_array(heat["z"]) if isinstance(heat["z"], dict) else heat["z"]
    return {(x, y): (z[i][j], heat["text"][i][j] + back["text"][i][j])
            for i, y in enumerate(plotly_array(heat["y"]).tolist())
            for j, x in enumerate(plotly_array(heat["x"]).tolist())}, spec


def test_a_2x2_sweep_started_from_the_page_maps_each_trials_final_meter(board, ray_session):
    at = open_app(PAGE)
    at.number_input(key="sw-steps-gauss1d").set_value(60)
    set_axis(at, 0, "opt_d.lr", "log", 1e-4, 1e-3, 2)
    set_axis(at, 1, "opt_g.lr", "grid", 1e-4, 3e-4, 2)
    assert not at.error
    assert "4 trials (2 × 2, seed 100) of 60 steps each" in shown(at.caption)
    at.button(key="sw-start").click().run()
    assert not at.exception, at.exception
    (sweep,) = board.values()
    assert query(at, "sweep") == sweep.id
    assert sweep.join(600), "the sweep did not end in time"
    rows = sweep.rows()
    assert len(rows) == 4 and all(r["status"] in TRIAL_ENDED for r in rows)
    at.run()
    assert not at.exception, at.exception
    cells, spec = heatmap(at)
    # Each cell carries its trial's final W1 (one seed: the median is the value), and says it in figures.
    for r in rows:
        value, words = cells[(r["opt_d.lr"], r["opt_g.lr"])]
        if r["status"] in ("finished", "collapsed"):
            assert value == pytest.approx(r["w1"]) and words.startswith(f"{r['w1']:.4g}")
        else:   # an ended trial without a result is named on its cell
            assert value is None and r["status"] in words
    assert spec["layout"]["xaxis"]["type"] == "log" and spec["layout"]["yaxis"]["type"] == "linear"
    assert spec["layout"]["xaxis"]["title"]["text"] == "D optimizer: learning rate"
    assert "4** of 4 trials done" in shown(at.markdown) or "4 of 4 trials done" in shown(at.markdown)
    table = at.dataframe[0].value
    assert len(table) == 4 and list(table["trial"]) == [0, 1, 2, 3]
    assert table["W1"].tolist() == pytest.approx([r["w1"] for r in rows])
    # Picked trials' curves overlaid, one line per trial, from what each trial reported.
    at.multiselect(key=f"sw-picked-{sweep.id}").set_value([0, 3]).run()
    at.selectbox(key="sw-curve").set_value("w1").run()
    overlay = [s for s in chart_specs(at) if s["layout"]["title"]["text"] == "W1 to the target by trial"]
    assert len(overlay) == 1 and len(overlay[0]["data"]) == 2
    assert plotly_array(overlay[0]["data"][1]["y"])[-1] == pytest.approx(rows[3]["w1"])


def test_open_as_a_run_trains_the_trials_settings_on_its_lab_page(board, ray_session, app_registry):
    at = open_app(PAGE)
    at.number_input(key="sw-steps-gauss1d").set_value(40)
    set_axis(at, 0, "loss.real_label", "grid", 0.8, 1.0, 2)
    at.button(key="sw-start").click().run()
    (sweep,) = board.values()
    assert sweep.join(600)
    at.run()
    at.multiselect(key=f"sw-picked-{sweep.id}").set_value([0]).run()
    at.button(key=f"sw-open-{sweep.id}-0").click().run()
    assert not at.exception, at.exception
    run = app_registry.get(query(at, "run"))
    assert run is not None and run.name == f"trial 0 of sweep {sweep.id}" and run.id != sweep.rows()[0]["run_id"]
    assert run.cfg == sweep.cfg_of(0) and run.cfg.loss.real_label == 0.8 and run.page == "gauss1d"
    assert [t.value for t in at.title] == ["1D Gaussian lab"]
    assert at.number_input(key="loss.real_label").value == pytest.approx(0.8)   # the lab shows its settings


@pytest.mark.parametrize("kind, low, high, words", [
    ("log", 1e-2, 1e-3, "low (0.01) must not be above high (0.001)"),
    ("log", 0.0, 1e-3, "a log grid needs low > 0, got 0"),
    ("grid", 1e-4, 20.0, "must be in (0, 10], got 20"),      # a value the config refuses, by its field
])
def test_a_bad_range_is_named_by_its_setting_and_nothing_starts(board, kind, low, high, words):
    at = open_app(PAGE)
    set_axis(at, 0, "opt_d.lr", kind, low, high, 3)
    text = shown(at.error)
    assert "D optimizer: learning rate" in text and words in text, text
    assert at.button(key="sw-start").disabled
    assert not board


def test_both_settings_wrong_are_named_at_once(board):
    at = open_app(PAGE)
    set_axis(at, 0, "opt_d.lr", "log", 0.0, 1e-3, 3)
    set_axis(at, 1, "opt_g.lr", "grid", 1e-2, 1e-3, 3)
    text = shown(at.error)
    assert "Fix these 2 settings" in text
    assert "**Setting 1** (D optimizer: learning rate): a log grid needs low > 0, got 0" in text
    assert "**Setting 2** (G optimizer: learning rate): low (0.01) must not be above high (0.001)" in text


def test_a_link_to_a_sweep_this_server_does_not_have_says_so(board):
    from streamlit.testing.v1 import AppTest
    from conftest import APP
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(PAGE)
    at.query_params["sweep"] = "![x](http://evil/x.png)"
    at.run()
    assert not at.exception
    assert "is not on this server" in shown(at.warning) and "(!\\[x\\](http" in at.warning[0].value   # as text
    assert "sweep" not in at.query_params


def test_after_a_restart_the_page_lists_the_stores_sweeps_and_shows_one_as_recorded(board):
    """A sweep another process ran (or this server before a restart) is in the run store only: the page
    lists it, and draws its map and table from the store's rows, with nothing to stop."""
    from ganlab.sweeps import Axis, SweepSpec
    spec = SweepSpec("gauss1d", (Axis("opt_d.lr", "log", 1e-4, 1e-3, 2),), steps=100)
    rows = [{"trial": 0, "seed": 100, "opt_d.lr": 1e-4, "status": "finished", "reason": "", "step": 100,
             "run_id": None, "seconds": 1.5, "w1": 0.42},
            {"trial": 1, "seed": 100, "opt_d.lr": 1e-3, "status": "diverged", "reason": "loss_d is nan",
             "step": 40, "run_id": None, "seconds": 0.7, "w1": None}]
    store = ui.run_store()[0]
    store.save_sweep({"id": "0ldsweep", "created": 1.0, "preset": "gauss1d", "spec": spec.to_json(),
                      "status": "finished", "message": "2 of 2 trials ran to the end", "done": 2, "total": 2,
                      "ended": 2.0},
                     {0: (rows[0], {"step": np.array([50, 100]), "w1": np.array([0.9, 0.42])}), 1: (rows[1], None)})
    at = open_app(PAGE)
    assert at.selectbox(key="sw-shown-none").options == ["0ldsweep: gauss1d, opt_d.lr (finished)"]
    at.selectbox(key="sw-shown-none").set_value("0ldsweep").run()
    assert query(at, "sweep") == "0ldsweep" and not at.exception
    at.run()   # settle: the pick reran the page (st.rerun), and AppTest may still hold the first run's widgets
    cells, _ = heatmap(at)
    assert cells == {(1e-4, 0): (pytest.approx(0.42), "0.42"), (1e-3, 0): (None, "diverged")}
    table = at.dataframe[0].value
    assert list(table["status"]) == ["finished", "diverged"] and list(table["why"])[1] == "loss_d is nan"
    assert "A sweep from the run store" in shown(at.caption)
    assert at.button(key="sw-stop").disabled
    at.multiselect(key="sw-picked-0ldsweep").set_value([0]).run()
    at.selectbox(key="sw-curve").set_value("w1").run()
    (overlay,) = [s for s in chart_specs(at) if s["layout"]["title"]["text"] == "W1 to the target by trial"]
    assert plotly_array(overlay["data"][0]["y"]).tolist() == [0.9, 0.42]


def test_stop_on_the_page_stops_a_running_sweep(board, ray_session):
    at = open_app(PAGE)
    at.number_input(key="sw-steps-gauss1d").set_value(10_000_000)   # would train for hours
    set_axis(at, 0, "opt_d.lr", "grid", 1e-4, 2e-4, 2)
    at.button(key="sw-start").click().run()
    (sweep,) = board.values()
    at.run()
    assert not at.button(key="sw-stop").disabled and at.button(key="sw-start").disabled   # one at a time
    assert wait_for(lambda: any(r["status"] == "running" for r in sweep.rows()), 600)
    at.button(key="sw-stop").click().run()
    assert sweep.join(300), "the sweep did not stop"
    assert sweep.status == "stopped" and {r["status"] for r in sweep.rows()} == {"stopped"}
    at.run()
    assert "Stopped" in shown(at.markdown) and at.button(key="sw-stop").disabled
    assert "0 of 2 trials done" in shown(at.markdown).replace("**", "")
    assert list(at.dataframe[0].value["status"]) == ["stopped", "stopped"]


def test_stop_asks_first_for_a_sweep_another_browser_started(board, ray_session):
    # A class shares the server: one student's Stop must not end another's sweep by a slip of the mouse.
    from conftest import APP
    from ganlab.sweeps import Axis, SweepSpec, start_sweep
    from streamlit.testing.v1 import AppTest
    spec = SweepSpec("gauss1d", (Axis("opt_d.lr", "grid", 1e-4, 2e-4, 2),), steps=10_000_000)
    sweep = start_sweep(spec, store=ui.run_store()[0], owner="another-browser")
    board[sweep.id] = sweep
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(PAGE)
    at.query_params["sweep"] = sweep.id
    at.run()
    at.button(key="sw-stop").click().run()
    assert not at.exception, at.exception
    assert not sweep.stop_requested and "started in another browser" in shown(at.warning)
    at.button(key="sw-confirm-no").click().run()
    assert not sweep.stop_requested and not at.warning
    at.button(key="sw-stop").click().run()
    at.button(key="sw-confirm-yes").click().run()
    assert sweep.stop_requested
    assert sweep.join(300), "the sweep did not stop"
    assert sweep.status == "stopped"
