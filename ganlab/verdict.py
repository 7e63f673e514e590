"""How a run ended, in words: against its preset's promise, or by its final meters.

A preset promises what its run reaches by the end of its budget (presets.Promise).
A run that ends is set beside that promise and says so in a sentence:
"Kept its promise: W1 to the target 0.047, below the promised 0.1", or
"Did not converge after 6,000 steps: W1 to the target 17 (the gauss1d preset promises below 0.1)".
Each promise is judged on the run's last probe, as `check-presets` judges it.

Which runs a promise binds. It is made for the preset's own settings, over seeds, so
a run keeps it to its word only when its settings are the preset's except for those
in NEUTRAL: which seed is drawn, the device and the fast path, and how often the run
is watched or saved. Any other change (the budget, a learning rate, the loss, the
model) voids it. Such a run is then set beside the closest preset of its family that
makes a promise on the same data, as a yardstick, and its words say that the settings
differ: the Loss lab's runs are judged so. A run with neither says its final meters.

Pure: no Streamlit; it reads a config and a run's history. The pages (the status line, the Loss
lab), the Runs table and the command line all call verdict().
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganlab.config import Experiment, Train
from ganlab.meters import METERS, meter, quality_meters
from ganlab.presets import PRESETS, Preset, Promise
from ganlab.snapshots import DIVERGED, ENDED, FAILED, STOPPED

# Train fields that change which seed is drawn or how the run is watched, not what training does.
NEUTRAL = ("seed", "device", "fast", "cpu_threads", "data_dir", "snapshot_every", "history_cap",
           "image_history", "pause_on_alarm", "save_every")

KEPT, MISSED, EARLY, UNJUDGED = "kept", "missed", "early", "unjudged"
COLORS = {KEPT: "green", MISSED: "red", EARLY: "gray", UNJUDGED: "gray", FAILED: "red", DIVERGED: "red"}


@dataclass(frozen=True)
class Verdict:
    outcome: str      # KEPT, MISSED, EARLY (stopped before the promise is due), UNJUDGED, FAILED, DIVERGED
    headline: str     # a few words for a badge beside the status ("did not converge"); "" when none adds anything
    text: str         # the sentence

    @property
    def color(self) -> str:
        return COLORS[self.outcome]


# -- which preset speaks for a run ---------------------------------------------------------------

def _normal(cfg: Experiment, also: tuple[str, ...] = ()) -> Experiment:
    """cfg with the fields that do not bear on a promise set to their defaults."""
    default = Train()
    return cfg.replace(train={name: getattr(default, name) for name in NEUTRAL + also})


def preset_of(cfg: Experiment, also: tuple[str, ...] = ()) -> Preset | None:
    """The preset whose settings these are, up to NEUTRAL fields (and `also`); None if none is."""
    mine = _normal(cfg, also)
    return next((p for p in PRESETS.values() if p.config.task == cfg.task and _normal(p.config, also) == mine), None)


def _differences(a: Experiment, b: Experiment) -> int:
    a, b = _normal(a).to_dict(), _normal(b).to_dict()
    return sum(a[s][k] != b[s][k] for s in a if isinstance(a[s], dict) for k in a[s])


def yardstick(cfg: Experiment) -> Preset | None:
    """The closest preset that makes a promise on the same data, for a run whose settings are no preset's."""
    from ganlab.families import family_of
    same = [p for p in PRESETS.values() if p.promises and p.config.task == cfg.task
            and family_of(p.config) == family_of(cfg)
            and p.config.target == cfg.target and p.config.toy2d == cfg.toy2d]
    return min(same, key=lambda p: _differences(p.config, cfg), default=None)


def alarm_warmup(cfg: Experiment) -> tuple[str, int] | None:
    """(preset slug, steps) of the warm-up the run's preset declares; any budget counts as its own."""
    preset = preset_of(cfg, also=("steps",))
    return (preset.slug, preset.alarm_warmup) if preset is not None and preset.alarm_warmup else None


# -- the words ----------------------------------------------------------------------------------

def _value(meters: dict, name: str) -> float | None:
    col = meters.get(name)
    return float(col[-1]) if col is not None and len(col) else None


def _measured(meters: dict, name: str) -> bool:
    value = _value(meters, name)
    return value is not None and bool(np.isfinite(value))


