"""Training an autoencoder or a VAE on MNIST, driven by a Run exactly like a GAN's Trainer.

One network, one optimizer (cfg.opt_g), one loss: a single update per step,
whichever step a page asks for (Step D, Step G and Step both all make one).
Data, the held-out digits, the fixed z of the sample grid and the classifier
meters all come from the MNIST task, so the numbers compare with the GANs':
the sample grid and the Fréchet distance judge the decoder's answer to the
same z a GAN's G gets.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab import metrics
from ganlab.images import make_grid_image
from ganlab.models import AUTOENCODERS
from ganlab.models.autoencoder import Decoder, kl_to_standard_normal
from ganlab.train import make_optimizer, prepare, read_back, seeded

# Per-step metrics, by model: the reconstruction term and, for the VAE, the KL term and their sum.
METRICS = {"ae": ("recon",), "vae": ("recon", "kl", "loss")}
GRID_COLS = 8            # the sample grid: 8 x 8 decodes of the task's fixed z, like a GAN's
N_DIGITS = 10
RECON_PAIRS = 2          # the reconstruction grid: this many (inputs row, outputs row) pairs, digits 0-9
LATENT_POINTS = 1000     # held-out digits drawn in the latent scatter
PRIOR_POINTS = 64        # random codes drawn there too: the sample grid's z


class AutoencoderTrainer:
    """The Trainer's interface (step, train_step, flush, probe, G, device, cfg, task) for an AE or a VAE."""

    def __init__(self, cfg, task=None):
        self.cfg = cfg
        self.family = cfg.model.name            # "ae" or "vae"
        self.metrics = METRICS[self.family]
        self.device, self.gen, self.task = prepare(cfg, task)
        with seeded(cfg.train.seed):
            self.model = AUTOENCODERS[cfg.model.name].build(cfg).to(self.device)
        self.G = Decoder(self.model)            # what a page explores, like a GAN's generator
        self.opt = make_optimizer(self.model.parameters(), cfg.opt_g, self.device, cfg.train.fast)
        self.step = 0
        self._rows: list[Tensor] = []
        self._recon_idx = _examples_per_digit(self.task.test_labels, RECON_PAIRS)

    # -- one step --------------------------------------------------------------------------
    def train_step(self, what: str = "both") -> None:
        if what not in ("both", "d", "g"):
            raise ValueError("what must be 'both', 'd' or 'g'")
        self.model.train()
        x, _ = self.task.sample_real(self.cfg.train.batch_size, self.gen)
        terms = self.model.losses(x, self.gen)
        loss = sum(terms.values())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        values = {**terms, "loss": loss}
        # Stays on the device: flush() reads every step's row back at once.
        self._rows.append(torch.stack([values[name].detach() for name in self.metrics]))

    def give_back(self) -> None:
        """The run has ended: drop the task's digits; the model stays for Save and Explore."""
        self.task, self._rows = None, []
        self.opt.zero_grad(set_to_none=True)

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-step metrics since the last flush, as (steps, values[steps, metrics]); raises DivergedError."""
        return read_back(self._rows, self.step, self.metrics)

    # -- what the page shows -------------------------------------------------------------------
    @torch.no_grad()
    def probe(self) -> tuple[dict, dict]:
        """Sample and reconstruction grids, the latent scatter, and meters on held-out digits."""
        self.model.eval()
        try:
            return self._probe()
        finally:
            self.model.train()

    def _probe(self) -> tuple[dict, dict]:
        task, model = self.task, self.model
        x, labels = task.test_images, task.test_labels
        recon = model.reconstruct(x)
        shown = self._recon_idx
        rows = []
        for pair in shown.split(N_DIGITS):      # inputs above, their reconstructions below
            rows += [x[pair], recon[pair]]
        views = {
            "family": self.family,
            "grid": make_grid_image(self.G(task.grid_z), nrow=GRID_COLS),
            "recon_grid": make_grid_image(torch.cat(rows), nrow=N_DIGITS),
            "latent": latent_view(model.code(x[:LATENT_POINTS]).float().cpu().numpy(),
                                  labels[:LATENT_POINTS].cpu().numpy(),
                                  task.grid_z[:PRIOR_POINTS].float().cpu().numpy()),
        }
        meters = {"recon_mse_test": F.mse_loss(recon, x).item()}   # per pixel, in [-1, 1]: one ruler for both
        if self.family == "vae":
            mu, logvar = model.encode(x)
            meters["kl_test"] = kl_to_standard_normal(mu, logvar).mean().item()
        if task.meters is not None:
            # The GANs' meters, on the decoder's answer to the task's fixed z: prior samples for
            # the VAE, random codes for the AE.
            meters.update(task.meters(self.G(task.meter_z)))
            if len(x) == task.meters.n:
                # The same ruler on reconstructions: how good the decoder can be, given good codes.
                feats = task.meters.classifier.features(recon).double().numpy()
                meters["fid_recon"] = metrics.frechet_distance_from_stats(*metrics.feature_stats(feats),
                                                                          *task.meters.real_stats)
        return views, meters


def _examples_per_digit(labels: Tensor, per_digit: int) -> Tensor:
    """Indices of held-out digits for the reconstruction grid: per_digit runs of 0, 1, ..., 9."""
    idx = []
    for k in range(per_digit):
        for d in range(N_DIGITS):
            hits = (labels == d).nonzero().flatten()
            idx.append(int(hits[k % len(hits)]) if len(hits) else d % len(labels))
    return torch.tensor(idx, device=labels.device)


def pca_2d(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(mean, the 2 principal directions [2, D], the share of variance they explain).

    An SVD's signs are arbitrary; each direction is turned so its largest
    component is positive, so the picture does not flip between probes.
    """
    mean = points.mean(axis=0)
    _, s, vt = np.linalg.svd(points - mean, full_matrices=False)
    axes = vt[:2]
    axes = axes * np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])[:, None]
    explained = float((s[:2] ** 2).sum() / max((s ** 2).sum(), 1e-12))
    return mean, axes, explained


def latent_view(codes: np.ndarray, digits: np.ndarray, prior: np.ndarray) -> dict:
    """The codes to draw, coloured by digit: as they are in 2 or 3 dims, else on their PCA plane.

    prior: random codes (the sample grid's z), put through the same projection,
    to show where the decoder is asked to draw from.
    """
    dim = codes.shape[1]
    if dim <= 3:
        pad = max(0, 2 - dim)                   # a 1-D code is drawn on a line
        return {"points": np.pad(codes, ((0, 0), (0, pad))), "digits": digits,
                "prior": np.pad(prior, ((0, 0), (0, pad))),
                "axes": tuple(f"code {i + 1}" for i in range(max(dim, 2))), "explained": 1.0}
    mean, axes, explained = pca_2d(codes)
    return {"points": (codes - mean) @ axes.T, "digits": digits, "prior": (prior - mean) @ axes.T,
            "axes": ("PC 1", "PC 2"), "explained": explained}
