"""Alarms: the failures of GAN training, noticed in a run's history and said in plain words.

Every check is a pure function over history columns, the dicts of numpy
arrays that a Snapshot carries:
- `metrics`, one row per step: step, loss_d, loss_g, d_real, d_fake, g_grad_norm, ...
- `meters`, one row per probe: step, and quality meters such as fid, w1,
  modes_covered, diversity.

Each returns a list of Alarm, empty when all is well. The checks look at the
recent past, so an alarm clears once the run recovers. The thresholds are
rules of thumb, named below with the reason for each; an alarm is a hint for
where to look, not a verdict.

Given the run's config, an alarm suggests only what the run does not do already
(REMEDIES): never "try the non-saturating G loss" to a run that uses it. Given the
warm-up its preset declares (presets.Preset.alarm_warmup), what is normal there (G
collapsed onto a few modes, D winning) sounds as "expected at this stage", with no
advice, and pauses nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganlab.meters import DIVERSITY, MODES_COVERED, meter, quality_meters

WINDOW = 200                # rows of per-step history that count as "recent" for D winning
SMOOTHING = 10              # rows averaged before looking for swings: removes minibatch noise, keeps
                            # GAN oscillations, whose cycles last a hundred steps or more
WARMUP_STEPS = 1000         # an untrained G draws one blob for every z, which looks like collapse
                            # but is only a beginning: the collapse checks wait this long
COLLAPSE_PROBES = 3         # collapse must hold this many probes in a row, not one unlucky probe
MNIST_MIN_DIGITS = 4        # for MNIST, pass min_modes=MNIST_MIN_DIGITS: 3 or fewer digits of 10 is
                            # collapse; losing one or two digits is common and fixes itself
LOW_DIVERSITY = 0.3         # samples vary < 30% as much as real data: real digits of one class
                            # alone score 0.6-0.95 against all digits, identical images score 0
D_FAKE_NEAR_ZERO = 0.05     # D calls over 95% of fakes fake: it has won, not just leads
GRAD_VANISHED = 0.1         # G's gradient below 10% of its peak in the run. Healthy runs can reach
                            # small gradients too, at equilibrium, so this only counts with D winning
SWING = 1.0                 # swings are large when the smoothed range is at least the loss's typical
SWING_FLOOR = 0.5           # size, or this much for losses that sit near 0 (Wasserstein)
MIN_SWINGS = 4              # two full cycles, or four spikes: one rise or fall is a trend, not oscillation
OSCILLATION_PROBES = 6      # "recent" for oscillation: the steps since the 6th-last probe, so the
                            # meter has enough points to show progress or none
MIN_PROGRESS = 0.1          # a meter improving by under 10% across the window is not progressing
LOSSES = ("loss_d", "loss_g")
# The quality meters (fid on MNIST, w1 in 1D, energy in 2D) are those ganlab.meters marks `quality`.


@dataclass(frozen=True)
class Alarm:
    kind: str      # "divergence", "mode_collapse", "discriminator_wins" or "oscillation"
    step: int      # where it was seen: the first bad step, or the latest step of the window
    seen: str      # what is happening, in plain words
    advice: str = ""         # what to try ("Try ..."): only what the run does not do already
    expected: bool = False   # normal at this stage of the run, by its preset's note: nothing to act on

    @property
    def text(self) -> str:
        """One line: what is happening, and what to try."""
        return f"{self.seen} {self.advice}".strip()


def _wasserstein(cfg) -> bool:
    return cfg.loss.name in ("wgan-clip", "wgan-gp")


# What each alarm suggests, in order; each with the test for a run that does it already (None: any run
# can still do it), so that a suggestion is never a setting the run has.
REMEDIES = {
    "divergence": (("lower learning rates", None),
                   ("a Wasserstein loss with gradient penalty", lambda c: c.loss.name == "wgan-gp")),
    "mode_collapse": (("a Wasserstein loss", _wasserstein), ("a lower G learning rate", None),
                      ("another seed", None)),
    "discriminator_wins": (("the non-saturating G loss", lambda c: c.loss.name != "bce-sat"),
                           ("fewer D steps per G step", lambda c: c.train.d_steps == 1),
                           ("a lower D learning rate", None)),
    "oscillation": (("lower learning rates", None), ("learning-rate decay", lambda c: c.train.lr_decay),
                    ("a Wasserstein loss", _wasserstein)),
}
WARMUP_KINDS = ("mode_collapse", "discriminator_wins", "oscillation")   # what a warm-up may show; never a NaN


def remedy(kind: str, cfg=None) -> str:
    """"Try a, b, or c.": the alarm's suggestions that the run (cfg; None: any run) does not follow yet."""
    tries = [text for text, done in REMEDIES[kind] if cfg is None or done is None or not done(cfg)]
    if not tries:
        return ""
    listed = tries[0] if len(tries) == 1 else ", ".join(tries[:-1]) + ", or " + tries[-1]
    return f"Try {listed}."


