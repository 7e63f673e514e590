"""What a run has made so far, and the immutable Snapshots that pages read of it.

A run's thread records into a Publisher: per-step metrics, per-probe meters,
the latest probe's views, a ring of sample grids, events and the alarms now
sounding. Every `snapshot_every` steps it publishes a Snapshot: plain CPU numpy
arrays that any number of readers may hold without locks or copies. Only the
run's thread writes to a Publisher.
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field

import numpy as np

from ganlab import alarms
from ganlab.families import family_of, metric_names

CREATED, STARTING, RUNNING, PAUSED = "created", "starting", "running", "paused"
FINISHED, STOPPED, FAILED, DIVERGED = "finished", "stopped", "failed", "diverged"
ACTIVE = (STARTING, RUNNING, PAUSED)
ENDED = (FINISHED, STOPPED, FAILED, DIVERGED)
EVENTS_KEPT = 200   # a run of any length keeps its latest events only


class History:
    """Columns of numbers indexed by step, bounded in memory.

    Rows are kept only at steps that are multiples of `stride`. When more than
    `cap` rows pile up, the stride doubles and every other row goes, so a run
    of any length keeps at most `cap` rows, evenly spread over its whole life.
    """

    def __init__(self, columns: tuple[str, ...], cap: int):
        self.columns = columns
        self.cap = cap
        self.stride = 1
        self._steps = np.empty(0, dtype=np.int64)
        self._values = np.empty((0, len(columns)), dtype=np.float64)

    def __len__(self) -> int:
        return len(self._steps)

    def extend(self, steps: np.ndarray, values: np.ndarray) -> None:
        keep = steps % self.stride == 0
        self._steps = np.concatenate([self._steps, steps[keep]])
        self._values = np.concatenate([self._values, values[keep]])
        while len(self._steps) > self.cap:
            self.stride *= 2
            keep = self._steps % self.stride == 0
            self._steps, self._values = self._steps[keep], self._values[keep]

    def append(self, step: int, row: dict[str, float]) -> None:
        self.extend(np.array([step]), np.array([[row.get(c, np.nan) for c in self.columns]]))

    def frame(self) -> dict[str, np.ndarray]:
        """A copy: {'step': ..., column: ...}."""
        out = {"step": self._steps.copy()}
        out.update({c: self._values[:, i].copy() for i, c in enumerate(self.columns)})
        return out


@dataclass(frozen=True)
class Snapshot:
    """What a page needs to draw a run, frozen at one moment."""
    run_id: str
    name: str
    status: str
    message: str
    step: int
    total_steps: int
    elapsed: float
    steps_per_s: float
    samples_per_s: float
    metrics: dict = field(default_factory=dict)   # per-step history: step, loss_d, ...
    meters: dict = field(default_factory=dict)    # per-probe history: step, w1, ks, ...
    views: dict = field(default_factory=dict)     # the latest probe's chart data
    images: tuple = ()                            # ring of (step, grid) for image tasks
    events: tuple = ()                            # (step, kind, text) worth showing
    alarms: tuple = ()                            # alarms.Alarm sounding now
    path: str = ""                                # which training path runs: fast (how) or eager (why)
    clock: dict = field(default_factory=dict)     # step, and wall: time.time() when that step was recorded

    @property
    def progress(self) -> float:
        return min(1.0, self.step / max(self.total_steps, 1))

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def latest(self, name: str) -> float | None:
        for source in (self.meters, self.metrics):
            col = source.get(name)
            if col is not None and len(col):
                return float(col[-1])
        return None

    def wall_seconds(self, steps) -> np.ndarray:
        """Seconds from the run's first recorded step to each of `steps` (TensorBoard's relative
        time), pauses included. Between two records a step's time is interpolated; a step from
        before the first record (a resumed run's earlier life) is NaN."""
        steps = np.asarray(steps, dtype=np.float64)
        if not len(self.clock.get("step", ())):
            return np.full(steps.shape, np.nan)
        wall = self.clock["wall"] - self.clock["wall"][0]
        return np.interp(steps, self.clock["step"], wall, left=np.nan, right=np.nan)

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(steps, values) of one metric or meter, or None if this run has none."""
        for source in (self.meters, self.metrics):
            col = source.get(name)
            if col is not None and len(col):
                return source["step"], col
        return None


class AlarmWatch:
    """Checks a GAN's history for trouble after each probe (ganlab.alarms)."""

    def __init__(self):
        self.sounding: tuple = ()

    def check(self, trainer, metrics: History, meters: History) -> list:
        """The alarms that started sounding since the last check; one the run's preset expects at
        this stage (its warm-up) is shown, but never counts as new, so it pauses nothing."""
        from ganlab.verdict import alarm_warmup
        if family_of(trainer.cfg) != "gan":
            return []   # the alarms name GAN failures; an autoencoder's divergence ends the run anyway
        options = getattr(trainer.task, "alarm_options", dict)()
        sounding = tuple(alarms.check(metrics.frame(), meters.frame(), d_is_probability=trainer.loss.mode_alarm,
                                      cfg=trainer.cfg, warmup=alarm_warmup(trainer.cfg), **options))
        before = {b.kind for b in self.sounding if not b.expected}
        new = [a for a in sounding if not a.expected and a.kind not in before]
        self.sounding = sounding
        return new


class Publisher:
    """A run's record so far; snapshot() freezes it for the pages."""

    def __init__(self, run_id: str, name: str, cfg):
        self.run_id, self.name = run_id, name
        self.history_cap = cfg.train.history_cap
        self.metrics = History(metric_names(cfg), cfg.train.history_cap)
        self.clock = History(("wall",), cfg.train.history_cap)   # when each record was made
        self.meters: History | None = None
        self.images: collections.deque = collections.deque(maxlen=cfg.train.image_history)
        self.views: dict = {}
        self.events: collections.deque = collections.deque(maxlen=EVENTS_KEPT)
        self.alarms = AlarmWatch()
        self.train_seconds = 0.0
        self.rate = (0.0, 0.0)      # steps/s and samples/s, over a recent window of free running (ganlab.speed)

    def resume_from(self, ckpt) -> None:
        """Start from a checkpoint's curves and events."""
        m = ckpt.metrics
        if m and len(m["step"]):
            self.metrics.extend(m["step"], np.column_stack([m[c] for c in self.metrics.columns]))
        meters = ckpt.meters
        if meters and len(meters["step"]):
            keep = meters["step"] < ckpt.step      # the resumed run probes its first step again
            columns = tuple(c for c in meters if c != "step")
            self.meters = History(columns, self.history_cap)
            self.meters.extend(meters["step"][keep], np.column_stack([meters[c] for c in columns])[keep])
        self.events.extend(ckpt.events)

    def record(self, trainer, probe: bool) -> list:
        """Read the trainer's metrics back and, with `probe`, its views and meters.

        Returns the alarms that started sounding. Raises DivergedError with the first bad step.
        """
        steps, values = trainer.flush()
        self.metrics.extend(steps, values)
        self.clock.append(trainer.step, {"wall": time.time()})
        if not probe:
            return []
        views, meters = trainer.probe()
        views["step"] = trainer.step
        if self.meters is None:
            self.meters = History(tuple(meters), self.history_cap)
        self.meters.append(trainer.step, meters)
        grid = views.pop("grid", None)
        if grid is not None and (not self.images or self.images[-1][0] != trainer.step):
            self.images.append((trainer.step, grid))
        self.views = views
        new = self.alarms.check(trainer, self.metrics, self.meters)
        self.events.extend((alarm.step, alarm.kind, alarm.text) for alarm in new)
        return new

    def snapshot(self, status: str, message: str, step: int, total_steps: int, path: str = "") -> Snapshot:
        return Snapshot(
            run_id=self.run_id, name=self.name, status=status, message=message,
            step=step, total_steps=total_steps, elapsed=self.train_seconds,
            steps_per_s=self.rate[0], samples_per_s=self.rate[1],
            metrics=self.metrics.frame(), meters=self.meters.frame() if self.meters else {},
            views=dict(self.views), images=tuple(self.images), events=tuple(self.events),
            alarms=self.alarms.sounding, path=path, clock=self.clock.frame())
