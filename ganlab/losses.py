"""GAN losses, in a registry by name. Each loss says what it means.

A GANLoss carries its two loss functions and everything the rest of ganlab
needs to know about them: how D's raw output is shown (a probability after a
sigmoid, or the raw score), what it is called, where it sits at equilibrium,
which penalty or clipping keeps D in check, and the settings its paper trained
it with. The trainer, the charts, the alarms, the teaching text and the Loss
lab ask the loss; none of them keeps a list of loss names.

Discriminators and critics return raw scores: a logit for the BCE losses, an
unbounded value for the others. The BCE losses are written with softplus on
logits rather than log(sigmoid(.)), because
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

from ganlab.config import Optim

OUTPUTS = ("probability", "score")   # D's output shown after a sigmoid, or raw
PENALTIES = (None, "gp", "r1")       # WGAN-GP at interpolates, R1 on real data


@dataclass(frozen=True)
class Reference:
    """The settings a loss's paper trained it with: k, the two optimizers, and any loss settings
    (Loss fields such as gp_lambda) it sets. `tasks` replaces them on tasks where the paper's
    image-scale settings fit badly (the small toys), each with the reason beside it."""
    d_steps: int
    opt_d: Optim
    opt_g: Optim
    loss: tuple[tuple[str, float], ...] = ()          # (Loss field, value) pairs, e.g. (("gp_lambda", 0.1),)
    tasks: tuple[tuple[str, Reference], ...] = ()     # (task, its settings) pairs

    def for_task(self, task: str) -> Reference:
        """The settings to train `task` with: the task's own, where it has some."""
        return dict(self.tasks).get(task, self)


@dataclass(frozen=True)
class GANLoss:
    name: str
    label: str
    short: str                                   # for legends
    color: str                                   # one hex colour per loss, on every chart
    d_loss: Callable[[Tensor, Tensor], Tensor]   # (scores on real, scores on fake) -> scalar
    g_loss: Callable[[Tensor], Tensor]           # scores on fake -> scalar
    reference: Reference
    output: str = "probability"                  # "probability": sigmoid(score); "score": the raw score
    symbol: str = "D(x)"                         # what the charts call D's shown output
    equilibrium: float | None = 0.5              # D's shown output when G matches the data; None: no such value
    critic: bool = False                         # teaching text says "the critic", not "D"
    penalty: str | None = None                   # "gp", "r1" or None
    clip_weights: bool = False                   # WGAN: clamp D's weights after each step
    labels: bool = False                         # D regresses onto labels (1 real, 0 fake): d_loss takes
                                                 # a third argument, the real label (loss.real_label)
    explain: str = ""

    @property
    def mode_alarm(self) -> bool:
        """Whether the "discriminator wins" alarm applies: it reads D(fake) as a probability."""
        return self.output == "probability"

    def real_target(self, real_label: float) -> float:
        """D's target on real data under loss.real_label: the label, for the losses that have labels."""
        return real_label if self.labels else 1.0

    def display(self, real_label: float = 1.0) -> dict:
        """What a chart needs to draw D's output: tasks put this into their views.

        With one-sided label smoothing the best D is real_label * p_data / (p_data + p_g)
        (for BCE and for LSGAN), so where G matches the data D says real_label / 2.
        """
        equilibrium = None if self.equilibrium is None else self.equilibrium * self.real_target(real_label)
        return {"loss": self.name, "output": self.output, "symbol": self.symbol,
                "equilibrium": equilibrium, "critic": self.critic}


# -- the loss functions -------------------------------------------------------------------

