"""The verdict and the time left on the pages (AppTest): a run that keeps its preset's promise and one
that misses it, on a lab page, in the Runs table and in the Loss lab; the time left while a run trains."""
from __future__ import annotations

import re
import time

from conftest import open_app, run_until_ended, shown
from test_verdict import promising_preset  # noqa: F401 - a fixture: two tiny presets, one promise kept, one missed


def markdown(at) -> str:
    return " ".join(m.value for m in at.markdown)


def rerun_until(at, predicate, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        at.run()
        if predicate(markdown(at)):
            return markdown(at)
        time.sleep(0.3)
    raise AssertionError(f"timed out; the page says: {markdown(at)[:1500]} {shown(at.caption)[:1500]}")


def test_a_lab_page_and_the_runs_table_say_whether_a_run_kept_its_promise(promising_preset, app_registry):  # noqa: F811
    for slug, badge, words in (
            ("test-keeps", ":green-badge[kept its promise]", "Kept its promise: W1 to the target "),
            ("test-misses", ":red-badge[did not converge]", "Did not converge after 120 steps: W1 to the target ")):
        at = open_app("pages/gauss1d.py")
        at.selectbox(key="g1d-preset").set_value(slug).run()
        at.button(key="gauss1d-start").click().run()
        text = run_until_ended(at)
        assert f":green-badge[Finished] {badge}" in text      # never "Finished" alone
        assert words in shown(at.caption)
    assert "(the test-misses preset promises below 1e-09)" in shown(at.caption)

    table = open_app("pages/runs.py").dataframe[0].value
    # Beside the status, in a few words, as the lab page badges it; the page has the sentence.
    assert sorted(table["status"]) == ["Finished · did not converge", "Finished · kept its promise"]


def test_the_loss_lab_badges_each_run_with_its_verdict(promising_preset, app_registry):  # noqa: F811
    at = open_app("pages/compare.py")
    at.multiselect(key="cmp-losses").set_value(["bce-ns", "wgan-gp"]).run()
    at.toggle(key="cmp-same").set_value(True).run()   # the BCE run then has the preset's own settings
    for slug, bce, wgan_gp in (
            ("test-misses", "Did not converge after 120 steps: W1 to the target ",
             "(the test-misses preset promises below 1e-09 by step 120, with its own settings)"),
            ("test-keeps", "Kept its promise: W1 to the target ",
             "Reached the mark the test-keeps preset promises for its own settings")):
        at.selectbox(key="cmp-target").set_value(slug).run()
        at.button(key="cmp-start").click().run()
        assert not at.exception, at.exception
        text = rerun_until(at, lambda t: t.count(":green-badge[Finished]") == 2 and bce in shown(at.caption)
                           and wgan_gp in shown(at.caption))
        at.run()   # settle: the page reruns itself as the runs end, so the next click lands on today's Start
        if slug == "test-misses":
            assert text.count(":red-badge[did not converge]") == 2
        else:
            assert ":green-badge[kept its promise]" in text and ":green-badge[reached the preset's mark]" in text


def test_the_status_line_and_the_runs_table_show_the_time_left_while_a_run_trains(app_registry):
    at = open_app("pages/gauss1d.py")
    at.number_input(key="train.steps").set_value(1_000_000)
    at.button(key="gauss1d-start").click().run()
    text = rerun_until(at, lambda t: "left" in t)
    assert re.search(r"[\d.,]+ steps/s · about (\d+h \d\dm|\d+m \d\ds|\d+s) left", text), text
    table = open_app("pages/runs.py").dataframe[0].value     # and in the Runs table
    assert re.fullmatch(r"Training · ~.+ left", table["status"][0])          # "about", briefly
    at.button(key="gauss1d-stop").click().run()


def test_a_run_under_a_step_a_second_shows_its_speed_not_0_steps_s():
    """A DCGAN with a third strided convolution on a loaded 2-core CPU trains at about 0.4 steps a second."""
    from streamlit.testing.v1 import AppTest

    def page():
        import numpy as np

        from ganlab.snapshots import Snapshot
        from pages.ui import status_line
        status_line(Snapshot("no-such-run", "mnist", "running", "", 100, 5000, 260.0, 0.384, 49.2,
                             meters={"step": np.array([100])}), images=True)

    at = AppTest.from_function(page, default_timeout=60).run()
    assert not at.exception, at.exception
    assert "0.38 steps/s · 49 images/s · about 3h 32m left" in markdown(at), markdown(at)
