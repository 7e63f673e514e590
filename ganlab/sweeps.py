"""Sweeps: one preset trained over a grid of settings and seeds, on Ray Tune.

    spec = SweepSpec("gauss1d", axes=(Axis("opt_d.lr", "log", 1e-4, 1e-1, 4),
                                      Axis("opt_g.lr", "log", 1e-4, 1e-1, 4)), seeds=(100, 101))
    sweep = start_sweep(spec, store)      # returns at once; Ray Tune trains the trials
    sweep.progress()                      # (trials done, of N, seconds left or None)
    sweep.rows()                          # a row per trial: its settings, status, final meters
    sweep.stop()

Each trial is an ordinary ganlab run (ganlab.runs.run_to_end: the same engine, meters and alarms, and the
same code `check-presets` trains with), inside a Ray Tune trial. It reports each snapshot it publishes through Ray's own API (ray.tune.report):
step, losses, meters, and at the end its status and why. On the driver a ray.tune.Callback takes the
results as they come and writes them into the run store's sweep tables (ganlab.store) about twice a
second, so a page reads a sweep live, and again after a restart (load_sweep).

Ray is local unless told otherwise: `address`, else RAY_ADDRESS, else a Ray started in this
process on this machine's cores (once per process, reused). A CPU trial asks Ray for the threads its
task trains with (one for the 1D and 2D labs); a CUDA trial for a quarter of a GPU.

A trial records its run in the run store the driver writes (the store's folder is passed to it), so
on a local Ray each trial is also on the Runs page; on a cluster the workers write that same path on
their own machines (see the README's Sweeps section).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ganlab.config import ConfigError, Experiment, apply_changes
from ganlab.meters import ENERGY, FID, METERS, W1
from ganlab.presets import PRESETS
from ganlab.worker import TRAINING_NICENESS

log = logging.getLogger(__name__)

KINDS = ("grid", "log", "random")
MAX_VALUES = 12          # per axis: a 12 x 12 map is already more than a page can label
MAX_SEEDS = 20
MAX_TRIALS = 400         # a sweep is a few hundred runs at most; more is a job for a cluster's own tools
GPU_SHARE = 0.25         # a CUDA trial's share of a GPU: four small GANs fit one card
FLUSH_SECONDS = 0.5      # how often the driver writes new results into the store
SECTIONS = ("target", "toy2d", "noise", "model", "loss", "opt_g", "opt_d", "train")

# The meter a sweep maps by default: each task's distance to its data (the quality meter of ganlab.meters).
# A new task adds its line.
MAIN_METER = {"gauss1d": W1.name, "toy2d": ENERGY.name, "mnist": FID.name}

# Trial statuses: a run's ended statuses, and "collapsed" for a run that finished with mode collapse.
PENDING, RUNNING, FINISHED, DIVERGED, COLLAPSED, FAILED, STOPPED = (
    "pending", "running", "finished", "diverged", "collapsed", "failed", "stopped")
TRIAL_ENDED = (FINISHED, DIVERGED, COLLAPSED, FAILED, STOPPED)
INTERRUPTED = "interrupted"


class SweepError(ValueError):
    """A sweep that cannot be run as asked: `field` names the setting ("axis 1: opt_d.lr", "seeds")."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


# -- which settings can be swept ------------------------------------------------------------------

def _numeric_fields() -> dict[str, type]:
    """"section.field" -> int or float, for every numeric field of an Experiment (bools are not numbers here)."""
    from ganlab.verdict import NEUTRAL   # fields that say how a run is watched, not what it trains
    out = {}
    for section in SECTIONS:
        cls = type(getattr(Experiment(), section))
        for f in fields(cls):
            kind = {"int": int, "float": float}.get(f.type if isinstance(f.type, str) else f.type.__name__)
            if kind is not None and not (section == "train" and f.name in NEUTRAL):
                out[f"{section}.{f.name}"] = kind
    return out


NUMERIC = _numeric_fields()
ONLY_FOR = {"target": "gauss1d", "toy2d": "toy2d"}   # sections that only one task reads


def sweepable(task: str | None = None) -> list[str]:
    """The settings a sweep can vary ("opt_d.lr", "loss.gp_lambda", "train.d_steps", ...), for one task."""
    return [name for name in NUMERIC if task is None or ONLY_FOR.get(name.split(".")[0], task) == task]


