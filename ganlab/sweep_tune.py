"""Ray Tune's side of a sweep on the driver: the stopper and the callback (ganlab.sweeps).

A module of its own so that ganlab.sweeps imports without Ray (a second and a half), and so that
these classes pickle by name: Tune pickles its experiment's state, stopper and callbacks included,
which is why they hold the sweep's id and look the Sweep up, rather than holding it.
"""
from __future__ import annotations

from ray.tune import Callback, Stopper

from ganlab import sweeps


class StopFlag(Stopper):
    """No trial stops on its own results; all stop once the sweep is asked to. Tune asks every
    tenth of a second or so, whether or not a result came."""

    def __init__(self, sweep_id: str):
        self.sweep_id = sweep_id

    def __call__(self, trial_id, result) -> bool:
        return False

    def stop_all(self) -> bool:
        sweep = sweeps._LIVE.get(self.sweep_id)
        return sweep is None or sweep.stop_requested


class Results(Callback):
    """Each trial's start, reports and end, into the Sweep (which writes them into its store)."""

    def __init__(self, sweep_id: str):
        self.sweep_id = sweep_id

    def _sweep(self):
        return sweeps._LIVE[self.sweep_id]

    def on_trial_start(self, iteration, trials, trial, **info):
        self._sweep()._started_trial(trial.config["index"])

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "ganlab" in result:
            self._sweep()._take(trial.config["index"], result["ganlab"])

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._sweep()._ended_trial(trial.config["index"], None)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._sweep()._ended_trial(trial.config["index"], sweeps.trial_error(trial))

    def on_step_end(self, iteration, trials, **info):
        self._sweep()._write()
