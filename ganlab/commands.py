"""How other threads steer a run's thread: two flags, and a queue of commands.

Two kinds of control, for two needs:
- Flags, for states: stop and pause. A stop must overtake everything queued
  (5,000 single steps clicked, a k of 1,000 under way), and a pause is a state a
  page reads back at once (Run.paused), so both are flags the thread reads at
  each stop point.
- Commands, for things that happen once, in order: a single step, a stage of
  slow motion, a change of learning rate, k or loss, a new autosave interval.
  Each is a small frozen dataclass whose apply(worker) does its work on the
  run's thread (worker.Worker), between two training steps.
One Condition guards both, so a stop or a command also wakes a paused thread.
"""
from __future__ import annotations

import collections
import threading
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Train:
    """Free running: the next step. What the thread does when nothing else is asked."""

    def apply(self, worker) -> bool:
        worker.free_step()
        return False          # apply() returns True when the run is over


@dataclass(frozen=True)
class Finish:
    """The budget of steps is spent."""

    def apply(self, worker) -> bool:
        worker.finish()
        return True


@dataclass(frozen=True)
class Stop:
    """Stop was pressed."""

    def apply(self, worker) -> bool:
        worker.stop()
        return True


@dataclass(frozen=True)
class Step:
    """While paused: one iteration of D only ("d"), G only ("g") or both."""
    what: str = "both"

    def apply(self, worker) -> bool:
        worker.single_step(self.what)
        return False


@dataclass(frozen=True)
class Stage:
    """While paused: the next stage of slow motion."""

    def apply(self, worker) -> bool:
        worker.next_stage()
        return False


@dataclass(frozen=True)
class Reconfigure:
    """New lr_g, lr_d, d_steps or loss, as (name, value) pairs, from the next step on."""
    changes: tuple

    def apply(self, worker) -> bool:
        worker.change(dict(self.changes))
        return False


@dataclass(frozen=True)
class SetSaveEvery:
    """Save a checkpoint every `steps` steps from now on (0: never)."""
    steps: int

    def apply(self, worker) -> bool:
        worker.set_save_every(self.steps)
        return False


class Controls:
    """The stop and pause flags and the command queue, under one Condition. Any thread."""

    def __init__(self, paused: bool = False):
        self.cond = threading.Condition()     # reentrant: the thread publishes "paused" while holding it
        self.stop_requested = False
        self.pause_requested = paused
        self._queue: collections.deque = collections.deque()

    def stop(self) -> None:
        with self.cond:
            self.stop_requested = True
            self._queue.clear()             # whatever was queued will not happen
            self.cond.notify_all()

    def pause(self) -> None:
        with self.cond:
            self.pause_requested = True
            self.cond.notify_all()

    def resume(self) -> None:
        with self.cond:
            self.pause_requested = False
            self.cond.notify_all()

    def send(self, command, pause: bool = False) -> None:
        """Queue a command (`pause`: and pause, for the controls that work only while paused)."""
        with self.cond:
            if pause:
                self.pause_requested = True
            self._queue.append(command)
            self.cond.notify_all()

    def next(self, budget_spent: Callable[[], bool], paused: Callable[[], None]):
        """The run's thread: block while paused; then the next command to apply.

        `paused()` is called each time the thread is about to wait (it says so once).
        """
        with self.cond:
            while True:
                if self.stop_requested:
                    return Stop()
                if self._queue:
                    return self._queue.popleft()
                if budget_spent():
                    return Finish()
                if not self.pause_requested:
                    return Train()
                paused()
                self.cond.wait(timeout=0.5)
