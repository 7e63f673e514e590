"""What each number a run records means: its words, which way is better, its best value, its format.

A run records two kinds of columns: per-step metrics from the training step
(loss_d, d_fake, g_grad_norm, ...) and per-probe meters from its task (w1, fid,
modes_covered, ...). Both are described here, once, by a MeterSpec, and the
charts, the tables of runs, the families table and the alarms read their words,
directions and formats from the registry instead of keeping tables of their own.

A column the registry does not know (a run saved by another version, say) still
gets words: its name with spaces (see meter()).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MeterSpec:
    name: str
    words: str                          # what pickers, legends and tables call it
    higher_is_better: bool | None       # None: neither way is better (a loss, a mean, D's output)
    floor: float | None = None          # the best value it can take (0 for a distance); None: no such value
    fmt: str = "{:.4g}"                 # how a table shows one value
    summary: bool = False               # its latest value goes in the table of runs
    quality: bool = False               # a task's overall distance to the data: the oscillation alarm
                                        # looks for its progress (one per task)
    task_words: tuple[tuple[str, str], ...] = ()   # (task, words) where a task says it better
    short: str = ""                     # a narrow column's heading (the table of runs); "": its words

    @property
    def heading(self) -> str:
        """What a narrow column of it is headed: its short words, else its words."""
        return self.short or self.words

    def words_for(self, task: str) -> str:
        """Its words on one task's pages: "digits covered (of 10)" rather than "modes covered" on MNIST."""
        return dict(self.task_words).get(task, self.words)

    @property
    def better(self) -> str:
        """"lower is better", "higher is better", or "" for a column with no better way."""
        return {True: "higher is better", False: "lower is better", None: ""}[self.higher_is_better]


METERS: dict[str, MeterSpec] = {}


def register_meter(spec: MeterSpec) -> MeterSpec:
    if spec.name in METERS:
        raise ValueError(f"a meter named {spec.name!r} is registered already")
    METERS[spec.name] = spec
    return spec


def meter(name: str) -> MeterSpec:
    """The column's spec; for a name the registry does not know, one with its name as words."""
    return METERS.get(name) or MeterSpec(name, name.replace("_", " "), None)


def words(name: str) -> str:
    return meter(name).words


def summary_meters() -> tuple[str, ...]:
    """The meters whose latest values the table of runs shows, in registry order. Asked of the
    registry each time, so a meter registered later is shown too."""
    return tuple(name for name, s in METERS.items() if s.summary)


def quality_meters() -> tuple[str, ...]:
    return tuple(name for name, s in METERS.items() if s.quality)


# -- per-step metrics: the training step's (ganlab.train, ganlab.autoencoders) ---------------------
for _spec in (
    MeterSpec("loss_d", "D loss", None),
    MeterSpec("loss_g", "G loss", None),
    MeterSpec("d_real", "mean D(real)", None),
    MeterSpec("d_fake", "mean D(fake)", None),
    MeterSpec("g_grad_norm", "norm of the gradient reaching G", None),
    MeterSpec("gp_grad_norm", "D's gradient norm under its penalty (GP, R1)", None),
    MeterSpec("recon", "reconstruction loss", False),
    MeterSpec("kl", "KL term", None),
    MeterSpec("loss", "total loss", False),
):
    register_meter(_spec)

# -- per-probe meters: the tasks' (ganlab.tasks, ganlab.classifier, ganlab.autoencoders) -----------
# The summary ones come first, in the order the table of runs shows them. Code that looks a meter
# up ("is there a FID in this snapshot?") names it by its spec here: MODES_COVERED.name. Its words
# are read with meter(name), which a later registration (a test's, say) may change.
W1 = register_meter(MeterSpec("w1", "W1 to the target", False, 0.0, summary=True, quality=True, short="W1"))
KS = register_meter(MeterSpec("ks", "KS statistic", False, 0.0, summary=True, short="KS"))
FID = register_meter(MeterSpec("fid", "Fréchet distance", False, 0.0, summary=True, quality=True,
                                 short="Fréchet"))
MODES_COVERED = register_meter(MeterSpec("modes_covered", "modes covered", True, fmt="{:.0f}", summary=True,
                                         task_words=(("mnist", "digits covered (of 10)"),), short="modes"))
FAKE_MEAN = register_meter(MeterSpec("fake_mean", "mean of the fakes", None))
FAKE_STD = register_meter(MeterSpec("fake_std", "std of the fakes", None))
MODES_CAPTURED = register_meter(MeterSpec("modes_captured", "modes captured (PacGAN's rule)", True, fmt="{:.0f}"))
CONFIDENT = register_meter(MeterSpec("confident", "confident share (clearly a digit)", True, 1.0, fmt="{:.0%}"))
ENERGY = register_meter(MeterSpec("energy", "energy distance", False, 0.0, quality=True))
HIGH_QUALITY = register_meter(MeterSpec("high_quality", "high-quality share", True, 1.0, fmt="{:.0%}"))
KL_UNIFORM = register_meter(MeterSpec("kl_uniform", "KL of the digit histogram to uniform", False, 0.0))
DIVERSITY = register_meter(MeterSpec("diversity", "sample diversity", True))
LABEL_ACCURACY = register_meter(MeterSpec("label_accuracy", "CGAN: asked-for digit drawn", True, 1.0, fmt="{:.0%}"))
D_REAL_TEST = register_meter(MeterSpec("d_real_test", "D on held-out real", None))
D_FAKE_TEST = register_meter(MeterSpec("d_fake_test", "D on fakes", None))
RECON_MSE_TEST = register_meter(MeterSpec("recon_mse_test", "reconstruction MSE (held out)", False, 0.0))
FID_RECON = register_meter(MeterSpec("fid_recon", "Fréchet distance of reconstructions", False, 0.0))
del _spec
