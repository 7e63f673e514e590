"""The run's thread: it sets the trainer up, then applies one command after another.

`Train` is one step of free running; stop and pause are flags it reads between
steps (ganlab/commands.py). The trainer, the config and a slow-motion iteration
under way belong to this thread alone. A Run (ganlab/runs.py) is what the pages
hold; its Worker is the only code that touches the trainer without borrowing it.
"""
from __future__ import annotations

import collections
import contextlib
import ctypes
import dataclasses
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ganlab import checkpoints, stopping
from ganlab.config import Experiment
from ganlab.families import make_trainer
from ganlab.snapshots import DIVERGED, FAILED, FINISHED, PAUSED, RUNNING, STOPPED, Publisher
from ganlab.speed import Speedometer
from ganlab.teach import SlowMotion, reconfigured
from ganlab.train import DivergedError

if TYPE_CHECKING:
    from ganlab.runs import Run

log = logging.getLogger(__name__)


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
        self.kept: Kept | None = None      # once an ended run's models went back: where their state is
        self.record: Publisher = run._publisher
        self.autosaver = Autosaver()
        self._resume = resume
        self._slow: SlowMotion | None = None   # an iteration shown stage by stage, under way
        self._changes: list[dict] = []          # changes waiting for that iteration to end
        self.speed = Speedometer()              # steps/s over a recent window of free running

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
        self._give_back()

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
        self.speed.restart(t.step)
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
            self.speed.restart(t.step)
        if run.lockstep is not None:
            run.lockstep.wait(run)
            if run.stop_requested:
                return
        FOREGROUND.wait_turn()
        self._train("both")
        save = self.autosaver.due(t.step, self.cfg)
        if t.step % self.cfg.train.snapshot_every == 0 or t.step >= self.cfg.train.steps or save or self._due_by_time():
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
        sps = self.speed.update(self.trainer.step)
        if sps is not None:
            self.record.rate = (sps, sps * self.cfg.train.batch_size)

    def _due_by_time(self) -> bool:
        """A task may ask for a snapshot every few seconds as well (MNIST: snapshot_seconds), so
        its page moves whatever the model's speed; counted from the end of the last probe. On a
        starved CPU a probe itself takes seconds: the wait grows so probes keep to a fifth of the time."""
        every = getattr(self.trainer.task, "snapshot_seconds", 0)
        return every > 0 and time.perf_counter() - self._probed >= max(every, 4 * self._probe_seconds)

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
            start = time.perf_counter()
            with self.run._models if probe else contextlib.nullcontext():
                new_alarms = self.record.record(t, probe)   # raises DivergedError with the first bad step
            if probe:
                self._probed = time.perf_counter()
                self._probe_seconds = self._probed - start
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

    def _give_back(self) -> None:
        # Last, once the final snapshot is out: an ended run's snapshots stay on show, its data
        # (67 MB for an MNIST run) goes back, and so do its models and optimizers once the run
        # store holds their state: Save, Explore and Resume read it back from there.
        t = self.trainer
        if t is None:
            return
        with self.run._models:
            t.give_back()
            self.kept = self._keep(t)
            if self.kept is not None:
                self.trainer = self._slow = None
        del t
        free_gpu_cache()
        _trim_heap()

    def _keep(self, t) -> Kept | None:
        """Write the trainer's state into the run's folder in the store; None (the models stay in
        memory) without a store, or when the write fails (a full disk)."""
        store = self.run.store
        if store is None:
            return None
        try:
            path = store.keep_state(self.run.id, self.run.name, checkpoints.trainer_state(t))
        except Exception as e:  # noqa: BLE001 - the run has ended either way; its models stay here
            log.warning("run %s: its models stay in memory, the store could not keep them: %s",
                        self.run.id, describe_error(e))
            return None
        return Kept(t.step, str(t.device), path)


@dataclasses.dataclass(frozen=True)
class Kept:
    """What an ended run keeps of its trainer once the models went back: its counters, and the
    file in the run store that holds the models' and optimizers' state (checkpoints.write_state)."""
    step: int
    device: str
    state_file: Path


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
        # Relative to the process (its main thread, whose id is the pid): a server started
        # under `nice` already runs at 10, and training must still sit below its page threads.
        below_pages = min(19, os.getpriority(os.PRIO_PROCESS, os.getpid()) + TRAINING_NICENESS)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), below_pages)
    except (AttributeError, OSError):
        pass   # not Linux, or not allowed: training keeps the priority it has


def free_gpu_cache() -> None:
    """Give the CUDA caching allocator's unused blocks back to the driver, for other runs."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _trim_heap() -> None:
    # glibc keeps freed blocks in the process's heap, so the digits an ended run gave back
    # would still count against the server's memory; malloc_trim hands them to the OS.
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):     # not glibc (macOS, musl): its allocator decides
        pass


def describe_error(e: BaseException) -> str:
    """One line a user can act on."""
    text = str(e).strip() or type(e).__name__
    if isinstance(e, torch.OutOfMemoryError) or "out of memory" in text.lower():
        return "out of GPU memory: lower the batch size or the model width"
    return f"{type(e).__name__}: {text.splitlines()[0]}"


