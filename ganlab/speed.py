"""How fast a run trains now, and how long it has left, from its recent steps.

A run's speed is measured over the last WINDOW_SECONDS of free running (at least the
last stretch between two snapshots), probes and page refreshes included, so the time
left counts what the run will really spend: one slow stretch does not swing it, and
a run that slows down (another run started beside it) is caught within the window.
"""
from __future__ import annotations

import collections
import time

WINDOW_SECONDS = 10.0


class Speedometer:
    """Steps per second over a recent window. Only the run's thread uses one."""

    def __init__(self, clock=time.perf_counter):
        self._clock = clock
        self._marks: collections.deque = collections.deque()   # (time, step), oldest first

    def restart(self, step: int) -> None:
        """Free running starts (again) at `step`: a pause or single steps say nothing of its speed."""
        self._marks.clear()
        self._marks.append((self._clock(), step))

    def update(self, step: int) -> float | None:
        """Mark `step` now; the steps per second since the oldest mark within the window."""
        now = self._clock()
        if not self._marks:
            self._marks.append((now, step))
            return None
        while len(self._marks) > 1 and now - self._marks[1][0] >= WINDOW_SECONDS:
            self._marks.popleft()   # keep one mark at least WINDOW_SECONDS old, or the oldest there is
        then, start = self._marks[0]
        self._marks.append((now, step))
        return (step - start) / (now - then) if now > then else None


def seconds_left(step: int, total_steps: int, steps_per_s: float) -> float | None:
    """Time to the end of the budget at the measured speed; None when there is no speed yet."""
    if steps_per_s <= 0 or step >= total_steps:
        return None
    return (total_steps - step) / steps_per_s


def rate_text(per_second: float) -> str:
    """"1,250", "50", "4.2", "0.38": a speed to read at a glance. Below 10 it keeps two significant
    figures, so that a slow run (a deep DCGAN on a loaded CPU, under a step a second) does not read 0."""
    return f"{per_second:,.0f}" if per_second >= 10 else f"{per_second:.2g}"


def duration(seconds: float) -> str:
    """"12s", "3m 05s", "1h 02m"."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def time_left(step: int, total_steps: int, steps_per_s: float) -> str:
    """"about 3m 05s left", or "" when there is no speed to go by."""
    left = seconds_left(step, total_steps, steps_per_s)
    return "" if left is None else f"about {duration(max(left, 1))} left"
