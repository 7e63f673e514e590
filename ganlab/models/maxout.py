"""Goodfellow et al. 2014's MNIST GAN (seed 004): an MLP G and a maxout D.

G: z -> 1200 -> 1200 -> 784 (ReLU, Tanh). D: Maxout(784 -> 240, k=5), Dropout,
Maxout(240 -> 240, k=5), Dropout, Linear -> 1, returning the logit.

Two of the seed's bugs are not copied: its G ends in ReLU (the images here are
in [-1, 1], so G ends in Tanh), and its nn.Dropout(0.8) drops 80% of the units
(the paper's code keeps 80% of the inputs); the drop probability here is
cfg.model.dropout. Weights keep PyTorch's default init, as the seed does.
"""
from __future__ import annotations

from torch import Tensor, nn

from ganlab.models.layers import Dropout
from ganlab.models.mlp_mnist import PIXELS, Generator


class Maxout(nn.Module):
    """Each unit computes k linear pieces and outputs the largest one.

    The max of k lines is a learned convex activation; with dropout, it was the
    paper's choice for D.
    """

    def __init__(self, in_features: int, out_features: int, k: int):
        super().__init__()
        self.out_features, self.k = out_features, k
        self.linear = nn.Linear(in_features, out_features * k)

    def forward(self, x: Tensor) -> Tensor:
        pieces = self.linear(x).unflatten(1, (self.out_features, self.k))   # (B, out, k)
        return pieces.amax(dim=2)


class Discriminator(nn.Module):
    def __init__(self, hidden: int, depth: int, k: int, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        width = PIXELS
        for _ in range(depth):
            layers += [Maxout(width, hidden, k), Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(x.flatten(1)).squeeze(1)                  # (B,) logits


def build(cfg) -> tuple[nn.Module, nn.Module]:
    m = cfg.model
    G = Generator(cfg.noise.dim, m.g_hidden, m.g_depth, m.g_activation, m.g_dropout, m.leaky_slope)
    D = Discriminator(m.d_hidden, m.d_depth, m.maxout_k, m.dropout)
    return G, D
