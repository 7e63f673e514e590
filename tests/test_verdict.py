"""The verdict a run ends with (ganlab/verdict.py), the time left (ganlab/speed.py), and the alarms'
advice and warm-up (ganlab/alarms.py): engine tests on hand-made histories, and one through the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ganlab import alarms
from ganlab.alarms import MNIST_MIN_DIGITS
from ganlab.presets import PRESETS, Preset, Promise, register
from ganlab.snapshots import Snapshot
from ganlab.speed import Speedometer, rate_text, seconds_left, time_left
from ganlab.verdict import EARLY, KEPT, MISSED, UNJUDGED, alarm_warmup, preset_of, verdict
from test_alarms import healthy_meters, healthy_metrics

GAUSS = PRESETS["gauss1d"].config
RING = PRESETS["toy2d-ring"].config


def probes(**columns) -> dict:
    """A per-probe history: the last two probes of a run, at the budget's end."""
    n = len(next(iter(columns.values())))
    return {"step": np.arange(n) * 100 + 6000 - 100 * (n - 1), **{k: np.asarray(v, float) for k, v in columns.items()}}


def test_a_run_of_the_preset_keeps_its_promise_in_words():
    ended = verdict(GAUSS, "finished", "finished 6,000 steps", 6000, 6000, probes(w1=[0.06, 0.047], ks=[0.03, 0.02]))
    assert ended.outcome == KEPT and ended.headline == "kept its promise"
    assert ended.text == "Kept its promise: W1 to the target 0.047, below the promised 0.1."


def test_a_run_that_misses_its_promise_says_it_did_not_converge():
    ended = verdict(GAUSS, "finished", "", 6000, 6000, probes(w1=[15.0, 17.0], ks=[0.9, 0.9]))
    assert ended.outcome == MISSED and ended.headline == "did not converge" and ended.color == "red"
    assert ended.text == ("Did not converge after 6,000 steps: W1 to the target 17 (the gauss1d preset promises "
                          "below 0.1).")


def test_the_ring_that_fell_apart_in_its_last_snapshot_ends_below_its_promise():
    # Seen by a user: toy2d-ring ended with "3 of 8 now", its high-quality share falling from
    # 0.93 to 0.25 in the last snapshot, and the page said only "Finished".
    meters = probes(modes_captured=[8, 3], high_quality=[0.93, 0.25], energy=[0.01, 0.3], modes_covered=[8, 3])
    ended = verdict(RING.replace(train={"seed": 7}), "finished", "", 8000, 8000, meters)
    assert ended.outcome == MISSED and ended.headline == "ended below its promise"
    assert "modes captured (PacGAN's rule) 3, down from 8 at step 5,900 (the toy2d-ring preset promises at least 8)" \
        in ended.text
    assert "high-quality share 25%, down from 93% at step 5,900 (promised: at least 90%)" in ended.text


def test_only_settings_that_do_not_change_training_keep_the_promise():
    assert preset_of(GAUSS.replace(train={"seed": 9, "device": "cpu", "snapshot_every": 7, "fast": False})) \
        is PRESETS["gauss1d"]
    for changed in ({"train": {"steps": 300}}, {"opt_g": {"lr": 1e-2}}, {"loss": {"name": "wgan-gp"}}):
        assert preset_of(GAUSS.replace(**changed)) is None, changed
    # With other settings the run is set beside the preset on its data, and says its settings differ.
    ended = verdict(GAUSS.replace(loss={"name": "wgan-gp"}, train={"steps": 300}), "finished", "", 300, 300,
                    probes(w1=[2.0, 1.5]))
    assert ended.outcome == MISSED and ended.text == (
        "Did not converge after 300 steps: W1 to the target 1.5 (the gauss1d preset promises below 0.1 by step "
        "6,000, with its own settings).")
    near = verdict(GAUSS.replace(opt_d={"lr": 5e-4}), "finished", "", 6000, 6000, probes(w1=[0.05]))
    assert near.outcome == KEPT and near.headline == "reached the preset's mark" and "this run's differ" in near.text


def test_a_run_with_no_promise_reports_its_final_meters_in_the_meters_words():
    moons = PRESETS["toy2d-moons"].config
    ended = verdict(moons, "finished", "", 4000, 4000,
                    probes(energy=[0.002], high_quality=[0.961], modes_covered=[np.nan]))
    assert ended.outcome == UNJUDGED and ended.headline == ""
    assert ended.text == "Final meters: energy distance 0.002, high-quality share 96%."   # NaN: not applicable
    assert verdict(moons, "finished", "", 4000, 4000, {}).text == "No quality meter was recorded."


