"""Runs: training in a background thread, observed through immutable snapshots.

The training thread never talks to the UI. It writes into its Run, and every
`snapshot_every` steps it publishes a Snapshot: plain CPU numpy arrays that
any number of readers may hold without locks or copies. Controls (pause,
resume, single steps, stop) go through one Condition, so a stop also wakes a
paused thread.
"""
from __future__ import annotations

import atexit
import collections
import copy
import threading
import time
import logging
import uuid
import weakref
from dataclasses import dataclass, field

import numpy as np

from ganlab import alarms
from ganlab.config import Experiment
from ganlab.train import METRICS, DivergedError, Trainer

CREATED, STARTING, RUNNING, PAUSED = "created", "starting", "running", "paused"
FINISHED, STOPPED, FAILED, DIVERGED = "finished", "stopped", "failed", "diverged"
ACTIVE = (STARTING, RUNNING, PAUSED)
ENDED = (FINISHED, STOPPED, FAILED, DIVERGED)


log = logging.getLogger(__name__)
_LIVE_RUNS: "weakref.WeakSet[Run]" = weakref.WeakSet()


@atexit.register
def _stop_live_runs() -> None:
    # Daemon threads are killed mid-op at interpreter exit, which can abort the
    # process inside torch; stop them cleanly first.
    runs = list(_LIVE_RUNS)
    for run in runs:
        run.stop(wait=0)
    deadline = time.monotonic() + 10
    for run in runs:
        run.join(max(0.0, deadline - time.monotonic()))


class RunError(RuntimeError):
    """A control was used in a state where it cannot apply."""


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


