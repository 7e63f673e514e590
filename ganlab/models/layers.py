"""Small building blocks shared by the models."""
from __future__ import annotations

import torch
from torch import Tensor, nn

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


class Dropout(nn.Dropout):
    """nn.Dropout drawing its masks from the run's generator, once the Trainer sets one.

    nn.Dropout draws from torch's global generator, which every run in the
    process shares, so two runs training at once would disturb each other's
    masks. With the run's own generator its seed fixes its dropout too (and
    a CUDA graph replays fresh masks from it).
    """
    generator: torch.Generator | None = None

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0 or self.generator is None:
            return super().forward(x)
        # The mask is made in place in the float buffer rand returns: 0 or 1/(1-p), so one
        # multiply applies it forward and backward (a bool mask costs a cast each way).
        keep = torch.rand(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)
        return x * keep.ge_(self.p).div_(1.0 - self.p)


def use_generator(model: nn.Module, generator: torch.Generator) -> None:
    """Point every Dropout in the model at the run's generator."""
    for m in model.modules():
        if isinstance(m, Dropout):
            m.generator = generator


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
                layers.append(Dropout(dropout))
    return nn.Sequential(*layers)
