"""Runs: training in a background thread, observed through immutable snapshots.

A Run is what a page holds. Its parts, each small enough to read on its own:
- Controls and commands (ganlab/commands.py): how any thread steers the run's
  thread. Stop and pause are flags; single steps, slow motion, changes of lr or
  k and the autosave interval are commands, applied in order between steps.
- Worker (ganlab/worker.py): the run's thread. It sets the trainer up, then applies one
  command after another; `Train` is one step of free running. The trainer, the
  config and a slow-motion iteration under way belong to it alone.
- Publisher (ganlab/snapshots.py): the run's record so far (curves, probes,
  events, alarms) and the Snapshot pages read: CPU numpy arrays, replaced whole,
  never changed, so any thread reads them without a lock.
- Autosaver (ganlab/worker.py): a checkpoint every save_every steps, the latest few kept.
- The models' lock: the worker holds it while it uses the models; another
  thread borrows them between two steps with `with run.borrow() as trainer:`.

Stop is read at every stop point (ganlab/stopping.py): between steps, between
the stages of a slow step (k = 1,000 D updates, a huge batch), and between the
phases of setting up (the data, each layer of the model), so the thread ends
within a second of a stop unless one stage of an update takes longer.
"""
from __future__ import annotations

import atexit
import contextlib
import copy
import dataclasses
import threading
import time
import uuid
import weakref

import torch

from ganlab import checkpoints
from ganlab.commands import Controls, Reconfigure, SetSaveEvery, Stage, Step
from ganlab.config import Experiment
from ganlab.families import family_of, page_of
from ganlab.meters import summary_meters
from ganlab.snapshots import (ACTIVE, CREATED, DIVERGED, ENDED, EVENTS_KEPT, FAILED, FINISHED, PAUSED,  # noqa: F401
                              RUNNING, STARTING, STOPPED, History, Publisher, Snapshot)
from ganlab.teach import reconfigured
from ganlab.worker import Worker

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