def test_a_promise_the_run_never_measured_is_not_judged():
    dcgan = PRESETS["mnist-dcgan"].config      # MNIST's meters wait for their classifier
    ended = verdict(dcgan, "finished", "", 5000, 5000, probes(d_real_test=[0.5]))
    assert ended.outcome == UNJUDGED and ended.text.startswith("Its promise (digits covered (of 10) at least 10; "
                                                               "confident share (clearly a digit) at least 65% by "
                                                               "step 5,000) cannot be judged")
    part = verdict(dcgan, "finished", "", 5000, 5000, probes(modes_covered=[8], confident=[np.nan]))
    assert part.outcome == MISSED and part.text == (
        "Ended below its promise after 5,000 steps: digits covered (of 10) 8 (the mnist-dcgan preset promises at "
        "least 10). Not measured at the end: confident share (clearly a digit).")


def test_how_a_run_ended_comes_first():
    meters = probes(w1=[0.3])
    assert verdict(GAUSS, "running", "", 1200, 6000, meters) is None
    stopped = verdict(GAUSS, "stopped", "stopped at step 1200", 1200, 6000, meters)
    assert stopped.outcome == EARLY and stopped.text == (
        "Stopped at step 1,200 of 6,000, before the promise is due: W1 to the target 0.3 (the gauss1d preset "
        "promises W1 to the target below 0.1 by step 6,000).")
    diverged = verdict(GAUSS, "diverged", "loss_g became NaN at step 40", 40, 6000, {})
    assert diverged.color == "red" and diverged.text == "Diverged: loss_g became NaN at step 40."
    assert verdict(GAUSS, "failed", "out of GPU memory", 3, 6000, {}).text == "Failed: out of GPU memory."
    assert verdict(GAUSS, "stopped", "stopped before the first step", 0, 6000, {}).text == \
        "Stopped before the first step: no quality meter was recorded."


# -- time left ---------------------------------------------------------------------------------------

def test_speed_is_measured_over_a_recent_window():
    now = [0.0]
    speed = Speedometer(clock=lambda: now[0])
    speed.restart(0)
    for t, step in ((5, 500), (10, 1000), (15, 1500)):   # 100 steps/s
        now[0] = t
        rate = speed.update(step)
    assert rate == pytest.approx(100)
    for t in range(16, 31):                              # then 10 steps/s: within the 10 s window it shows
        now[0] = t
        step += 10
        rate = speed.update(step)
    assert rate == pytest.approx(10, rel=0.05)
    now[0] = 100                                         # after a pause: the pause is no speed at all
    speed.restart(step)
    now[0] = 101
    assert speed.update(step + 50) == pytest.approx(50)


def test_time_left_in_words():
    assert seconds_left(1000, 6000, 50) == pytest.approx(100)
    assert time_left(1000, 6000, 50) == "about 1m 40s left"
    assert time_left(0, 40000, 10) == "about 1h 06m left"
    assert time_left(100, 6000, 0) == "" and time_left(6000, 6000, 50) == ""


def test_the_cli_prints_the_time_left_while_it_trains():
    from ganlab.__main__ import progress_line
    snap = Snapshot("r", "gauss1d", "running", "", 1000, 6000, 10.0, 50.0, 3200.0, meters={"step": np.array([1000]),
                    "w1": np.array([0.25])})
    assert progress_line(snap) == "[running] step 1000/6000 (50 steps/s, about 1m 40s left)  w1=0.25"


def test_a_run_slower_than_a_step_a_second_does_not_read_0_steps_s():
    from ganlab.__main__ import progress_line
    assert [rate_text(v) for v in (12_345.6, 50.4, 10.0, 9.96, 4.24, 0.384, 0.0)] == \
        ["12,346", "50", "10", "10", "4.2", "0.38", "0"]
    # A deep DCGAN on a loaded 2-core CPU: 0.38 steps a second, 49 images.
    snap = Snapshot("r", "mnist", "running", "", 100, 5000, 260.0, 0.384, 49.2, meters={"step": np.array([100])})
    assert progress_line(snap).startswith("[running] step 100/5000 (0.38 steps/s, about 3h 32m left)")


