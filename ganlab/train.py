"""The training step, shared by every model, loss and task.

A Trainer owns one GAN: its two networks, their optimizers, the data and a
private random generator. `train_step()` is one iteration: k discriminator
updates, then one generator update. Per-step metrics are written into a
buffer on the training device and only read back by `flush()`, so the hot
loop never waits for the GPU.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np
import torch
import torch._dynamo  # noqa: F401 - optimizers import it lazily (seconds); pay that once, up front
from torch import Tensor, nn

from ganlab.config import Experiment, Optim
from ganlab.fast import CAPTURE_AT_STEP, graph_blocker, try_capture
from ganlab.losses import LOSSES, gradient_penalty, r1_penalty
from ganlab.models import build_models
from ganlab.models.layers import use_generator

MODEL_STREAM = 2   # seed + 1 is the probes' stream (tasks), seed + 2 the models'
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
    task = task if task is not None else make_task(cfg, device)
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
            G, D = build_models(cfg)
        self.G, self.D = G.to(self.device), D.to(self.device)
        use_generator(self.G, self.model_gen)
        use_generator(self.D, self.model_gen)
        self.loss = LOSSES[cfg.loss.name]
        self._d_has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.D.modules())
        # The fast path (cfg.train.fast): fused Adam, one D pass over real and fake,
        # no D weight gradients in G's step and, on CUDA, the whole iteration in one
        # CUDA graph. Off, this is the plain PyTorch step, kept as the reference.
        self.fast = cfg.train.fast
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
        self._last = {name: zero for name in METRICS}
        self._rows: list[Tensor] = []

    # -- one iteration -------------------------------------------------------------
    def noise(self, n: int) -> Tensor:
        return self.task.noise(n, self.gen)

    # d_step and g_step are written as generators of stages, so slow motion (ganlab.teach)
    # walks the very code that trains. Training exhausts them in one go; only with
    # `show` do they copy what each stage made to the CPU, so training never waits
    # for the device.
    def d_step(self) -> None:
        for _ in self.d_stages():
            pass

    def d_stages(self, show: bool = False):
        """One D update, yielding (stage, data) after each stage: sample, d_predict, d_loss, d_update."""
        B = self.cfg.train.batch_size
        real, labels = self.task.sample_real(B, self.gen)
        with torch.no_grad():
            fake = self.G(self.noise(B), labels)
        yield "sample", cpu_copies(real=real, fake=fake) if show else {}
        scores_real, scores_fake = self.score_real_and_fake(real, fake, labels)
        d_real, d_fake = self.d_output(scores_real.detach()), self.d_output(scores_fake.detach())
        yield "d_predict", cpu_copies(d_real=d_real, d_fake=d_fake) if show else {}
        loss = self.loss.d_loss(scores_real, scores_fake)
        if self.loss.penalty == "gp":
            penalty, grad_norm = gradient_penalty(self.D, real, fake, labels, self.model_gen)
            loss = loss + self.cfg.loss.gp_lambda * penalty
            self._last["gp_grad_norm"] = grad_norm
        elif self.loss.penalty == "r1":
            # R1's gradient norm shares GP's column: each run has at most one penalty.
            penalty, grad_norm = r1_penalty(self.D, real, labels)
            loss = loss + self.cfg.loss.r1_gamma / 2 * penalty
            self._last["gp_grad_norm"] = grad_norm
        yield "d_loss", cpu_copies(loss_d=loss) if show else {}
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        if self.loss.clip_weights:
            c = self.cfg.loss.clip
            with torch.no_grad():
                for p in self.D.parameters():
                    p.clamp_(-c, c)
        self._last.update(loss_d=loss.detach(), d_real=d_real.mean(), d_fake=d_fake.mean())
        yield "d_update", {}

    def score_real_and_fake(self, real: Tensor, fake: Tensor, labels: Tensor | None):
        # One pass of D over both halves costs half the kernel launches of two
        # passes, which is most of the time for small models. BatchNorm would
        # mix the halves' statistics, so D's with it see them apart.
        if self._d_has_batchnorm or not self.fast:
            return self.D(real, labels), self.D(fake, labels)
        both_labels = None if labels is None else torch.cat([labels, labels])
        scores = self.D(torch.cat([real, fake]), both_labels)
        return scores.chunk(2)

    def g_step(self) -> None:
        for _ in self.g_stages():
            pass

    def g_stages(self, show: bool = False):
        """One G update, yielding (stage, data) after each stage: g_loss, g_update.

        With `show`, g_loss's data hold each fake's push: minus the gradient of
        G's loss at that point (times the batch size: the gradient of the point's
        own term), the direction G's update moves it.
        """
        B = self.cfg.train.batch_size
        labels = self.task.sample_labels(B, self.gen)
        z = self.noise(B)
        # G's loss needs gradients through D, but not for D's weights: skipping those
        # saves a third of D's backward pass.
        self.D.requires_grad_(not self.fast)
        fake = self.G(z, labels)
        if show:
            fake.retain_grad()
        scores_fake = self.D(fake, labels)
        self.D.requires_grad_(True)
        loss = self.loss.g_loss(scores_fake)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        # The size of the gradient reaching G shows vanishing gradients (saturating BCE).
        grads = [p.grad for p in self.G.parameters() if p.grad is not None]
        self._last["g_grad_norm"] = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        yield "g_loss", cpu_copies(z=z, fake=fake, push=-fake.grad * B, loss_g=loss) if show else {}
        self.opt_g.step()
        self._last["loss_g"] = loss.detach()
        yield "g_update", {}

    def train_step(self, what: str = "both") -> None:
        """One iteration: k D updates then one G update ("d" or "g" for only one side)."""
        self._begin_step()
        if what == "both" and self._graph is not None:
            self._last.update(self._graph.replay())
        elif what == "both" and self.step == self._capture_at:
            self._graph, self.path = try_capture(self._iteration, self._last, (self.gen, self.model_gen))
        else:
            self._iteration(what)
        self._end_step(what)

    def _begin_step(self) -> None:
        self.G.train(), self.D.train()
        if self.cfg.train.lr_decay:
            self._decay_lr()

    def _end_step(self, what: str) -> None:
        self.d_updates += self.cfg.train.d_steps if what in ("both", "d") else 0
        self.g_updates += 1 if what in ("both", "g") else 0
        self.step += 1
        self._rows.append(torch.stack([self._last[name] for name in METRICS]))

    def _iteration(self, what: str = "both") -> None:
        if what in ("both", "d"):
            for _ in range(self.cfg.train.d_steps):
                self.d_step()
        if what in ("both", "g"):
            self.g_step()

    def _decay_lr(self) -> None:
        # Late in a run, GAN dynamics circle the equilibrium instead of settling;
        # shrinking the steps damps the circling. A quadratic decay (to 2%) spends
        # the last third of the run at small steps, where the circles close.
        progress = min(self.step / self.cfg.train.steps, 1.0)
        self._set_lrs(0.02 + 0.98 * (1.0 - progress) ** 2)

    def _set_lrs(self, scale: float = 1.0) -> None:
        for opt, cfg in ((self.opt_g, self.cfg.opt_g), (self.opt_d, self.cfg.opt_d)):
            for group in opt.param_groups:
                if isinstance(group["lr"], Tensor):
                    group["lr"].fill_(cfg.lr * scale)   # in place: a CUDA graph reads this tensor
                else:
                    group["lr"] = cfg.lr * scale

    # -- teaching: one iteration in slow motion, and changes between steps -------------
    def stages(self):
        """train_step() one stage at a time, for slow motion (ganlab.teach).

        Yields (stage, d_step, data): the k D updates' stages, then G's. It always
        runs eagerly (a CUDA graph cannot stop halfway) and ends with
        train_step's bookkeeping, so the step counts as any other.
        """
        self._begin_step()
        k = self.cfg.train.d_steps
        for i in range(1, k + 1):
            for stage, data in self.d_stages(show=True):
                yield stage, i, data
        for stage, data in self.g_stages(show=True):
            yield stage, k, data
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

    def d_output(self, scores: Tensor) -> Tensor:
        """What the charts show of D: a probability for the BCE losses, else the raw score."""
        return torch.sigmoid(scores) if self.loss.output == "probability" else scores

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
