"""Runs: training in a background thread, observed through immutable snapshots.

A Run is what a page holds. Its parts, each small enough to read on its own:
- Controls and commands (ganlab/commands.py): how any thread steers the run's
  thread. Stop and pause are flags; single steps, slow motion, changes of lr or
  k and the autosave interval are commands, applied in order between steps.
- Worker (here): the run's thread. It sets the trainer up, then applies one
  command after another; `Train` is one step of free running. The trainer, the
  config and a slow-motion iteration under way belong to it alone.
- Publisher (ganlab/snapshots.py): the run's record so far (curves, probes,
  events, alarms) and the Snapshot pages read: CPU numpy arrays, replaced whole,
  never changed, so any thread reads them without a lock.
- Autosaver (here): a checkpoint every save_every steps, the latest few kept.
- The models' lock: the worker holds it while it uses the models; another
  thread borrows them between two steps with `with run.borrow() as trainer:`.

Stop is read at every stop point (ganlab/stopping.py): between steps, between
the stages of a slow step (k = 1,000 D updates, a huge batch), and between the
phases of setting up (the data, each layer of the model), so the thread ends
within a second of a stop unless one stage of an update takes longer.
"""
from __future__ import annotations

import atexit
import collections
import contextlib
import copy
import dataclasses
import logging
import os
import threading
import time
import uuid
import weakref

import torch

from ganlab import checkpoints, stopping
from ganlab.commands import Controls, Reconfigure, SetSaveEvery, Stage, Step
from ganlab.config import Experiment
from ganlab.families import family_of, make_trainer, page_of
from ganlab.meters import summary_meters
from ganlab.snapshots import (ACTIVE, CREATED, DIVERGED, ENDED, EVENTS_KEPT, FAILED, FINISHED, PAUSED,  # noqa: F401
                              RUNNING, STARTING, STOPPED, History, Publisher, Snapshot)
from ganlab.teach import SlowMotion, reconfigured
from ganlab.train import DivergedError

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


class Run:
    """One experiment trained in a daemon thread. Every method here is safe from any thread."""

    def __init__(self, cfg: Experiment, name: str = "", page: str = "", lockstep=None, resume=None,
                 owner: str = ""):
        self.id = uuid.uuid4().hex[:10]
        self.name = name or f"{cfg.task}-{cfg.model.name}-{cfg.loss.name}"
        self.page = page or page_of(cfg)
        self.owner = owner                  # who started it (a browser); "" for the command line and tests
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
        trainer = self._worker.trainer
        return trainer.step if trainer is not None else 0

    @property
    def has_model(self) -> bool:
        """Whether the thread has built the models (borrow() then lends them)."""
        return self._worker.trainer is not None

    @property
    def trainer(self):
        """The trainer, for reading its counters. To use its models, borrow() them."""
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
            if trainer is None:
                return None
            G = copy.deepcopy(trainer.G)
        return G.eval().requires_grad_(False)

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

        The thread reads the request at its next stop point (ganlab.stopping): within
        a second in every state, unless a single stage of an update takes longer (D's
        backward pass on a batch of a million, on a CPU). Before the first step the
        status says "stopped" at once.
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
        trainer = self._worker.trainer
        return str(trainer.device) if trainer is not None else self.cfg.train.device

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


