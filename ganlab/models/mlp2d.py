"""MLP generator (z -> a point in the plane) and discriminator (a point -> one score) for the 2D lab."""
from __future__ import annotations

from torch import nn

from ganlab.models.mlp1d import Discriminator, Generator


def build(cfg) -> tuple[nn.Module, nn.Module]:
    m = cfg.model
    G = Generator(cfg.noise.dim, m.g_hidden, m.g_depth, m.g_activation, m.g_dropout, m.leaky_slope, data_dim=2)
    D = Discriminator(m.d_hidden, m.d_depth, m.d_activation, m.dropout, m.leaky_slope, data_dim=2)
    return G, D
