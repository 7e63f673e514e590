"""Loss lab: runs that differ in their loss, trained side by side in lockstep.

A comparison is a group of Runs built from one config, one per loss. By
default each loss trains with the settings of its own paper (its k and its
optimizers: GANLoss.reference), so that no loss is judged at settings it was
never meant for; "same settings" trains every loss with the base config's.
Either way they share the seed, so they start from the same weights and draw
the same data and noise in the same order (each Trainer draws from its own
generator, seeded with cfg.train.seed; WGAN-GP's interpolation points come
from the models' own stream, and clipping and R1 draw nothing), and they
share the budget of G steps. With different k, a run's D takes more batches
per G step, so its later batches differ from the others'.
A Lockstep keeps their step counters within one iteration of each other, so
at any moment their curves cover the same steps.

The lockstep's rules, chosen so that one run can never hold the others hostage:
- A run that is running waits, before each iteration, until every other member
  that is running has done at least as many steps as it has.
- A paused member does not hold the others: "pause this run" pauses only that
  run. When it is resumed it is behind, so the others wait while it catches
  up, and the group is back in step.
- A member that ends (finished, stopped, failed, diverged) leaves the group;
  the others carry on to the shared budget.
- A wait returns promptly when its own run is asked to stop, and re-checks
  every POLL_SECONDS, because a member's pause, stop or end does not always
  come with a notification.
"""
from __future__ import annotations

import threading
import time
import uuid

from ganlab.config import Experiment
from ganlab.losses import LOSSES
from ganlab.runs import ACTIVE, ENDED, Run, RunError, RunRegistry

PAGE = "compare"
POLL_SECONDS = 0.25   # the longest a wait goes without re-checking its group


def _steps(run: Run) -> int:
    return run.step


def _holds_group(run: Run) -> bool:
    """Whether the group must wait for this member: it is training or about to.

    It reads the pause that was asked for, not the status, which changes only
    once the member's thread has seen the request: judged by status, the first
    run resumed would race ahead of the others, still "paused" for a moment.
    """
    return run.status not in ENDED and not run.paused and not run.stop_requested


class Lockstep:
    """Keeps the running members of a group within one iteration of each other."""

    def __init__(self, group: str = ""):
        self.group = group or uuid.uuid4().hex[:8]
        self._cond = threading.Condition()
        self._members: list[Run] = []

    @property
    def members(self) -> list[Run]:
        with self._cond:
            return list(self._members)

    def add(self, run: Run) -> None:
        """Join before the run starts, so that it cannot race ahead of members not yet added."""
        with self._cond:
            self._members.append(run)
            self._cond.notify_all()

    def leave(self, run: Run) -> None:
        with self._cond:
            if run in self._members:
                self._members.remove(run)
            self._cond.notify_all()

    def wake(self) -> None:
        """Re-check now: a member was paused, resumed or asked to stop."""
        with self._cond:
            self._cond.notify_all()

    def resume(self, runs: list[Run]) -> None:
        """Resume members together: a resumed member's first wait() blocks on this lock until
        all have been told, so none can take a step while the others still count as paused."""
        with self._cond:
            for run in runs:
                run.resume()
            self._cond.notify_all()

    def waiting_for(self, run: Run) -> list[Run]:
        """The members that `run` would wait for now: running, and behind it."""
        with self._cond:   # an RLock: wait() calls this while holding it
            mine = _steps(run)
            return [m for m in self._members if m is not run and _holds_group(m) and _steps(m) < mine]

    def wait(self, run: Run) -> None:
        """Called by `run`'s thread before each iteration."""
        with self._cond:
            self._cond.notify_all()   # this run has moved on since its last wait: wake those behind on it
            while not run.stop_requested and self.waiting_for(run):
                self._cond.wait(POLL_SECONDS)


def comparison_configs(base: Experiment, losses: list[str], same_settings: bool = False) -> list[Experiment]:
    """One config per loss: `base` with that loss and, unless `same_settings`, its reference
    settings (k and both optimizers, from its paper). Data, model, seed and budget stay base's."""
    if not losses:
        raise ValueError("pick at least one loss")
    if len(set(losses)) != len(losses):
        raise ValueError(f"each loss may appear once, got {losses}")
    unknown = [name for name in losses if name not in LOSSES]
    if unknown:
        raise ValueError(f"unknown loss {unknown[0]!r}; choose from {', '.join(LOSSES)}")
    if same_settings:
        return [base.replace(loss={"name": name}) for name in losses]
    return [with_reference(base.replace(loss={"name": name})) for name in losses]


def with_reference(cfg: Experiment) -> Experiment:
    """`cfg` with its loss's reference settings for its task: k, the optimizers for D and G,
    and the loss settings the reference sets (such as WGAN-GP's λ)."""
    ref = LOSSES[cfg.loss.name].reference.for_task(cfg.task)
    return cfg.replace(train={"d_steps": ref.d_steps}, opt_d=ref.opt_d, opt_g=ref.opt_g, loss=dict(ref.loss))


def reference_loss_fields(task: str, losses: list[str]) -> set[str]:
    """The Loss fields that the picked losses' references set on `task`: with reference settings
    on, the page's widgets for them have no effect."""
    return {name for loss in losses if loss in LOSSES for name, _ in LOSSES[loss].reference.for_task(task).loss}