def check(metrics: dict, meters: dict, *, d_is_probability: bool = True, num_modes: int | None = None,
          min_modes: int | None = None, mode_name: str = "mode", cfg=None,
          warmup: tuple[str, int] | None = None) -> list[Alarm]:
    """Every alarm that applies to a run's history.

    d_is_probability: d_fake is a probability (a BCE loss's sigmoid), so "D wins" can be read from it;
        False for raw scores (critics, LSGAN, hinge): see GANLoss.mode_alarm.
    num_modes, min_modes: see mode_collapse(); MNIST passes 10, MNIST_MIN_DIGITS, "digit".
    cfg: the run's Experiment, so that no alarm suggests what it does already (None: suggest everything).
    warmup: (preset, steps) of the warm-up the run's preset declares (ganlab.verdict.alarm_warmup).
    """
    alarms = divergence(metrics, cfg)
    if alarms:
        return alarms   # after a NaN nothing else means anything
    alarms += mode_collapse(meters, num_modes, min_modes, mode_name, cfg)
    if d_is_probability:
        alarms += discriminator_wins(metrics, cfg=cfg)
    alarms += oscillation(metrics, meters, cfg=cfg)
    if warmup:
        alarms = [expected(a, *warmup) if a.kind in WARMUP_KINDS and a.step < warmup[1] else a for a in alarms]
    return alarms


def expected(alarm: Alarm, preset: str, steps: int) -> Alarm:
    """The alarm as its preset's warm-up explains it: what is seen, no advice."""
    return Alarm(alarm.kind, alarm.step, f"Expected at this stage: the {preset} preset warms up for its first "
                                         f"{steps:,} steps, and this is normal there. {alarm.seen}", expected=True)


def divergence(metrics: dict, cfg=None) -> list[Alarm]:
    """A loss became NaN or infinite: the run cannot recover."""
    steps = metrics.get("step", np.empty(0))
    for name in LOSSES:
        values = metrics.get(name)
        if values is None:
            continue
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            return [Alarm("divergence", int(steps[bad[0]]),
                          f"Training diverged: {name} became NaN or infinite at step {int(steps[bad[0]])}.",
                          remedy("divergence", cfg))]
    return []


def mode_collapse(meters: dict, num_modes: int | None = None, min_modes: int | None = None,
                  mode_name: str = "mode", cfg=None) -> list[Alarm]:
    """G draws only a few kinds of thing (modes_covered), or the same thing for every z (diversity).

    modes_covered counts out of num_modes; the alarm sounds below min_modes,
    which defaults to all of them (right for a 1D mixture of a few modes, where
    a missing mode is plain to see).
    """
    alarms = []
    recent = _recent_probes(meters, COLLAPSE_PROBES)
    if recent is None:
        return alarms
    step = int(recent["step"][-1])
    covered = recent.get(MODES_COVERED.name)
    if num_modes and covered is not None:
        needed = min_modes if min_modes is not None else num_modes
        if np.all(covered < needed):
            alarms.append(Alarm(
                "mode_collapse", step,
                f"Mode collapse: G draws only {int(covered[-1])} of the {num_modes} {mode_name}s. It has "
                f"found a few outputs that fool D and stopped exploring.", remedy("mode_collapse", cfg)))
    diversity = recent.get(DIVERSITY.name)
    if diversity is not None and np.all(diversity < LOW_DIVERSITY):
        alarms.append(Alarm(
            "mode_collapse", step,
            f"Mode collapse: G's samples vary only {diversity[-1]:.0%} as much as real data, so different "
            f"z give nearly the same output.", remedy("mode_collapse", cfg)))
    return alarms


