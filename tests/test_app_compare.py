"""The Loss lab page, driven with AppTest (run_every never fires there, so the test reruns the
script itself while the runs train in their threads)."""
import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import wait_for
from ganlab.compare import group_runs

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
SHARED_DATA = ROOT.parent / "shared" / "data"
LOSS_NAMES = {"BCE non-saturating", "BCE saturating", "WGAN clip", "WGAN-GP"}   # picked by default


def open_page(monkeypatch=None, data_dir=None, group=None):
    if monkeypatch is not None and data_dir is not None:
        monkeypatch.setenv("GANLAB_DATA", str(data_dir))
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/compare.py")
    if group:
        at.query_params["group"] = group
    at.run()
    assert not at.exception, at.exception
    return at


def text_of(at) -> str:
    return " ".join(m.value for m in at.markdown)


def charts_by_title(at) -> dict:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {s["layout"]["title"]["text"]: s for s in specs}


def rerun_until(at, predicate, timeout=90):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        at.run()
        if predicate(text_of(at)):
            return text_of(at)
        time.sleep(0.3)
    raise AssertionError(f"timed out; the page says: {text_of(at)[-600:]}")


def group_of(at) -> str:
    group = at.query_params["group"]
    return group[0] if isinstance(group, list) else group


def test_four_tiny_runs_train_side_by_side_and_the_charts_compare_them():
    at = open_page()
    assert "Four copies of one GAN" in text_of(at)                     # what to look for
    assert "How the losses differ" in [h.value for h in at.subheader]
    at.number_input(key="cmp:train.steps").set_value(60)
    at.button(key="cmp-start").click().run()
    assert not at.exception, at.exception
    text = rerun_until(at, lambda t: t.count("[Finished]") == 4)
    assert text.count("step **60** of 60") == 4
    charts = charts_by_title(at)
    w1 = next(s for t, s in charts.items() if t.startswith("W1 distance"))
    assert {t["name"] for t in w1["data"]} == LOSS_NAMES
    grad = next(s for t, s in charts.items() if t.startswith("Norm of the gradient"))
    assert grad["layout"]["yaxis"]["type"] == "log"
    assert LOSS_NAMES <= {t["name"] for t in grad["data"]}
    critic = next(s for t, s in charts.items() if t.startswith("Why the gradients differ"))
    assert {"BCE saturating: D(x)", "WGAN-GP: f(x)"} <= {t["name"] for t in critic["data"]}
    densities = next(s for t, s in charts.items() if t.startswith("Real and generated densities"))
    assert "step 60" in densities["layout"]["title"]["text"]
    assert any("not compare them across losses" in t for t in charts)
    assert any(t.startswith("The generator's loss") for t in charts)    # the static explainer


def test_a_reload_reattaches_to_the_comparison_in_the_url():
    at = open_page()
    at.number_input(key="cmp:train.steps").set_value(30)
    at.multiselect(key="cmp-losses").set_value(["bce-ns", "wgan-gp"])
    at.button(key="cmp-start").click().run()
    group = group_of(at)
    rerun_until(at, lambda t: t.count("[Finished]") == 2)
    reloaded = open_page(group=group)
    text = text_of(reloaded)
    assert text.count("[Finished]") == 2 and text.count("step **30** of 30") == 2
    w1 = next(s for t, s in charts_by_title(reloaded).items() if t.startswith("W1 distance"))
    assert {t["name"] for t in w1["data"]} == {"BCE non-saturating", "WGAN-GP"}
    assert "Two copies of one GAN" in text                  # what to look for counts the runs


def test_a_link_to_a_comparison_this_server_no_longer_has_says_so():
    at = open_page(group="feedbeef")
    assert "not on this server" in " ".join(w.value for w in at.warning)
    assert "group" not in at.query_params
    assert not at.exception


