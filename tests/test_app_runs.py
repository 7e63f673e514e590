"""The Runs page, and links that carry a page's settings (?preset=&cfg=), driven with AppTest.

The pages share one run registry per process (st.cache_resource); the tests
reach the same one through pages.ui.registry() to make runs and check them.
"""
import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import chart_specs, plotly_array, shown, tiny, wait_for
from ganlab.config import ConfigError, decode_config, encode_config
from ganlab.labels import run_labels
from ganlab.presets import PRESETS, get_preset

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def registry(app_registry):
    return app_registry


def open_page(page="pages/runs.py", **query):
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(page)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def query(at, key):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


def array(field) -> list:
    """A trace's x or y from a figure's JSON, as a list."""
    return plotly_array(field).tolist()


def by_label(widgets, label):
    (widget,) = [w for w in widgets if w.label == label]
    return widget


# -- the Runs page ------------------------------------------------------------------------------

def test_an_empty_registry_says_where_runs_come_from(registry):
    at = open_page()
    assert any("No runs yet" in i.value for i in at.info)
    assert not at.dataframe


def test_the_table_lists_every_run_with_its_state_and_meters(registry):
    done = registry.create(tiny(steps=100), name="finished one", page="gauss1d")
    assert done.join(60)
    waiting = registry.create(tiny(steps=5000), name="paused one", page="gauss1d", paused=True)
    assert wait_for(lambda: waiting.status == "paused")
    table = open_page().dataframe[0].value
    labels = run_labels([done, waiting])
    assert list(table["run"]) == [labels[waiting.id], labels[done.id]]   # newest first
    rows = table.set_index("run")
    assert rows.loc[labels[done.id], "status"].startswith("Finished")   # and its verdict (test_app_verdict)
    assert rows.loc[labels[done.id], "steps"] == "100 / 100"
    assert rows.loc[labels[waiting.id], "steps"] == "0 / 5,000"
    assert set(rows["loss"]) == {"BCE non-saturating"}
    assert "device" not in rows           # every run on the same CPU: nothing to tell apart
    # The latest W1 and KS of the finished run, as its snapshot has them, under the meters' headings.
    assert rows.loc[labels[done.id], "W1"] == pytest.approx(done.snapshot().latest("w1"))
    assert 0 <= rows.loc[labels[done.id], "KS"] <= 1


def shown_cells(at, index=0):
    """The table as the browser shows it: st.dataframe sends a Styler's display values."""
    import pyarrow as pa
    return pa.ipc.open_stream(at.dataframe[index].proto.arrow_data.styler.display_values).read_pandas()


def test_the_table_reads_in_words_with_a_dash_where_a_meter_does_not_apply(registry):
    from ganlab.meters import meter, summary_meters
    one_d = registry.create(tiny(steps=50), name="1d")
    two_d = registry.create(get_preset("toy2d-ring").config.replace(train={"steps": 20}), name="2d", page="toy2d")
    ae = registry.create(get_preset("mnist-ae-seed002").config, name="ae", start=False)
    assert one_d.join(60) and two_d.join(60)
    at = open_page()
    cells = shown_cells(at)
    # Headings are words, never a column's field name (w1, ks, fid, modes_covered, ...).
    assert not set(cells.columns) & (set(summary_meters()) | {"id", "page", "name", "wall_s", "gpu_memory"})
    # Runs of two labs fit a projector's 1280 px: four columns of words, of fixed widths, then a short
    # heading (the meter spec's) for each meter some run has, and only those.
    assert list(cells.columns) == ["run", "status", "loss", "steps", "W1", "KS", "modes"]
    assert [meter(m).heading for m in ("w1", "ks", "modes_covered")] == ["W1", "KS", "modes"]
    columns = json.loads(at.dataframe[0].proto.columns)
    assert sum(columns[name].get("width", 1000) for name in ("run", "status", "loss")) <= 480   # fixed
    # Pointed at, a short heading gives the meter's words and which way is better.
    assert columns["W1"]["help"] == "W1 to the target, lower is better"
    assert columns["modes"]["help"] == "modes covered, higher is better"
    # No cell says None (or nan): a meter that does not apply is a dash, in the values sent and in
    # what the browser draws for a missing number (which ignores the values sent for it).
    assert not any(str(v).strip() in ("None", "nan", "NaN", "") for v in cells.to_numpy().ravel())
    assert at.dataframe[0].proto.placeholder == "—"
    cells = cells.set_index("run")
    labels = run_labels([one_d, two_d, ae])
    assert cells.loc[labels[two_d.id], "W1"] == "—" and cells.loc[labels[one_d.id], "modes"] == "—"
    assert float(cells.loc[labels[one_d.id], "W1"]) == pytest.approx(one_d.snapshot().latest("w1"), rel=1e-3)
    # An autoencoder's loss is its reconstruction, not the GAN loss its config carries unused.
    assert cells.loc[labels[ae.id], "loss"] == "MSE reconstruction"


