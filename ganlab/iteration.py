"""One GAN training iteration, written out once: k updates of D, then one of G.

Three things run these very lines: the Trainer's eager path (ganlab/train.py),
slow motion, which stops at each `yield` to show a stage (ganlab/teach.py), and
the exported script, which copies this file's functions with inspect.getsource
(ganlab/export.py). The Trainer's fast path on CUDA records them once as a CUDA
graph and replays that (ganlab/fast.py).

`gan` is any object with these attributes (a Trainer, or the exported script's
namespace):
    G, D, opt_g, opt_d   the two networks and their optimizers
    loss                 a losses.Loss: d_loss, g_loss, its penalty, clip_weights, output
    cfg                  cfg.train.batch_size and d_steps (k); cfg.loss.gp_lambda, r1_gamma, clip, real_label
    sample_real(n)       a batch of real data and its labels (None for an unconditional GAN)
    sample_labels(n)     labels for G's samples (None for an unconditional GAN)
    noise(n)             a batch of z
    model_gen            the models' own random stream (the gradient penalty's points)
    fast                 the fast path's shortcuts (ganlab's train.fast; False in the script)
    one_d_pass           D scores real and fake in one pass (fast, and D has no BatchNorm)
    last                 a dict: each update leaves its metrics there, as tensors
"""
from __future__ import annotations

import torch

from ganlab.losses import gradient_penalty, r1_penalty


def train_iteration(gan, what: str = "both", show: bool = False):
    """One iteration; yields (stage, d_step, tensors) after each stage.

    Training runs straight through it (see `train_step`); slow motion takes one
    stage per call. `what` is "d" or "g" to update one side only. With `show`,
    G's samples keep their gradients, for slow motion to draw.
    """
    B, k = gan.cfg.train.batch_size, gan.cfg.train.d_steps
    if what in ("both", "d"):
        for i in range(1, k + 1):
            # (1) Update D, k times: score real samples high and G's samples low.
            # (1a) A batch of real data, and one of G's samples. G does not learn here:
            #      no gradients through it.
            real, labels = gan.sample_real(B)
            with torch.no_grad():
                fake = gan.G(gan.noise(B), labels)
            yield "sample", i, {"real": real, "fake": fake}

            # (1b) D's scores for both batches.
            if gan.one_d_pass:
                # Fast path: one pass over both halves costs half the kernel launches. BatchNorm
                # would mix the halves' statistics, so a D with it never takes this branch.
                both = None if labels is None else torch.cat([labels, labels])
                scores_real, scores_fake = gan.D(torch.cat([real, fake]), both).chunk(2)
            else:
                scores_real, scores_fake = gan.D(real, labels), gan.D(fake, labels)
            d_real, d_fake = d_output(gan.loss, scores_real.detach()), d_output(gan.loss, scores_fake.detach())
            yield "d_predict", i, {"d_real": d_real, "d_fake": d_fake}

            # (1c) D's loss, and its penalty for the losses that have one. The losses that regress
            #      onto labels take the real one: below 1 it is one-sided label smoothing.
            smoothing = (gan.cfg.loss.real_label,) if gan.loss.labels else ()
            loss_d = gan.loss.d_loss(scores_real, scores_fake, *smoothing)
            if gan.loss.penalty == "gp":
                # WGAN-GP: D's gradient norm held near 1 at points between real and fake.
                penalty, grad_norm = gradient_penalty(gan.D, real, fake, labels, gan.model_gen)
                loss_d = loss_d + gan.cfg.loss.gp_lambda * penalty
                gan.last["gp_grad_norm"] = grad_norm
            elif gan.loss.penalty == "r1":
                # R1: D's gradient kept small at the real data. Its norm shares GP's column:
                # a run has one penalty at most.
                penalty, grad_norm = r1_penalty(gan.D, real, labels)
                loss_d = loss_d + gan.cfg.loss.r1_gamma / 2 * penalty
                gan.last["gp_grad_norm"] = grad_norm
            yield "d_loss", i, {"loss_d": loss_d}

            # (1d) One optimizer step on D's weights; WGAN's clipping keeps D Lipschitz.
            gan.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            gan.opt_d.step()
            if gan.loss.clip_weights:
                with torch.no_grad():
                    for p in gan.D.parameters():
                        p.clamp_(-gan.cfg.loss.clip, gan.cfg.loss.clip)
            gan.last.update(loss_d=loss_d.detach(), d_real=d_real.mean(), d_fake=d_fake.mean())
            yield "d_update", i, {}

    if what in ("both", "g"):
        # (2) Update G: make D score G's samples as real.
        # (2a) G's loss on a fresh batch of samples, and its gradients. They flow through D,
        #      but D's weights need none: the fast path skips them, a third of D's backward.
        labels = gan.sample_labels(B)
        z = gan.noise(B)
        gan.D.requires_grad_(not gan.fast)
        fake = gan.G(z, labels)
        if show:
            fake.retain_grad()          # slow motion draws each sample's push: minus its gradient
        loss_g = gan.loss.g_loss(gan.D(fake, labels))
        gan.D.requires_grad_(True)
        gan.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        # The size of the gradient reaching G shows vanishing gradients (saturating BCE).
        grads = [p.grad for p in gan.G.parameters() if p.grad is not None]
        gan.last["g_grad_norm"] = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        yield "g_loss", k, {"z": z, "fake": fake, "loss_g": loss_g}

        # (2b) One optimizer step on G's weights. D has not moved.
        gan.opt_g.step()
        gan.last["loss_g"] = loss_g.detach()
        yield "g_update", k, {}


def train_step(gan, what: str = "both") -> None:
    """One iteration, straight through."""
    for _ in train_iteration(gan, what):
        pass


def d_output(loss, scores):
    """What the charts show of D: a probability for the BCE losses, else the raw score."""
    return torch.sigmoid(scores) if loss.output == "probability" else scores


def lr_scale(step: int, steps: int) -> float:
    """The learning rates' factor at `step` (from 0) of `steps`, when train.lr_decay is on.

    Late in a run, GAN dynamics circle the equilibrium instead of settling; shrinking
    the steps damps the circling. A quadratic decay (to 2%) spends the last third of
    the run at small steps, where the circles close.
    """
    progress = min(step / steps, 1.0)
    return 0.02 + 0.98 * (1.0 - progress) ** 2


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)     # in place: a CUDA graph reads this very tensor
        else:
            group["lr"] = lr