class Run:
    """One experiment trained in a daemon thread."""

    def __init__(self, cfg: Experiment, name: str = "", page: str = "", lockstep=None):
        self.id = uuid.uuid4().hex[:10]
        self.cfg = cfg
        self.name = name or f"{cfg.task}-{cfg.model.name}-{cfg.loss.name}"
        self.page = page or cfg.task
        self.created = time.time()
        self.trainer: Trainer | None = None
        self._cond = threading.Condition()
        self._model_lock = threading.Lock()   # held by the thread during each step
        self._paused = False
        self._stop = False
        self._pending: collections.deque[str] = collections.deque()
        self._thread: threading.Thread | None = None
        self._status = CREATED
        self._message = ""
        self._events: list[tuple[int, str, str]] = []
        self._alarms: tuple = ()
        self._metrics = History(METRICS, cfg.train.history_cap)
        self._meters: History | None = None
        self._images: collections.deque = collections.deque(maxlen=cfg.train.image_history)
        self._views: dict = {}
        self._train_seconds = 0.0
        self._rate = (0.0, 0.0)
        self._snapshot = self._make_snapshot(0)
        # Optional: an object with wait(run) (block until the other runs of the group
        # have caught up with this one) and leave(run) (this run has ended).
        self.lockstep = lockstep

    # -- controls (any thread) --------------------------------------------------------
    @property
    def status(self) -> str:
        return self._status

    def start(self, paused: bool = False) -> "Run":
        with self._cond:
            if self._thread is not None:
                raise RunError(f"run {self.id} was already started")
            self._paused = paused
            self._status = STARTING
            self._snapshot = self._make_snapshot(0)
            self._thread = threading.Thread(target=self._main, name=f"ganlab-run-{self.id}", daemon=True)
            self._thread.start()
            _LIVE_RUNS.add(self)
        return self

    def pause(self) -> None:
        with self._cond:
            if self._status in ENDED:
                return
            self._paused = True
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def step_once(self, what: str = "both") -> None:
        """While paused: one iteration of D only ("d"), G only ("g") or both."""
        if what not in ("both", "d", "g"):
            raise ValueError("what must be 'both', 'd' or 'g'")
        with self._cond:
            if self._status in ENDED:
                raise RunError(f"run is {self._status}; start a new one")
            self._paused = True
            self._pending.append(what)
            self._cond.notify_all()

    def stop(self, wait: float = 5.0) -> bool:
        """Ask the thread to stop; True once it has ended (within `wait` seconds)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            if self._thread is None and self._status == CREATED:
                self._status = STOPPED
        return self.join(wait)

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def stop_requested(self) -> bool:
        return self._stop

    @property
    def paused(self) -> bool:
        """Pause was asked for (the status says so only once the thread has seen it)."""
        return self._paused

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def generator_copy(self):
        """A private copy of G in eval mode, taken between two steps, for exploring.

        The page must never run (or switch the mode of) the G being trained.
        """
        if self.trainer is None:
            return None
        with self._model_lock:
            G = copy.deepcopy(self.trainer.G)
        return G.eval().requires_grad_(False)

    def snapshot(self) -> Snapshot:
        return self._snapshot   # replaced whole, never mutated: safe to read without a lock

    # -- the training thread ------------------------------------------------------------
    def _main(self) -> None:
        try:
            self.trainer = Trainer(self.cfg)
            self._publish(probe=True)
            self._loop()
        except DivergedError as e:
            self._end(DIVERGED, str(e), event=(e.step, "divergence", str(e)))
        except Exception as e:  # noqa: BLE001 - any failure must end as a visible status
            log.exception("run %s failed", self.id)   # the page shows one line; the log keeps the traceback
            self._end(FAILED, describe_error(e))

    def _loop(self) -> None:
        t = self.trainer
        total = self.cfg.train.steps
        every = self.cfg.train.snapshot_every
        self._set_status(PAUSED if self._paused else RUNNING)
        mark_time, mark_step = time.perf_counter(), t.step
        while True:
            what = self._wait_for_work()
            if what is None:
                self._end(STOPPED, f"stopped at step {t.step}")
                return
            if what == "done":
                self._end(FINISHED, f"finished {t.step} steps")
                return
            if what == "run" and self._status != RUNNING:
                self._set_status(RUNNING)
                mark_time, mark_step = time.perf_counter(), t.step
            if self.lockstep is not None and what == "run":
                self.lockstep.wait(self)
                if self._stop:
                    continue
            t0 = time.perf_counter()
            with self._model_lock:
                t.train_step("both" if what == "run" else what)
            self._train_seconds += time.perf_counter() - t0
            if what != "run" or t.step % every == 0 or t.step >= total:
                now = time.perf_counter()
                if what == "run" and now > mark_time:
                    sps = (t.step - mark_step) / (now - mark_time)
                    self._rate = (sps, sps * self.cfg.train.batch_size)
                    mark_time, mark_step = now, t.step
                self._publish(probe=True)

    def _wait_for_work(self) -> str | None:
        """Block while paused. Returns 'run', a single-step kind, 'done', or None to stop."""
        with self._cond:
            while True:
                if self._stop:
                    return None
                if self._pending:
                    return self._pending.popleft()
                if self.trainer.step >= self.cfg.train.steps:
                    return "done"
                if not self._paused:
                    return "run"
                if self._status != PAUSED:
                    self._status = PAUSED
                    self._publish(probe=False)
                self._cond.wait(timeout=0.5)

    def _set_status(self, status: str) -> None:
        self._status = status
        self._publish(probe=False)

    def _end(self, status: str, message: str, event: tuple | None = None) -> None:
        if self.lockstep is not None:
            self.lockstep.leave(self)
        if event:
            self._events.append(event)
        self._status, self._message = status, message
        try:
            if status in (FINISHED, STOPPED) and self.trainer is not None:
                self._publish(probe=True)
                return
        except DivergedError as e:
            self._status, self._message = DIVERGED, str(e)
            self._events.append((e.step, "divergence", str(e)))
        except Exception as e:  # noqa: BLE001
            self._status, self._message = FAILED, describe_error(e)
        self._publish(probe=False)

    def _publish(self, probe: bool) -> None:
        t = self.trainer
        if t is not None:
            steps, values = t.flush()   # raises DivergedError with the first bad step
            self._metrics.extend(steps, values)
            if probe:
                views, meters = t.probe()
                views["step"] = t.step
                if self._meters is None:
                    self._meters = History(tuple(meters), self.cfg.train.history_cap)
                self._meters.append(t.step, meters)
                grid = views.pop("grid", None)
                if grid is not None and (not self._images or self._images[-1][0] != t.step):
                    self._images.append((t.step, grid))
                self._views = views
                self._sound_alarms()
        self._snapshot = self._make_snapshot(t.step if t else 0)

    def _sound_alarms(self) -> None:
        """Check the history for trouble; record each new alarm as an event, and pause if asked."""
        t = self.trainer
        options = getattr(t.task, "alarm_options", dict)()
        sounding = tuple(alarms.check(self._metrics.frame(), self._meters.frame(),
                                      bce=not t.loss.wasserstein, **options))
        new = [a for a in sounding if a.kind not in {b.kind for b in self._alarms}]
        self._alarms = sounding
        for alarm in new:
            self._events.append((alarm.step, alarm.kind, alarm.text))
        if new and self.cfg.train.pause_on_alarm and t.step < self.cfg.train.steps:
            self._paused = True

    def _make_snapshot(self, step: int) -> Snapshot:
        return Snapshot(
            run_id=self.id, name=self.name, status=self._status, message=self._message,
            step=step, total_steps=self.cfg.train.steps, elapsed=self._train_seconds,
            steps_per_s=self._rate[0], samples_per_s=self._rate[1],
            metrics=self._metrics.frame(), meters=self._meters.frame() if self._meters else {},
            views=dict(self._views), images=tuple(self._images), events=tuple(self._events),
            alarms=self._alarms)


def describe_error(e: BaseException) -> str:
    """One line a user can act on."""
    text = str(e).strip() or type(e).__name__
    if "out of memory" in text.lower():
        return "out of GPU memory: lower the batch size or the model width"
    return f"{type(e).__name__}: {text.splitlines()[0]}"


class RunRegistry:
    """Every run in this process, by id. Safe to use from any thread."""

    def __init__(self, max_active: int = 8):
        self.max_active = max_active
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def create(self, cfg: Experiment, name: str = "", page: str = "", start: bool = True,
               paused: bool = False, lockstep=None) -> Run:
        with self._lock:
            active = sum(r.status in ACTIVE for r in self._runs.values())
            if start and active >= self.max_active:
                raise RunError(f"{active} runs are already training (the limit is {self.max_active}); "
                               f"stop one first")
            run = Run(cfg, name=name, page=page, lockstep=lockstep)
            self._runs[run.id] = run
        if start:
            run.start(paused=paused)
        return run

    def get(self, run_id: str | None) -> Run | None:
        if not run_id:
            return None
        with self._lock:
            return self._runs.get(run_id)

    def list(self) -> list[Run]:
        with self._lock:
            return sorted(self._runs.values(), key=lambda r: r.created)

    def delete(self, run_id: str) -> None:
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is not None:
            run.stop()

    def stop_all(self, wait: float = 5.0) -> None:
        for run in self.list():
            run.stop(wait)