# -- the spec -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Axis:
    """One setting and the values it takes: a grid, a log grid, or n random draws."""
    field: str
    kind: str
    low: float
    high: float
    n: int

    def __post_init__(self):
        if self.field == "train.seed":
            raise SweepError(self.field, "seeds are their own axis: give them as seeds")
        if self.field not in NUMERIC:
            raise SweepError(str(self.field)[:100], "is not a numeric setting a sweep can vary "
                                                    "(e.g. opt_d.lr, loss.gp_lambda, train.d_steps)")
        if self.kind not in KINDS:
            raise SweepError(self.field, f"the kind must be one of {', '.join(KINDS)}; got {str(self.kind)[:40]!r}")
        for name in ("low", "high"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SweepError(self.field, f"{name} must be a finite number, got {str(value)[:40]!r}")
        if self.low > self.high:
            raise SweepError(self.field, f"low ({self.low:g}) must not be above high ({self.high:g})")
        if self.kind == "log" and self.low <= 0:
            raise SweepError(self.field, f"a log grid needs low > 0, got {self.low:g}")
        if isinstance(self.n, bool) or not isinstance(self.n, int) or not 1 <= self.n <= MAX_VALUES:
            raise SweepError(self.field, f"the number of values must be a whole number in [1, {MAX_VALUES}], "
                                         f"got {str(self.n)[:40]}")

    @property
    def is_int(self) -> bool:
        return NUMERIC[self.field] is int

    def values(self, rng_seed: int = 0) -> list:
        """The axis's values, low to high: linspace (grid), geomspace (log), or n draws seeded by
        rng_seed (random: log-uniform over a range of 10x or more above 0, else uniform). An integer
        setting's values are rounded, and a value rounded twice is kept once."""
        if self.kind == "grid":
            raw = np.linspace(self.low, self.high, self.n)
        elif self.kind == "log":
            raw = np.geomspace(self.low, self.high, self.n)
        else:
            rng = np.random.default_rng(rng_seed)
            if self.low > 0 and self.high / self.low >= 10:
                raw = np.exp(rng.uniform(math.log(self.low), math.log(self.high), self.n))
            else:
                raw = rng.uniform(self.low, self.high, self.n)
            raw = np.sort(raw)
        if self.is_int:
            return list(dict.fromkeys(int(round(v)) for v in raw))
        # Six significant digits: 1e-3 from geomspace is 0.0009999999999999998, which no one typed.
        return list(dict.fromkeys(float(f"{v:.6g}") for v in raw))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return f"{self.field}={self.kind}:{self.low:g}:{self.high:g}:{self.n}"


def parse_axis(text: str) -> Axis:
    """"opt_d.lr=log:1e-4:1e-1:4" as an Axis (the command line's --axis); SweepError naming the field."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    parts = rest.split(":")
    if not sep or len(parts) != 4:
        raise SweepError(name or "axis", "give an axis as section.field=kind:low:high:n, "
                                         "e.g. opt_d.lr=log:1e-4:1e-1:4")
    kind, low, high, n = (p.strip() for p in parts)
    try:
        low_v, high_v = float(low), float(high)
    except ValueError:
        raise SweepError(name, f"low and high must be numbers, got {low[:20]!r} and {high[:20]!r}") from None
    try:
        n_v = int(n)
    except ValueError:
        raise SweepError(name, f"the number of values must be a whole number, got {n[:20]!r}") from None
    return Axis(name, kind, low_v, high_v, n_v)


@dataclass(frozen=True)
class Trial:
    index: int
    params: dict          # "section.field" -> value, one per axis
    seed: int
    cfg: Experiment


@dataclass(frozen=True)
class SweepSpec:
    """A preset, one or two axes, the seeds (a third axis), an optional budget and the meter mapped."""
    preset: str
    axes: tuple
    seeds: tuple = (100,)
    steps: int | None = None
    metric: str | None = None    # None: the task's main meter (MAIN_METER), filled in when built

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise SweepError("preset", f"unknown preset {str(self.preset)[:60]!r}; choose from {', '.join(PRESETS)}")
        from ganlab.families import family_of
        base = PRESETS[self.preset].config
        if family_of(base) != "gan":
            raise SweepError("preset", f"{self.preset} trains an autoencoder; a sweep maps a GAN's settings")
        axes = tuple(self.axes) if isinstance(self.axes, (list, tuple)) else ()
        if not 1 <= len(axes) <= 2 or not all(isinstance(a, Axis) for a in axes):
            raise SweepError("axes", "give one or two axes")
        if len(axes) == 2 and axes[0].field == axes[1].field:
            raise SweepError(axes[1].field, "is on both axes; give two different settings")
        for a in axes:
            if a.field not in sweepable(base.task):
                raise SweepError(a.field, f"is not read by the {self.preset} preset's task ({base.task})")
        seeds = tuple(self.seeds) if isinstance(self.seeds, (list, tuple)) else ()
        if not 1 <= len(seeds) <= MAX_SEEDS or \
                not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
            raise SweepError("seeds", f"give 1 to {MAX_SEEDS} whole numbers >= 0")
        if len(set(seeds)) != len(seeds):
            raise SweepError("seeds", "a seed is given twice")
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(self.steps, int)
                                       or self.steps < 1):
            raise SweepError("steps", f"must be a whole number >= 1, got {str(self.steps)[:40]}")
        metric = self.metric if self.metric is not None else MAIN_METER.get(base.task)
        if metric not in METERS:
            raise SweepError("metric", f"unknown meter {str(metric)[:40]!r}")
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "metric", metric)
        total = len(seeds) * math.prod(len(a.values(i)) for i, a in enumerate(axes))
        if total > MAX_TRIALS:
            raise SweepError("axes", f"{total} trials is more than a sweep runs ({MAX_TRIALS}); "
                                     f"fewer values or seeds")
        # Each value on its own, now, so that a value the config refuses is named before anything runs
        # (trials() checks the combinations).
        for i, a in enumerate(axes):
            section, name = a.field.split(".")
            for value in a.values(i):
                self._config(base, {section: {name: value}}, {a.field: value})
        if self.steps is not None:
            self._config(base, {"train": {"steps": self.steps}}, {})

    @staticmethod
    def _config(base: Experiment, changes: dict, params: dict) -> Experiment:
        try:
            return apply_changes(base, changes)
        except ConfigError as e:
            where = f" (at {', '.join(f'{k}={v:g}' for k, v in params.items())})" if params else ""
            raise SweepError(e.errors[0].field, f"{e.errors[0].message}{where}") from None

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(a.field for a in self.axes)

    def values(self) -> list[list]:
        """Each axis's values (an axis's random draws are seeded by its place)."""
        return [a.values(i) for i, a in enumerate(self.axes)]

    def trials(self) -> list[Trial]:
        """Every (value of axis 1) x (value of axis 2) x seed, in that order, as a config: the preset's
        with the values set (config.apply_changes checks them), train.seed and train.steps.
        A value the config refuses is a SweepError naming the field."""
        base = PRESETS[self.preset].config
        out = []
        for combo in itertools.product(*self.values(), self.seeds):
            *values, seed = combo
            params = dict(zip(self.fields, values))
            changes: dict[str, dict] = {}
            for name, value in params.items():
                section, field_name = name.split(".")
                changes.setdefault(section, {})[field_name] = value
            changes.setdefault("train", {})["seed"] = seed
            if self.steps is not None:
                changes["train"]["steps"] = self.steps
            out.append(Trial(len(out), params, seed, self._config(base, changes, params)))
        return out

    def to_json(self) -> str:
        return json.dumps({"preset": self.preset, "axes": [a.to_dict() for a in self.axes],
                           "seeds": list(self.seeds), "steps": self.steps, "metric": self.metric})

    @classmethod
    def from_json(cls, text: str) -> "SweepSpec":
        try:
            data = json.loads(text)
            axes = tuple(Axis(**a) for a in data["axes"])
            return cls(data["preset"], axes, tuple(data["seeds"]), data.get("steps"), data.get("metric"))
        except SweepError:
            raise
        except (ValueError, KeyError, TypeError) as e:
            raise SweepError("spec", f"is not a sweep ({type(e).__name__})") from None


# -- a trial, on a Ray worker ---------------------------------------------------------------------

def trial_outcome(snap) -> tuple[str, str]:
    """(status, reason) of a run that ended: its own status, or "collapsed" when it finished with the
    mode-collapse alarm sounding (ganlab.alarms; one the preset expects at this stage does not count)."""
    if snap.status == FINISHED:
        collapse = [a for a in snap.alarms if a.kind == "mode_collapse" and not a.expected]
        if collapse:
            return COLLAPSED, collapse[0].text
        return FINISHED, ""
    return snap.status, " ".join(str(snap.message).split())


def _meters(snap) -> dict[str, float]:
    """The snapshot's latest probe: one number per meter (the per-mode shares and histograms left out)."""
    return {name: float(col[-1]) for name, col in snap.meters.items()
            if name != "step" and len(col) and not name.startswith(("hist_", "mode_share_"))}