def test_two_runs_of_one_preset_are_told_apart_by_what_they_changed(registry):
    preset = get_preset("gauss1d")
    registry.create(preset.config, name="gauss1d", page="gauss1d", start=False)
    registry.create(preset.config.replace(train={"d_steps": 5}, opt_d={"lr": 0.01}),
                    name="gauss1d", page="gauss1d", start=False)
    at = open_page()
    newest, oldest = list(at.dataframe[0].value["run"])
    assert newest != oldest
    assert re.fullmatch(r"gauss1d · \d\d:\d\d", oldest)                      # nothing changed
    assert re.fullmatch(r"gauss1d · \d\d:\d\d · lr_d 0\.01, k 5", newest)
    # The picker says the same.
    assert at.multiselect(key="runs-chosen").options == [newest, oldest]


def test_actions_apply_to_the_picked_runs_only(registry):
    picked = registry.create(tiny(steps=10_000_000), name="picked")
    other = registry.create(tiny(steps=10_000_000), name="other")
    assert wait_for(lambda: picked.status == "running" and other.status == "running")
    at = open_page()
    at.multiselect(key="runs-chosen").set_value([picked.id]).run()
    at.button(key="runs-pause").click().run()
    assert wait_for(lambda: picked.status == "paused")
    at.button(key="runs-resume").click().run()
    assert wait_for(lambda: picked.status == "running")
    at.button(key="runs-stop").click().run()
    assert picked.status == "stopped" and not picked.alive
    assert other.status == "running"
    at.button(key="runs-delete").click().run()
    assert not at.exception, at.exception
    assert registry.get(picked.id) is None and registry.get(other.id) is other
    assert list(at.dataframe[0].value["run"]) == [run_labels([other])[other.id]]
    assert at.multiselect(key="runs-chosen").value == []


def test_open_links_to_the_runs_own_page(registry):
    run = registry.create(tiny(steps=50), name="mine", page="gauss1d")
    assert run.join(60)
    at = open_page()
    assert not at.get("page_link")              # nothing picked, nothing to open
    at.multiselect(key="runs-chosen").set_value([run.id]).run()
    (link,) = at.get("page_link")
    assert link.proto.page == "gauss1d" and link.proto.query_string == f"run={run.id}"


def test_the_overlay_draws_one_line_per_picked_run(registry):
    a = registry.create(tiny(steps=100, seed=1), name="a")
    b = registry.create(tiny(steps=100, seed=2), name="b")
    c = registry.create(tiny(steps=100, seed=3), name="c")
    assert all(r.join(60) for r in (a, b, c))
    at = open_page()
    at.multiselect(key="runs-chosen").set_value([a.id, c.id]).run()
    assert {"D loss (loss_d)", "G loss (loss_g)", "W1 to the target (w1)", "KS statistic (ks)"} <= set(
        at.selectbox(key="runs-metric").options)                     # in words, with the column's name
    at.selectbox(key="runs-metric").set_value("w1").run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["title"]["text"] == "W1 to the target by run"
    lines = {t["name"]: t for t in spec["data"]}
    labels = run_labels([a, b, c])
    assert set(lines) == {labels[a.id], labels[c.id]}
    steps, values = a.snapshot().series("w1")
    assert array(lines[labels[a.id]]["y"]) == pytest.approx(list(values))


