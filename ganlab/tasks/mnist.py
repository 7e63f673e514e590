"""The MNIST lab: learn to draw handwritten digits.

The whole dataset is loaded once, scaled to [-1, 1] and kept on the training
device as one tensor; a batch is a random index into it. That avoids a
DataLoader's per-batch Python work and host-to-device copies, which cost more
than the training step itself for these small models.
"""
from __future__ import annotations

import os

import torch
from torch import Tensor

from ganlab import stopping
from ganlab.classifier import HOLDOUT_FRACTION, REFERENCE_N, MetersWhenReady, unmeasured
from ganlab.data.mnist import load_mnist, to_training_tensor
from ganlab.images import make_grid_image
from ganlab.models import is_conditional
from ganlab.noise import sample_noise

HELD_OUT = 1000     # images kept out of training, only for probing D (seed 003 probes on the test set)
SPLIT_SEED = 0      # the same held-out images in every run, so runs' meters compare
GRID_COLS = 8
N_DIGITS = 10


def split_held_out(n: int) -> tuple[Tensor, Tensor]:
    """Indices (held out, to train on) of n digits: HELD_OUT of them (a tenth at most), the
    same ones in every run."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_held = min(HELD_OUT, n // 10)
    return order[:n_held], order[n_held:]


class Mnist:
    # Half the cores: OpenMP workers spin while they wait, and when another run (or
    # process) holds a core, two of them slowed an MLP step 20-fold here. Half
    # leaves room for a second run and the page.
    cpu_threads = max(1, (os.cpu_count() or 2) // 2)
    # A snapshot at least this often (seconds of wall time) besides every snapshot_every steps:
    # a slow model's grid still moves every few seconds (ganlab.worker.Worker).
    snapshot_seconds = 3.0

    def __init__(self, cfg, device):
        self.cfg = cfg
        self.device = device
        self.conditional = is_conditional(cfg.model.name)
        images, labels = load_mnist(cfg.train.data_dir or None)
        stopping.check("stopped while the data was loaded")
        held, train = split_held_out(len(images))
        self.images = to_training_tensor(images[train], device)
        self.labels = labels[train].to(device)
        self.test_images = to_training_tensor(images[held], device)
        self.test_labels = labels[held].to(device)
        # Probes draw from their own generator, so watching a run never changes its course.
        self.probe_gen = torch.Generator(device).manual_seed(cfg.train.seed + 1)
        # The grid shows the same z at every probe, so the pictures change only because G does.
        if self.conditional:
            # One row per digit 0-9; one z per column, so a column keeps its "handwriting".
            self.grid_z = self.noise(GRID_COLS, self.probe_gen).repeat(N_DIGITS, 1)
            self.grid_labels = torch.arange(N_DIGITS, device=device).repeat_interleave(GRID_COLS)
        else:
            self.grid_z = self.noise(GRID_COLS * GRID_COLS, self.probe_gen)
            self.grid_labels = None
        # The quality meters judge a fixed batch of z (and, for the CGAN, 100 of each digit)
        # with a classifier trained once on this data and cached: see ganlab/classifier.py. It
        # loads or trains on a thread of its own; until it is ready the meters read NaN.
        # A fixed-N Fréchet distance needs REFERENCE_N held-out digits; a tiny folder goes without.
        enough = len(images) * HOLDOUT_FRACTION >= REFERENCE_N
        self.meters = MetersWhenReady(cfg.train.data_dir or None, device) if enough else None
        self.meter_z = self.noise(REFERENCE_N, self.probe_gen)
        self.meter_labels = (torch.arange(REFERENCE_N, device=device) % N_DIGITS) if self.conditional else None

    def sample_real(self, n, gen):
        idx = torch.randint(len(self.images), (n,), generator=gen, device=self.device)
        return self.images[idx], (self.labels[idx] if self.conditional else None)

    def sample_labels(self, n, gen):
        if not self.conditional:
            return None
        return torch.randint(N_DIGITS, (n,), generator=gen, device=self.device)

    def noise(self, n, gen):
        return sample_noise(self.cfg.noise, n, gen, self.device)

    def probe(self, trainer):
        """The sample grid, and D's mean output on held-out digits and on fresh fakes.

        Like seed 003's p_real and p_fake: with BCE both head towards 0.5 as G
        improves. With a Wasserstein critic they are raw critic values, and
        their gap tracks the Wasserstein distance between real and fake digits.
        """
        G, D = trainer.G, trainer.D
        grid = make_grid_image(G(self.grid_z, self.grid_labels), nrow=GRID_COLS)
        labels = self.test_labels if self.conditional else None
        fake = G(self.noise(len(self.test_images), self.probe_gen), labels)
        d_real = trainer.d_output(D(self.test_images, labels)).mean()
        d_fake = trainer.d_output(D(fake, labels)).mean()
        d_real, d_fake = torch.stack([d_real, d_fake]).tolist()    # one sync with the device
        views = {"grid": grid, **trainer.loss.display(trainer.cfg.loss.real_label)}
        quality = {}
        if self.meters is not None:
            if trainer.step >= trainer.cfg.train.steps:
                self.meters.wait()
            # Until the classifier is ready the meters are NaN, and G need not draw their 1,000 samples.
            ready = self.meters.meters is not None
            quality = (self.meters(G(self.meter_z, self.meter_labels), self.meter_labels) if ready
                       else unmeasured(self.conditional))
            views["classifier"] = self.meters.job.state()   # for the page's caption while it is not ready
        return views, {"d_real_test": d_real, "d_fake_test": d_fake, **quality}

    def alarm_options(self) -> dict:
        from ganlab.alarms import MNIST_MIN_DIGITS
        return {"num_modes": N_DIGITS, "min_modes": MNIST_MIN_DIGITS, "mode_name": "digit"}
