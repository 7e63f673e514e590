"""1D target distributions (the generator's noise is in ganlab.noise).

Samples are drawn with torch on the training device from the run's own
torch.Generator, so a run's randomness is its own even with other runs
training in other threads. The numpy pdf/cdf/quantiles are for the charts
and the quality meters.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from ganlab.config import Target1D


class Target:
    def __init__(self, cfg: Target1D):
        self.cfg = cfg
        if cfg.kind == "gaussian":
            self.means, self.stds, self.weights = np.array([cfg.mean]), np.array([cfg.std]), np.array([1.0])
        elif cfg.kind == "mixture":
            self.means, self.stds, self.weights = (np.asarray(v, dtype=np.float64)
                                                   for v in (cfg.means, cfg.stds, cfg.weights))
        else:
            self.means = self.stds = self.weights = np.array([])

    @property
    def modes(self) -> np.ndarray:
        return self.means if self.cfg.kind != "uniform" else np.array([(self.cfg.low + self.cfg.high) / 2])

    def sample(self, n: int, gen: torch.Generator, device) -> Tensor:
        c = self.cfg
        if c.kind == "uniform":
            return c.low + (c.high - c.low) * torch.rand(n, 1, generator=gen, device=device)
        eps = torch.randn(n, 1, generator=gen, device=device)
        if c.kind == "gaussian":
            return c.mean + c.std * eps
        weights = torch.tensor(self.weights, dtype=torch.float32, device=device)
        comp = torch.multinomial(weights, n, replacement=True, generator=gen)
        means = torch.tensor(self.means, dtype=torch.float32, device=device)[comp]
        stds = torch.tensor(self.stds, dtype=torch.float32, device=device)[comp]
        return (means + stds * eps.squeeze(1)).unsqueeze(1)

    def pdf(self, x: np.ndarray) -> np.ndarray:
        if self.cfg.kind == "uniform":
            return stats.uniform.pdf(x, self.cfg.low, self.cfg.high - self.cfg.low)
        return sum(w * stats.norm.pdf(x, m, s) for m, s, w in zip(self.means, self.stds, self.weights))

    def cdf(self, x: np.ndarray) -> np.ndarray:
        if self.cfg.kind == "uniform":
            return stats.uniform.cdf(x, self.cfg.low, self.cfg.high - self.cfg.low)
        return sum(w * stats.norm.cdf(x, m, s) for m, s, w in zip(self.means, self.stds, self.weights))

    def quantiles(self, m: int) -> np.ndarray:
        """m evenly spaced quantiles, (i + 0.5) / m: a noise-free stand-in for the target."""
        p = (np.arange(m) + 0.5) / m
        if self.cfg.kind == "uniform":
            return self.cfg.low + p * (self.cfg.high - self.cfg.low)
        if self.cfg.kind == "gaussian":
            return stats.norm.ppf(p, self.cfg.mean, self.cfg.std)
        lo, hi = self.support(1e-9)
        grid = np.linspace(lo, hi, 20_001)
        return np.interp(p, self.cdf(grid), grid)

    def support(self, tail: float = 5e-4) -> tuple[float, float]:
        """An interval holding all but `tail` of the mass on each side."""
        if self.cfg.kind == "uniform":
            return self.cfg.low, self.cfg.high
        z = stats.norm.isf(tail)
        return float(np.min(self.means - z * self.stds)), float(np.max(self.means + z * self.stds))