def _points(snap, after: int) -> list[dict]:
    """The snapshots published since step `after`, one point each: the step, each loss averaged over
    the steps since the point before, and the meters of that step's probe. Read from the run's
    history, so a run faster than its caller's polling still reports every snapshot."""
    meters, metrics = snap.meters, snap.metrics
    probes = meters.get("step", np.empty(0, dtype=np.int64))
    steps = [int(s) for s in probes if s > after] or ([int(snap.step)] if snap.step > after else [])
    names = [n for n in meters if n != "step" and not n.startswith(("hist_", "mode_share_"))]
    done = metrics.get("step", np.empty(0, dtype=np.int64))
    points, before = [], after
    for step in steps:
        point = {"step": step}
        window = (done > before) & (done <= step)
        for name in ("loss_d", "loss_g"):
            col = metrics.get(name)
            if col is not None and window.any():
                point[name] = float(np.mean(col[window]))
        row = np.flatnonzero(probes == step)
        point.update({n: float(meters[n][row[-1]]) for n in names} if len(row) else {})
        points.append(point)
        before = step
    return points


def _train(config: dict, sweep: dict) -> None:
    """Ray Tune's trainable: one trial of the sweep described by `sweep` (with_parameters)."""
    from ray import tune

    from ganlab.runs import run_to_end
    from ganlab.store import StoreError, open_store
    index = config["index"]
    if sweep["data"]:
        os.environ["GANLAB_DATA"] = sweep["data"]
    cfg = Experiment.from_dict(sweep["cfgs"][index])
    if cfg.train.device == "auto" and not sweep["gpu"]:
        cfg = cfg.replace(train={"device": "cpu"})   # a trial that asked Ray for no GPU takes none
    store, problem = None, ""
    if sweep["store"]:
        try:
            store = open_store(sweep["store"])
        except StoreError as e:
            problem = str(e)

    reported = [-1]

    def report(run, snap):   # the snapshots published since the last report: points of the trial's curves
        points = _points(snap, reported[0]) if len(snap.metrics.get("step", ())) else []
        if points:
            tune.report({"ganlab": {"index": index, "run_id": run.id, "status": RUNNING, "points": points}})
            reported[0] = points[-1]["step"]

    start = time.perf_counter()
    try:
        run = run_to_end(cfg, f"{sweep['preset']} · sweep {sweep['id']} trial {index}", store, report)
    except Exception as e:  # noqa: BLE001 - the config's own check (a budget) failed: the trial fails, the sweep goes on
        tune.report({"ganlab": {"index": index, "run_id": None, "status": FAILED,
                                "reason": _one_line(e), "points": []}})
        return
    run_id, snap = run.id, run.snapshot()
    status, reason = trial_outcome(snap)
    if problem:
        reason = f"{reason} (not recorded in the run store: {problem})".strip()
    tune.report({"ganlab": {"index": index, "run_id": run_id, "status": status, "reason": reason,
                            "step": int(snap.step), "final": _meters(snap),
                            "seconds": round(time.perf_counter() - start, 3)}})


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]


