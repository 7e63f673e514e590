"""Typed experiment configs with validation.

Every field is checked when a config is built, so a bad value fails fast with
a ConfigError that names the field and the allowed range, long before a
training thread starts.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass, field, fields
from typing import Any


class ConfigError(ValueError):
    """A config field holds a value outside its allowed range."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message

    @property
    def errors(self) -> list["ConfigError"]:
        """One ConfigError per bad field: this one alone (ConfigErrors holds several)."""
        return [self]


class ConfigErrors(ConfigError):
    """Several fields out of range at once, so that a page or the command line can name them all
    in one go. `errors` lists them in the order checked; `field` and `message` are the first's."""

    def __init__(self, errors: list[ConfigError]):
        flat = [one for e in errors for one in e.errors]
        ValueError.__init__(self, "; ".join(str(e) for e in flat))
        self.field, self.message = flat[0].field, flat[0].message
        self._errors = flat

    @property
    def errors(self) -> list[ConfigError]:
        return list(self._errors)


class _Checks:
    """Runs a section's checks one after another and keeps every failure, so that one bad field
    does not hide the next; done() raises them together."""

    def __init__(self):
        self.failed: list[ConfigError] = []

    def __call__(self, check, *args, **kwargs) -> bool:
        """check(*args, **kwargs), which raises ConfigError for a bad value; whether it passed."""
        try:
            check(*args, **kwargs)
        except ConfigError as e:
            self.failed.extend(e.errors)
            return False
        return True

    def fail(self, field_name: str, message: str) -> None:
        self.failed.append(ConfigError(field_name, message))

    def done(self) -> None:
        if len(self.failed) == 1:
            raise self.failed[0]
        if self.failed:
            raise ConfigErrors(self.failed)


ACTIVATIONS = ("relu", "leaky_relu", "elu", "tanh", "sigmoid", "selu", "gelu")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
TARGETS_1D = ("gaussian", "mixture", "uniform")
TARGETS_2D = ("ring", "grid", "line", "moons", "csv")
NOISE_KINDS = ("uniform", "normal")
DEVICES = ("auto", "cpu", "cuda")
RECON_LOSSES = ("bce", "mse")
POINTS_NAME = re.compile(r"points-[0-9a-f]{16}\.csv")   # a kept point set (data/toy2d.py, save_points)


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(name, f"must be a finite number > 0, got {value!r}")


