"""Exploring a trained generator: walks between two z's, and digits on request.

Both functions put G in eval mode (no dropout; BatchNorm uses its running
statistics) and restore its previous mode afterwards. Call them on a G that
is not training at the same moment, such as a paused or finished run's.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ganlab.config import Noise
from ganlab.noise import sample_noise


@contextmanager
def evaluating(model: nn.Module):
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def slerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation: along the great circle from z0 to z1, t in [0, 1].

    Why not a straight line: a normal z in d dimensions lies near the sphere of
    radius sqrt(d), and the midpoint of two such points lies well inside it, at
    about sqrt(d / 2), where G saw no training inputs, so the middle frames fade.
    The arc keeps the norm typical (White 2016, "Sampling Generative Networks").
    """
    t = t[:, None]
    cos = torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1, 1)
    omega = torch.acos(cos)
    if omega.abs() < 1e-4:                       # nearly parallel: the arc is a line
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def interpolate(G: nn.Module, z0: Tensor, z1: Tensor, steps: int, label: int | None = None,
                spherical: bool = True) -> Tensor:
    """G's images along a path from z0 to z1 (each of shape [noise_dim]): [steps, 1, 28, 28].

    spherical=True (slerp) suits normal noise; use a straight line
    (spherical=False) for uniform noise, whose box has no such shell.
    `label` fixes the digit for the conditional GAN.
    """
    t = torch.linspace(0, 1, steps, device=z0.device)
    z = slerp(z0, z1, t) if spherical else (1 - t[:, None]) * z0 + t[:, None] * z1
    labels = None if label is None else torch.full((steps,), label, dtype=torch.long, device=z0.device)
    with evaluating(G):
        return G(z, labels)


def seeded_z(noise: Noise, seed: int, n: int, device) -> Tensor:
    """n draws of z from the run's noise distribution that `seed` fixes. They are drawn
    on the CPU, so a seed shows the same z whichever device G is on."""
    return sample_noise(noise, n, torch.Generator().manual_seed(seed), "cpu").to(device)


def walk(G: nn.Module, noise: Noise, seed_a: int, seed_b: int, steps: int = 10,
         label: int | None = None) -> Tensor:
    """G's images from the z that seed_a fixes to the z that seed_b fixes: [steps, 1, 28, 28]."""
    device = next(G.parameters()).device
    z0, z1 = seeded_z(noise, seed_a, 1, device)[0], seeded_z(noise, seed_b, 1, device)[0]
    return interpolate(G, z0, z1, steps, label, spherical=noise.kind == "normal")


def generate_digit(G: nn.Module, digit: int, n: int, noise: Noise, seed: int) -> Tensor:
    """n images of one digit from a conditional G, with z that `seed` fixes."""
    device = next(G.parameters()).device
    labels = torch.full((n,), digit, dtype=torch.long, device=device)
    with evaluating(G):
        return G(seeded_z(noise, seed, n, device), labels)
