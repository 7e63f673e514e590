"""The 2D lab: learn a ring or grid of Gaussians, a line, two moons, or your own points.

Like GAN Lab, the probe shows what each network is doing in the plane: D's
value on a fixed grid behind the points, the direction G's loss pushes each
fake, and G's "manifold", a regular grid of z values mapped into the plane.
"""
from __future__ import annotations

import numpy as np
import torch

from ganlab import metrics
from ganlab.data.toy2d import Target
from ganlab.noise import sample_noise

PROBE_POINTS = 2000     # fakes measured by the meters
SHOWN_POINTS = 1000     # of those, real and fake points drawn
ENERGY_POINTS = 1000    # the energy distance's pairwise sums grow with n²
ARROWS = 100            # fakes that get a gradient arrow
SURFACE_BINS = 60       # D is drawn on a SURFACE_BINS x SURFACE_BINS grid
MANIFOLD_LINES = 11     # z-grid lines in each direction
MANIFOLD_POINTS = 41    # points along each line
PAD = 0.2               # the chart's box: the data's, widened by this share of its size on each side


class Toy2D:
    # Tiny matrices gain nothing from a second thread (see Gauss1D).
    cpu_threads = 1

    def __init__(self, cfg, device):
        self.cfg = cfg
        self.device = device
        self.target = Target(cfg.toy2d)
        # A fixed square box around the data, so the view holds still while G moves.
        low, high = self.target.bounds()
        center, half = (low + high) / 2, max(float(np.max(high - low)) / 2, 1e-3) * (1 + 2 * PAD)
        self.box = (center - half, center + half)
        self.grid_x = np.linspace(center[0] - half, center[0] + half, SURFACE_BINS)
        self.grid_y = np.linspace(center[1] - half, center[1] + half, SURFACE_BINS)
        xs, ys = np.meshgrid(self.grid_x, self.grid_y)   # row i holds y = grid_y[i], as a heatmap wants
        self.surface_x = torch.tensor(np.stack([xs.ravel(), ys.ravel()], axis=1), dtype=torch.float32,
                                      device=device)
        # The same z and real points every probe, so the pictures move only because G and D do.
        probe_gen = torch.Generator(device).manual_seed(cfg.train.seed + 1)
        self.probe_z = sample_noise(cfg.noise, PROBE_POINTS, probe_gen, device)
        self.real = self.target.sample(PROBE_POINTS, probe_gen, device).cpu().numpy()
        # Two real samples apart: what the energy distance reads when G is perfect.
        other = self.target.sample(ENERGY_POINTS, probe_gen, device).cpu().numpy()
        self.energy_floor = metrics.energy_distance(self.real[:ENERGY_POINTS], other)
        self.manifold_z = manifold_grid(cfg.noise).to(device)

    def sample_real(self, n, gen):
        return self.target.sample(n, gen, self.device), None

    def sample_labels(self, n, gen):
        return None

    def noise(self, n, gen):
        return sample_noise(self.cfg.noise, n, gen, self.device)

    def probe(self, trainer):
        fake_t = trainer.G(self.probe_z)
        fake = fake_t.float().cpu().numpy()
        surface = trainer.d_output(trainer.D(self.surface_x)).float().cpu().numpy()
        lines = trainer.G(self.manifold_z.flatten(0, 1)).float().cpu().numpy().reshape(*self.manifold_z.shape[:2], 2)
        arrow_at, arrow_grad = g_loss_gradient(trainer, fake_t[:ARROWS])
        finite = np.isfinite(fake).all(axis=1)
        low, high = self.box
        views = {
            "real": self.real[:SHOWN_POINTS], "fake": fake[:SHOWN_POINTS],
            "surface_x": self.grid_x, "surface_y": self.grid_y,
            "surface": surface.reshape(SURFACE_BINS, SURFACE_BINS),
            "arrow_at": arrow_at, "arrow_grad": arrow_grad, "manifold": lines,
            "box": (low.tolist(), high.tolist()), **trainer.loss.display(trainer.cfg.loss.real_label),
            "outside": float(np.mean(~finite | np.any((fake < low) | (fake > high), axis=1))),
            "energy_floor": self.energy_floor, "num_modes": self.num_modes,
        }
        names = ["energy"] + (["high_quality"] if self.target.num_parts else []) + \
                (["modes_covered", "modes_captured"] if self.num_modes else [])
        if not finite.all():
            return views, {name: float("nan") for name in names}
        meters = {"energy": metrics.energy_distance(fake[:ENERGY_POINTS], self.real[:ENERGY_POINTS])}
        parts = self.target.assign(fake)
        if parts is not None:
            covered, quality, _ = metrics.mode_coverage(*parts, self.target.num_parts)
            meters["high_quality"] = quality
            if self.num_modes:
                meters["modes_covered"] = float(covered)
                meters["modes_captured"] = float(metrics.modes_captured(*parts, self.target.num_parts))
        return views, meters

    @property
    def num_modes(self) -> int:
        """Modes the coverage meter counts: 0 where there is one part (a line) or none (a CSV)."""
        return self.target.num_parts if self.target.num_parts > 1 else 0

    def alarm_options(self) -> dict:
        return {"num_modes": self.num_modes} if self.num_modes else {}


def manifold_grid(noise_cfg) -> torch.Tensor:
    """z values along a regular grid, shaped [lines, points, z dim].

    The first two dimensions of z sweep the range where most z fall (U(0, 1),
    or ±2 std for N(0, I)); the others stay at the middle of that range. A 1D z
    gives a single line.
    """
    low, high = (0.0, 1.0) if noise_cfg.kind == "uniform" else (-2.0, 2.0)
    middle = (low + high) / 2
    sweep = torch.linspace(low, high, MANIFOLD_POINTS)
    if noise_cfg.dim == 1:
        return sweep.reshape(1, MANIFOLD_POINTS, 1)
    levels = torch.linspace(low, high, MANIFOLD_LINES)
    z = torch.full((2, MANIFOLD_LINES, MANIFOLD_POINTS, noise_cfg.dim), middle)
    z[0, :, :, 0], z[0, :, :, 1] = sweep[None, :], levels[:, None]   # lines along z1, one per z2 level
    z[1, :, :, 0], z[1, :, :, 1] = levels[:, None], sweep[None, :]   # and along z2, one per z1 level
    return z.reshape(2 * MANIFOLD_LINES, MANIFOLD_POINTS, noise_cfg.dim)


def g_loss_gradient(trainer, fake: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """d(G's loss)/dx at each fake point: G moves each fake along minus this.

    The gradient is taken with respect to the points only (autograd.grad on the
    input), so the models' own .grad buffers are left alone. G's loss is a mean
    over the batch; times n, each row is the gradient of that point's own term.
    """
    x = fake.detach().float().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = trainer.loss.g_loss(trainer.D(x))
        (grad,) = torch.autograd.grad(loss, x)
    return x.detach().cpu().numpy(), (grad * len(x)).cpu().numpy()