@pytest.fixture
def promising_preset():
    """A tiny 1D preset whose promise any run keeps (W1 below 1e9) and one none keeps (below 1e-9).
    Their budgets differ: a run's settings name one preset."""
    from conftest import tiny
    made = [register(Preset(slug, slug, tiny(steps=steps), "for a test", promises=(Promise("w1", bound),)))
            for slug, bound, steps in (("test-keeps", 1e9, 100), ("test-misses", 1e-9, 120))]
    yield made
    for preset in made:
        PRESETS.pop(preset.slug)


def test_the_cli_ends_with_the_verdict(promising_preset, capsys):
    from ganlab.__main__ import main
    assert main(["train", "--preset", "test-misses", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["outcome"] == "missed"
    assert summary["verdict"].startswith("Did not converge after 120 steps: W1 to the target ")
    assert main(["train", "--preset", "test-keeps", "--seed", "3"]) == 0
    assert "Kept its promise: W1 to the target " in capsys.readouterr().out


# -- alarms: advice and warm-up ------------------------------------------------------------------------

def d_winning() -> dict:
    m = healthy_metrics()
    m["d_fake"][-300:] = 0.01
    m["g_grad_norm"][-300:] = 1e-3
    return m


def test_an_alarm_never_suggests_a_setting_the_run_already_has():
    # Seen by a user: at lr 10 a run with the non-saturating loss was told to try the non-saturating loss.
    mnist = PRESETS["mnist-mlp-seed003"].config.replace(opt_g={"lr": 10.0}, opt_d={"lr": 10.0})
    (found,) = alarms.check(d_winning(), healthy_meters(), cfg=mnist)
    assert found.kind == "discriminator_wins" and "non-saturating" not in found.text
    assert "fewer D steps" not in found.text                   # k is 1 already
    assert found.advice == "Try a lower D learning rate."
    saturating = mnist.replace(loss={"name": "bce-sat"}, train={"d_steps": 3})
    (found,) = alarms.check(d_winning(), healthy_meters(), cfg=saturating)
    assert found.advice == "Try the non-saturating G loss, fewer D steps per G step, or a lower D learning rate."
    m = healthy_metrics()
    m["loss_g"][1500:] = np.nan
    (found,) = alarms.check(m, healthy_meters(), cfg=GAUSS.replace(loss={"name": "wgan-gp"}))
    assert "Wasserstein" not in found.text and found.advice == "Try lower learning rates."
    assert alarms.remedy("oscillation", RING) == "Try lower learning rates, or a Wasserstein loss."   # it decays


def collapsed(until: int) -> dict:
    step = np.arange(0, until + 1, 100)
    return {"step": step, "fid": np.full(len(step), 300.0), "modes_covered": np.full(len(step), 1.0)}


def test_alarms_say_expected_at_this_stage_in_the_presets_warm_up():
    seed003 = PRESETS["mnist-mlp-seed003"].config
    warmup = alarm_warmup(seed003.replace(train={"seed": 4, "steps": 3000}))   # any budget: still its warm-up
    assert warmup == ("mnist-mlp-seed003", 5000)
    assert alarm_warmup(seed003.replace(opt_g={"lr": 10.0})) is None          # other settings: no warm-up to expect
    options = {"num_modes": 10, "min_modes": MNIST_MIN_DIGITS, "mode_name": "digit", "cfg": seed003}
    (early,) = alarms.check(healthy_metrics(), collapsed(3000), warmup=warmup, **options)
    assert early.expected and early.advice == ""
    assert early.text.startswith("Expected at this stage: the mnist-mlp-seed003 preset warms up for its first "
                                 "5,000 steps") and "1 of the 10 digits" in early.text
    (late,) = alarms.check(healthy_metrics(), collapsed(6000), warmup=warmup, **options)
    assert not late.expected and late.advice.startswith("Try ")


def test_an_expected_alarm_is_shown_but_pauses_nothing():
    from types import SimpleNamespace

    from ganlab.snapshots import AlarmWatch, History
    from ganlab.tasks.mnist import Mnist
    cfg = PRESETS["mnist-mlp-seed003"].config
    trainer = SimpleNamespace(cfg=cfg, loss=SimpleNamespace(mode_alarm=True),
                              task=SimpleNamespace(alarm_options=lambda: Mnist.alarm_options(None)))
    meters = collapsed(3000)
    history = History(("fid", "modes_covered"), 1000)
    history.extend(meters["step"], np.column_stack([meters["fid"], meters["modes_covered"]]))
    watch = AlarmWatch()
    assert watch.check(trainer, History((), 1000), history) == []      # nothing new: no event, no pause
    assert [a.expected for a in watch.sounding] == [True]