def _int_at_least(name: str, value: int, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be a whole number, got {value!r}")
    if value < low or (high is not None and value > high):
        top = "2⁶³ − 1" if high == 2**63 - 1 else high   # a seed's bound, in words one can read
        allowed = f">= {low}" if high is None else f"in [{low}, {top}]"
        raise ConfigError(name, f"must be {allowed}, got {value}")


def _in_range(name: str, value: float, low: float, high: float, *, open_high: bool = False) -> None:
    ok = isinstance(value, (int, float)) and math.isfinite(value) and low <= value and (
        value < high if open_high else value <= high)
    if not ok:
        bracket = ")" if open_high else "]"
        raise ConfigError(name, f"must be in [{low}, {high}{bracket}, got {value!r}")


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(name, f"must be one of {', '.join(allowed)}; got {value!r}")


@dataclass(frozen=True)
class Target1D:
    """The 1D distribution the generator must learn."""
    kind: str = "gaussian"
    mean: float = 4.0
    std: float = 1.25
    # mixture
    means: tuple[float, ...] = (-2.0, 2.0)
    stds: tuple[float, ...] = (0.5, 0.5)
    weights: tuple[float, ...] = (0.5, 0.5)
    # uniform
    low: float = 2.0
    high: float = 6.0

    def __post_init__(self):
        check = _Checks()
        check(_one_of, "target.kind", self.kind, TARGETS_1D)
        if self.kind == "gaussian":
            check(_in_range, "target.mean", self.mean, -1e3, 1e3)
            check(_positive, "target.std", self.std)
        elif self.kind == "mixture":
            n = len(self.means)
            if n < 1 or len(self.stds) != n or len(self.weights) != n:
                check.fail("target.means", "means, stds and weights must have the same length (>= 1)")
            for i, s in enumerate(self.stds):
                check(_positive, f"target.stds[{i}]", s)
            weights = [check(_in_range, f"target.weights[{i}]", w, 0.0, 1.0) for i, w in enumerate(self.weights)]
            if all(weights) and abs(sum(self.weights) - 1.0) > 1e-6:
                check.fail("target.weights", f"must sum to 1, got {sum(self.weights):.6g}")
        elif self.kind == "uniform":
            if not (math.isfinite(self.low) and math.isfinite(self.high) and self.high > self.low):
                check.fail("target.high", f"must be > target.low ({self.low}), got {self.high}")
        check.done()


@dataclass(frozen=True)
class Target2D:
    """The 2D point set the generator must learn (the 2D toy lab)."""
    kind: str = "ring"
    modes: int = 8            # ring: Gaussians evenly spaced on a circle
    radius: float = 2.0       # ring: the circle's radius; moons: each half circle's radius
    grid_size: int = 5        # grid: grid_size x grid_size Gaussians
    spacing: float = 2.0      # grid: distance between neighbouring Gaussians
    length: float = 4.0       # line: a segment this long through the origin
    angle: float = 30.0       # line: its angle to the x axis, in degrees
    std: float = 0.02         # ring, grid: each Gaussian's std; line, moons: the noise around the curve
    csv_path: str = ""        # csv: a file of points (the page saves uploads under a content hash)

    def __post_init__(self):
        check = _Checks()
        check(_one_of, "toy2d.kind", self.kind, TARGETS_2D)
        check(_int_at_least, "toy2d.modes", self.modes, 2, 64)
        check(_int_at_least, "toy2d.grid_size", self.grid_size, 2, 12)
        for name in ("radius", "spacing", "length", "std"):
            check(_in_range, f"toy2d.{name}", getattr(self, name), 1e-6, 1e4)
        check(_in_range, "toy2d.angle", self.angle, -360.0, 360.0)
        # The name of a kept upload (data/toy2d.py, save_points), never a path: a config can come
        # from a link or a checkpoint, and must not make the server read a file of its choosing.
        if not isinstance(self.csv_path, str) or not (
                self.csv_path == "" or POINTS_NAME.fullmatch(self.csv_path)):
            check.fail("toy2d.csv_path", "must name an uploaded point set (points-<hash>.csv), not a path")
        elif self.kind == "csv" and not self.csv_path:
            check.fail("toy2d.csv_path", "give a CSV file of points for the csv target")
        check.done()


@dataclass(frozen=True)
class Noise:
    """The generator's input z."""
    kind: str = "normal"
    dim: int = 1

    def __post_init__(self):
        check = _Checks()
        check(_one_of, "noise.kind", self.kind, NOISE_KINDS)
        check(_int_at_least, "noise.dim", self.dim, 1, 4096)
        check.done()


@dataclass(frozen=True)
class Model:
    """Which G/D pair to build, and its shape.

    An activation may be one name for every hidden layer, or a comma-separated
    list with one name per hidden layer (seed 000's G uses "elu,sigmoid").
    """
    name: str = "mlp1d"
    g_hidden: int = 64
    g_depth: int = 2
    g_activation: str = "relu"
    d_hidden: int = 64
    d_depth: int = 2               # an MLP's hidden layers; the DCGAN's strided convolutions in D
    d_activation: str = "leaky_relu"
    minibatch_d: bool = False      # seed 000's "data and variances" discriminator
    minibatch_group: int = 100     # samples the minibatch D sees at once
    dropout: float = 0.0           # in D, after each hidden layer
    g_dropout: float = 0.0         # in G, after each hidden layer (seed 003 uses it in both)
    leaky_slope: float = 0.2       # LeakyReLU's negative slope (PyTorch's default is 0.01)
    maxout_k: int = 5              # pieces per maxout unit (seed 004's D)
    g_refine: int = 0              # DCGAN: 3x3 convolutions added to G at 7x7 and again at 14x14
    recon_loss: str = "bce"        # the VAE's reconstruction loss: "bce" or "mse" (the AE's is mse)

    def __post_init__(self):
        from ganlab.models import AUTOENCODERS, MODELS  # late import: models import config
        check = _Checks()
        check(_one_of, "model.name", self.name, tuple(MODELS) + tuple(AUTOENCODERS))
        check(_int_at_least, "model.g_hidden", self.g_hidden, 1, 8192)
        check(_int_at_least, "model.d_hidden", self.d_hidden, 1, 8192)
        g_depth = check(_int_at_least, "model.g_depth", self.g_depth, 1, 16)
        d_depth = check(_int_at_least, "model.d_depth", self.d_depth, 1, 16)
        for name, acts, depth, depth_ok in (("model.g_activation", self.g_activation, self.g_depth, g_depth),
                                            ("model.d_activation", self.d_activation, self.d_depth, d_depth)):
            parts = [a.strip() for a in acts.split(",")]
            named = all([check(_one_of, name, a, ACTIVATIONS) for a in parts])
            if named and depth_ok and len(parts) not in (1, depth):
                check.fail(name, f"give one activation or {depth} (one per hidden layer), got {len(parts)}")
        check(_int_at_least, "model.minibatch_group", self.minibatch_group, 2, 4096)
        check(_in_range, "model.dropout", self.dropout, 0.0, 1.0, open_high=True)
        check(_in_range, "model.g_dropout", self.g_dropout, 0.0, 1.0, open_high=True)
        check(_in_range, "model.leaky_slope", self.leaky_slope, 0.0, 1.0, open_high=True)
        check(_int_at_least, "model.maxout_k", self.maxout_k, 1, 64)
        check(_int_at_least, "model.g_refine", self.g_refine, 0, 4)
        if d_depth and self.name == "dcgan" and self.d_depth not in (2, 3):
            check.fail("model.d_depth", "the DCGAN's D has 2 or 3 strided convolutions (28x28 to 7x7, "
                                        f"or on to 4x4), got {self.d_depth}")
        if check(_one_of, "model.recon_loss", self.recon_loss, RECON_LOSSES) and \
                self.name == "ae" and self.recon_loss != "mse":
            check.fail("model.recon_loss", "the autoencoder's Tanh output is trained with mse; "
                                           "bce needs the VAE's sigmoid output")
        check.done()


@dataclass(frozen=True)
class Loss:
    name: str = "bce-ns"
    clip: float = 0.01        # WGAN weight clipping
    gp_lambda: float = 10.0   # WGAN-GP penalty weight
    r1_gamma: float = 10.0    # R1 penalty weight: gamma / 2 * E||grad D(real)||^2 (Mescheder et al. 2018)
    real_label: float = 1.0   # D's target on real data; 0.9 is one-sided label smoothing (BCE and LSGAN)

    def __post_init__(self):
        from ganlab.losses import LOSSES
        check = _Checks()
        check(_one_of, "loss.name", self.name, tuple(LOSSES))
        check(_positive, "loss.clip", self.clip)
        check(_in_range, "loss.gp_lambda", self.gp_lambda, 0.0, 1e4)
        check(_in_range, "loss.r1_gamma", self.r1_gamma, 0.0, 1e4)
        # Smoothing is a nudge (Salimans et al. 2016 use 0.9); below 0.5 D's best answer on real
        # data would be "more likely fake".
        check(_in_range, "loss.real_label", self.real_label, 0.5, 1.0)
        check.done()


@dataclass(frozen=True)
class Optim:
    name: str = "adam"
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 0.0    # L2 penalty added to the gradients (seed 002's AE uses 1e-5)

    def validate(self, prefix: str) -> None:
        """Checked by the Experiment, which knows which optimizer this is (prefix: opt_g or opt_d)."""
        check = _Checks()
        check(_one_of, f"{prefix}.name", self.name, OPTIMIZERS)
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and 0 < self.lr <= 10):
            check.fail(f"{prefix}.lr", f"must be in (0, 10], got {self.lr!r}")
        check(_in_range, f"{prefix}.beta1", self.beta1, 0.0, 1.0, open_high=True)
        check(_in_range, f"{prefix}.beta2", self.beta2, 0.0, 1.0, open_high=True)
        check(_in_range, f"{prefix}.weight_decay", self.weight_decay, 0.0, 1.0, open_high=True)
        check.done()


