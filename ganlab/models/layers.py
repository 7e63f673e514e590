"""Small building blocks shared by the models."""
from __future__ import annotations

from torch import nn

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "selu": nn.SELU,
    "gelu": nn.GELU,
}


def activation(name: str, leaky_slope: float = 0.2) -> nn.Module:
    # GAN code mostly uses slope 0.2 (DCGAN); PyTorch's default, which seed 003 keeps, is 0.01.
    if name == "leaky_relu":
        return nn.LeakyReLU(leaky_slope)
    return _ACTIVATIONS[name]()


def mlp(sizes: list[int], activations: str, dropout: float = 0.0,
        leaky_slope: float = 0.2) -> nn.Sequential:
    """Linear layers of the given sizes, with an activation after every hidden one.

    `activations` is one name for all hidden layers, or a comma-separated list
    with one per hidden layer. The output layer has no activation: callers add
    one (Tanh for images) or keep raw scores (logits, critic values).
    """
    n_hidden = len(sizes) - 2
    names = [a.strip() for a in activations.split(",")]
    if len(names) == 1:
        names = names * n_hidden
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < n_hidden:
            layers.append(activation(names[i], leaky_slope))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)