# -- Ray ------------------------------------------------------------------------------------------

_LIVE: dict[str, "Sweep"] = {}   # this process's sweeps by id, for Tune's callback and stopper
_ray_lock = threading.Lock()
_ray_address: list = []     # [the address Ray was started with ("" for a local one), the Event that ends its thread]


def ray_for(address: str | None = None) -> str:
    """Connect this process to Ray once (reused by every later sweep): `address`, else RAY_ADDRESS,
    else a local Ray on this machine's cores. Returns what it is connected to, in words.

    ray.init runs on a thread kept for the life of the connection: a local Ray's GCS and raylet are
    started with PR_SET_PDEATHSIG, which Linux fires when the *thread* that started them ends, so
    Ray started from a sweep's thread (or a page's script run) would die with it."""
    import ray
    address = address or os.environ.get("RAY_ADDRESS") or ""
    with _ray_lock:
        if ray.is_initialized():
            if _ray_address and _ray_address[0] != address:
                raise SweepError("address", f"this process is connected to Ray at "
                                            f"{_ray_address[0] or 'this machine'}; restart it to use {address or 'a local Ray'}")
            return _ray_address[0] or "a local Ray"
        os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")   # the store keeps the results
        # A worker has 60 s to start by default: on a busy 2-core machine importing torch in it took longer,
        # Ray killed it and started another, and no trial ever began.
        os.environ.setdefault("RAY_worker_register_timeout_seconds", "600")
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        # Ray's raylet starts workers at nice 15. Against any other work on the machine at nice 0 a
        # trial then got about 5% of a core (top, two busy loops beside a sweep: a trial still importing
        # torch after minutes). Trials run as the lab's own training threads do: below the pages'
        # threads, level with everything else.
        os.environ.setdefault("RAY_worker_niceness", str(TRAINING_NICENESS))
        for name in ("ray.tune", "ray.train"):   # Tune's own progress tables and result files' warnings
            logging.getLogger(name).setLevel(logging.ERROR)
        # The workers import ganlab from this checkout (on a cluster: the same path on every machine).
        code = str(Path(__file__).resolve().parents[1])
        paths = [code] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != code]
        runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}
        if address:
            _reachable(address)
            kwargs = dict(address=address, runtime_env=runtime_env, log_to_driver=False)
        else:
            # address="local": a Ray of our own, even when `ray start` left one running on this machine.
            kwargs = dict(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                          object_store_memory=80 * 2**20, runtime_env=runtime_env)
        started, failed, release = threading.Event(), [], threading.Event()

        def keep():
            try:
                ray.init(**kwargs)
            except Exception as e:  # noqa: BLE001 - handed to the caller
                failed.append(e)
            started.set()
            if not failed:
                release.wait()

        threading.Thread(target=keep, name="ganlab-ray", daemon=True).start()
        started.wait()
        if failed:
            raise failed[0]
        _ray_address[:] = [address, release]
        return address or "a local Ray"