def discriminator_wins(metrics: dict, window: int = WINDOW, cfg=None) -> list[Alarm]:
    """BCE only: D rejects nearly every fake and G's gradient has vanished, so G cannot learn."""
    d_fake, grad = metrics.get("d_fake"), metrics.get("g_grad_norm")
    if d_fake is None or grad is None or len(d_fake) < window:
        return []
    recent_d_fake = np.nanmedian(d_fake[-window:])
    recent_grad, peak_grad = np.nanmedian(grad[-window:]), np.nanmax(grad)
    if recent_d_fake < D_FAKE_NEAR_ZERO and recent_grad < GRAD_VANISHED * peak_grad:
        return [Alarm(
            "discriminator_wins", int(metrics["step"][-1]),
            f"The discriminator is winning outright: D(G(z)) is {recent_d_fake:.3f}, and G's gradient has "
            f"shrunk to {recent_grad / peak_grad:.0%} of its peak, so G gets almost no signal to learn "
            f"from.", remedy("discriminator_wins", cfg))]
    return []


def oscillation(metrics: dict, meters: dict, probes: int = OSCILLATION_PROBES, cfg=None) -> list[Alarm]:
    """A loss swings or spikes, over and over, while the quality meter does not improve.

    Looks at the steps since the `probes`-th last probe. Needs a quality meter
    (fid for MNIST, w1 for 1D, energy for 2D): without one, swings alone could be a healthy run
    that is still finding its way.
    """
    probe_steps = meters.get("step")
    steps = metrics.get("step")
    if probe_steps is None or len(probe_steps) < probes or steps is None:
        return []
    start_step = probe_steps[-probes]
    progress = _meter_progress(meters, start_step)
    if progress is None:
        return []
    meter, gain = progress
    if gain >= MIN_PROGRESS:
        return []
    recent = steps >= start_step
    for name in LOSSES:
        values = metrics.get(name)
        if values is None:
            continue
        swings = count_swings(values[recent])
        if swings >= MIN_SWINGS:
            span = int(steps[-1] - start_step)
            return [Alarm(
                "oscillation", int(steps[-1]),
                f"Oscillation: {name} swung away from its usual level {swings} times in the last {span} steps while "
                f"{meter} did not improve. G and D are chasing each other around the equilibrium "
                f"instead of settling.", remedy("oscillation", cfg))]
    return []


def count_swings(values: np.ndarray, smoothing: int = SMOOTHING) -> int:
    """How many times the smoothed series leaves its usual level by a large amount.

    An excursion counts when the series goes beyond a band around its median,
    a quarter of the size a swing must reach (SWING times the loss's own
    scale), having been inside the band or beyond its other edge: a sine wave
    makes two per cycle, a trend one, jitter near the median none. When the
    whole range is smaller than a swing, nothing counts.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < 2 * smoothing:
        return 0
    smooth = np.convolve(values, np.ones(smoothing) / smoothing, mode="valid")
    middle = np.median(smooth)
    scale = max(np.median(np.abs(smooth)), SWING_FLOOR)
    if np.ptp(smooth) < SWING * scale:
        return 0
    band = SWING * scale / 4
    side = np.where(smooth > middle + band, 1, np.where(smooth < middle - band, -1, 0))
    leaves = (side[1:] != 0) & (side[1:] != side[:-1])
    return int(np.sum(leaves))


def _recent_probes(meters: dict, n: int) -> dict | None:
    """The last n probes, if they all come after the warm-up; else None."""
    steps = meters.get("step")
    if steps is None or len(steps) < n or steps[-n] < WARMUP_STEPS:
        return None
    return {k: np.asarray(v[-n:]) for k, v in meters.items()}


def _meter_progress(meters: dict, start_step: int) -> tuple[str, float] | None:
    """(meter name, relative improvement) of the quality meter over the probes since start_step.

    Compares the median of the later half of those probes with the earlier
    half (medians, so one noisy probe does not decide), the way the meter's spec says is
    better. None when there is no such meter or fewer than 4 probes.
    """
    steps = meters.get("step")
    for name in quality_meters():
        values = meters.get(name)
        if values is None or steps is None:
            continue
        values = values[(steps >= start_step) & np.isfinite(values)]
        if len(values) < 4:
            return None
        half = len(values) // 2
        before, after = np.median(values[:half]), np.median(values[half:])
        gain = after - before if meter(name).higher_is_better else before - after
        return name, gain / before if before > 0 else 0.0
    return None
