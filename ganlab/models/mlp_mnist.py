"""Seed 003's MLP GAN for MNIST (yunjey's PyTorch tutorial).

G: z -> 256 -> 256 -> 784 (ReLU, Dropout, Tanh). D: 784 -> 256 -> 256 -> 1
(LeakyReLU, Dropout). The seed's D ends in a sigmoid; here D returns the logit
and the losses apply the sigmoid, which is the numerically safe way round.
Widths, depths, activations and dropout come from cfg.model.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ganlab.models.layers import mlp

IMAGE_SHAPE = (1, 28, 28)
PIXELS = 28 * 28


class Generator(nn.Module):
    def __init__(self, noise_dim: int, hidden: int, depth: int, activations: str,
                 dropout: float = 0.0, leaky_slope: float = 0.2):
        super().__init__()
        self.net = mlp([noise_dim] + [hidden] * depth + [PIXELS], activations, dropout, leaky_slope)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        # Tanh matches the data, which is scaled to [-1, 1].
        return torch.tanh(self.net(z)).view(-1, *IMAGE_SHAPE)     # (B, 1, 28, 28)


class Discriminator(nn.Module):
    def __init__(self, hidden: int, depth: int, activations: str, dropout: float = 0.0,
                 leaky_slope: float = 0.2):
        super().__init__()
        self.net = mlp([PIXELS] + [hidden] * depth + [1], activations, dropout, leaky_slope)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(x.flatten(1)).squeeze(1)                  # (B,) logits


def seed003_init(model: nn.Module) -> None:
    """The seed's init: Xavier-normal weights, biases drawn from U(0.1, 0.2).

    Xavier keeps the activations' scale steady from layer to layer; the small
    positive biases start every ReLU switched on, so no unit begins dead.
    """
    for p in model.parameters():
        if p.dim() > 1:
            nn.init.xavier_normal_(p)
        else:
            nn.init.uniform_(p, 0.1, 0.2)


def build(cfg) -> tuple[nn.Module, nn.Module]:
    m = cfg.model
    G = Generator(cfg.noise.dim, m.g_hidden, m.g_depth, m.g_activation, m.g_dropout, m.leaky_slope)
    D = Discriminator(m.d_hidden, m.d_depth, m.d_activation, m.dropout, m.leaky_slope)
    seed003_init(G)
    seed003_init(D)
    return G, D