class Worker:
    """The run's thread: set up the trainer, then apply commands one at a time until the end.

    Only that thread calls these methods (commands reach them through apply()),
    so the trainer, the config and a slow-motion iteration under way need no lock
    of their own. The models' lock is held whenever the models are used, so that
    another thread can borrow them between two steps.
    """

    def __init__(self, run: Run, cfg: Experiment, resume=None):
        self.run = run
        self.cfg = cfg                     # the one config; only this thread replaces it
        self.trainer = None
        self.record: Publisher = run._publisher
        self.autosaver = Autosaver()
        self._resume = resume
        self._slow: SlowMotion | None = None   # an iteration shown stage by stage, under way
        self._changes: list[dict] = []          # changes waiting for that iteration to end
        self._mark = (0.0, 0)                   # (time, step) where the current rate was measured from

    def main(self) -> None:
        failure = None
        _yield_to_the_pages()
        try:
            with stopping.stoppable(lambda: self.run.stop_requested):
                self._set_up()
                self._publish(probe=True)
                self._loop()
        except stopping.Stopped as e:
            self._end(STOPPED, str(e))
        except DivergedError as e:
            self._end(DIVERGED, str(e), event=(e.step, "divergence", str(e)))
        except Exception as e:  # noqa: BLE001 - any failure must end as a visible status
            log.exception("run %s failed", self.run.id)   # the page shows one line; the log keeps the traceback
            failure = describe_error(e)
        if failure is not None:
            # Outside the except block, so the traceback's tensors (a step's activations,
            # after an out-of-memory error) are gone and their memory can go back.
            free_gpu_cache()
            self._end(FAILED, failure)

    def _set_up(self) -> None:
        # The data, the model (a stop point before each layer) and the optimizers: make_trainer
        # checks for a stop between each (ganlab.stopping).
        trainer = make_trainer(self.cfg)   # a GAN's Trainer, or an autoencoder's
        with self.run._models:
            self.trainer = trainer
        if self._resume is not None:
            ckpt, self._resume = self._resume, None    # drop the saved tensors once they are in the trainer
            with self.run._models:
                notes = checkpoints.restore(trainer, ckpt.state)
            self.record.events.append((ckpt.step, "resumed", "; ".join(
                [f"resumed from {ckpt.folder.name} at step {ckpt.step}"] + notes)))
        stopping.check("stopped before the first step")

    def _loop(self) -> None:
        controls, t = self.run._controls, self.trainer
        self.run._set_status(PAUSED if controls.pause_requested else RUNNING)
        self._mark = (time.perf_counter(), t.step)
        while True:
            command = controls.next(budget_spent=lambda: t.step >= self.cfg.train.steps, paused=self._say_paused)
            if command.apply(self):
                return

    # -- what the commands do ----------------------------------------------------------
    def free_step(self) -> None:
        t, run = self.trainer, self.run
        self._leave_slow_motion()
        if run.status != RUNNING:
            run._set_status(RUNNING)
            self._mark = (time.perf_counter(), t.step)
        if run.lockstep is not None:
            run.lockstep.wait(run)
            if run.stop_requested:
                return
        FOREGROUND.wait_turn()
        self._train("both")
        save = self.autosaver.due(t.step, self.cfg)
        if t.step % self.cfg.train.snapshot_every == 0 or t.step >= self.cfg.train.steps or save:
            self._measure_rate()
            self._publish(probe=True)
        if save:
            self._autosave()

    def single_step(self, what: str) -> None:
        self._leave_slow_motion()
        self._train(what)
        self._publish(probe=True)     # each single step is shown
        if self.autosaver.due(self.trainer.step, self.cfg):
            self._autosave()

    def next_stage(self) -> None:
        """The next stage of slow motion (ganlab.teach.SlowMotion)."""
        t = self.trainer
        with self.run._models:
            if self._slow is None:
                self._slow = SlowMotion(t)
            stage = self._slow.advance()
            if self._slow.done:
                self._slow = None
        if stage["done"]:
            self._apply_changes()
            self._publish(probe=True)   # the step is complete: its metrics, and a fresh probe
        self.record.views["stage"] = stage
        self._post()

    def change(self, changes: dict) -> None:
        self._changes.append(changes)
        if self._slow is None:        # else they wait for the iteration on show to end
            self._apply_changes()
        self._post()

    def set_save_every(self, steps: int) -> None:
        self.cfg = self.cfg.replace(train={"save_every": steps})

    def finish(self) -> None:
        self._end(FINISHED, f"finished {self.trainer.step:,} steps")

    def stop(self) -> None:
        self._end(STOPPED, f"stopped at step {self.trainer.step}")

    # -- helpers -------------------------------------------------------------------------
    def _train(self, what: str) -> None:
        t0 = time.perf_counter()
        with self.run._models:
            self.trainer.train_step(what)
        self.record.train_seconds += time.perf_counter() - t0

    def _apply_changes(self) -> None:
        t = self.trainer
        for changes in self._changes:
            with self.run._models:
                cfg, lines = reconfigured(self.cfg, **changes)
                t.reconfigure(cfg)
                self.cfg = cfg
            self.record.events.extend((t.step, "change", f"step {t.step}: {line}") for line in lines)
        self._changes.clear()

    def _leave_slow_motion(self) -> None:
        """Before any other step: complete an iteration left halfway, and drop its stage view."""
        if self._slow is not None:
            with self.run._models:
                while not self._slow.done:
                    self._slow.advance()
            self._slow = None
            self._apply_changes()
        self.record.views.pop("stage", None)

    def _measure_rate(self) -> None:
        now, (then, step) = time.perf_counter(), self._mark
        if now > then:
            sps = (self.trainer.step - step) / (now - then)
            self.record.rate = (sps, sps * self.cfg.train.batch_size)
            self._mark = (now, self.trainer.step)

    def _autosave(self) -> None:
        self.autosaver.save(self.run, self.trainer.step, self.record.events)

    def _say_paused(self) -> None:
        # Called with the controls' lock held, just before the thread waits.
        if self.run.status != PAUSED:
            self.run._set_status(PAUSED)
            self._publish(probe=False)

    def _publish(self, probe: bool) -> None:
        t = self.trainer
        if t is not None:
            # A probe runs the models, so it holds their lock; reading the metrics back does not
            # (and so "paused" is published without it, under the controls' lock).
            with self.run._models if probe else contextlib.nullcontext():
                new_alarms = self.record.record(t, probe)   # raises DivergedError with the first bad step
            if new_alarms and self.cfg.train.pause_on_alarm and t.step < self.cfg.train.steps:
                self.run._controls.pause()
        self._post()

    def _post(self) -> None:
        t = self.trainer
        self.run._post(t.step if t else 0, getattr(t, "path", ""))

    def _end(self, status: str, message: str, event: tuple | None = None) -> None:
        run, t = self.run, self.trainer
        if run.lockstep is not None:
            run.lockstep.leave(run)
        if event:
            self.record.events.append(event)
        run.ended = time.time()
        run._set_status(status, message)
        try:
            if t is not None and status == FINISHED:
                # The last step's probe is there already when the loop published it.
                self._publish(probe=self.record.views.get("step") != t.step)
                return
            if t is not None and status == STOPPED:
                # Metrics only: a probe (MNIST's meters) could keep a stopped thread alive for seconds.
                self._publish(probe=False)
                return
        except DivergedError as e:
            run._set_status(DIVERGED, str(e))
            self.record.events.append((e.step, "divergence", str(e)))
        except Exception as e:  # noqa: BLE001
            run._set_status(FAILED, describe_error(e))
        self._post()


