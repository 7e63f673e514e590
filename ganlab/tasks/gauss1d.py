"""The 1D lab: learn a Gaussian, a mixture or a uniform distribution."""
from __future__ import annotations

import numpy as np
import torch

from ganlab import metrics
from ganlab.data.toy1d import Target
from ganlab.noise import sample_noise

PROBE_SAMPLES = 10_000   # the meters' noise floor at 10k: W1 ~0.02, KS ~0.01
GRID_BINS = 120


class Gauss1D:
    # Tiny matrices gain nothing from a second thread, and spinning OpenMP
    # workers slow every other run (and the page) on a small machine.
    cpu_threads = 1

    def __init__(self, cfg, device):
        self.cfg = cfg
        self.device = device
        self.target = Target(cfg.target)
        # A fixed grid, wide enough to show both the target and where G starts (near 0).
        lo, hi = self.target.support()
        lo, hi = min(lo, -1.0), max(hi, 1.0)
        pad = 0.05 * (hi - lo)
        self.edges = np.linspace(lo - pad, hi + pad, GRID_BINS + 1)
        self.centers = 0.5 * (self.edges[1:] + self.edges[:-1])
        self.p_data = self.target.pdf(self.centers)
        self.target_quantiles = self.target.quantiles(PROBE_SAMPLES)
        # The same z every probe, so the density moves only because G does.
        probe_gen = torch.Generator(device).manual_seed(cfg.train.seed + 1)
        self.probe_z = sample_noise(cfg.noise, PROBE_SAMPLES, probe_gen, device)
        self.probe_x = torch.tensor(self.centers, dtype=torch.float32, device=device).unsqueeze(1)

    def sample_real(self, n, gen):
        return self.target.sample(n, gen, self.device), None

    def sample_labels(self, n, gen):
        return None

    def noise(self, n, gen):
        return sample_noise(self.cfg.noise, n, gen, self.device)

    def probe(self, trainer):
        fake = trainer.G(self.probe_z).squeeze(1).float().cpu().numpy()
        counts, _ = np.histogram(fake, bins=self.edges)
        width = self.edges[1] - self.edges[0]
        p_g = counts / (len(fake) * width)
        if self.cfg.model.minibatch_d:
            d_curve = None  # a batch-level D gives no score for a single x
        else:
            d_curve = trainer.d_output(trainer.D(self.probe_x)).float().cpu().numpy()
        finite = np.isfinite(fake)
        views = {
            "x": self.centers, "p_data": self.p_data, "p_g": p_g, "d_curve": d_curve,
            "d_star": trainer.loss.real_target(trainer.cfg.loss.real_label)
                      * metrics.optimal_discriminator(self.p_data, p_g),
            "outside": float(np.mean((fake < self.edges[0]) | (fake > self.edges[-1]))),
            **trainer.loss.display(trainer.cfg.loss.real_label),   # how to draw D's output: its name, kind and equilibrium
        }
        if not finite.all():
            return views, {name: float("nan") for name in ("w1", "ks", "fake_mean", "fake_std")}
        meters = {
            "w1": metrics.w1_to_target(fake, self.target_quantiles),
            "ks": metrics.ks_to_target(fake, self.target.cdf),
            "fake_mean": float(fake.mean()),
            "fake_std": float(fake.std()),
        }
        if self.n_modes > 1:
            shares, covered = metrics.mixture_modes(fake, self.target.means, self.target.stds,
                                                    self.target.weights)
            meters["modes_covered"] = float(covered)
            meters.update({f"mode_share_{i}": float(v) for i, v in enumerate(shares)})
        return views, meters

    @property
    def n_modes(self) -> int:
        return len(self.target.means) if self.cfg.target.kind == "mixture" else 1

    def alarm_options(self) -> dict:
        return {"num_modes": self.n_modes} if self.n_modes > 1 else {}