def start_group(registry: RunRegistry, cfgs: list[Experiment], names: list[str], *,
                page: str = PAGE, paused: bool = False) -> list[Run]:
    """Create runs that train in lockstep and start them all."""
    active = sum(r.status in ACTIVE for r in registry.list())
    if active + len(cfgs) > registry.max_active:
        raise RunError(f"{active} runs are already training and this comparison needs {len(cfgs)} more "
                       f"(the limit is {registry.max_active}); stop some first")
    lockstep = Lockstep()
    runs = [registry.create(cfg, name=name, page=page, start=False, lockstep=lockstep)
            for cfg, name in zip(cfgs, names)]
    for run in runs:
        lockstep.add(run)
    for run in runs:
        run.start(paused=paused)
    return runs


def start_comparison(registry: RunRegistry, base_cfg: Experiment, losses: list[str], name: str = "",
                     *, paused: bool = False, same_settings: bool = False) -> list[Run]:
    """Train one run per loss, in lockstep, on `base_cfg` (see comparison_configs).

    Each run trains base_cfg.train.steps steps (the shared budget). The runs'
    `lockstep.group` is the comparison's id.
    """
    cfgs = comparison_configs(base_cfg, losses, same_settings)
    prefix = name or base_cfg.task
    return start_group(registry, cfgs, [f"{prefix} · {loss}" for loss in losses], paused=paused)


def group_runs(registry: RunRegistry, group: str | None) -> list[Run]:
    """The runs of a comparison, in the order they were created."""
    if not group:
        return []
    return [r for r in registry.list() if r.lockstep is not None and r.lockstep.group == group]


def resume_runs(runs: list[Run]) -> None:
    """Resume a group together: no member may take a step until all have been told to resume."""
    lockstep = next((r.lockstep for r in runs if r.lockstep is not None), None)
    if lockstep is None:
        for run in runs:
            run.resume()
    else:
        lockstep.resume(runs)


def stop_runs(runs: list[Run], wait: float = 5.0) -> bool:
    """Stop every run at once (not one after another); True when all have ended."""
    for run in runs:
        run.stop(wait=0)
    for lockstep in {id(r.lockstep): r.lockstep for r in runs if r.lockstep is not None}.values():
        lockstep.wake()   # don't let a run sit out its poll interval in a lockstep wait
    deadline = time.monotonic() + wait
    return all([run.join(max(0.0, deadline - time.monotonic())) for run in runs])


def caveats(base: Experiment, losses: list[str], same_settings: bool = False) -> list[str]:
    """What still differs between the runs, or limits the comparison, in plain words."""
    notes = []
    picked = [LOSSES[name] for name in losses if name in LOSSES]
    if same_settings:
        notes.append(f"Every run trains with this preset's settings: k = {base.train.d_steps}, "
                     f"{base.opt_d.name} at lr {base.opt_d.lr:g} for D and {base.opt_g.name} at "
                     f"{base.opt_g.lr:g} for G. Some losses were designed for others, so they may not be "
                     "at their best here.")
        if "wgan-clip" in losses and base.opt_d.name == "adam":
            notes.append("The WGAN paper trained the clipped critic with RMSProp at 5e-5 and found Adam "
                         "unstable, so the clipped WGAN is not at its best here.")
        if base.train.d_steps == 1 and any(loss.critic and loss.name.startswith("wgan") for loss in picked):
            notes.append("k = 1 here, while the Wasserstein critics are meant to take 5 steps per G step "
                         "(the papers' n_critic), so the critic lags behind G. Raise k, or switch "
                         "\"same settings for all\" off.")
    else:
        adjusted = [loss.short for loss in picked if loss.reference.for_task(base.task) is not loss.reference]
        where = (f"from its paper, or settings that fit this task where the paper's do not ({', '.join(adjusted)}; "
                 "ganlab/losses.py says why)" if adjusted else "from its paper")
        notes.append(f"Each run trains with its loss's reference settings, {where}: its own k and "
                     "optimizers (the table below). All share the data, the initial weights and the number "
                     "of G steps; a run with a larger k gives D more updates and more batches.")
    penalised = [loss.label for loss in picked if loss.penalty is not None]
    if base.model.name == "dcgan" and penalised:
        notes.append(f"With the DCGAN, the D of {', '.join(penalised)} has no BatchNorm (a gradient "
                     "penalty is per sample), so its D differs from the others'. G is built first, so it "
                     "starts from the same weights.")
    if base.model.dropout > 0 or base.model.g_dropout > 0:
        notes.append("Dropout masks come from each run's model stream, which WGAN-GP's penalty also draws "
                     "from, as does every extra D step: runs that differ there draw different masks.")
    if base.model.minibatch_d:
        notes.append("This preset's D judges whole batches, so it has no D(x) or f(x) curve to draw.")
    return notes


def settings_table(cfgs: list[Experiment]) -> list[dict]:
    """Each run's loss, k and optimizers, one row per run: what the page shows under the caveats."""
    def optim(o) -> str:
        betas = f", betas ({o.beta1:g}, {o.beta2:g})" if o.name == "adam" else ""
        return f"{o.name}, lr {o.lr:g}{betas}"
    def loss_settings(c: Experiment) -> str:
        # Only the setting the run's loss reads: clipping for WGAN, λ for WGAN-GP, γ for R1
        loss = LOSSES[c.loss.name]
        if loss.clip_weights:
            return f"clip c {c.loss.clip:g}"
        return {"gp": f"λ {c.loss.gp_lambda:g}", "r1": f"γ {c.loss.r1_gamma:g}"}.get(loss.penalty, "")
    return [{"loss": LOSSES[c.loss.name].label, "k": c.train.d_steps, "D": optim(c.opt_d), "G": optim(c.opt_g),
             "loss settings": loss_settings(c)} for c in cfgs]
