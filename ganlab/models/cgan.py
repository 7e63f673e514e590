"""Conditional GAN for MNIST (seed 001, after "GANs in Action"): ask for a digit.

Both networks see the digit's label:
- G multiplies z by a learned embedding of the label (one vector of z's size
  per digit), so each digit rescales the noise in its own way;
- D embeds the label to an image's size (784 values) and concatenates it with
  the flattened image, so it judges the (image, label) pair: a good 3 labelled
  7 is a fake.
The bodies are MLPs shaped by cfg.model, like the seed 003 model.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ganlab.models.layers import mlp
from ganlab.models.mlp_mnist import IMAGE_SHAPE, PIXELS

N_CLASSES = 10


def _need(labels: Tensor | None) -> Tensor:
    if labels is None:
        raise ValueError("the conditional GAN needs a digit label (0-9) for every sample")
    return labels


class Generator(nn.Module):
    def __init__(self, noise_dim: int, hidden: int, depth: int, activations: str,
                 dropout: float = 0.0, leaky_slope: float = 0.2):
        super().__init__()
        self.embed = nn.Embedding(N_CLASSES, noise_dim)
        self.net = mlp([noise_dim] + [hidden] * depth + [PIXELS], activations, dropout, leaky_slope)

    def forward(self, z: Tensor, labels: Tensor | None) -> Tensor:
        h = z * self.embed(_need(labels))
        return torch.tanh(self.net(h)).view(-1, *IMAGE_SHAPE)   # (B, 1, 28, 28)


class Discriminator(nn.Module):
    def __init__(self, hidden: int, depth: int, activations: str, dropout: float = 0.0,
                 leaky_slope: float = 0.2):
        super().__init__()
        self.embed = nn.Embedding(N_CLASSES, PIXELS)
        self.net = mlp([2 * PIXELS] + [hidden] * depth + [1], activations, dropout, leaky_slope)

    def forward(self, x: Tensor, labels: Tensor | None) -> Tensor:
        pair = torch.cat([x.flatten(1), self.embed(_need(labels))], dim=1)
        return self.net(pair).squeeze(1)                         # (B,) logits


def build(cfg) -> tuple[nn.Module, nn.Module]:
    m = cfg.model
    G = Generator(cfg.noise.dim, m.g_hidden, m.g_depth, m.g_activation, m.g_dropout, m.leaky_slope)
    D = Discriminator(m.d_hidden, m.d_depth, m.d_activation, m.dropout, m.leaky_slope)
    return G, D
