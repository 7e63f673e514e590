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
import torch

from ganlab import alarms, checkpoints
from ganlab.config import Experiment
from ganlab.families import family_of, make_trainer, metric_names, page_of
from ganlab.meters import summary_meters
from ganlab.train import DivergedError, Trainer
from ganlab.teach import SlowMotion, reconfigured

CREATED, STARTING, RUNNING, PAUSED = "created", "starting", "running", "paused"
FINISHED, STOPPED, FAILED, DIVERGED = "finished", "stopped", "failed", "diverged"
ACTIVE = (STARTING, RUNNING, PAUSED)
ENDED = (FINISHED, STOPPED, FAILED, DIVERGED)
EVENTS_KEPT = 200   # a run of any length keeps its latest events only


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
    path: str = ""                                # which training path runs: fast (how) or eager (why)

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

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(steps, values) of one metric or meter, or None if this run has none."""
        for source in (self.meters, self.metrics):
            col = source.get(name)
            if col is not None and len(col):
                return source["step"], col
        return None


class Run:
    """One experiment trained in a daemon thread."""

    def __init__(self, cfg: Experiment, name: str = "", page: str = "", lockstep=None, resume=None):
        self.id = uuid.uuid4().hex[:10]
        self.cfg = cfg
        self.name = name or f"{cfg.task}-{cfg.model.name}-{cfg.loss.name}"
        self.page = page or page_of(cfg)
        self.created = time.time()
        self.started: float | None = None   # time.time() at start, and when the thread ended
        self.ended: float | None = None
        self.trainer: Trainer | None = None
        self._cond = threading.Condition()
        self._model_lock = threading.Lock()   # held by the thread during each step
        self._paused = False
        self._stop = False
        self._pending: collections.deque[str] = collections.deque()
        self._thread: threading.Thread | None = None
        self._status = CREATED
        self._message = ""
        self._events: collections.deque = collections.deque(maxlen=EVENTS_KEPT)
        self._alarms: tuple = ()
        self._metrics = History(metric_names(cfg), cfg.train.history_cap)
        self._meters: History | None = None
        self._images: collections.deque = collections.deque(maxlen=cfg.train.image_history)
        self._views: dict = {}
        self._slow: SlowMotion | None = None   # an iteration shown stage by stage, under way
        self._changes: list[dict] = []          # reconfigure()'s changes, waiting for the next step
        self._train_seconds = 0.0
        self._rate = (0.0, 0.0)
        self._snapshot = self._make_snapshot(0)
        # Optional: an object with wait(run) (block until the other runs of the group
        # have caught up with this one) and leave(run) (this run has ended).
        self.lockstep = lockstep
        # A checkpoints.Checkpoint to continue from: its history now, its weights
        # and optimizer state once the thread has built the trainer.
        self._resume = resume
        self._autosaved: collections.deque = collections.deque()
        if resume is not None:
            self._resume_history(resume)

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
            self.started = time.time()
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

    # -- teaching (any thread; ganlab.teach) ----------------------------------------------
    def step_stage(self) -> None:
        """While paused: the next stage of the current iteration (slow motion).

        The snapshot's views["stage"] then holds the stage's name, caption and
        data. The sixth call (more with k > 1) completes the iteration, and the
        step counts as any other; any other control first completes it.
        """
        if family_of(self.cfg) != "gan":
            raise RunError("slow motion shows a GAN's update; this run trains an autoencoder")
        with self._cond:
            if self._status in ENDED:
                raise RunError(f"run is {self._status}; start a new one")
            self._paused = True
            self._pending.append("stage")
            self._cond.notify_all()

    def reconfigure(self, **changes) -> list[str]:
        """Change lr_g, lr_d, d_steps (k) or loss between two steps, keeping the weights and history.

        Returns a line per change; the thread applies them before its next step
        and records them as an event. Raises ConfigError for a bad value.
        """
        if family_of(self.cfg) != "gan":
            raise RunError("only a GAN's learning rates, k and loss can change during a run")
        _, lines = reconfigured(self.cfg, **changes)   # check now, so the caller hears of a bad value
        with self._cond:
            if self._status in ENDED:
                raise RunError(f"run is {self._status}; start a new one")
            if lines:
                self._pending.append(("reconfigure", changes))
                self._cond.notify_all()
        return lines

    def _teach(self, what) -> None:
        """The training thread's side of step_stage() and reconfigure()."""
        t = self.trainer
        if what == "stage":
            with self._model_lock:
                if self._slow is None:
                    self._slow = SlowMotion(t)
                stage = self._slow.advance()
                if self._slow.done:
                    self._slow = None
            if stage["done"]:
                self._apply_changes()
                self._publish(probe=True)   # the step is complete: its metrics, and a fresh probe
            self._views["stage"] = stage
        else:
            self._changes.append(what[1])
            if self._slow is None:        # else they wait for the iteration on show to end
                self._apply_changes()
        self._snapshot = self._make_snapshot(t.step)

    def _apply_changes(self) -> None:
        t = self.trainer
        for changes in self._changes:
            with self._model_lock:
                cfg, lines = reconfigured(self.cfg, **changes)
                t.reconfigure(cfg)
                self.cfg = cfg
            self._events.extend((t.step, "change", f"step {t.step}: {line}") for line in lines)
        self._changes.clear()

    def _leave_slow_motion(self) -> None:
        """Before any other step: complete an iteration left halfway, and drop its stage view."""
        if self._slow is not None:
            with self._model_lock:
                while not self._slow.done:
                    self._slow.advance()
            self._slow = None
            self._apply_changes()
        self._views.pop("stage", None)

    def stop(self, wait: float = 5.0) -> bool:
        """Ask the thread to stop; True once it has ended (within `wait` seconds)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            if self._thread is None and self._status == CREATED:
                self._status = STOPPED
                self._snapshot = self._make_snapshot(0)
            elif self._status == STARTING:
                # Setting up can take long (MNIST loads its data, and a first run trains the
                # meters' classifier) and cannot be cut short. Say "stopped" now; the thread
                # ends as soon as the setup returns, without training a step.
                self._status, self._message = STOPPED, "stopped before the first step"
                self._snapshot = self._make_snapshot(0)
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

    def set_save_every(self, steps: int) -> None:
        """Save a checkpoint every `steps` generator steps from now on (0: never). Any thread."""
        self.cfg = self.cfg.replace(train={"save_every": steps})   # checked; the thread reads it each step

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
        failure = None
        try:
            self.trainer = make_trainer(self.cfg)   # a GAN's Trainer, or an autoencoder's
            if self._resume is not None:
                self._restore_checkpoint()
            if self._stop:
                self._end(STOPPED, "stopped before the first step")
                return
            self._publish(probe=True)
            self._loop()
        except DivergedError as e:
            self._end(DIVERGED, str(e), event=(e.step, "divergence", str(e)))
        except Exception as e:  # noqa: BLE001 - any failure must end as a visible status
            log.exception("run %s failed", self.id)   # the page shows one line; the log keeps the traceback
            failure = describe_error(e)
        if failure is not None:
            # Outside the except block, so the traceback's tensors (a step's activations,
            # after an out-of-memory error) are gone and their memory can go back.
            free_gpu_cache()
            self._end(FAILED, failure)

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
                self._end(FINISHED, f"finished {t.step:,} steps")
                return
            if what == "stage" or isinstance(what, tuple):
                self._teach(what)
                continue
            self._leave_slow_motion()
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
            if what != "run" or t.step % every == 0 or t.step >= total or self._save_due(t.step):
                now = time.perf_counter()
                if what == "run" and now > mark_time:
                    sps = (t.step - mark_step) / (now - mark_time)
                    self._rate = (sps, sps * self.cfg.train.batch_size)
                    mark_time, mark_step = now, t.step
                self._publish(probe=True)
            if self._save_due(t.step):
                self._autosave()

    # -- checkpoints (the training thread) ---------------------------------------------------
    def _save_due(self, step: int) -> bool:
        every = self.cfg.train.save_every
        return every > 0 and step % every == 0

    def _autosave(self) -> None:
        """Save a checkpoint; a failed save (a full disk) is an event, never the end of the run."""
        step = self.trainer.step
        try:
            folder = checkpoints.save(self)
        except Exception as e:  # noqa: BLE001
            text = str(e) if isinstance(e, checkpoints.CheckpointError) else describe_error(e)
            log.warning("run %s: checkpoint at step %d failed: %s", self.id, step, text)
            self._events.append((step, "checkpoint", f"checkpoint failed: {text}"))
            return
        self._autosaved.append(folder)
        while len(self._autosaved) > checkpoints.KEEP_AUTOSAVES:
            try:
                checkpoints.delete(self._autosaved.popleft())
            except (checkpoints.CheckpointError, OSError):
                pass   # already gone, or moved by hand: not ours to chase

    def _resume_history(self, ckpt) -> None:
        """Start from the checkpoint's curves and events."""
        m = ckpt.metrics
        if m and len(m["step"]):
            self._metrics.extend(m["step"], np.column_stack([m[c] for c in self._metrics.columns]))
        meters = ckpt.meters
        if meters and len(meters["step"]):
            keep = meters["step"] < ckpt.step      # the resumed run probes its first step again
            columns = tuple(c for c in meters if c != "step")
            self._meters = History(columns, self.cfg.train.history_cap)
            self._meters.extend(meters["step"][keep], np.column_stack([meters[c] for c in columns])[keep])
        self._events.extend(ckpt.events)

    def _restore_checkpoint(self) -> None:
        ckpt, self._resume = self._resume, None    # drop the saved tensors once they are in the trainer
        notes = checkpoints.restore(self.trainer, ckpt.state)
        self._events.append((ckpt.step, "resumed", "; ".join(
            [f"resumed from {ckpt.folder.name} at step {ckpt.step}"] + notes)))

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
        self.ended = time.time()
        try:
            if status in (FINISHED, STOPPED) and self.trainer is not None:
                # The last step's probe is there already when the loop published it.
                self._publish(probe=self._views.get("step") != self.trainer.step)
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
        if family_of(self.cfg) != "gan":
            return   # the alarms name GAN failures; an autoencoder's divergence ends the run anyway
        options = getattr(t.task, "alarm_options", dict)()
        sounding = tuple(alarms.check(self._metrics.frame(), self._meters.frame(),
                                      d_is_probability=t.loss.mode_alarm, **options))
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
            alarms=self._alarms, path=getattr(self.trainer, "path", ""))


    # -- a row for a table of runs ----------------------------------------------------------
    @property
    def device(self) -> str:
        return str(self.trainer.device) if self.trainer is not None else self.cfg.train.device

    @property
    def wall_seconds(self) -> float:
        """Time since Start, up to the end of the run (0 before Start)."""
        if self.started is None:
            return 0.0
        return (self.ended or time.time()) - self.started

    def summary(self) -> dict:
        """Plain values describing this run now, read from its latest snapshot."""
        snap = self._snapshot
        row = {
            "id": self.id, "name": self.name, "page": self.page, "model": self.cfg.model.name,
            "loss": self.cfg.loss.name, "status": snap.status, "step": snap.step, "budget": snap.total_steps,
            "steps_per_s": snap.steps_per_s, "device": self.device, "gpu_memory": gpu_memory(self.device),
            "wall_s": self.wall_seconds,
        }
        # The latest of each summary meter (ganlab.meters) this run has.
        row.update({name: value for name in summary_meters() if (value := snap.latest(name)) is not None})
        return row


