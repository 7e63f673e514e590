"""Teaching: one training iteration in slow motion, and changes between steps.

Slow motion walks Trainer.stages(), the same code that trains, one stage per
call, and says in plain words what each stage did, for a class:

    1. sample real and fake      4. D's update
    2. D's predictions           5. G's loss and gradients
    3. D's loss                  6. G's update

With k > 1, stages 1-4 come k times. Each stage's view holds CPU numpy
arrays only, like a probe's views, so a page can draw it from a Snapshot.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from ganlab.config import Experiment

STAGES = ("sample", "d_predict", "d_loss", "d_update", "g_loss", "g_update")
TITLES = {
    "sample": "Sample real and fake",
    "d_predict": "D's predictions",
    "d_loss": "D's loss",
    "d_update": "D's update",
    "g_loss": "G's loss and gradients",
    "g_update": "G's update",
}
# Where each task draws D: the 1D lab's grid of x, the 2D lab's grid over the plane.
GRID_ATTRIBUTES = ("probe_x", "surface_x")
# What reconfigure() may change between steps, and where each lives in the config.
CHANGEABLE = {"lr_g": ("opt_g", "lr"), "lr_d": ("opt_d", "lr"), "d_steps": ("train", "d_steps"),
              "loss": ("loss", "name")}


def caption(stage: str, view: dict) -> str:
    """What happened in this stage, in plain words."""
    critic = view["critic"]
    d = "the critic" if critic else "D"
    D = d[0].upper() + d[1:]
    if stage == "sample":
        return ("Draw a batch of real points from the target, and a batch of fakes: G turns random noise z "
                "into points. Nothing has learned yet.")
    if stage == "d_predict":
        if critic:
            return "The critic gives every point a score: higher means \"looks more real\". Nothing learns yet."
        return ("D looks at every point and says how real it seems: D(x) near 1 means \"real\", near 0 "
                "\"fake\". Nothing learns yet.")
    if stage == "d_loss":
        goal = ("scores the real points high and the fakes low" if critic else
                "says \"real\" to the real points and \"fake\" to the fakes")
        return f"{D}'s loss is {view['loss_d']:.3f}. It is low when {d} {goal}."
    if stage == "d_update":
        text = (f"One optimizer step changes {d}'s weights to lower its loss: its values rise where the real "
                f"points are and fall where the fakes are. G has not moved.")
        if "d_curve_after" in view:
            moved = np.abs(view["d_curve_after"] - view["d_curve"]).max()
            text += f" ({D}'s values moved by up to {moved:.2g}.)"
        return text
    if stage == "g_loss":
        return (f"G makes new fakes and asks {d} about them. G's loss is {view['loss_g']:.3f}. The arrows "
                f"show which way it pushes each fake: towards where {d} sees \"real\".")
    moved = np.abs(view["fake_after"] - view["fake"]).max()
    return (f"One optimizer step changes G's weights, and every fake moves with them, by up to {moved:.2g}: "
            f"before → after. D has not moved.")


class SlowMotion:
    """One iteration of a Trainer, advanced a stage per call to advance()."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.iteration = trainer.step + 1      # the step this iteration makes
        self.d_steps = trainer.cfg.train.d_steps
        self.done = False
        self._walk = trainer.stages()
        self._data: dict = {}                  # what the stages so far showed, kept for the charts
        grid = next((getattr(trainer.task, a) for a in GRID_ATTRIBUTES if hasattr(trainer.task, a)), None)
        # A minibatch D scores whole groups of points, so it has no value at a single x.
        self._grid = None if trainer.cfg.model.minibatch_d else grid

    def advance(self) -> dict:
        """Run the next stage; returns its view: stage, number, title, caption and the data so far."""
        if self.done:
            raise RuntimeError("this iteration is over; start a new SlowMotion")
        t = self.trainer
        stage, d_step, data = next(self._walk)
        if stage in ("sample", "g_loss"):
            self._data = {"d_curve": self._d_curve()}   # a new batch: start afresh
        if stage == "d_update":
            data = {"d_curve_after": self._d_curve()}
        elif stage == "g_update":
            data = {"fake_after": self._fakes(self._data["z"])}
            for _ in self._walk:   # the bookkeeping after the last stage: the step counts
                pass
            self.done = True
        self._data.update(data)
        view = {k: v for k, v in self._data.items() if k != "z" and v is not None}
        k = self.d_steps
        view.update(stage=stage, number=STAGES.index(stage) + 1, title=TITLES[stage],
                    d_step=d_step, d_steps=k, iteration=self.iteration, done=self.done,
                    **t.loss.display(t.cfg.loss.real_label))
        if self._grid is not None:
            view["grid"] = self._grid.float().cpu().numpy()
        view["caption"] = caption(stage, view)
        if k > 1 and stage in STAGES[:4]:
            view["caption"] = f"D step {d_step} of {k}. " + view["caption"]
        return view

    @torch.no_grad()
    def _d_curve(self) -> np.ndarray | None:
        if self._grid is None:
            return None
        t = self.trainer
        with eval_mode(t.D):
            return t.d_output(t.D(self._grid)).squeeze(-1).float().cpu().numpy()

    @torch.no_grad()
    def _fakes(self, z: np.ndarray) -> np.ndarray:
        t = self.trainer
        with eval_mode(t.G):
            return t.G(torch.from_numpy(z).to(t.device)).float().cpu().numpy()


@contextmanager
def eval_mode(model: torch.nn.Module):
    """Look at a model between stages without touching its state (BatchNorm's running statistics)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def reconfigured(cfg: Experiment, **changes) -> tuple[Experiment, list[str]]:
    """The config with new lr_g, lr_d, d_steps (k) or loss, and a line per change ("lr_g 2e-4 → 1e-4").

    Raises ConfigError for a bad value, and ValueError for a setting that cannot change mid-run.
    """
    unknown = set(changes) - set(CHANGEABLE)
    if unknown:
        raise ValueError(f"only {', '.join(CHANGEABLE)} can change during a run, not {', '.join(sorted(unknown))}")
    updates: dict[str, dict] = {}
    lines = []
    for name, value in changes.items():
        section, field = CHANGEABLE[name]
        old = getattr(getattr(cfg, section), field)
        if value == old:
            continue
        updates.setdefault(section, {})[field] = value
        lines.append(f"{name} {_short(old)} → {_short(value)}")
    return (cfg.replace(**updates) if updates else cfg), lines


def _short(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
