"""Small building blocks shared by the models."""
from __future__ import annotations

from torch import nn

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "selu": nn.SELU,
    "gelu": nn.GELU,
}


def activation(name: str) -> nn.Module:
    return _ACTIVATIONS[name]()


def mlp(sizes: list[int], activations: str, dropout: float = 0.0) -> nn.Sequential:
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
            layers.append(activation(names[i]))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)
