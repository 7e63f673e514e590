"""The training step, shared by every model, loss and task.

A Trainer owns one GAN: its two networks, their optimizers, the data and a
private random generator. `train_step()` is one iteration: k discriminator
updates, then one generator update, as ganlab/iteration.py writes them out
(the fast path on CUDA replays them from a CUDA graph). Per-step metrics are written into a
buffer on the training device and only read back by `flush()`, so the hot
loop never waits for the GPU.
"""
from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager

import numpy as np
import torch
import torch._dynamo  # noqa: F401 - optimizers import it lazily (seconds); pay that once, up front
from torch import Tensor, nn

from ganlab.config import Experiment, Optim
from ganlab import stopping
from ganlab.fast import CAPTURE_AT_STEP, graph_blocker, try_capture
from ganlab.iteration import d_output, lr_scale, set_lr, train_iteration
from ganlab.losses import LOSSES
from ganlab.models import build_models
from ganlab.models.layers import use_generator

MODEL_STREAM = 2   # seed + 1 is the probes' stream (tasks), seed + 2 the models'
CUT_SHORT_AFTER = 0.2   # seconds: an iteration this old may stop between two of its stages
SLOW_UPDATE = 0.05      # seconds (measured): updates this slow get stop points inside their passes too
METRICS = ("loss_d", "loss_g", "d_real", "d_fake", "g_grad_norm", "gp_grad_norm")


class DivergedError(RuntimeError):
    """A loss became NaN or infinite."""

    def __init__(self, step: int, metric: str):
        super().__init__(f"{metric} became NaN or infinite at step {step}; lower the learning rates, "
                         f"or try a Wasserstein loss.")
        self.step = step
        self.metric = metric


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for, but no CUDA GPU is available; choose cpu or auto.")
    return torch.device(name)


def make_optimizer(params, cfg: Optim, device: torch.device, fast: bool = True,
                   capturable: bool = False) -> torch.optim.Optimizer:
    params, decay = list(params), cfg.weight_decay
    if cfg.name == "adam":
        if not fast:
            return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=decay)
        # Fused Adam updates every parameter in one kernel (CUDA and CPU alike). In a
        # CUDA graph its lr must be a tensor, so that decaying it reaches the graph.
        lr = torch.tensor(cfg.lr, device=device) if capturable else cfg.lr
        return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2), weight_decay=decay, fused=True,
                                capturable=capturable)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=decay, foreach=fast)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.beta1, weight_decay=decay, foreach=fast)


_init_lock = threading.Lock()


@contextmanager
def seeded(seed: int):
    """Seed torch's global RNG for weight init without disturbing other threads' state."""
    with _init_lock, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def describe_path(fast: bool, device: torch.device, graph_blocker: str | None) -> str:
    """One line for the page: which training path a run takes."""
    if not fast:
        return "eager: the plain PyTorch step (fast path off)"
    if graph_blocker is None:
        return f"fast: fused Adam; the whole iteration as one CUDA graph, captured at step {CAPTURE_AT_STEP}"
    if device.type == "cuda":
        return f"fast: fused Adam, one D pass over real and fake; no CUDA graph: {graph_blocker}"
    return "fast: fused Adam, one D pass over real and fake, no D weight gradients in G's step"


def cpu_copies(**tensors: Tensor) -> dict:
    """Detached CPU numpy copies, for showing a stage (slow motion); a scalar becomes a float."""
    out = {}
    for name, value in tensors.items():
        value = value.detach().float().cpu().numpy()
        out[name] = float(value) if value.ndim == 0 else value
    return out


def prepare(cfg: Experiment, task=None):
    """(device, the run's generator, task) for a trainer; sets this thread's CPU threads."""
    from ganlab.tasks import make_task
    device = resolve_device(cfg.train.device)
    gen = torch.Generator(device).manual_seed(cfg.train.seed)
    stopping.check("stopped before the first step")     # setting up takes phases; Stop may come between
    task = task if task is not None else make_task(cfg, device)
    stopping.check("stopped while the data was loaded")
    threads = cfg.train.cpu_threads or getattr(task, "cpu_threads", 0)
    if device.type == "cpu" and threads:
        # Per calling thread with OpenMP: other runs keep their own setting.
        torch.set_num_threads(threads)
    return device, gen, task