def _reachable(address: str, timeout: float = 5.0) -> None:
    """SweepError unless something listens at HOST:PORT: ray.init retries a wrong address for minutes."""
    import socket
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return   # "auto", a ray:// client address: Ray's own words
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise SweepError("address", f"nothing answers at {address[:100]} ({e.strerror or e}); "
                                    f"is `ray start --head` running there?") from None


def shutdown_ray(wait: float = 120.0) -> None:
    """Disconnect from Ray (and stop a local one): the tests, and the command line at its end.
    This process's running sweeps are stopped first, and waited for up to `wait` seconds: a Tuner
    still fitting after ray.shutdown() starts a Ray of its own, which then dies with the process."""
    import ray
    live = list(_LIVE.values())
    for sweep in live:
        sweep.stop()
    for sweep in live:
        sweep.join(wait)
    with _ray_lock:
        if ray.is_initialized():
            ray.shutdown()
        if _ray_address:
            _ray_address[1].set()    # the thread that started Ray may end now
        _ray_address.clear()


def _resources(cfg: Experiment) -> tuple[dict, bool]:
    """(what a trial asks Ray for, whether that is a GPU share)."""
    import ray
    from ganlab.tasks import TASKS
    gpus = ray.cluster_resources().get("GPU", 0)
    if cfg.train.device == "cuda" or (cfg.train.device == "auto" and gpus > 0):
        return {"cpu": 1, "gpu": GPU_SHARE}, True
    threads = cfg.train.cpu_threads or getattr(TASKS[cfg.task].task_class(), "cpu_threads", 1)
    return {"cpu": max(1, int(threads))}, False


# -- the sweep, on the driver ---------------------------------------------------------------------