@pytest.fixture
def downloads(monkeypatch):
    """{file name: what it holds} for the deferred download buttons drawn, made as a click makes them."""
    from streamlit.runtime.media_file_manager import MediaFileManager
    made = {}
    add = MediaFileManager.add_deferred

    def spy(self, data_callable, mimetype, coordinates, file_name=None, **options):
        made[file_name] = data_callable
        return add(self, data_callable, mimetype, coordinates, file_name=file_name, **options)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    return made


def test_the_overlay_smooths_takes_log_y_and_wall_time_and_downloads_its_data(registry, downloads):
    import csv
    import io
    from ganlab.chartview import ema
    run = registry.create(tiny(steps=200), name="a")
    assert run.join(60)
    label = run_labels([run])[run.id]
    steps, values = run.snapshot().series("loss_d")
    at = open_page()
    at.selectbox(key="runs-metric").set_value("loss_d").run()

    def overlay():
        spec = json.loads(at.get("plotly_chart")[0].proto.spec)
        return spec, {t["name"]: t for t in spec["data"]}

    spec, lines = overlay()
    assert array(lines[label]["y"]) == pytest.approx(list(ema(values, 0.95)))     # the default smoothing
    assert spec["layout"]["yaxis"]["type"] == "linear" and spec["layout"]["xaxis"]["title"]["text"] == "step"
    at.slider(key="runs-smoothing").set_value(0.5)
    at.toggle(key="runs-log-y").set_value(True)
    at.segmented_control(key="runs-x").set_value("wall").run()
    spec, lines = overlay()
    assert array(lines[label]["y"]) == pytest.approx(list(ema(values, 0.5)))
    assert spec["layout"]["yaxis"]["type"] == "log"
    assert spec["layout"]["xaxis"]["title"]["text"] == "wall time (s)"
    seconds = run.snapshot().wall_seconds(steps)
    assert array(lines[label]["x"]) == pytest.approx(list(seconds))
    assert 0 <= seconds[0] <= seconds[-1] <= run.wall_seconds

    # The CSV button under the chart holds the chart's data: each point of the raw curve, as drawn.
    rows = list(csv.DictReader(io.StringIO(downloads["runs-overlay.csv"]())))
    raw = [r for r in rows if r["series"] == f"{label} (raw)"]
    assert [float(r["wall time (s)"]) for r in raw] == pytest.approx(list(seconds))
    assert [float(r["loss_d"]) for r in raw] == pytest.approx(list(values))


def test_the_page_keeps_working_after_another_tab_deletes_a_picked_run(registry):
    run = registry.create(tiny(steps=20), name="gone soon")
    keep = registry.create(tiny(steps=20), name="stays")
    assert run.join(60) and keep.join(60)
    at = open_page()
    at.multiselect(key="runs-chosen").set_value([run.id, keep.id]).run()
    registry.delete(run.id)                     # as another tab would
    at.run()
    assert not at.exception, at.exception
    assert at.multiselect(key="runs-chosen").value == [keep.id]


# -- configs in the URL -------------------------------------------------------------------------

@pytest.mark.parametrize("slug", sorted(PRESETS))
def test_every_preset_roundtrips_through_the_url(slug):
    base = get_preset(slug).config
    changed = base.replace(train={"steps": 1234, "seed": 99, "batch_size": 2 * base.train.batch_size},
                           opt_d={"lr": 3.5e-4}, loss={"gp_lambda": 2.5})
    for cfg in (base, changed):
        text = encode_config(cfg, base)
        assert decode_config(text, base) == cfg
        assert all(ch.isalnum() or ch in "-_" for ch in text)   # nothing to escape in a URL
    assert len(encode_config(base, base)) < 40                    # only what differs travels


@pytest.mark.parametrize("text", ["", "not base64!", "bm90IGpzb24", encode_config(tiny(), tiny())[:-3]])
def test_a_garbled_link_is_a_config_error(text):
    with pytest.raises(ConfigError):
        decode_config(text, get_preset("gauss1d").config)


