"""Words that tell runs apart: a run's label in tables, pickers and legends, and its loss in words.

Seven runs of one preset all named "gauss1d" cannot be told apart in a legend. A
label says what differs: when the run started, and which settings it changed from
its preset ("gauss1d · 10:42 · lr_d 0.01, k 5"). Pure functions of a run's name,
start time and config, so the Runs page, the overlay's legend and the tests agree.
"""
from __future__ import annotations

import time

from ganlab.config import SERVER_PATHS, Experiment

# How a run is carried out, not what it learns: never part of a label.
NOT_SETTINGS = {("train", name) for name in ("device", "snapshot_every", "history_cap", "image_history",
                                             "pause_on_alarm", "cpu_threads", "save_every")} | set(SERVER_PATHS)
# The short names a label uses, for the settings people turn most; any other field goes by its own
# name ("beta1_d" for opt_d.beta1), after these.
SHORT = {("opt_g", "lr"): "lr_g", ("opt_d", "lr"): "lr_d", ("train", "d_steps"): "k",
         ("train", "batch_size"): "batch", ("noise", "dim"): "z", ("noise", "kind"): "noise",
         ("loss", "name"): "loss", ("model", "name"): "model", ("target", "kind"): "target",
         ("toy2d", "kind"): "target"}
MAX_CHANGES = 3   # more than this, and the label says how many more: a label must fit a table cell


def loss_words(cfg: Experiment) -> str:
    """What the run minimises, in words: a GAN's loss, or an autoencoder's reconstruction (and KL).

    An autoencoder's config carries a GAN loss section it never uses: never name that.
    """
    from ganlab.families import family_of
    from ganlab.losses import LOSSES
    family = family_of(cfg)
    if family == "ae":
        return "MSE reconstruction"
    if family == "vae":
        return f"{cfg.model.recon_loss.upper()} reconstruction + KL"
    return LOSSES[cfg.loss.name].short if cfg.loss.name in LOSSES else cfg.loss.name


def _value(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "/".join(_value(v) for v in value)
    return str(value)


def changed_settings(cfg: Experiment, base: Experiment) -> list[str]:
    """The settings of `cfg` that differ from `base`, each as "name value" ("lr_d 0.01", "k 5")."""
    mine, theirs = cfg.to_dict(), base.to_dict()
    changes = []
    for section, values in mine.items():
        if not isinstance(values, dict):
            continue
        for name, value in values.items():
            if (section, name) in NOT_SETTINGS or value == theirs[section][name]:
                continue
            short = SHORT.get((section, name)) or (f"{name}_{section[-1]}" if section in ("opt_g", "opt_d")
                                                   else name)
            changes.append(((section, name) not in SHORT, f"{short} {_value(value)}"))
    # The knobs people turn most (SHORT's) first, so that a label cut short still shows them.
    return [text for _, text in sorted(changes, key=lambda change: change[0])]


def run_label(name: str, started: float, cfg: Experiment, base: Experiment | None, *,
              seconds: bool = False) -> str:
    """ "gauss1d · 10:42 · lr_d 0.01, k 5": the run's name, its start (local time), and what it changed
    from `base` (its preset; None when it has none)."""
    parts = [name, time.strftime("%H:%M:%S" if seconds else "%H:%M", time.localtime(started))]
    changes = changed_settings(cfg, base) if base is not None else []
    if changes:
        shown = changes[:MAX_CHANGES]
        more = len(changes) - len(shown)
        parts.append(", ".join(shown) + (f" +{more} more" if more else ""))
    return " · ".join(parts)


def run_labels(runs) -> dict[str, str]:
    """{run id: label} for Run-like objects (id, name, cfg, created), each label different.

    A run's preset is the one its name is the slug of (the labs name their runs so). Two runs that
    started in the same minute with the same changes get the second too, and then a number.
    """
    from ganlab.presets import PRESETS

    def label(run, seconds: bool) -> str:
        preset = PRESETS.get(run.name)
        base = preset.config if preset is not None and preset.config.task == run.cfg.task else None
        return run_label(run.name, run.created, run.cfg, base, seconds=seconds)

    labels = {run.id: label(run, False) for run in runs}
    clash = {text for text in labels.values() if list(labels.values()).count(text) > 1}
    labels.update({run.id: label(run, True) for run in runs if labels[run.id] in clash})
    seen: dict[str, int] = {}
    for run in runs:   # in the order given: the older run keeps the plain label
        text = labels[run.id]
        seen[text] = seen.get(text, 0) + 1
        if seen[text] > 1:
            labels[run.id] = f"{text} #{seen[text]}"
    return labels