class Sweep:
    """A sweep this process runs (start_sweep), or one read back from the store (load_sweep).
    Every method is safe from any thread."""

    def __init__(self, spec: SweepSpec, sweep_id: str, store=None, created: float | None = None, owner: str = ""):
        self.id = sweep_id
        self.owner = owner       # who started it (a browser's id; "" for the command line), as a Run's owner
        self.spec = spec
        self.store = store
        self.created = created if created is not None else time.time()
        self._trials = spec.trials()
        self._lock = threading.Lock()
        self._rows = [self._row(t) for t in self._trials]
        self._curves: dict[int, dict[str, list]] = {}
        self._status, self._message = RUNNING, "starting Ray"
        self._ended: float | None = None
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._dirty: set[int] = set()
        self._written = 0.0
        self._stored = False     # read back from the store: another process ran (or runs) it
        self._all_written = False

    def _row(self, t: Trial) -> dict:
        return {"trial": t.index, "seed": t.seed, **t.params, "status": PENDING, "reason": "", "step": 0,
                "run_id": None, "seconds": None, self.spec.metric: None}

    # -- what a page reads ------------------------------------------------------------------------
    @property
    def status(self) -> str:
        self._refresh()
        return self._status

    @property
    def message(self) -> str:
        self._refresh()
        return self._message

    @property
    def total(self) -> int:
        return len(self._trials)

    def rows(self) -> list[dict]:
        self._refresh()
        with self._lock:
            rows = [dict(r) for r in self._rows]
        names = list(dict.fromkeys(k for r in rows for k in r))   # every meter any trial reported
        return [{k: r.get(k) for k in names} for r in rows]

    def progress(self) -> tuple[int, int, float | None]:
        """(trials that ran to their end, of N, seconds left: the time so far over the share of steps
        trained, or None). A trial cut short or never started by a stop is not done."""
        self._refresh()
        with self._lock:
            rows = list(self._rows)
            elapsed = (self._ended or time.monotonic()) - self._started if not self._stored else None
        done = sum(r["status"] in TRIAL_ENDED and r["status"] != STOPPED for r in rows)
        if self._status != RUNNING or elapsed is None:
            return done, len(rows), None
        share = sum(1.0 if r["status"] in TRIAL_ENDED else min(r["step"] / max(t.cfg.train.steps, 1), 1.0)
                    for r, t in zip(rows, self._trials)) / max(len(rows), 1)
        return done, len(rows), (elapsed * (1 - share) / share if share > 0 else None)

    def curves(self, trial_index: int) -> dict[str, np.ndarray]:
        """The trial's reported points: "step", "loss_d", "loss_g" and each meter, as arrays."""
        if self._stored and self.store is not None:
            return self.store.sweep_curves(self.id, trial_index)
        with self._lock:
            points = list(self._curves.get(trial_index, ()))
        names = list(dict.fromkeys(k for p in points for k in p))
        return {k: np.array([p.get(k, np.nan) for p in points], dtype=np.float64 if k != "step" else np.int64)
                for k in names}

    def cfg_of(self, trial_index: int) -> Experiment:
        """The trial's config: run alone (Run(cfg), "open as a run"), it trains the same trial."""
        return self._trials[trial_index].cfg

    # -- controls ----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Running trials stop at once (Tune stops them; each stops its run); pending ones never start."""
        if self._stored:
            if self.store is not None and self._status == RUNNING:
                self.store.ask_sweep_stop(self.id)   # the process running it reads this within a second
            return
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the sweep to end; whether it has."""
        if self._stored:
            end = time.monotonic() + (timeout if timeout is not None else 1e9)
            while self.status == RUNNING and time.monotonic() < end:
                time.sleep(min(0.5, max(end - time.monotonic(), 0)))
            return self.status != RUNNING
        # An Event, not Thread.join: a join that Ctrl-C interrupts can leave the thread marked as ended.
        return self._done.wait(timeout) if self._thread is not None else True

    # -- running (the sweep's thread and Tune's callback) -----------------------------------------------
    def _start(self, address: str | None, max_concurrent: int | None) -> None:
        self._thread = threading.Thread(target=self._main, args=(address, max_concurrent),
                                        name=f"ganlab-sweep-{self.id}", daemon=True)
        self._write(force=True)
        self._thread.start()

    def _main(self, address: str | None, max_concurrent: int | None) -> None:
        status, message = FINISHED, ""
        try:
            where = ray_for(address)
            if not self._stop.is_set():
                self._set_message(f"running on {where}")
                self._fit(max_concurrent)
        except SweepError as e:
            status, message = FAILED, str(e)
        except BaseException as e:  # noqa: BLE001 - Ray could not start, or Tune failed: the sweep fails, in one line
            status, message = FAILED, f"Ray could not run the sweep: {_one_line(e)}"
            log.warning("sweep %s: %s", self.id, message)
            log.debug("sweep %s", self.id, exc_info=True)
        finally:
            self._end(status, message)

    def _end(self, status: str, message: str) -> None:
        with self._lock:
            stopped = self._stop.is_set()
            unstarted = 0
            for row in self._rows:   # trials Tune never ran or never ended
                if row["status"] not in TRIAL_ENDED:
                    pending = row["status"] == PENDING
                    unstarted += stopped and pending
                    row["status"] = STOPPED if stopped or status == FINISHED else FAILED
                    row["reason"] = ("the sweep was stopped before this trial started" if stopped and pending else
                                     "the sweep was stopped" if stopped else
                                     message if status == FAILED else "Ray ended the sweep before this trial ended")
                    self._dirty.add(row["trial"])
            if stopped:
                cut = sum(r["status"] == STOPPED for r in self._rows) - unstarted
                ended = len(self._rows) - cut - unstarted
                status, message = STOPPED, (f"stopped: {ended} {'trial' if ended == 1 else 'trials'} had ended, "
                                            f"{cut} {'was' if cut == 1 else 'were'} cut short and "
                                            f"{unstarted} never started")
            if status == FINISHED:
                failed = sum(r["status"] == FAILED for r in self._rows)
                message = f"{len(self._rows) - failed} of {len(self._rows)} trials ran to the end" + \
                          (f"; {failed} failed" if failed else "")
            self._status, self._message, self._ended = status, message, time.monotonic()
        self._write(force=True)
        _LIVE.pop(self.id, None)   # Tune is done with it; whoever started it still holds it
        self._done.set()

    def _set_message(self, text: str) -> None:
        with self._lock:
            self._message = text
        self._write(force=True)

    def _fit(self, max_concurrent: int | None) -> None:
        from ray import tune

        from ganlab.data.mnist import data_root
        from ganlab.sweep_tune import Results, StopFlag
        resources, gpu = _resources(self._trials[0].cfg)
        # The worker gets the data folder and the store's folder as absolute paths: on a local Ray its
        # working directory is Tune's, not ours.
        payload = {"id": self.id, "preset": self.spec.preset, "gpu": gpu,
                   "store": str(self.store.root.resolve()) if self.store is not None else "",
                   "data": str(data_root().resolve()), "cfgs": [t.cfg.to_dict() for t in self._trials]}
        trainable = tune.with_resources(tune.with_parameters(_train, sweep=payload), resources)
        with tempfile.TemporaryDirectory(prefix="ganlab-sweep-") as scratch:
            tuner = tune.Tuner(
                trainable,
                param_space={"index": tune.grid_search(list(range(len(self._trials))))},
                tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True),
                run_config=tune.RunConfig(name=f"sweep-{self.id}", storage_path=scratch, verbose=0,
                                          stop=StopFlag(self.id), callbacks=[Results(self.id)]))
            tuner.fit()

    def _take(self, index: int, result: dict) -> None:
        """One report of trial `index` (the Tune callback, on the sweep's thread)."""
        with self._lock:
            row = self._rows[index]
            row["run_id"] = result.get("run_id") or row["run_id"]
            points = result.get("points") or []
            if points:
                self._curves.setdefault(index, []).extend(points)
                row["step"] = points[-1]["step"]
                row.update({k: v for k, v in points[-1].items() if k not in ("step", "loss_d", "loss_g")})
            if "step" in result:
                row["step"] = result["step"]
            row["status"] = result["status"]
            row["reason"] = result.get("reason", "")
            if "final" in result:
                row.update(result["final"])
                row["seconds"] = result.get("seconds")
            self._dirty.add(index)
        self._write()

    def _started_trial(self, index: int) -> None:
        with self._lock:
            if self._rows[index]["status"] == PENDING:
                self._rows[index]["status"] = RUNNING
                self._dirty.add(index)
        self._write()

    def _ended_trial(self, index: int, error: str | None) -> None:
        """Tune says the trial is over: with an error (its process died), or after its last report."""
        with self._lock:
            row = self._rows[index]
            if error is not None:
                row["status"], row["reason"] = FAILED, error
            elif row["status"] not in TRIAL_ENDED:      # Tune stopped it before it said how it ended
                row["status"], row["reason"] = STOPPED, "stopped with the sweep"
            self._dirty.add(index)
        self._write(force=True)

    def _write(self, force: bool = False) -> None:
        """Write the changed trials and the sweep's row into the store, at most every FLUSH_SECONDS
        unless forced; read back whether another process asked the sweep to stop."""
        if self.store is None or self._stored:
            return
        now = time.monotonic()
        if not force and now - self._written < FLUSH_SECONDS:
            return
        with self._lock:
            self._written = now
            dirty, self._dirty = self._dirty, set()
            trials = {i: (dict(self._rows[i]), self._curve_arrays(i)) for i in sorted(dirty)}
            if not self._all_written:    # the first write: every trial, pending, so a page lists them all
                trials = {r["trial"]: (dict(r), None) for r in self._rows} | trials
                self._all_written = True
            done = sum(r["status"] in TRIAL_ENDED for r in self._rows)
            row = {"id": self.id, "created": self.created, "preset": self.spec.preset, "spec": self.spec.to_json(),
                   "status": self._status, "message": self._message, "done": done, "total": len(self._rows),
                   "ended": time.time() if self._ended is not None else None}
        try:
            if self.store.save_sweep(row, trials):
                self._stop.set()
        except Exception as e:  # noqa: BLE001 - a full disk: the sweep goes on, its record stops here
            log.warning("sweep %s: could not write to the run store: %s", self.id, e)
            with self._lock:
                self._dirty |= set(trials)

    def _curve_arrays(self, index: int) -> dict | None:
        points = self._curves.get(index)
        if not points:
            return None
        names = list(dict.fromkeys(k for p in points for k in p))
        return {k: np.array([p.get(k, np.nan) for p in points]) for k in names}

    # -- a sweep read back from the store ------------------------------------------------------------
    def _refresh(self) -> None:
        if not self._stored or self.store is None:
            return
        if self._status != RUNNING and self._read_once:
            return
        rows = self.store.sweeps(self.id)
        if not rows:
            return
        trials = self.store.sweep_trials(self.id)
        with self._lock:
            self._status, self._message = rows[0]["status"], rows[0]["message"]
            for i, (values, _) in trials.items():
                if 0 <= i < len(self._rows):
                    self._rows[i] = values
            if self._status == INTERRUPTED:
                for row in self._rows:
                    if row["status"] not in TRIAL_ENDED:
                        row["status"], row["reason"] = INTERRUPTED, "its sweep's process ended"
        self._read_once = True

    _read_once = False


def trial_error(trial) -> str:
    """One line for a trial Ray could not finish: its exception's last line, not the traceback."""
    error = getattr(trial, "error_msg", None) or ""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[-1] if lines else "the trial's process ended")[:300]


