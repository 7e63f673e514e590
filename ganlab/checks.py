"""Do the presets keep their promises? Train each one on fresh seeds and compare.

A preset's note says what its run reaches (see presets.Promise). Those words
must stay true on seeds nobody tuned on, so this trains the preset through an
ordinary Run, exactly as the page would, once per seed, and sets each promise
beside the distribution it measured: how many seeds kept it, the median and
the worst. Seeds from FIRST_SEED up are kept for checking; tune on lower ones.

    python -m ganlab check-presets --preset gauss1d --seeds 10
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from ganlab.presets import Preset, Promise

FIRST_SEED = 100   # seeds 0-99 are for tuning presets; promises are checked from here up


@dataclass
class SeedResult:
    seed: int
    status: str
    seconds: float
    meters: dict[str, float] = field(default_factory=dict)   # each meter's value at the run's last probe
    message: str = ""


def train_once(preset: Preset, seed: int, steps: int | None = None, device: str | None = None) -> SeedResult:
    """Train the preset on one seed through a Run; its final meters (NaN where a run failed)."""
    from ganlab.runs import run_to_end
    train = {"seed": seed}
    if steps is not None:
        train["steps"] = steps
    if device is not None:
        train["device"] = device
    cfg = preset.config.replace(train=train)
    start = time.perf_counter()
    snap = run_to_end(cfg, name=f"{preset.slug} seed {seed}", poll=1.0).snapshot()
    meters = {name: snap.latest(name) for name in snap.meters if name != "step"}
    return SeedResult(seed, snap.status, time.perf_counter() - start,
                      {k: float("nan") if v is None else float(v) for k, v in meters.items()}, snap.message)


@dataclass
class Verdict:
    promise: Promise
    kept: int
    runs: int
    median: float
    worst: float

    def __str__(self) -> str:
        return (f"{self.promise}: kept on {self.kept} of {self.runs} seeds; "
                f"median {self.median:.4g}, worst {self.worst:.4g}")


def judge(promise: Promise, results: list[SeedResult]) -> Verdict:
    values = np.array([r.meters.get(promise.meter, np.nan) for r in results], dtype=np.float64)
    # A failed run (NaN) is the worst case whichever way the meter points.
    worst_fill = -np.inf if promise.higher_is_better else np.inf
    filled = np.where(np.isnan(values), worst_fill, values)
    worst = filled.min() if promise.higher_is_better else filled.max()
    return Verdict(promise, int(sum(promise.kept(v) for v in values)), len(values),
                   float(np.median(filled)) if len(filled) else float("nan"), float(worst))


def check_preset(preset: Preset, seeds: list[int], steps: int | None = None, device: str | None = None,
                 progress=print) -> tuple[list[SeedResult], list[Verdict]]:
    results = []
    for seed in seeds:
        result = train_once(preset, seed, steps, device)
        shown = "  ".join(f"{p.meter}={result.meters.get(p.meter, float('nan')):.4g}" for p in preset.promises)
        progress(f"{preset.slug} seed {seed}: {result.status} in {result.seconds:.0f} s  {shown}")
        results.append(result)
    # With --steps the runs stop elsewhere than the preset's budget: say the step they were judged at.
    promises = [replace(p, steps=steps) if steps else p for p in preset.promises]
    return results, [judge(p, results) for p in promises]