@dataclass(frozen=True)
class Train:
    steps: int = 3000            # generator steps
    batch_size: int = 256
    d_steps: int = 1             # k: discriminator steps per generator step
    lr_decay: bool = False       # decay both learning rates to 2% over the run (quadratically)
    seed: int = 0
    device: str = "auto"
    snapshot_every: int = 100    # publish a snapshot every N generator steps
    history_cap: int = 2000      # rows of history kept before it is downsampled
    image_history: int = 32      # sample grids kept in the ring (MNIST)
    pause_on_alarm: bool = False # pause the run when an alarm (collapse, D winning, ...) sounds
    cpu_threads: int = 0         # intra-op threads for this run on a CPU; 0 lets the task choose
    data_dir: str = ""           # MNIST folder; "" means GANLAB_DATA, or ./data
    fast: bool = True            # the fast path (fused Adam, fewer passes, a CUDA graph); off: plain PyTorch
    save_every: int = 0          # save a checkpoint every N generator steps (see checkpoints.py); 0: never

    def __post_init__(self):
        check = _Checks()
        check(_int_at_least, "train.steps", self.steps, 1, 100_000_000)
        check(_int_at_least, "train.batch_size", self.batch_size, 1, 1_000_000)
        check(_int_at_least, "train.d_steps", self.d_steps, 1, 1000)
        check(_int_at_least, "train.seed", self.seed, 0, 2**63 - 1)
        check(_one_of, "train.device", self.device, DEVICES)
        # Bounds that keep a run's memory under its budget whatever a link asks: a history holds
        # at most 2 x history_cap rows, and a grid is about 240 KiB (256 of them: 60 MiB).
        check(_int_at_least, "train.snapshot_every", self.snapshot_every, 1, 1_000_000)
        check(_int_at_least, "train.history_cap", self.history_cap, 16, 100_000)
        check(_int_at_least, "train.image_history", self.image_history, 1, 256)
        # More threads than cores only makes OpenMP's workers wait on each other (and on every
        # other run, and the page): a run never gets more than the machine has.
        cores = os.cpu_count() or 1
        if check(_int_at_least, "train.cpu_threads", self.cpu_threads, 0) and self.cpu_threads > cores:
            check.fail("train.cpu_threads", f"must be at most this machine's {cores} cores "
                                            f"(0 lets the task choose), got {self.cpu_threads}")
        check(_int_at_least, "train.save_every", self.save_every, 0, 100_000_000)
        if not isinstance(self.fast, bool):
            check.fail("train.fast", f"must be true or false, got {self.fast!r}")
        if not isinstance(self.data_dir, str):
            check.fail("train.data_dir", f"must be a folder path (text), got {self.data_dir!r}")
        check.done()