def test_a_link_from_another_page_or_out_of_range_is_a_config_error():
    mnist = get_preset("mnist-dcgan").config
    with pytest.raises(ConfigError, match="gauss1d page"):
        decode_config(encode_config(mnist, mnist), get_preset("gauss1d").config)
    base = get_preset("gauss1d").config
    forged = base64.urlsafe_b64encode(b'{"task":"gauss1d","train":{"batch_size":0}}').decode()
    with pytest.raises(ConfigError, match="train.batch_size"):
        decode_config(forged, base)
    typed = base64.urlsafe_b64encode(b'{"task":"gauss1d","model":{"g_activation":5}}').decode()
    with pytest.raises(ConfigError):
        decode_config(typed, base)
    path = base64.urlsafe_b64encode(b'{"task":"gauss1d","train":{"data_dir":"/etc"}}').decode()
    with pytest.raises(ConfigError, match="path on the server"):
        decode_config(path, base)


def test_a_link_opens_the_1d_page_with_its_settings_and_start_uses_them(registry):
    preset = get_preset("gauss1d-bimodal")
    cfg = preset.config.replace(train={"steps": 40, "seed": 7, "batch_size": 96, "device": "cpu"},
                                opt_g={"lr": 5e-4}, model={"g_hidden": 24})
    at = open_page("pages/gauss1d.py", preset=preset.slug, cfg=encode_config(cfg, preset.config))
    assert at.selectbox(key="g1d-preset").value == preset.slug
    assert by_label(at.number_input, "steps").value == 40
    assert by_label(at.number_input, "seed").value == 7
    assert by_label(at.number_input, "batch size").value == 96
    assert by_label(at.number_input, "G width").value == 24
    assert by_label(at.selectbox, "device").value == "cpu"
    assert [w.value for w in at.number_input if w.label == "learning rate"] == [5e-4, preset.config.opt_d.lr]
    at.button(key="gauss1d-start").click().run()
    run = registry.get(query(at, "run"))
    assert run is not None and run.cfg == cfg                   # Start reproduces the linked experiment
    assert decode_config(query(at, "cfg"), preset.config) == cfg  # and the URL still holds it


def test_a_busier_server_keeps_the_linked_settings_of_a_run_just_started(registry, monkeypatch):
    # The charts poll more slowly when drawing them gets slow (ui.DrawLoad). A server that gets busier
    # while Start is being answered must not cut that answer short: the page keeps the link's preset
    # and settings. (Under a loaded CI, the first page drawn in a process is slow enough for this.)
    preset = get_preset("gauss1d-bimodal")
    cfg = preset.config.replace(train={"steps": 100_000, "seed": 7}, model={"g_hidden": 24})
    at = open_page("pages/gauss1d.py", preset=preset.slug, cfg=encode_config(cfg, preset.config))
    from pages import ui
    paces = iter([1.0] + [4.0] * 100)     # the pace the charts start at, then a busier server's
    monkeypatch.setattr(ui.DrawLoad, "interval", lambda self: next(paces))
    at.button(key="gauss1d-start").click().run()
    run = registry.get(query(at, "run"))
    try:
        assert at.selectbox(key="g1d-preset").value == preset.slug
        assert query(at, "preset") == preset.slug and decode_config(query(at, "cfg"), preset.config) == cfg
    finally:
        run.stop()


def test_changing_a_setting_writes_it_into_the_url():
    at = open_page("pages/gauss1d.py")
    assert query(at, "preset") == "gauss1d" and query(at, "cfg") is None   # the preset as it is
    at.number_input(key="train.steps").set_value(777).run()
    at.number_input(key="train.seed").set_value(3).run()
    linked = decode_config(query(at, "cfg"), get_preset("gauss1d").config)
    assert (linked.train.steps, linked.train.seed) == (777, 3)
    # Opening that URL in a fresh session shows the same settings.
    again = open_page("pages/gauss1d.py", preset="gauss1d", cfg=query(at, "cfg"))
    assert by_label(again.number_input, "steps").value == 777 and by_label(again.number_input, "seed").value == 3
    # Switching preset puts that preset in the URL.
    at.selectbox(key="g1d-preset").set_value("gauss1d-wgan-gp").run()
    assert query(at, "preset") == "gauss1d-wgan-gp"


