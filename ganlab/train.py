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
from ganlab.losses import LOSSES, gradient_penalty
from ganlab.models import build_models

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


def make_optimizer(params, cfg: Optim, device: torch.device) -> torch.optim.Optimizer:
    params = list(params)
    if cfg.name == "adam":
        # Fused Adam updates every parameter in one kernel (CUDA and CPU alike).
        return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=True)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, foreach=True)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.beta1, foreach=True)


_init_lock = threading.Lock()


@contextmanager
def seeded(seed: int):
    """Seed torch's global RNG for weight init without disturbing other threads' state."""
    with _init_lock, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class Trainer:
    def __init__(self, cfg: Experiment, task=None):
        from ganlab.tasks import make_task
        self.cfg = cfg
        self.device = resolve_device(cfg.train.device)
        self.gen = torch.Generator(self.device).manual_seed(cfg.train.seed)
        self.task = task if task is not None else make_task(cfg, self.device)
        threads = cfg.train.cpu_threads or getattr(self.task, "cpu_threads", 0)
        if self.device.type == "cpu" and threads:
            # Per calling thread with OpenMP: other runs keep their own setting.
            torch.set_num_threads(threads)
        with seeded(cfg.train.seed):
            G, D = build_models(cfg)
        self.G, self.D = G.to(self.device), D.to(self.device)
        self.loss = LOSSES[cfg.loss.name]
        self._d_has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.D.modules())
        self.opt_g = make_optimizer(self.G.parameters(), cfg.opt_g, self.device)
        self.opt_d = make_optimizer(self.D.parameters(), cfg.opt_d, self.device)
        self.step = 0
        self.d_updates = 0
        self.g_updates = 0
        zero = torch.zeros((), device=self.device)
        self._last = {name: zero for name in METRICS}
        self._rows: list[Tensor] = []

    # -- one iteration -------------------------------------------------------------
    def noise(self, n: int) -> Tensor:
        return self.task.noise(n, self.gen)

    def d_step(self) -> None:
        B = self.cfg.train.batch_size
        real, labels = self.task.sample_real(B, self.gen)
        with torch.no_grad():
            fake = self.G(self.noise(B), labels)
        scores_real, scores_fake = self.score_real_and_fake(real, fake, labels)
        loss = self.loss.d_loss(scores_real, scores_fake)
        if self.loss.gradient_penalty:
            penalty, grad_norm = gradient_penalty(self.D, real, fake, labels)
            loss = loss + self.cfg.loss.gp_lambda * penalty
            self._last["gp_grad_norm"] = grad_norm
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        if self.loss.clip_weights:
            c = self.cfg.loss.clip
            with torch.no_grad():
                for p in self.D.parameters():
                    p.clamp_(-c, c)
        self.d_updates += 1
        self._last.update(loss_d=loss.detach(), d_real=self.d_output(scores_real).mean().detach(),
                          d_fake=self.d_output(scores_fake).mean().detach())

    def score_real_and_fake(self, real: Tensor, fake: Tensor, labels: Tensor | None):
        # One pass of D over both halves costs half the kernel launches of two
        # passes, which is most of the time for small models. BatchNorm would
        # mix the halves' statistics, so D's with it see them apart.
        if self._d_has_batchnorm:
            return self.D(real, labels), self.D(fake, labels)
        both_labels = None if labels is None else torch.cat([labels, labels])
        scores = self.D(torch.cat([real, fake]), both_labels)
        return scores.chunk(2)

    def g_step(self) -> None:
        B = self.cfg.train.batch_size
        labels = self.task.sample_labels(B, self.gen)
        scores_fake = self.D(self.G(self.noise(B), labels), labels)
        loss = self.loss.g_loss(scores_fake)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        # The size of the gradient reaching G shows vanishing gradients (saturating BCE).
        grads = [p.grad for p in self.G.parameters() if p.grad is not None]
        self._last["g_grad_norm"] = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        self.opt_g.step()
        self.g_updates += 1
        self._last["loss_g"] = loss.detach()

    def train_step(self, what: str = "both") -> None:
        """One iteration: k D updates then one G update ("d" or "g" for only one side)."""
        self.G.train(), self.D.train()
        if self.cfg.train.lr_decay:
            self._decay_lr()
        if what in ("both", "d"):
            for _ in range(self.cfg.train.d_steps):
                self.d_step()
        if what in ("both", "g"):
            self.g_step()
        self.step += 1
        self._rows.append(torch.stack([self._last[name] for name in METRICS]))

    def _decay_lr(self) -> None:
        # Late in a run, GAN dynamics circle the equilibrium instead of settling;
        # shrinking the steps damps the circling. A quadratic decay (to 2%) spends
        # the last third of the run at small steps, where the circles close.
        progress = min(self.step / self.cfg.train.steps, 1.0)
        scale = 0.02 + 0.98 * (1.0 - progress) ** 2
        for opt, cfg in ((self.opt_g, self.cfg.opt_g), (self.opt_d, self.cfg.opt_d)):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * scale

    def d_output(self, scores: Tensor) -> Tensor:
        """What the charts call D(x): a probability for BCE, the raw critic value for WGAN."""
        return scores if self.loss.wasserstein else torch.sigmoid(scores)

    # -- reading back ----------------------------------------------------------------
    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-step metrics since the last flush, as (steps, values[steps, METRICS]).

        This is the only place the training loop syncs with the device.
        Raises DivergedError naming the first step whose metrics are not finite.
        """
        n = len(self._rows)
        steps = np.arange(self.step - n + 1, self.step + 1)
        if n == 0:
            return steps, np.empty((0, len(METRICS)), dtype=np.float32)
        values = torch.stack(self._rows).float().cpu().numpy()
        self._rows.clear()
        bad = ~np.isfinite(values)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise DivergedError(int(steps[row]), METRICS[col])
        return steps, values

    @torch.no_grad()
    def probe(self) -> tuple[dict, dict]:
        """The task's views (densities, sample grids) and quality meters, in eval mode."""
        self.G.eval(), self.D.eval()
        try:
            return self.task.probe(self)
        finally:
            self.G.train(), self.D.train()
