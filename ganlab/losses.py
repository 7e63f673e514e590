"""GAN losses, in a registry by name.

Discriminators and critics return raw scores: a logit for the BCE losses, an
unbounded critic value for the Wasserstein ones. The BCE losses are written
with softplus on logits rather than log(sigmoid(.)), because
    -log(sigmoid(s))     = softplus(-s)
    -log(1 - sigmoid(s)) = softplus(s)
stay finite where the naive form rounds to log(0), and they also work under
autocast, where F.binary_cross_entropy refuses to run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class GANLoss:
    name: str
    label: str
    d_loss: Callable[[Tensor, Tensor], Tensor]   # (scores on real, scores on fake) -> scalar
    g_loss: Callable[[Tensor], Tensor]           # scores on fake -> scalar
    wasserstein: bool = False                    # critic output: unbounded, no sigmoid
    clip_weights: bool = False                   # WGAN: clamp D's weights after each step
    gradient_penalty: bool = False               # WGAN-GP
    explain: str = ""


def bce_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    # -log D(x) - log(1 - D(G(z)))
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def bce_g_loss_saturating(fake: Tensor) -> Tensor:
    # The paper's minimax form: minimise log(1 - D(G(z))). Its gradient vanishes
    # exactly when G is worst (D(G(z)) near 0), which is why it trains badly.
    return -F.softplus(fake).mean()


def bce_g_loss_non_saturating(fake: Tensor) -> Tensor:
    # -log D(G(z)): same fixed point, strong gradients when G is losing.
    return F.softplus(-fake).mean()


def wasserstein_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    # The critic maximises E[f(real)] - E[f(fake)].
    return fake.mean() - real.mean()


def wasserstein_g_loss(fake: Tensor) -> Tensor:
    return -fake.mean()


def gradient_penalty(critic: Callable[..., Tensor], real: Tensor, fake: Tensor,
                     labels: Tensor | None = None,
                     generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """WGAN-GP: (||grad f(x_hat)|| - 1)^2 at random points between real and fake.

    Returns the penalty and the mean gradient norm (which should sit near 1).
    Pass the run's generator so the random points are part of its seed.
    """
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, device=real.device, dtype=real.dtype, generator=generator)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = critic(x_hat, labels)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(dim=1)
    return ((norms - 1) ** 2).mean(), norms.mean().detach()


LOSSES: dict[str, GANLoss] = {
    "bce-ns": GANLoss(
        "bce-ns", "BCE, non-saturating G loss", bce_d_loss, bce_g_loss_non_saturating,
        explain="G minimises -log D(G(z)): steep when D rejects the fakes, so G learns early."),
    "bce-sat": GANLoss(
        "bce-sat", "BCE, saturating G loss (minimax)", bce_d_loss, bce_g_loss_saturating,
        explain="G minimises log(1 - D(G(z))): flat when D rejects the fakes, so G's gradient vanishes."),
    "wgan-clip": GANLoss(
        "wgan-clip", "Wasserstein, weight clipping", wasserstein_d_loss, wasserstein_g_loss,
        wasserstein=True, clip_weights=True,
        explain="The critic estimates the W1 distance; clipping its weights keeps it roughly 1-Lipschitz."),
    "wgan-gp": GANLoss(
        "wgan-gp", "Wasserstein, gradient penalty", wasserstein_d_loss, wasserstein_g_loss,
        wasserstein=True, gradient_penalty=True,
        explain="The critic estimates W1; a penalty keeps its gradient norm near 1 instead of clipping."),
}
