"""Tasks: what is being learned. A task supplies real batches and noise to the
Trainer, and turns the current models into views (charts' data) and meters.

Adding a task (2D toys, say) is one file with a class like Gauss1D and one line here.
"""
from __future__ import annotations


def make_task(cfg, device):
    if cfg.task == "gauss1d":
        from ganlab.tasks.gauss1d import Gauss1D
        return Gauss1D(cfg, device)
    if cfg.task == "toy2d":
        from ganlab.tasks.toy2d import Toy2D
        return Toy2D(cfg, device)
    if cfg.task == "mnist":
        from ganlab.tasks.mnist import Mnist
        return Mnist(cfg, device)
    raise ValueError(f"unknown task {cfg.task!r}")
