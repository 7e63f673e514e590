"""Model families: GANs, and the autoencoders trained beside them as baselines (seed 002).

A Run asks here which trainer a config needs and which per-step metrics it
records, so the run machinery is the same for every family.
"""
from __future__ import annotations

from ganlab.meters import CONFIDENT, DIVERSITY, FID, MODES_COVERED, RECON_MSE_TEST, meter
from ganlab.models import AUTOENCODERS

FAMILIES = {"gan": "GAN", "ae": "AE", "vae": "VAE"}   # name -> what a table calls it


def family_of(cfg) -> str:
    """'gan', or the autoencoder's model name ('ae', 'vae')."""
    return cfg.model.name if cfg.model.name in AUTOENCODERS else "gan"


def page_of(cfg) -> str:
    """The lab page a run of this config trains on: its task's, or the AE & VAE lab."""
    from ganlab.tasks import TASKS
    return TASKS[cfg.task].page if family_of(cfg) == "gan" else "autoencoders"


def make_trainer(cfg):
    if family_of(cfg) == "gan":
        from ganlab.train import Trainer
        return Trainer(cfg)
    from ganlab.autoencoders import AutoencoderTrainer
    return AutoencoderTrainer(cfg)


def metric_names(cfg) -> tuple[str, ...]:
    """The per-step columns a run of this config records."""
    if family_of(cfg) == "gan":
        from ganlab.train import METRICS
        return METRICS
    from ganlab.autoencoders import METRICS
    return METRICS[cfg.model.name]


# The comparison table's meters, each column headed by its words on MNIST (ganlab.meters).
# Every family's samples are judged by the same classifier; only the autoencoders reconstruct.
TABLE_METERS = (FID.name, MODES_COVERED.name, CONFIDENT.name, DIVERSITY.name, RECON_MSE_TEST.name)


def table_columns(task: str = "mnist") -> dict[str, str]:
    """{column header: meter} for the comparison table."""
    return {meter(name).words_for(task): name for name in TABLE_METERS}


def family_table(runs, task: str = "mnist") -> list[dict]:
    """One row per run on `task`, GANs first, then AEs, then VAEs: each run's latest meters.

    A meter the run does not have (a GAN's reconstruction error, say) is None.
    """
    order = list(FAMILIES)
    chosen = sorted((r for r in runs if r.cfg.task == task),
                    key=lambda r: (order.index(family_of(r.cfg)), r.created))
    rows = []
    for run in chosen:
        snap = run.snapshot()
        row = {"family": FAMILIES[family_of(run.cfg)], "run": run.name, "status": snap.status, "step": snap.step}
        row.update({column: snap.latest(name) if name in snap.meters else None
                    for column, name in table_columns(task).items()})
        rows.append(row)
    return rows