def bce_d_loss(real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
    # -log D(x) - log(1 - D(G(z))). With one-sided label smoothing (real_label below 1,
    # Salimans et al. 2016) D's target on real data is real_label: the cross-entropy
    # -t log D(x) - (1 - t) log(1 - D(x)), least at D(x) = t, so D is never rewarded
    # for growing ever surer of the data, and its gradient to G does not vanish.
    # Fakes keep target 0: smoothing them too would leave D content with some fakes.
    loss_real = F.softplus(-real).mean()
    if real_label != 1.0:
        loss_real = real_label * loss_real + (1.0 - real_label) * F.softplus(real).mean()
    return loss_real + F.softplus(fake).mean()


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


def lsgan_d_loss(real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
    # Mao et al. 2017 with targets b = 1 (real) and a = 0 (fake): a least-squares
    # regression of D's raw output onto the labels. No sigmoid, so no saturation:
    # a fake far on the wrong side is penalised quadratically. real_label below 1
    # smooths the real target (one-sided, as for BCE).
    return 0.5 * ((real - real_label) ** 2).mean() + 0.5 * (fake ** 2).mean()


def lsgan_g_loss(fake: Tensor) -> Tensor:
    # G wants D to say 1 (c = 1) on its fakes.
    return 0.5 * ((fake - 1) ** 2).mean()


def hinge_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    # SAGAN / BigGAN: only points inside the margin (real below 1, fake above -1) teach D.
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_g_loss(fake: Tensor) -> Tensor:
    # G's side is the Wasserstein one: raise the critic's score on the fakes.
    return -fake.mean()


# -- penalties on D's gradient ----------------------------------------------------------------

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


def r1_penalty(critic: Callable[..., Tensor], real: Tensor,
               labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """R1 (Mescheder et al. 2018): E[||grad D(x)||^2] on real data only.

    Multiply by gamma / 2. It pushes D's slope at the data to zero, so that once G
    matches the data D has nothing left to push G with, and the game settles
    instead of circling. Returns the penalty and the mean gradient norm.
    """
    x = real.detach().requires_grad_(True)
    scores = critic(x, labels)
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    norms = grad.flatten(1).norm(dim=1)
    return (norms ** 2).mean(), norms.mean().detach()


# -- reference settings, from each loss's paper --------------------------------------------------

# DCGAN (Radford et al. 2016): Adam, lr 2e-4, beta1 0.5; one D step per G step.
# On the 1D Gaussian, the gauss1d preset's measured settings: Adam at 1e-3 and k = 2. At 2e-4 and
# k = 1, G has not reached the target (4 away, with the learning rate decayed to 2%) when the budget
# ends, or ends too narrow (the Loss lab's 1D comparison: saturating BCE W1 0.26 on seed 102,
# LSGAN 0.23 on seed 100).
_DCGAN_1D = Reference(2, Optim("adam", 1e-3, 0.5, 0.999), Optim("adam", 1e-3, 0.5, 0.999))
_DCGAN = Reference(1, Optim("adam", 2e-4, 0.5, 0.999), Optim("adam", 2e-4, 0.5, 0.999),
                   tasks=(("gauss1d", _DCGAN_1D),))
# WGAN (Arjovsky et al. 2017, Algorithm 1): RMSProp at 5e-5, n_critic = 5 (momentum
# optimizers such as Adam made the clipped critic unstable). RMSprop has no betas; they are unused.
_WGAN = Reference(5, Optim("rmsprop", 5e-5), Optim("rmsprop", 5e-5))
# WGAN-GP (Gulrajani et al. 2017, Algorithm 1): Adam, lr 1e-4, betas (0, 0.9), n_critic = 5, λ = 10.
# On the toys, λ = 0.1 as in the paper's own toy code (gan_toy.py) and ganlab's WGAN-GP toy presets,
# and lr 1e-3 (the presets'): with the paper's image settings G, at lr 1e-4, has not reached the 1D
# target (4 away) when the budget ends (W1 0.7 to 3.9 on seeds 100-102 of the Loss lab's 1D
# comparison). The paper's betas (0, 0.9) stay: with the presets' (0.5, 0.9), seed 101 ended at W1
# 0.17, still circling the target (0.12 with beta1 = 0).
_WGAN_GP_TOY = Reference(5, Optim("adam", 1e-3, 0.0, 0.9), Optim("adam", 1e-3, 0.0, 0.9), (("gp_lambda", 0.1),))
_WGAN_GP = Reference(5, Optim("adam", 1e-4, 0.0, 0.9), Optim("adam", 1e-4, 0.0, 0.9), (("gp_lambda", 10.0),),
                     tasks=(("gauss1d", _WGAN_GP_TOY), ("toy2d", _WGAN_GP_TOY)))
# LSGAN (Mao et al. 2017): Adam, lr 2e-4, beta1 0.5, as DCGAN; one D step per G step.
_LSGAN = _DCGAN
# Hinge (SAGAN, Zhang et al. 2019): Adam with betas (0, 0.9) and the two time-scale update
# rule: lr 4e-4 for D and 1e-4 for G, one D step per G step.
_HINGE = Reference(1, Optim("adam", 4e-4, 0.0, 0.9), Optim("adam", 1e-4, 0.0, 0.9))
# R1 (Mescheder et al. 2018, and their GAN_stability code): RMSProp at 1e-4 for both,
# one D step per G step, gamma = 10.
_R1 = Reference(1, Optim("rmsprop", 1e-4), Optim("rmsprop", 1e-4))

LOSSES: dict[str, GANLoss] = {
    "bce-ns": GANLoss(
        "bce-ns", "BCE, non-saturating G loss", "BCE non-saturating", "#ff7f0e",
        bce_d_loss, bce_g_loss_non_saturating, _DCGAN, labels=True,
        explain="G minimises -log D(G(z)): steep when D rejects the fakes, so G learns early."),
    "bce-sat": GANLoss(
        "bce-sat", "BCE, saturating G loss (minimax)", "BCE saturating", "#e377c2",
        bce_d_loss, bce_g_loss_saturating, _DCGAN, labels=True,
        explain="G minimises log(1 - D(G(z))): flat when D rejects the fakes, so G's gradient vanishes."),
    "wgan-clip": GANLoss(
        "wgan-clip", "Wasserstein, weight clipping", "WGAN clip", "#2ca02c",
        wasserstein_d_loss, wasserstein_g_loss, _WGAN,
        output="score", symbol="f(x)", equilibrium=None, critic=True, clip_weights=True,
        explain="The critic estimates the W1 distance; clipping its weights keeps it roughly 1-Lipschitz."),
    "wgan-gp": GANLoss(
        "wgan-gp", "Wasserstein, gradient penalty", "WGAN-GP", "#9467bd",
        wasserstein_d_loss, wasserstein_g_loss, _WGAN_GP,
        output="score", symbol="f(x)", equilibrium=None, critic=True, penalty="gp",
        explain="The critic estimates W1; a penalty keeps its gradient norm near 1 instead of clipping."),
    "lsgan": GANLoss(
        "lsgan", "Least squares (LSGAN)", "LSGAN", "#17becf",
        lsgan_d_loss, lsgan_g_loss, _LSGAN,
        # With targets 0 (fake) and 1 (real), the best D is p_data / (p_data + p_g),
        # the same as BCE's, so it says 0.5 everywhere once G matches the data.
        output="score", symbol="D(x)", equilibrium=0.5, labels=True,
        explain="D regresses its raw output onto 1 for real and 0 for fake; G pulls its fakes' "
                "outputs towards 1. Squares, not logs: no sigmoid to saturate."),
    "hinge": GANLoss(
        "hinge", "Hinge (SAGAN, BigGAN)", "Hinge", "#bcbd22",
        hinge_d_loss, hinge_g_loss, _HINGE,
        # No equilibrium value: once G matches the data, any constant f in [-1, 1]
        # gives D the same loss (2), so nothing pins f's level.
        output="score", symbol="f(x)", equilibrium=None, critic=True,
        explain="The critic only learns from points inside its margin (real below 1, fake above -1); "
                "G raises the critic's score on its fakes, as in WGAN."),
    "bce-ns-r1": GANLoss(
        "bce-ns-r1", "BCE, non-saturating + R1 penalty", "BCE + R1", "#8c564b",
        bce_d_loss, bce_g_loss_non_saturating, _R1, penalty="r1", labels=True,
        explain="Non-saturating BCE, plus γ/2 times D's squared gradient norm on real data: D goes "
                "flat at the data, so the game settles where G matches it instead of circling."),
}