def read_back(rows: list[Tensor], last_step: int, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Empty `rows` (per-step metrics on the device, the last at `last_step`) into
    (steps, values[steps, names]), in one sync; DivergedError at the first non-finite value."""
    n = len(rows)
    steps = np.arange(last_step - n + 1, last_step + 1)
    if n == 0:
        return steps, np.empty((0, len(names)), dtype=np.float32)
    values = torch.stack(rows).float().cpu().numpy()
    rows.clear()
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DivergedError(int(steps[row]), names[col])
    return steps, values


class Trainer:
    def __init__(self, cfg: Experiment, task=None):
        self.cfg = cfg
        self.device, self.gen, self.task = prepare(cfg, task)
        # The models' own randomness (dropout masks, the gradient penalty's points) has
        # a stream of its own, so that runs differing only in loss see the same batches.
        self.model_gen = torch.Generator(self.device).manual_seed(cfg.train.seed + MODEL_STREAM)
        with seeded(cfg.train.seed):
            G, D = build_models(cfg)      # a stop point before each layer (ganlab.stopping)
        stopping.check("stopped while the model was being built")
        self.G, self.D = G.to(self.device), D.to(self.device)
        stopping.check("stopped while the model was being built")
        use_generator(self.G, self.model_gen)
        use_generator(self.D, self.model_gen)
        self.loss = LOSSES[cfg.loss.name]
        # The fast path (cfg.train.fast): fused Adam, one D pass over real and fake,
        # no D weight gradients in G's step and, on CUDA, the whole iteration in one
        # CUDA graph. Off, this is the plain PyTorch step, kept as the reference.
        self.fast = cfg.train.fast
        # One D pass over real and fake: BatchNorm would mix the halves' statistics.
        self.one_d_pass = self.fast and not any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                                for m in self.D.modules())
        blocker = graph_blocker(cfg, self.device)
        self._capture_at = CAPTURE_AT_STEP if blocker is None else None
        self._graph = None
        if self.fast and self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True   # fixed shapes: let cuDNN time its algorithms once
        self.path = describe_path(self.fast, self.device, blocker)
        self.opt_g = make_optimizer(self.G.parameters(), cfg.opt_g, self.device, self.fast, blocker is None)
        self.opt_d = make_optimizer(self.D.parameters(), cfg.opt_d, self.device, self.fast, blocker is None)
        self.step = 0
        self.d_updates = 0
        self.g_updates = 0
        zero = torch.zeros((), device=self.device)
        self.last = {name: zero for name in METRICS}   # train_iteration leaves each step's metrics here
        self._rows: list[Tensor] = []
        self._cut_from = math.inf          # perf_counter time from which this step may stop halfway
        self._made = 0                     # D updates made in the step under way
        self._stops_inside = False         # stop points inside the passes, once the updates prove slow

    # -- one iteration -------------------------------------------------------------
    # The iteration itself is ganlab.iteration.train_iteration, written once for this
    # eager path, slow motion and the exported script. These are what it asks of `gan`.
    def noise(self, n: int) -> Tensor:
        return self.task.noise(n, self.gen)

    def sample_real(self, n: int):
        return self.task.sample_real(n, self.gen)

    def sample_labels(self, n: int):
        return self.task.sample_labels(n, self.gen)

    def train_step(self, what: str = "both") -> None:
        """One iteration: k D updates then one G update ("d" or "g" for only one side)."""
        self._begin_step()
        if what == "both" and self._graph is not None:
            self.last.update(self._graph.replay())
        elif what == "both" and self.step == self._capture_at:
            # A stop point in the middle of a capture would leave the graph half recorded.
            self._graph, self.path = try_capture(lambda: self._iteration("both", stoppable=False), self.last,
                                                 (self.gen, self.model_gen))
        else:
            self._iteration(what)
        self._end_step(what)

    def _begin_step(self) -> None:
        self.G.train(), self.D.train()
        if self.cfg.train.lr_decay:
            self._set_lrs(lr_scale(self.step, self.cfg.train.steps))

    def _end_step(self, what: str) -> None:
        self.d_updates += self.cfg.train.d_steps if what in ("both", "d") else 0
        self.g_updates += 1 if what in ("both", "g") else 0
        self.step += 1
        self._rows.append(torch.stack([self.last[name] for name in METRICS]))

    def _iteration(self, what: str = "both", stoppable: bool = True) -> None:
        # A stop is read between steps. A slow iteration (k = 1,000, or a batch of a million)
        # may also end between two of its stages, once it has run for CUT_SHORT_AFTER seconds:
        # no optimizer step is ever half made, but the step is. A fast iteration is let to end,
        # so that a run stopped in the usual way rests between two steps, where a save resumes exactly.
        self._made = 0
        self._cut_from = time.perf_counter() + CUT_SHORT_AFTER if stoppable else math.inf
        started = time.perf_counter()
        try:
            for stage, _, _ in train_iteration(self, what):
                self._made += stage == "d_update"
                if stage != "g_update" and time.perf_counter() > self._cut_from and stopping.requested():
                    raise stopping.Stopped(self._stopped_partway())
        finally:
            self._cut_from = math.inf
        updates = self._made + (what != "d")
        if not self._stops_inside and time.perf_counter() - started > SLOW_UPDATE * updates:
            stopping.inside_passes([self.G, self.D], lambda: time.perf_counter() > self._cut_from,
                                   self._stopped_partway)
            self._stops_inside = True

    def _stopped_partway(self) -> str:
        self.d_updates += self._made      # the updates made count; the step does not
        return (f"stopped at step {self.step:,}, partway through the next one "
                f"({self._made} of its {self.cfg.train.d_steps} D updates made)")

    def _set_lrs(self, scale: float = 1.0) -> None:
        set_lr(self.opt_g, self.cfg.opt_g.lr * scale)
        set_lr(self.opt_d, self.cfg.opt_d.lr * scale)

    # -- teaching: one iteration in slow motion, and changes between steps -------------
    def stages(self):
        """train_step() one stage at a time, for slow motion (ganlab.teach).

        Yields (stage, d_step, data), data as CPU copies: the k D updates' stages,
        then G's. It always runs eagerly (a CUDA graph cannot stop halfway) and ends
        with train_step's bookkeeping, so the step counts as any other.
        """
        self._begin_step()
        B = self.cfg.train.batch_size
        for stage, i, tensors in train_iteration(self, show=True):
            if stage == "g_loss":
                # Each sample's push: minus the gradient of G's loss there (times the batch
                # size: the gradient of its own term), the way G's update moves it.
                tensors = {**tensors, "push": -tensors["fake"].grad * B}
            yield stage, i, cpu_copies(**tensors)
        if self._graph is None and self.step == self._capture_at:
            self._capture_at += 1   # this step was not the fast path's: capture at the next one
        self._end_step("both")

    def reconfigure(self, cfg: Experiment) -> None:
        """Take new learning rates, k or loss between two steps; weights and optimizer state stay.

        Only cfg.opt_g.lr, cfg.opt_d.lr, cfg.train.d_steps and cfg.loss may differ
        from the config the trainer was built with.
        """
        self.cfg = cfg
        self.loss = LOSSES[cfg.loss.name]
        self._set_lrs()   # lr decay, when on, rescales them again at the next step
        if self._capture_at is not None:
            # The graph has k and the loss baked in: record a new one at the next step.
            self._graph, self._capture_at = None, self.step

    def give_back(self) -> None:
        """The run has ended: drop what only training needs (the task's data, MNIST's digits
        resident on the device, and a captured graph's buffers). The models and optimizers
        stay, for Save and Explore; they are a small part of a run's memory."""
        self.task, self._graph, self._capture_at, self._rows = None, None, None, []
        self.opt_g.zero_grad(set_to_none=True), self.opt_d.zero_grad(set_to_none=True)

    def d_output(self, scores: Tensor) -> Tensor:
        """What the charts show of D: a probability for the BCE losses, else the raw score."""
        return d_output(self.loss, scores)

    # -- reading back ----------------------------------------------------------------
    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-step metrics since the last flush, as (steps, values[steps, METRICS]).

        This is the only place the training loop syncs with the device.
        Raises DivergedError naming the first step whose metrics are not finite.
        """
        return read_back(self._rows, self.step, METRICS)

    @torch.no_grad()
    def probe(self) -> tuple[dict, dict]:
        """The task's views (densities, sample grids) and quality meters, in eval mode."""
        self.G.eval(), self.D.eval()
        try:
            return self.task.probe(self)
        finally:
            self.G.train(), self.D.train()