@dataclass(frozen=True)
class Experiment:
    """Everything needed to reproduce one training run."""
    task: str = "gauss1d"
    target: Target1D = field(default_factory=Target1D)
    toy2d: Target2D = field(default_factory=Target2D)
    noise: Noise = field(default_factory=Noise)
    model: Model = field(default_factory=Model)
    loss: Loss = field(default_factory=Loss)
    opt_g: Optim = field(default_factory=Optim)
    opt_d: Optim = field(default_factory=Optim)
    train: Train = field(default_factory=Train)

    def __post_init__(self):
        from ganlab.models import AUTOENCODERS, model_spec, models_for   # late imports: models import config
        from ganlab.tasks import TASKS
        check = _Checks()
        if check(_one_of, "task", self.task, tuple(TASKS)):
            spec = model_spec(self.model.name)
            if spec.task != self.task:   # each model learns one task: its spec says which
                if self.model.name in AUTOENCODERS:
                    check.fail("task", f"the {self.model.name} model learns MNIST digits, not {self.task!r}")
                else:
                    names = ", ".join(m.name for m in models_for(self.task))
                    check.fail("model.name", f"the {TASKS[self.task].label} trains {names}; "
                                             f"{self.model.name!r} is the {TASKS[spec.task].label}'s")
        if self.task == "toy2d" and self.model.minibatch_d:
            check.fail("model.minibatch_d", "the 2D lab's D scores each point; the minibatch D is 1D only")
        if self.model.name in AUTOENCODERS and self.noise.kind != "normal":
            check.fail("noise.kind", "an autoencoder's random codes are drawn from N(0, I): use normal")
        check(self.opt_g.validate, "opt_g")
        check(self.opt_d.validate, "opt_d")
        if self.model.minibatch_d and self.train.batch_size % self.model.minibatch_group:
            check.fail("train.batch_size", f"must be a multiple of model.minibatch_group "
                                           f"({self.model.minibatch_group}) with the minibatch D")
        check.done()

    def replace(self, **sections: Any) -> "Experiment":
        """Copy with some sections replaced; a dict updates that section's fields.

        Every bad field of every section is reported at once (ConfigErrors), not just the first.
        """
        return _assemble(self, sections)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Experiment":
        """Inverse of to_dict. Unknown keys are an error, missing keys keep defaults."""
        return apply_changes(cls(), data)


