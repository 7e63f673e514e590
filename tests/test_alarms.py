"""Alarms: each fires on a history built to show its failure, and stays quiet on a healthy one."""
from __future__ import annotations

import numpy as np
import pytest

from ganlab import alarms
from ganlab.alarms import MNIST_MIN_DIGITS

STEPS = 3000
PROBE_EVERY = 100


def healthy_metrics(seed: int = 0) -> dict:
    """A BCE run that settles: losses near 2 ln 2 and ln 2, D near 0.5, G's gradient shrinking."""
    rng = np.random.default_rng(seed)
    step = np.arange(1, STEPS + 1)
    settle = np.exp(-step / 300)   # the first few hundred steps move fast, then it calms down
    return {
        "step": step,
        "loss_d": 1.386 - 0.8 * settle + rng.normal(0, 0.05, STEPS),
        "loss_g": 0.693 + 1.5 * settle + rng.normal(0, 0.1, STEPS),
        "d_real": 0.5 + 0.4 * settle + rng.normal(0, 0.02, STEPS),
        "d_fake": 0.5 - 0.4 * settle + rng.normal(0, 0.02, STEPS),
        # at equilibrium D is flat, so G's gradient gets small in a healthy run too
        "g_grad_norm": 0.01 + settle + np.abs(rng.normal(0, 0.003, STEPS)),
        "gp_grad_norm": np.zeros(STEPS),
    }


def healthy_meters(seed: int = 0) -> dict:
    """MNIST meters improving: FID falling, all digits drawn, varied samples."""
    rng = np.random.default_rng(seed)
    step = np.arange(0, STEPS + 1, PROBE_EVERY)
    early = step < 500   # an untrained G draws one blob, which the classifier files under one digit
    return {
        "step": step,
        "fid": 10 + 400 * np.exp(-step / 800) * rng.uniform(0.9, 1.1, len(step)),
        "modes_covered": np.where(early, 1.0, 10.0),
        "diversity": np.where(early, 0.2, 0.9),
    }


def test_healthy_run_raises_no_alarm():
    assert alarms.check(healthy_metrics(), healthy_meters(), d_is_probability=True, num_modes=10,
                        min_modes=MNIST_MIN_DIGITS, mode_name="digit") == []


def test_short_or_empty_history_raises_no_alarm():
    assert alarms.check({}, {}, num_modes=10) == []
    m = {k: v[:50] for k, v in healthy_metrics().items()}
    assert alarms.check(m, {k: v[:2] for k, v in healthy_meters().items()}, num_modes=10) == []


# -- divergence --------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_divergence(bad):
    m = healthy_metrics()
    m["loss_g"][1500:] = bad
    found = alarms.check(m, healthy_meters())
    assert [a.kind for a in found] == ["divergence"]
    assert found[0].step == 1501 and "loss_g" in found[0].text
    assert alarms.divergence(healthy_metrics()) == []


# -- mode collapse -------------------------------------------------------------------------------

def test_collapse_onto_few_digits():
    meters = healthy_meters()
    meters["modes_covered"][-4:] = [9, 3, 2, 2]
    found = alarms.mode_collapse(meters, 10, MNIST_MIN_DIGITS, "digit")
    assert [a.kind for a in found] == ["mode_collapse"]
    assert "2 of the 10 digits" in found[0].text and found[0].step == STEPS


def test_losing_a_digit_or_one_bad_probe_is_not_collapse():
    meters = healthy_meters()
    meters["modes_covered"][-3:] = 8
    assert alarms.mode_collapse(meters, 10, MNIST_MIN_DIGITS) == []
    meters["modes_covered"][-3:] = [10, 10, 2]   # a single probe could be bad luck
    assert alarms.mode_collapse(meters, 10, MNIST_MIN_DIGITS) == []


def test_collapse_waits_for_the_warmup():
    meters = {k: v[:5] for k, v in healthy_meters().items()}   # up to step 400, all "collapsed"
    assert meters["modes_covered"].max() == 1 and meters["diversity"].max() < alarms.LOW_DIVERSITY
    assert alarms.mode_collapse(meters, 10, MNIST_MIN_DIGITS) == []