def _shown(name: str, value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "not measured"
    return meter(name).fmt.format(value)


def _words(promise: Promise, task: str) -> str:
    return promise.words or meter(promise.meter).words_for(task)


def _fall(promise: Promise, meters: dict) -> str:
    """", down from 93% at step 7,900": the last probe that kept a promise the end misses, if any did."""
    col, steps = meters.get(promise.meter), meters.get("step")
    if col is None or len(col) < 2:
        return ""
    for i in range(len(col) - 2, -1, -1):
        if promise.kept(col[i]):
            return f", down from {_shown(promise.meter, col[i])} at step {int(steps[i]):,}"
    return ""


def _judged(promises, task: str, meters: dict, whose: str, tail: str) -> tuple[list[str], list[str]]:
    """(missed clauses, kept clauses), each in words. The first missed clause names the promise:
    "(the gauss1d preset promises below 0.1)", with `whose` ("the gauss1d preset") and `tail`."""
    missed, kept = [], []
    for p in promises:
        value = _value(meters, p.meter)
        shown, bound = _shown(p.meter, value), meter(p.meter).fmt.format(p.bound)
        if p.kept(value):
            kept.append(f"{_words(p, task)} {shown}, {p.side} the promised {bound}")
        else:
            promise = f"{whose} promises {p.side} {bound}{tail}" if not missed else f"promised: {p.side} {bound}"
            missed.append(f"{_words(p, task)} {shown}{_fall(p, meters)} ({promise})")
    return missed, kept


def final_meters(task: str, meters: dict) -> str:
    """"W1 to the target 0.31, KS statistic 0.12": the run's headline meters at its last probe.

    The headline meters are those the table of runs shows, the quality meters, and those
    the task's presets promise on, in the meter registry's order; one that reads NaN (it does
    not apply, as the table's dash says) is left out."""
    promised = {p.meter for preset in PRESETS.values() if preset.config.task == task for p in preset.promises}
    names = [n for n, s in METERS.items() if (s.summary or s.quality or n in promised) and _measured(meters, n)]
    return ", ".join(f"{meter(n).words_for(task)} {_shown(n, _value(meters, n))}" for n in names)


def verdict(cfg: Experiment, status: str, message: str, step: int, total_steps: int,
            meters: dict) -> Verdict | None:
    """How a run ended, against its promise; None while it has not ended.

    meters: the run's per-probe history (a Snapshot's `meters`: "step" and a column per meter).
    """
    if status not in ENDED:
        return None
    if status == FAILED:
        return Verdict(FAILED, "", f"Failed: {message}.")
    if status == DIVERGED:
        return Verdict(DIVERGED, "", f"Diverged: {message}.")
    preset = preset_of(cfg)
    own = preset is not None and bool(preset.promises)
    if not own:
        preset = yardstick(cfg)
    promises = preset.promises if preset is not None else ()
    so_far = final_meters(cfg.task, meters)
    if status == STOPPED and not so_far:
        return Verdict(UNJUDGED, "", f"{message.capitalize()}: no quality meter was recorded.")
    if not promises:
        if status == STOPPED:
            return Verdict(UNJUDGED, "", f"Stopped at step {step:,} of {total_steps:,}: {so_far}.")
        return Verdict(UNJUDGED, "", f"Final meters: {so_far}." if so_far else "No quality meter was recorded.")
    due = min(p.steps for p in promises)
    terms = "; ".join(f"{_words(p, cfg.task)} {p.side} {meter(p.meter).fmt.format(p.bound)}" for p in promises)
    settings = "" if own else ", with its own settings"
    if status == STOPPED and step < total_steps:
        return Verdict(EARLY, "", f"Stopped at step {step:,} of {total_steps:,}, before the promise "
                       f"is due: {so_far} (the {preset.slug} preset promises {terms} by step {due:,}{settings}).")
    # A meter the run never measured (MNIST's, before its classifier is ready) neither keeps nor misses.
    unmeasured = [p for p in promises if not _measured(meters, p.meter)]
    if len(unmeasured) == len(promises):
        return Verdict(UNJUDGED, "", f"Its promise ({terms} by step {due:,}{settings}) cannot be judged: the "
                       f"run ended without measuring it." + (f" Final meters: {so_far}." if so_far else ""))
    promises = [p for p in promises if p not in unmeasured]
    tail = "" if own else f" by step {due:,}, with its own settings"
    missed, kept = _judged(promises, cfg.task, meters, f"the {preset.slug} preset", tail)
    if not missed:
        if unmeasured:
            kept.append(f"not measured at the end: {', '.join(_words(p, cfg.task) for p in unmeasured)}")
        if own:
            return Verdict(KEPT, "kept what it measured" if unmeasured else "kept its promise",
                           f"Kept its promise: {'; '.join(kept)}.")
        return Verdict(KEPT, "reached the preset's mark",
                       f"Reached the mark the {preset.slug} preset promises for its own settings (this run's "
                       f"differ): {'; '.join(kept)}.")
    distance = any(p.meter in quality_meters() and not p.kept(_value(meters, p.meter)) for p in promises)
    headline = "did not converge" if distance else ("ended below its promise" if own else "short of the preset's mark")
    text = f"{headline.capitalize()} after {step:,} steps: {'; '.join(missed)}"
    if kept:
        text += f". Kept: {'; '.join(kept)}"
    if unmeasured:
        text += f". Not measured at the end: {', '.join(_words(p, cfg.task) for p in unmeasured)}"
    return Verdict(MISSED, headline, text + ".")


def of_snapshot(cfg: Experiment, snap) -> Verdict | None:
    """verdict() of a run's Snapshot."""
    return verdict(cfg, snap.status, snap.message, snap.step, snap.total_steps, snap.meters)