class Run:
    """One experiment trained in a daemon thread. Every method here is safe from any thread."""

    def __init__(self, cfg: Experiment, name: str = "", page: str = "", lockstep=None, resume=None,
                 owner: str = ""):
        self.id = uuid.uuid4().hex[:10]
        self.name = name or f"{cfg.task}-{cfg.model.name}-{cfg.loss.name}"
        self.page = page or page_of(cfg)
        self.owner = owner                  # who started it (a browser); "" for the command line and tests
        self.store = None                   # a ganlab.store.Store recording it (Store.watch sets it)
        self.created = time.time()
        self.started: float | None = None   # time.time() at start, and when the thread ended
        self.ended: float | None = None
        # Optional: an object with wait(run) (block until the other runs of the group
        # have caught up with this one) and leave(run) (this run has ended).
        self.lockstep = lockstep
        self._controls = Controls()
        self._models = threading.Lock()    # held by the worker while it uses the models
        self._thread: threading.Thread | None = None
        self._status, self._message = CREATED, ""     # written under the controls' lock
        self._publisher = Publisher(self.id, self.name, cfg)
        if resume is not None:   # a checkpoints.Checkpoint: its history now, its weights in the thread
            self._publisher.resume_from(resume)
        self._worker = Worker(self, cfg, resume)
        self._snapshot = self._publisher.snapshot(CREATED, "", 0, cfg.train.steps)

    # -- what a page reads -------------------------------------------------------------
    @property
    def status(self) -> str:
        return self._status

    @property
    def cfg(self) -> Experiment:
        """The config now: changes (reconfigure, set_save_every) reach it once the thread applies them."""
        return self._worker.cfg

    @property
    def step(self) -> int:
        """Steps trained so far, counted live (a snapshot's step moves every snapshot_every steps)."""
        trainer, kept = self._worker.trainer, self._worker.kept
        return trainer.step if trainer is not None else kept.step if kept is not None else 0

    @property
    def has_model(self) -> bool:
        """Whether Save and Explore have models to use: the thread has built them (borrow() lends
        them), or the run has ended and the run store keeps their state."""
        return self._worker.trainer is not None or self._worker.kept is not None

    @property
    def trainer(self):
        """The trainer, for reading its counters (None once an ended run gave its models back to the
        store). To use its models, borrow() them."""
        return self._worker.trainer

    def snapshot(self) -> Snapshot:
        return self._snapshot   # replaced whole, never mutated: safe to read without a lock

    @property
    def stop_requested(self) -> bool:
        return self._controls.stop_requested

    @property
    def paused(self) -> bool:
        """Pause was asked for (the status says so only once the thread has seen it)."""
        return self._controls.pause_requested

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- borrowing the models ------------------------------------------------------------
    @contextlib.contextmanager
    def borrow(self):
        """Lend the trainer (its G, D, optimizers and task) to this thread between two steps.

            with run.borrow() as trainer:      # None until the thread has built it
                state = trainer.G.state_dict()

        Training waits while the block runs, so keep it short: copy what you need.
        Never train with the models or switch their mode, and use no control of the
        run (pause, stop, ...) inside the block.
        """
        with self._models:
            yield self._worker.trainer

    def generator_copy(self):
        """A private copy of G in eval mode, taken between two steps, for exploring.

        The page must never run (or switch the mode of) the G being trained.
        """
        with self.borrow() as trainer:
            G = copy.deepcopy(trainer.G) if trainer is not None else None
        if G is not None:
            return G.eval().requires_grad_(False)
        taken = self.state_copy()
        return checkpoints.generator_of(self.cfg, taken[0]) if taken is not None else None

    def state_copy(self):
        """(the trainer's state, the snapshot, the config) at one instant, for a checkpoint: copied
        between two steps, or read from the run store once the run has given its models back.
        None before the thread has built the models."""
        with self.borrow() as trainer:
            if trainer is not None:   # the snapshot was published at or before this step, never after
                return checkpoints.trainer_state(trainer), self._snapshot, self.cfg
        kept = self._worker.kept
        if kept is None:
            return None
        return checkpoints.read_state(kept.state_file, self.cfg), self._snapshot, self.cfg

    # -- controls ------------------------------------------------------------------------
    def start(self, paused: bool = False) -> "Run":
        with self._controls.cond:
            if self._thread is not None:
                raise RunError(f"run {self.id} was already started")
            self._controls.pause_requested = paused
            self._status = STARTING
            self.started = time.time()
            self._snapshot = dataclasses.replace(self._snapshot, status=STARTING)
            self._thread = threading.Thread(target=self._worker.main, name=f"ganlab-run-{self.id}", daemon=True)
            self._thread.start()
            _LIVE_RUNS.add(self)
        return self

    def pause(self) -> None:
        with self._controls.cond:
            if self._status not in ENDED:
                self._controls.pause()

    def resume(self) -> None:
        self._controls.resume()

    def step_once(self, what: str = "both") -> None:
        """While paused: one iteration of D only ("d"), G only ("g") or both."""
        if what not in ("both", "d", "g"):
            raise ValueError("what must be 'both', 'd' or 'g'")
        self._send(Step(what), pause=True)

    def step_stage(self) -> None:
        """While paused: the next stage of the current iteration (slow motion, ganlab.teach).

        The snapshot's views["stage"] then holds the stage's name, caption and
        data. The sixth call (more with k > 1) completes the iteration, and the
        step counts as any other; any other control first completes it.
        """
        if family_of(self.cfg) != "gan":
            raise RunError("slow motion shows a GAN's update; this run trains an autoencoder")
        self._send(Stage(), pause=True)

    def reconfigure(self, **changes) -> list[str]:
        """Change lr_g, lr_d, d_steps (k) or loss between two steps, keeping the weights and history.

        Returns a line per change; the thread applies them before its next step
        and records them as an event. Raises ConfigError for a bad value.
        """
        if family_of(self.cfg) != "gan":
            raise RunError("only a GAN's learning rates, k and loss can change during a run")
        _, lines = reconfigured(self.cfg, **changes)   # check now, so the caller hears of a bad value
        if lines:
            self._send(Reconfigure(tuple(changes.items())))
        elif self._status in ENDED:
            raise RunError(f"run is {self._status}; start a new one")
        return lines

    def set_save_every(self, steps: int) -> None:
        """Save a checkpoint every `steps` generator steps from now on (0: never).

        The thread applies it before its next step; on an ended run there is nothing left to save.
        """
        self.cfg.replace(train={"save_every": steps})   # ConfigError now, for a bad value
        with self._controls.cond:
            if self._status not in ENDED:
                self._controls.send(SetSaveEvery(steps))

    def _send(self, command, pause: bool = False) -> None:
        with self._controls.cond:
            if self._status in ENDED:
                raise RunError(f"run is {self._status}; start a new one")
            self._controls.send(command, pause=pause)

    def stop(self, wait: float = 5.0) -> bool:
        """Ask the thread to stop; True once it has ended (within `wait` seconds).

        The thread reads the request at its next stop point (ganlab.stopping), at the
        latest after the D or G update under way. The registry refuses a config whose one
        update is priced over cost.MAX_UPDATE_SECONDS, so every run a page starts ends
        within a second; a Run made directly (bench stop's "huge batch") may take longer.
        Before the first step the status says "stopped" at once.
        """
        with self._controls.cond:
            self._controls.stop()
            if self._status in (CREATED, STARTING):
                self._set_status(STOPPED, "stopped before the first step")
        return self.join(wait)

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    # -- status and snapshots (the worker, and stop() before the first step) -----------
    def _set_status(self, status: str, message: str | None = None) -> None:
        with self._controls.cond:
            if self._status in ENDED and status not in ENDED:
                return              # stopped before the first step: the thread will end as well
            self._status = status
            if message is not None:
                self._message = message
            self._snapshot = dataclasses.replace(self._snapshot, status=self._status, message=self._message)

    def _post(self, step: int, path: str) -> None:
        """Publish the record as it stands now."""
        with self._controls.cond:
            self._snapshot = self._publisher.snapshot(self._status, self._message, step, self.cfg.train.steps, path)

    # -- a row for a table of runs ----------------------------------------------------------
    @property
    def device(self) -> str:
        trainer, kept = self._worker.trainer, self._worker.kept
        return str(trainer.device) if trainer is not None else kept.device if kept is not None else self.cfg.train.device

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