@pytest.mark.parametrize("query_args", [{"preset": "gauss1d", "cfg": "garbled!!"},
                                        {"preset": "no-such-preset", "cfg": "eyJ9"},
                                        {"preset": "mnist-dcgan"}])
def test_a_bad_link_warns_and_falls_back_to_the_preset(query_args):
    at = open_page("pages/gauss1d.py", **query_args)
    assert any("link" in w.value for w in at.warning)
    assert by_label(at.number_input, "steps").value == get_preset("gauss1d").config.train.steps
    assert not at.button(key="gauss1d-start").disabled


def test_a_link_opens_the_mnist_page_with_its_settings(monkeypatch, mnist_dir):
    monkeypatch.setenv("GANLAB_DATA", str(mnist_dir))
    preset = get_preset("mnist-dcgan")
    cfg = preset.config.replace(train={"steps": 30, "batch_size": 16, "seed": 4}, noise={"dim": 20})
    at = open_page("pages/mnist.py", preset=preset.slug, cfg=encode_config(cfg, preset.config))
    assert at.selectbox(key="mn-preset").value == preset.slug
    assert by_label(at.number_input, "batch size").value == 16
    assert by_label(at.number_input, "steps").value == 30
    assert by_label(at.number_input, "latent size (z dims)").value == 20
    assert by_label(at.number_input, "seed").value == 4
    assert decode_config(query(at, "cfg"), preset.config) == cfg



# -- text from outside is shown as text ------------------------------------------------------------

IMAGE = "![i](http://127.0.0.1:9/x.png) **bold** <img src=x> :red[red] [a link](http://example.com)"


def rendered_markup(texts) -> list[str]:
    """Markup a Markdown renderer would act on, in texts written for one: an unescaped image,
    link, bold, HTML tag or Streamlit directive (the page escapes text from outside with a backslash)."""
    import re
    found = []
    for text in texts:
        bare = re.sub(r"\\.", "", text)                      # escaped characters render as themselves
        found += re.findall(r"!\[|\]\(|\*\*bold|<img|:red\[", bare)
    return found


def markdown_texts(at) -> list[str]:
    kinds = ("markdown", "caption", "warning", "error", "info", "success")
    return [e.value for kind in kinds for e in at.get(kind)] + [link.proto.label for link in at.get("page_link")]