class Autosaver:
    """A checkpoint every save_every steps, keeping the latest KEEP_AUTOSAVES.

    A failed save (a full disk) is an event, never the end of the run.
    """

    def __init__(self):
        self._saved: collections.deque = collections.deque()

    @staticmethod
    def due(step: int, cfg: Experiment) -> bool:
        every = cfg.train.save_every
        return every > 0 and step % every == 0

    def save(self, run: Run, step: int, events) -> None:
        try:
            folder = checkpoints.save(run)
        except Exception as e:  # noqa: BLE001
            text = str(e) if isinstance(e, checkpoints.CheckpointError) else describe_error(e)
            log.warning("run %s: checkpoint at step %d failed: %s", run.id, step, text)
            events.append((step, "checkpoint", f"checkpoint failed: {text}"))
            return
        self._saved.append(folder)
        while len(self._saved) > checkpoints.KEEP_AUTOSAVES:
            try:
                checkpoints.delete(self._saved.popleft())
            except (checkpoints.CheckpointError, OSError):
                pass   # already gone, or moved by hand: not ours to chase


def gpu_memory(device: str) -> int | None:
    """Bytes of CUDA memory that this process's tensors hold on `device`; None off CUDA.

    The figure is per device, not per run: runs sharing a GPU share it.
    """
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    return torch.cuda.memory_allocated(torch.device(device))


TRAINING_NICENESS = 10


class Foreground:
    """Someone is waiting for an answer: training steps hold back until it is given.

    Python runs one thread at a time. With eight runs training, a page answering a
    click gets one turn in nine, and a 0.3 s answer takes seconds. While a page's
    script runs (`with FOREGROUND.serving():` in app.py), each training thread waits
    before its next step, at most MAX_WAIT, so training never stalls for long.
    """
    MAX_WAIT = 1.0

    def __init__(self):
        self._lock = threading.Lock()
        self._serving = 0

    @contextlib.contextmanager
    def serving(self):
        with self._lock:
            self._serving += 1
        try:
            yield
        finally:
            with self._lock:
                self._serving -= 1

    def wait_turn(self) -> None:
        deadline = None
        while self._serving:       # read without the lock: a stale value costs one short wait
            now = time.monotonic()
            deadline = deadline or now + self.MAX_WAIT
            if now >= deadline or stopping.requested():
                return
            time.sleep(0.005)


FOREGROUND = Foreground()


def _yield_to_the_pages() -> None:
    """Lower this training thread's scheduling priority (Linux: per thread), so that on a server
    shared by a class the threads that answer clicks and serve pages run first when they wake;
    training takes every cycle they leave."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), TRAINING_NICENESS)
    except (AttributeError, OSError):
        pass   # not Linux, or not allowed: training keeps the priority it has


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