def start_sweep(spec: SweepSpec, store=None, address: str | None = None,
                max_concurrent: int | None = None, owner: str = "") -> Sweep:
    """Start the sweep in a background thread of this process and return at once. The trials' configs
    are built (and checked: SweepError) first. `store`: the run store its results go to (None: kept
    in memory only). `address`: a Ray cluster (default RAY_ADDRESS, else a local Ray). `owner`: who
    started it (the page: its browser), so that a shared server asks before another browser stops it."""
    if max_concurrent is not None and (isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int)
                                       or max_concurrent < 1):
        raise SweepError("max_concurrent", f"must be a whole number >= 1, got {str(max_concurrent)[:40]}")
    sweep = Sweep(spec, uuid.uuid4().hex[:8], store, owner=owner)
    _LIVE[sweep.id] = sweep
    sweep._start(address, max_concurrent)
    return sweep


def load_sweep(store, sweep_id: str) -> Sweep:
    """A sweep as the store recorded it (read-only; status as it ended, or "interrupted" if its process
    died; a sweep another process is running reads live). SweepError if there is none or it cannot be read."""
    rows = store.sweeps(sweep_id)
    if not rows:
        raise SweepError("sweep", f"no sweep {str(sweep_id)[:20]!r} in {store.path}")
    spec = SweepSpec.from_json(rows[0]["spec"])
    sweep = Sweep(spec, sweep_id, store, created=rows[0]["created"])
    sweep._stored = True
    sweep._refresh()
    return sweep


def sweep_listing(store) -> list[dict]:
    """Every stored sweep, newest first: id, created, preset, fields, status, message, done, total."""
    out = []
    for row in store.sweeps():
        try:
            fields_ = SweepSpec.from_json(row["spec"]).fields
        except SweepError:
            fields_ = ()
        out.append({"id": row["id"], "created": row["created"], "preset": row["preset"], "fields": fields_,
                    "status": row["status"], "message": row["message"], "done": row["done"], "total": row["total"]})
    return out