def test_pausing_one_run_leaves_the_others_training_and_stop_all_ends_them():
    from pages.ui import registry
    at = open_page()
    at.number_input(key="cmp:train.steps").set_value(1_000_000)
    at.button(key="cmp-start").click().run()
    runs = group_runs(registry(), group_of(at))
    assert len(runs) == 4
    rerun_until(at, lambda t: t.count("[Training]") == 4)
    at.button(key=f"cmp-pause-{runs[0].id}").click().run()
    assert at.button(key=f"cmp-pause-{runs[0].id}").label == "Resume"   # at once, not on the next click
    rerun_until(at, lambda t: t.count("[Paused]") == 1 and t.count("[Training]") == 3)
    held, before = runs[0].trainer.step, runs[1].trainer.step
    # Wait for the others to train on (a starved CPU may take seconds), then the paused one must not have.
    assert wait_for(lambda: runs[1].trainer.step > before, timeout=120)
    assert runs[0].trainer.step == held
    at.button(key="cmp-stop").click().run()
    assert text_of(at).count("[Stopped]") == 4
    assert not any(r.alive for r in runs)


def test_start_needs_two_losses():
    at = open_page()
    at.multiselect(key="cmp-losses").set_value(["bce-ns"]).run()
    assert at.button(key="cmp-start").disabled
    assert any("at least two losses" in i.value for i in at.info)


def test_the_gp_lambda_widget_is_greyed_out_while_wgan_gps_reference_sets_it():
    at = open_page()
    assert at.number_input(key="cmp:loss.gp_lambda").disabled                 # WGAN-GP is picked by default
    assert not at.number_input(key="cmp:loss.clip").disabled            # WGAN clip's c is the preset's
    assert any("λ 0.1" in str(v) for v in at.dataframe[0].value["loss settings"])
    at.toggle(key="cmp-same").set_value(True).run()
    assert not at.number_input(key="cmp:loss.gp_lambda").disabled              # same settings: the widget's λ
    at.toggle(key="cmp-same").set_value(False).run()
    at.multiselect(key="cmp-losses").set_value(["bce-ns", "hinge"]).run()
    assert not at.number_input(key="cmp:loss.gp_lambda").disabled


def test_an_mnist_target_without_data_says_where_to_put_it(monkeypatch, tmp_path):
    at = open_page(monkeypatch, tmp_path / "empty")
    at.selectbox(key="cmp-target").set_value("mnist-mlp-seed003").run()
    assert "No MNIST data" in " ".join(w.value for w in at.warning)
    assert at.button(key="cmp-start").disabled


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(),
                    reason=f"the real MNIST test split is not at {SHARED_DATA}")
def test_tiny_mnist_runs_draw_a_grid_per_loss(monkeypatch):
    at = open_page(monkeypatch, SHARED_DATA)
    at.selectbox(key="cmp-target").set_value("mnist-mlp-seed003").run()
    at.number_input(key="cmp:train.steps").set_value(10)
    at.multiselect(key="cmp-losses").set_value(["bce-sat", "wgan-gp"])   # two: MNIST runs are slow on a CPU
    at.button(key="cmp-start").click().run()
    rerun_until(at, lambda t: t.count("[Finished]") == 2, timeout=150)
    charts = charts_by_title(at)
    grids = [t for t, s in charts.items() if s["data"] and s["data"][0]["type"] == "image"]
    assert sorted(grids) == ["BCE saturating, step 10", "WGAN-GP, step 10"]
    names = {t.get("name") for s in charts.values() for t in s["data"]}
    assert {"BCE saturating", "WGAN-GP"} <= names                     # the gradient chart
    assert any(t.startswith("Digits covered") or t.startswith("D's mean output") for t in charts)


def test_a_mixture_target_adds_a_modes_chart_with_a_line_per_loss():
    at = open_page()
    at.selectbox(key="cmp-target").set_value("gauss1d-bimodal").run()
    at.number_input(key="cmp:train.steps").set_value(20)
    at.multiselect(key="cmp-losses").set_value(["bce-ns", "wgan-clip"])
    at.button(key="cmp-start").click().run()
    rerun_until(at, lambda t: t.count("[Finished]") == 2)
    modes = next(s for t, s in charts_by_title(at).items() if t.startswith("Modes covered"))
    assert {t["name"] for t in modes["data"]} == {"BCE non-saturating", "WGAN clip"}