class RunRegistry:
    """Every run in this process, by id. Safe to use from any thread.

    At most `max_active` runs train at once, and at most `per_owner` of them for one
    owner (a browser: a class shares one server). A run past a limit is refused, or,
    with queue=True, waits its turn: it starts, oldest first, as soon as it fits.
    """

    def __init__(self, max_active: int = 8, per_owner: int = 0, store=None):
        self.max_active = max_active
        self.per_owner = per_owner          # 0: no limit per owner
        # A ganlab.store.Store: every run created here is recorded in it, and its runs from
        # before a restart (or from other processes) are listed and got as StoredRuns.
        self.store = store
        self._runs: dict[str, Run] = {}
        self._waiting: list[tuple[Run, bool]] = []     # (run, start paused), oldest first
        self._dispatcher: threading.Thread | None = None
        self._lock = threading.Lock()

    def create(self, cfg: Experiment, name: str = "", page: str = "", start: bool = True,
               paused: bool = False, lockstep=None, resume=None, owner: str = "", queue: bool = False) -> Run:
        """A new run; `resume` (a checkpoints.Checkpoint) continues a saved one.

        A config over this machine's budget (cost.check) raises BudgetError before anything is
        built. Past a limit: RunError, or with `queue` the run waits its turn (place()).
        """
        from ganlab import cost
        cost.check(cfg)
        with self._lock:
            run = Run(cfg, name=name, page=page, lockstep=lockstep, resume=resume, owner=owner)
            full = self._no_room(run) if start else None
            if full and not queue:
                raise RunError(full)
            self._runs[run.id] = run
            if self.store is not None:
                self.store.watch(run)
            if full:
                self._waiting.append((run, paused))
                if self._dispatcher is None:
                    self._dispatcher = threading.Thread(target=self._dispatch, name="ganlab-queue", daemon=True)
                    self._dispatcher.start()
                return run
        if start:
            run.start(paused=paused)
        return run

    def _no_room(self, run: Run) -> str | None:
        """Why `run` cannot start now, or None. Call with the lock held."""
        active = [r for r in self._runs.values() if r.status in ACTIVE]
        if len(active) >= self.max_active:
            return f"{len(active)} runs are already training (the limit is {self.max_active}); stop one first"
        mine = sum(r.owner == run.owner for r in active) if run.owner else 0
        if self.per_owner and mine >= self.per_owner:
            return (f"this browser has {mine} runs training already (the limit is {self.per_owner} a browser); "
                    f"stop one first")
        return None

    def place(self, run: Run) -> int | None:
        """A waiting run's place in the queue (1 is next), or None when it is not waiting."""
        with self._lock:
            waiting = [r for r, _ in self._waiting if r.status == CREATED and not r.stop_requested]
        return waiting.index(run) + 1 if run in waiting else None

    def _dispatch(self) -> None:
        # Polls rather than hearing from each run as it ends: a quarter second is nothing
        # against a wait for a free slot, and the runs need not know the registry.
        while True:
            with self._lock:
                self._waiting = [(r, p) for r, p in self._waiting if r.status == CREATED and not r.stop_requested]
                for run, paused in list(self._waiting):
                    if self._no_room(run) is None:
                        self._waiting.remove((run, paused))
                        run.start(paused=paused)
                if not self._waiting:
                    self._dispatcher = None
                    return
            time.sleep(0.25)

    def get(self, run_id: str | None) -> Run | None:
        if not run_id:
            return None
        with self._lock:
            run = self._runs.get(run_id)
        if run is None and self.store is not None:
            return self.store.stored_run(run_id)
        return run

    def list(self) -> list[Run]:
        """This process's runs, and the store's others, oldest first."""
        with self._lock:
            runs = list(self._runs.values())
        if self.store is not None:
            runs += self.store.stored_runs(exclude={r.id for r in runs})
        return sorted(runs, key=lambda r: r.created)

    def delete(self, run_id: str) -> None:
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is not None:
            run.stop()
        if self.store is not None:
            self.store.delete(run_id)

    def stop_all(self, wait: float = 5.0) -> None:
        for run in self.list():
            run.stop(wait)


def run_to_end(cfg: Experiment, name: str = "", store=None, on_snapshot=None, poll: float = 0.2) -> Run:
    """Train `cfg` through an ordinary Run (recorded in `store`, a ganlab.store.Store, when given) and
    return it once it has ended. on_snapshot(run, snapshot) is called every `poll` seconds while it trains
    and once at the end. Headless training without a page: check-presets, a sweep's trial on a Ray worker.

    If the caller is interrupted (a sweep's trial that Ray stops raises SystemExit in on_snapshot),
    the run is stopped too, and its record written."""
    run = RunRegistry(store=store).create(cfg, name=name)
    try:
        while True:
            ended = run.join(poll)
            if on_snapshot is not None:
                on_snapshot(run, run.snapshot())
            if ended:
                return run
    finally:
        if run.alive:
            run.stop()
        if store is not None:
            store.flush()
