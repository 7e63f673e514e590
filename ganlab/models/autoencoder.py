"""Seed 002's autoencoder and variational autoencoder for MNIST: the baselines beside the GANs.

Both take images in the MNIST task's scale, [-1, 1], and give images back in it,
so the sample grids and the classifier meters treat them exactly as a GAN's G.
Each exposes the same four calls to the trainer:

    losses(x, gen) -> {"recon": ..., "kl": ...}   batch means, for training
    reconstruct(x) -> images                      deterministic (the VAE decodes its mean code)
    code(x) -> [B, latent]                        the AE's code, the VAE's mean μ
    generate(z) -> images                         decode codes drawn from outside the data

The code size is cfg.noise.dim: the decoder reads a z like any generator does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.models.layers import mlp

IMAGE_SHAPE = (1, 28, 28)
PIXELS = 28 * 28
AE_WIDTHS = (128, 64, 12)       # seed 002: 784→128→64→12→3, and mirrored back


def to_unit(x: Tensor) -> Tensor:
    """The task's [-1, 1] pixels as [0, 1], what a sigmoid output (and BCE's target) is on."""
    return (x + 1) / 2


def from_unit(p: Tensor) -> Tensor:
    return p * 2 - 1


def kl_to_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(μ, σ²) || N(0, I)) per sample: 0.5 · Σ (μ² + σ² − log σ² − 1) over the code's dims."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)


def reconstruction_loss(kind: str, logits: Tensor, target: Tensor) -> Tensor:
    """Per sample, summed over pixels (the ELBO's scale, seed 002's size_average=False).

    logits: the decoder's pre-sigmoid output; target: pixels in [0, 1]. BCE is
    taken on the logits, which is the sigmoid-then-BCE of the seed without its
    log(0) at saturated pixels.
    """
    logits, target = logits.flatten(1), target.flatten(1)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1)
    return (torch.sigmoid(logits) - target).pow(2).sum(1)


class Autoencoder(nn.Module):
    """784→128→64→12→latent (ReLU), the mirror image back, Tanh output; MSE loss.

    A plain autoencoder only learns to squeeze and restore: nothing shapes
    where its codes lie, so a random code usually decodes to a smudge.
    """

    def __init__(self, latent: int = 3, widths: tuple[int, ...] = AE_WIDTHS):
        super().__init__()
        sizes = [PIXELS, *widths, latent]
        self.encoder = mlp(sizes, "relu")
        self.decoder = mlp(sizes[::-1], "relu")

    def code(self, x: Tensor) -> Tensor:
        return self.encoder(x.flatten(1))

    def generate(self, z: Tensor) -> Tensor:
        # Tanh matches the task's [-1, 1] pixels directly.
        return torch.tanh(self.decoder(z)).view(-1, *IMAGE_SHAPE)

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.generate(self.code(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.reconstruct(x)

    def losses(self, x: Tensor, gen: torch.Generator | None = None) -> dict[str, Tensor]:
        # The seed's nn.MSELoss(): the mean over pixels and images.
        return {"recon": F.mse_loss(self(x), x)}


class VAE(nn.Module):
    """784→hidden→(μ, log σ²), then latent→hidden→784 with a sigmoid output (Kingma & Welling).

    The encoder gives a Gaussian per image rather than one point; training
    decodes a sample from it (the reparameterization trick), and the KL term
    pulls every Gaussian towards N(0, I), so codes drawn from N(0, I) decode to digits.
    """

    def __init__(self, latent: int = 20, hidden: int = 400, recon_loss: str = "bce"):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(PIXELS, hidden), nn.ReLU())
        self.to_mu = nn.Linear(hidden, latent)
        self.to_logvar = nn.Linear(hidden, latent)
        self.decoder = mlp([latent, hidden, PIXELS], "relu")   # logits; the sigmoid comes after
        self.recon_loss = recon_loss

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x in the task's [-1, 1] -> (μ, log σ²). The VAE sees pixels in [0, 1]."""
        h = self.hidden(to_unit(x).flatten(1))
        return self.to_mu(h), self.to_logvar(h)

    @staticmethod
    def reparameterize(mu: Tensor, logvar: Tensor, gen: torch.Generator | None = None) -> Tensor:
        """z = μ + σ·ε with ε ~ N(0, I): the randomness sits in ε, so gradients reach μ and σ."""
        eps = torch.randn(mu.shape, generator=gen, device=mu.device, dtype=mu.dtype)
        return mu + eps * torch.exp(0.5 * logvar)

    def decode(self, z: Tensor) -> Tensor:
        """z -> pixel probabilities in [0, 1], shaped (B, 1, 28, 28): the sigmoid output."""
        return torch.sigmoid(self.decoder(z)).view(-1, *IMAGE_SHAPE)

    def forward(self, x: Tensor, gen: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(decoder logits, μ, log σ²) for a batch of the task's images."""
        mu, logvar = self.encode(x)
        return self.decoder(self.reparameterize(mu, logvar, gen)), mu, logvar

    def losses(self, x: Tensor, gen: torch.Generator | None = None) -> dict[str, Tensor]:
        logits, mu, logvar = self(x, gen)
        return {"recon": reconstruction_loss(self.recon_loss, logits, to_unit(x)).mean(),
                "kl": kl_to_standard_normal(mu, logvar).mean()}

    def code(self, x: Tensor) -> Tensor:
        return self.encode(x)[0]

    def generate(self, z: Tensor) -> Tensor:
        return from_unit(self.decode(z))

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.generate(self.code(x))


class Decoder(nn.Module):
    """The decoder seen as a generator, G(z, labels) -> images in [-1, 1], like every GAN's G.

    It holds the whole model (the encoder's weights come along in a copy), so
    it always decodes with the weights being trained.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.model.generate(z)


def build_ae(cfg) -> Autoencoder:
    return Autoencoder(latent=cfg.noise.dim)


def build_vae(cfg) -> VAE:
    return VAE(latent=cfg.noise.dim, hidden=cfg.model.g_hidden, recon_loss=cfg.model.recon_loss)