def test_markdown_in_a_run_name_is_shown_as_typed(registry):
    run = registry.create(tiny(steps=20), name=IMAGE, page="gauss1d")
    assert run.join(60)
    at = open_page()
    at.multiselect(key="runs-chosen").set_value([run.id]).run()
    at.selectbox(key="runs-metric").set_value("w1").run()
    texts = markdown_texts(at)
    assert any("127.0.0.1" in t for t in texts)                          # the name is there, as text
    assert rendered_markup(texts) == []
    legend = [t["name"] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert all("<img" not in name and "&lt;img" in name for name in legend)   # escaped for plotly's HTML


@pytest.mark.parametrize("query_args", [{"preset": IMAGE}, {"run": IMAGE},
                                        {"preset": "gauss1d", "cfg": base64.urlsafe_b64encode(json.dumps(
                                            {"task": "gauss1d", "model": {IMAGE: 1}}).encode()).decode()}])
def test_markdown_in_a_link_is_shown_as_typed(query_args):
    at = open_page("pages/gauss1d.py", **query_args)
    texts = markdown_texts(at)
    assert any("127.0.0.1" in t for t in texts) and rendered_markup(texts) == []


def test_a_link_over_this_servers_budget_is_refused_on_start_with_its_cost(registry):
    cfg = PRESETS["gauss1d"].config.replace(train={"batch_size": 1_000_000})
    at = open_page("pages/gauss1d.py", preset="gauss1d", cfg=encode_config(cfg, PRESETS["gauss1d"].config))
    at.button(key="gauss1d-start").click().run()
    warning = " ".join(w.value for w in at.warning)
    assert "this run needs about" in warning and "GB" in warning and registry.list() == []
    assert not at.exception


def test_live_charts_poll_more_slowly_when_drawing_them_takes_the_server_busy():
    from pages.ui import REFRESH_SECONDS, DrawLoad
    load = DrawLoad()
    assert load.interval() == REFRESH_SECONDS                     # nothing drawn yet: once a second
    for session in range(10):                                     # ten tabs, 0.1 s a redraw each
        load.record((f"tab{session}", "density"), 0.1)
    assert load.interval() == pytest.approx(4.0)                  # drawing takes at most a quarter of the time
    for session in range(40):
        load.record((f"tab{session}", "density"), 0.2)
    assert load.interval() == DrawLoad.MAX_SECONDS                # and charts still move every 5 s
    quiet = DrawLoad()
    quiet.record(("tab0", "density"), 0.05)
    assert quiet.interval() == REFRESH_SECONDS


def test_the_runs_page_stops_another_browsers_run_only_after_a_confirmation(registry):
    theirs = registry.create(tiny(steps=10_000_000), name="theirs", owner="another browser")
    at = open_page()
    at.multiselect(key="runs-chosen").set_value([theirs.id]).run()
    at.button(key="runs-stop").click().run()
    assert theirs.status == "running"
    assert "started in another browser" in " ".join(w.value for w in at.warning)
    at.button(key="runs-confirm-no").click().run()              # Cancel: nothing happens
    assert theirs.status == "running" and not at.warning
    at.button(key="runs-stop").click().run()
    at.button(key="runs-confirm-yes").click().run()
    assert wait_for(lambda: not theirs.alive) and theirs.status == "stopped"
    mine = registry.create(tiny(steps=10_000_000), name="mine")    # nobody's (the command line's): no question
    at.multiselect(key="runs-chosen").set_value([mine.id]).run()
    at.button(key="runs-stop").click().run()
    assert mine.status == "stopped" and not at.warning


# -- the run store: runs after a restart ------------------------------------------------------------

def restart():
    """What a new server process starts from: no runs in memory, the store opened afresh."""
    from ganlab import store
    from pages import ui
    ui.registry.clear()
    ui.run_store.clear()
    store._OPENED.clear()


def test_after_a_restart_the_runs_page_lists_stored_runs_and_their_links_draw_the_charts(registry):
    old = registry.create(tiny(steps=150), name="older ![x](http://example.com/x.png)", page="gauss1d")
    assert old.join(60)
    new = registry.create(tiny(steps=200), name="newer", page="gauss1d")
    assert new.join(60)
    registry.store.flush()
    live = new.snapshot()
    restart()

    at = open_page()
    table = at.dataframe[0].value
    newer, older = list(table["run"])                 # newest first, each labelled by its name
    assert newer.startswith("newer · ") and older.startswith("older ![x](http://example.com/x.png) · ")
    assert [status.split(" · ")[0] for status in table["status"]] == ["Finished", "Finished"]   # then a verdict
    assert list(table["steps"]) == ["200 / 200", "150 / 150"]
    at.multiselect(key="runs-chosen").set_value([old.id]).run()
    links = [link for link in at.get("page_link")]
    assert len(links) == 1 and "!\\[x\\](http" in links[0].proto.label   # the name as text, never an image

    page = open_page("pages/gauss1d.py", run=new.id)
    text = " ".join(m.value for m in page.markdown)
    assert "[Finished]" in text and "step **200** of 200" in text
    specs = chart_specs(page)
    assert len(specs) == 5
    loss = [t for t in specs[1]["data"] if t["name"] == "D loss"][0]
    assert array(loss["x"]) == live.metrics["step"].tolist()
    # No checkpoint, but the store kept its models when it ended: it trains on from them.
    assert any("kept its models as they were at step 200" in c.value for c in page.caption)
    page.button(key=f"stored-resume-{new.id}").click().run()
    assert not page.exception
    from pages import ui
    resumed = ui.registry().get(query(page, "run"))
    assert resumed.id != new.id and resumed.cfg.train.steps == 400
    assert resumed.join(60) and resumed.status == "finished" and resumed.step == 400

    ui.registry().store.kept_state(old.id, old.name).unlink()   # neither kept models nor a checkpoint
    page = open_page("pages/gauss1d.py", run=old.id)
    assert any("cannot train on" in c.value for c in page.caption)
    assert not [b for b in page.button if b.key == f"stored-resume-{old.id}"]


def test_a_stored_run_with_a_checkpoint_offers_resume(registry, tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_SAVES", str(tmp_path / "saves"))
    from ganlab import checkpoints
    run = registry.create(tiny(steps=100), name="saved", page="gauss1d")
    assert run.join(60)
    checkpoints.save(run)
    registry.store.flush()
    restart()
    page = open_page("pages/gauss1d.py", run=run.id)
    page.button(key=f"stored-resume-{run.id}").click().run()
    assert not page.exception
    resumed = query(page, "run")
    assert resumed != run.id
    from pages import ui
    assert ui.registry().get(resumed).cfg.train.steps == 200     # a finished run trains on to twice its steps


def test_a_stored_mnist_run_keeps_its_grid_history_slider(registry, monkeypatch):
    from ganlab.losses import LOSSES
    from test_store import Recorded, grid
    if not (Path(__file__).resolve().parents[2] / "shared" / "data" / "MNIST" / "raw").is_dir():
        pytest.skip("the real MNIST test split is not in ../shared/data")
    monkeypatch.setenv("GANLAB_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    run = Recorded(get_preset("mnist-mlp-seed003").config, "mnist-mlp-seed003", "mnist")
    ring = [(step, grid(step)) for step in (100, 200, 300)]
    run.publish(300, grids=ring)
    registry.store.watch(run)
    run.snap = run.snap.__class__(**{**run.snap.__dict__, "status": "finished",
                                     "meters": {"step": np.array([100, 200, 300]),
                                                "d_real_test": np.array([.6, .55, .5]),
                                                "d_fake_test": np.array([.3, .4, .45])},
                                     "views": LOSSES["bce-ns"].display()})
    run.alive = False
    registry.store.flush()
    restart()
    page = open_page("pages/mnist.py", run=run.id)
    page.toggle(key="mn-follow").set_value(False).run()
    slider = page.select_slider(key="mn-grid-step")
    assert list(slider.options) == ["100", "200", "300"]
    slider.set_value(200).run()
    (figure,) = [s for s in chart_specs(page) if "Samples" in s["layout"]["title"]["text"]]
    assert "step 200" in figure["layout"]["title"]["text"]


def test_a_corrupt_store_file_is_named_in_one_line_and_the_app_works_without_it(registry, monkeypatch, tmp_path):
    folder = tmp_path / "broken-store"
    folder.mkdir()
    (folder / "runs.sqlite").write_bytes(b"not a database" * 200)
    monkeypatch.setenv("GANLAB_STORE", str(folder))
    restart()
    at = open_page("pages/gauss1d.py")
    (warning,) = [w.value for w in at.sidebar.warning]
    assert "Run store off" in warning and "runs.sqlite" in warning and "nothing was deleted" in warning
    at.number_input(key="train.steps").set_value(100)
    at.button(key="gauss1d-start").click().run()
    assert not at.exception and "run" in at.query_params
    assert (folder / "runs.sqlite").read_bytes() == b"not a database" * 200
    from pages import ui
    assert ui.registry().store is None
    ui.registry().stop_all()


def test_the_page_says_when_recording_stopped(registry, monkeypatch):
    import sqlite3

    from ganlab.store import Store

    def full(self, t, snap, now):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "_write", full)
    run = registry.create(tiny(steps=100), name="unrecorded", page="gauss1d")
    assert run.join(60)
    assert wait_for(lambda: registry.store.problem(run.id) is not None)
    page = open_page("pages/gauss1d.py", run=run.id)
    text = " ".join(w.value for w in page.warning)
    assert "recording stopped" in text and "training goes on" in text


def test_a_run_another_process_trains_is_watched_here_never_steered(registry):
    from ganlab.runs import RunRegistry
    other = RunRegistry(store=registry.store)   # another process's registry, recording into the same store
    run = other.create(tiny(steps=10_000_000), name="trained elsewhere", page="gauss1d")
    try:
        assert wait_for(lambda: run.status == "running")
        registry.store.flush()
        stored = registry.get(run.id)
        assert stored is not run and stored.stored and stored.status == "running"   # its row, this process's pid

        page = open_page("pages/gauss1d.py", run=run.id)
        assert "[Training]" in " ".join(m.value for m in page.markdown)
        assert page.button(key="gauss1d-stop").disabled and page.button(key="gauss1d-pause").disabled
        assert not page.button(key="gauss1d-start").disabled        # Start trains a run of this browser's own
        said = [c.value for c in page.caption if "another process" in c.value.lower()]
        assert len(said) == 1                                        # once, not again below the charts
        assert "Another process trains this run" in said[0] and "only that process can pause, step or stop" in said[0]
        assert all(e.label != "Change while training" for e in page.expander)

        at = open_page()
        at.multiselect(key="runs-chosen").set_value([run.id]).run()
        for button, words in (("runs-pause", "paused"), ("runs-stop", "stopped")):
            at.button(key=button).click().run()
            notice = shown(at.caption)
            assert f"1 run is trained by another process and can only be {words} there." in notice
            assert "Stop: 1 run" not in notice and "Pause: 1 run" not in notice
        assert run.status == "running"
    finally:
        other.stop_all()


def test_a_runs_page_shows_its_status_changes_also_after_a_restart(registry):
    run = registry.create(tiny(steps=10_000_000), name="paused once", page="gauss1d")
    for control, status in ((None, "running"), (run.pause, "paused"), (run.resume, "running"), (run.stop, "stopped")):
        if control is not None:
            control()
        assert wait_for(lambda: run.status == status)
        registry.store.flush()
    changes = [(step, status) for _, step, status in registry.store.statuses(run.id) if status != "starting"]
    assert [status for _, status in changes] == ["running", "paused", "running", "stopped"]
    assert [step for step, _ in changes] == sorted(step for step, _ in changes)
    expected = ("Status changes, by step: " +
                " · ".join(f"{word} at {step:,}" for (step, _), word in
                           zip(changes, ["training", "paused", "training", "stopped"])))

    page = open_page("pages/gauss1d.py", run=run.id)          # a run of this process
    assert expected in shown(page.caption)
    restart()
    page = open_page("pages/gauss1d.py", run=run.id)          # read back from the store
    assert expected in shown(page.caption)


def test_after_a_restart_a_loss_lab_link_draws_its_runs_charts(registry):
    from ganlab import compare
    from ganlab.losses import LOSSES
    runs = compare.start_comparison(registry, tiny(steps=100), ["bce-ns", "wgan-gp"], name="gauss1d")
    assert all(r.join(120) for r in runs)
    registry.store.flush()
    group = runs[0].lockstep.group
    live = {r.cfg.loss.name: r.snapshot() for r in runs}
    restart()

    page = open_page("pages/compare.py", group=group)
    assert not any("not on this server" in w.value for w in page.warning)
    assert query(page, "group") == group
    text = " ".join(m.value for m in page.markdown)
    assert text.count("[Finished]") == 2 and text.count("step **100** of 100") == 2
    (w1,) = [s for s in chart_specs(page) if s["layout"]["title"]["text"].startswith("W1 distance")]
    lines = {t["name"]: t for t in w1["data"]}
    for loss, snap in live.items():
        line = lines[LOSSES[loss].short]
        assert array(line["x"]) == snap.meters["step"].tolist()
        assert array(line["y"]) == pytest.approx(snap.meters["w1"].tolist())


def test_a_comparison_another_process_trains_is_watched_in_the_loss_lab_never_steered(registry):
    from ganlab import compare
    from ganlab.runs import RunRegistry
    other = RunRegistry(store=registry.store)   # another process's registry, recording into the same store
    runs = compare.start_comparison(other, tiny(steps=10_000_000), ["bce-ns", "wgan-gp"], name="gauss1d")
    try:
        assert wait_for(lambda: all(r.status == "running" for r in runs))
        registry.store.flush()
        page = open_page("pages/compare.py", group=runs[0].lockstep.group)
        assert shown(page.markdown).count("[Training]") == 2
        keys = ["cmp-pause", "cmp-stop"] + [f"cmp-{what}-{r.id}" for r in runs for what in ("pause", "stop")]
        assert all(page.button(key=key).disabled for key in keys)
        assert any("Another process trains this comparison" in c.value for c in page.caption)
    finally:
        other.stop_all()