def gpu_memory(device: str) -> int | None:
    """Bytes of CUDA memory that this process's tensors hold on `device`; None off CUDA.

    The figure is per device, not per run: runs sharing a GPU share it.
    """
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    return torch.cuda.memory_allocated(torch.device(device))


def free_gpu_cache() -> None:
    """Give the CUDA caching allocator's unused blocks back to the driver, for other runs."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def describe_error(e: BaseException) -> str:
    """One line a user can act on."""
    text = str(e).strip() or type(e).__name__
    if isinstance(e, torch.OutOfMemoryError) or "out of memory" in text.lower():
        return "out of GPU memory: lower the batch size or the model width"
    return f"{type(e).__name__}: {text.splitlines()[0]}"


class RunRegistry:
    """Every run in this process, by id. Safe to use from any thread."""

    def __init__(self, max_active: int = 8):
        self.max_active = max_active
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def create(self, cfg: Experiment, name: str = "", page: str = "", start: bool = True,
               paused: bool = False, lockstep=None, resume=None) -> Run:
        """A new run; `resume` (a checkpoints.Checkpoint) continues a saved one.

        A config over this machine's budget (cost.check) raises BudgetError before anything is built.
        """
        from ganlab import cost
        cost.check(cfg)
        with self._lock:
            active = sum(r.status in ACTIVE for r in self._runs.values())
            if start and active >= self.max_active:
                raise RunError(f"{active} runs are already training (the limit is {self.max_active}); "
                               f"stop one first")
            run = Run(cfg, name=name, page=page, lockstep=lockstep, resume=resume)
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