SECTIONS = tuple(f.name for f in fields(Experiment) if f.name != "task")


def apply_changes(base: Experiment, changes: dict) -> Experiment:
    """`base` with `changes` ({section: {field: value}}, and "task") applied: the one way in for
    settings from outside (a link's cfg=, the command line's --set, a checkpoint's config.json).

    An unknown section or field, a value of the wrong type and a value out of range are each a
    ConfigError naming the field; all of them are raised together (ConfigErrors).
    """
    if not isinstance(changes, dict):
        raise ConfigError("config", "must be a mapping of sections")
    check = _Checks()
    sections = {}
    for name, values in changes.items():
        if name == "task":
            sections[name] = values
        elif name not in SECTIONS:
            check.fail(str(name)[:100], f"is not a config section ({', '.join(SECTIONS)})")
        elif not isinstance(values, dict):
            check.fail(name, "must be a mapping of fields")
        else:
            known = {f.name for f in fields(getattr(base, name))}
            for unknown in [k for k in values if k not in known]:
                check.fail(f"{name}.{str(unknown)[:100]}", "is not a known field")
            sections[name] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known}
    built = []   # the known fields are checked too, so that every mistake is named in one go
    check(lambda: built.append(_assemble(base, sections)))
    check.done()
    return built[0]


def _assemble(base: Experiment, sections: dict) -> Experiment:
    """`base` with `sections` ({name: a section, or a dict of its fields}; "task": a name)
    replaced, each section checked on its own first, so that all their errors come at once."""
    check = _Checks()
    built = {}
    for name, value in sections.items():
        if name != "task" and isinstance(value, dict):
            check(_section, built, name, getattr(base, name), value)
        else:
            built[name] = value
            if name in ("opt_g", "opt_d"):
                check(value.validate, name)   # an Optim's checks need its name; the Experiment runs them too
    check.done()
    return dataclasses.replace(base, **built)


def _section(built: dict, name: str, current, values: dict) -> None:
    """built[name] = `current` with `values` set, checked (ConfigError)."""
    try:
        built[name] = section = dataclasses.replace(current, **values)
    except ConfigError:
        raise
    except (TypeError, ValueError, AttributeError) as e:   # a value of the wrong type, or an unknown field
        where = f"{name}.{next(iter(values))}" if len(values) == 1 else name
        raise ConfigError(where, f"holds a value of the wrong type ({e})") from None
    if name in ("opt_g", "opt_d"):
        section.validate(name)


# -- configs in a URL ---------------------------------------------------------------------------
# A shared link carries a preset's slug and only the fields that differ from it, as compact
# JSON in base64url: short enough for a URL, and the preset still says what the rest means.

URL_CONFIG_MAX = 4000                                             # characters; a link, not a file
SERVER_PATHS = (("train", "data_dir"), ("toy2d", "csv_path"))     # never taken from a link


def encode_config(cfg: Experiment, base: Experiment) -> str:
    """The fields of `cfg` that differ from `base`, as URL-safe text."""
    mine, theirs = cfg.to_dict(), base.to_dict()
    diff: dict[str, Any] = {"task": cfg.task}
    for section, values in mine.items():
        if isinstance(values, dict):
            changed = {k: v for k, v in values.items()
                       if v != theirs[section][k] and (section, k) not in SERVER_PATHS}
            if changed:
                diff[section] = changed
    text = json.dumps(diff, separators=(",", ":"), allow_nan=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_config(text: str, base: Experiment) -> Experiment:
    """Inverse of encode_config. A garbled, foreign or out-of-range value is a ConfigError."""
    if not isinstance(text, str) or not text or len(text) > URL_CONFIG_MAX:
        raise ConfigError("cfg", "is empty or too long to be a ganlab config")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        diff = json.loads(raw.decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ConfigError("cfg", "is not a ganlab config (the link may be cut short)") from None
    if not isinstance(diff, dict) or diff.get("task") != base.task:
        raise ConfigError("cfg", f"is not a config for the {base.task} page")
    for section, name in SERVER_PATHS:
        if name in (diff.get(section) if isinstance(diff.get(section), dict) else ()):
            raise ConfigError(f"{section}.{name}", "names a path on the server; a link cannot set it")
    return apply_changes(base, diff)
