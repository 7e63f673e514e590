"""The generator's input z, for every task."""
from __future__ import annotations

import torch
from torch import Tensor

from ganlab.config import Noise


def sample_noise(cfg: Noise, n: int, gen: torch.Generator, device) -> Tensor:
    """n draws of z from U(0, 1) or N(0, I), from the run's own generator."""
    if cfg.kind == "uniform":
        return torch.rand(n, cfg.dim, generator=gen, device=device)
    return torch.randn(n, cfg.dim, generator=gen, device=device)
