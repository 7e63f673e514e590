"""MLP generator and discriminator for 1D targets (seed 000 and friends).

The per-sample G and D take the data's dimension, so the 2D lab (mlp2d) builds them too.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ganlab.models.layers import mlp


class Generator(nn.Module):
    def __init__(self, noise_dim: int, hidden: int, depth: int, activations: str,
                 dropout: float = 0.0, leaky_slope: float = 0.2, data_dim: int = 1):
        super().__init__()
        self.net = mlp([noise_dim] + [hidden] * depth + [data_dim], activations, dropout, leaky_slope)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(z)                     # (B, data_dim)


class Discriminator(nn.Module):
    """Scores each sample on its own. This is what lets it see mode collapse."""

    def __init__(self, hidden: int, depth: int, activations: str, dropout: float = 0.0,
                 leaky_slope: float = 0.2, data_dim: int = 1):
        super().__init__()
        self.net = mlp([data_dim] + [hidden] * depth + [1], activations, dropout, leaky_slope)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(x).squeeze(1)          # (B,) raw scores


class MinibatchDiscriminator(nn.Module):
    """Seed 000's "data and variances" D: one score per group of samples.

    It sees a whole group at once, plus each sample's squared deviation from the
    group mean, so it judges the group's moments. That makes collapse visible
    to D (a collapsed group has zero variance) and so pushes G to spread out,
    but it also hides per-sample mistakes: matching moments is not matching
    the distribution.
    """

    def __init__(self, group: int, hidden: int, depth: int, activations: str, leaky_slope: float = 0.2):
        super().__init__()
        self.group = group
        self.net = mlp([2 * group] + [hidden] * depth + [1], activations, leaky_slope=leaky_slope)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        groups = x.reshape(-1, self.group)                          # (B/g, g)
        sq_dev = (groups - groups.mean(dim=1, keepdim=True)) ** 2
        return self.net(torch.cat([groups, sq_dev], dim=1)).squeeze(1)  # (B/g,)


def build(cfg) -> tuple[nn.Module, nn.Module]:
    m = cfg.model
    G = Generator(cfg.noise.dim, m.g_hidden, m.g_depth, m.g_activation, m.g_dropout, m.leaky_slope)
    if m.minibatch_d:
        D = MinibatchDiscriminator(m.minibatch_group, m.d_hidden, m.d_depth, m.d_activation, m.leaky_slope)
    else:
        D = Discriminator(m.d_hidden, m.d_depth, m.d_activation, m.dropout, m.leaky_slope)
    return G, D