def test_collapse_of_a_1d_mixture():
    step = np.arange(0, STEPS + 1, PROBE_EVERY)
    meters = {"step": step, "w1": np.full(len(step), 2.0), "modes_covered": np.full(len(step), 2.0)}
    assert alarms.mode_collapse(meters, num_modes=2) == []
    meters["modes_covered"][-5:] = 1
    found = alarms.mode_collapse(meters, num_modes=2)
    assert len(found) == 1 and "1 of the 2 modes" in found[0].text


def test_collapse_to_one_image():
    meters = healthy_meters()
    meters["diversity"][-3:] = 0.02
    found = alarms.mode_collapse(meters)   # no mode count needed: diversity alone
    assert [a.kind for a in found] == ["mode_collapse"] and "2%" in found[0].text


# -- the discriminator wins ------------------------------------------------------------------------

def test_discriminator_wins():
    m = healthy_metrics()
    m["d_fake"][-300:] = 0.01
    m["g_grad_norm"][-300:] = 1e-3
    found = alarms.check(m, healthy_meters(), d_is_probability=True)
    assert [a.kind for a in found] == ["discriminator_wins"]
    assert "0.010" in found[0].text


def test_d_ahead_with_strong_g_gradients_is_not_winning():
    # Non-saturating loss: D rejects the fakes, but G still gets a strong gradient and can learn.
    m = healthy_metrics()
    m["d_fake"][-300:] = 0.01
    m["g_grad_norm"][-300:] = 0.8
    assert alarms.discriminator_wins(m) == []


def test_d_fake_is_not_a_probability_for_wasserstein():
    m = healthy_metrics()
    m["d_fake"][-300:] = -5.0   # a critic value
    m["g_grad_norm"][-300:] = 1e-3
    assert [a for a in alarms.check(m, healthy_meters(), d_is_probability=False) if a.kind == "discriminator_wins"] == []


# -- oscillation -------------------------------------------------------------------------------------

def oscillating(meter_falls: bool) -> tuple[dict, dict]:
    """The last 600 steps: G's loss swings between ~0.3 and ~2.7 with a period of 150 steps."""
    m = healthy_metrics()
    t = m["step"][-600:]
    m["loss_g"][-600:] = 1.5 + 1.2 * np.sin(2 * np.pi * t / 150) + np.random.default_rng(1).normal(0, 0.1, 600)
    meters = healthy_meters()
    late = meters["step"] > STEPS - 600
    rng = np.random.default_rng(2)
    if meter_falls:
        meters["fid"][late] = np.linspace(120, 40, late.sum())
    else:
        meters["fid"][late] = 120 * rng.uniform(0.8, 1.2, late.sum())
    return m, meters


def test_oscillation():
    m, meters = oscillating(meter_falls=False)
    found = alarms.check(m, meters, d_is_probability=True, num_modes=10, min_modes=MNIST_MIN_DIGITS)
    assert [a.kind for a in found] == ["oscillation"]
    assert "loss_g" in found[0].text and "fid" in found[0].text


@pytest.mark.parametrize("meter", ["w1", "energy"])
def test_oscillation_reads_the_1d_and_2d_quality_meters(meter):
    m, meters = oscillating(meter_falls=False)
    meters = {"step": meters["step"], meter: meters["fid"] / 1000}     # a 1D or a 2D run's meters
    [found] = alarms.oscillation(m, meters)
    assert meter in found.text
    m, meters = oscillating(meter_falls=True)
    assert alarms.oscillation(m, {"step": meters["step"], meter: meters["fid"] / 1000}) == []


def test_swings_while_the_meter_improves_are_not_oscillation():
    m, meters = oscillating(meter_falls=True)
    assert alarms.oscillation(m, meters) == []


def test_oscillation_needs_a_quality_meter():
    m, _ = oscillating(meter_falls=False)
    assert alarms.oscillation(m, {}) == []


def test_count_swings():
    t = np.arange(600)
    assert alarms.count_swings(1.5 + 1.2 * np.sin(2 * np.pi * t / 150)) >= 7      # 4 cycles
    assert alarms.count_swings(np.linspace(3, 0.7, 600)) <= 1                     # a trend
    noise = 0.7 + np.random.default_rng(0).normal(0, 0.1, 600)
    assert alarms.count_swings(noise) == 0                                        # minibatch noise
    assert alarms.count_swings(0.7 + 0.05 * np.sin(2 * np.pi * t / 150)) == 0     # ripples
