"""Benchmarks that print figures. Nothing here asserts a speed.

    python -m ganlab bench gauss1d             steps/s headless, and inside a polled Run
    python -m ganlab bench mnist --model mlp   images/s for an MNIST model
    python -m ganlab bench compare             wall time of four 1D runs in lockstep, alone, one by one
"""
from __future__ import annotations

import time

from ganlab.config import Experiment
from ganlab.presets import get_preset
from ganlab.runs import Run
from ganlab.train import Trainer, resolve_device

MNIST_PRESETS = {"mlp": "mnist-mlp-seed003", "maxout": "mnist-maxout-seed004",
                 "dcgan": "mnist-dcgan", "cgan": "mnist-cgan"}


def _sync(device) -> None:
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize()


def headless(cfg: Experiment, seconds: float, warmup: int = 20) -> float:
    """Steps/s of the bare training loop, flushing metrics as a Run would."""
    trainer = Trainer(cfg)
    every = cfg.train.snapshot_every
    for _ in range(warmup):
        trainer.train_step()
    trainer.flush()
    _sync(trainer.device)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        trainer.train_step()
        steps += 1
        if steps % every == 0:
            trainer.flush()
            trainer.probe()
    _sync(trainer.device)
    return steps / (time.perf_counter() - start)


def in_polled_run(cfg: Experiment, seconds: float, poll: float = 1.0) -> float:
    """Steps/s of a background Run while this thread reads its snapshot once a `poll`, like a page."""
    run = Run(cfg.replace(train={"steps": 10**8})).start()

    def steps_done() -> int:   # the live counter: snapshots come only every snapshot_every steps
        return run.trainer.step if run.trainer is not None else 0

    while steps_done() < 20 and run.alive:
        time.sleep(0.01)
    start_step, start = steps_done(), time.perf_counter()
    while time.perf_counter() - start < seconds and run.alive:
        time.sleep(poll)
        snap = run.snapshot()
        _ = (snap.metrics, snap.meters, snap.views)   # what a page reads to draw
    end_step, end = steps_done(), time.perf_counter()
    run.stop()
    return (end_step - start_step) / (end - start)


COMPARE_LOSSES = ("bce-ns", "bce-sat", "wgan-clip", "wgan-gp")


def _run_to_end(run: Run) -> float:
    """Wall seconds from start to end of one Run, Trainer construction and probes included."""
    start = time.perf_counter()
    run.start()
    run.join()
    return time.perf_counter() - start


def compare_lockstep(cfg: Experiment, losses=COMPARE_LOSSES) -> dict:
    """Wall seconds of one run alone, of the runs one after another, and of the runs in lockstep.

    Each is measured as the app runs them: Runs in background threads, probes and all.
    """
    from ganlab.compare import comparison_configs, start_group
    from ganlab.runs import RunRegistry
    cfgs = comparison_configs(cfg, list(losses))
    alone = _run_to_end(Run(cfgs[0]))
    one_by_one = {c.loss.name: _run_to_end(Run(c)) for c in cfgs}
    start = time.perf_counter()
    runs = start_group(RunRegistry(max_active=len(cfgs)), cfgs, [c.loss.name for c in cfgs])
    for run in runs:
        run.join()
    lockstep = time.perf_counter() - start
    failed = [r.name for r in runs if r.status != "finished"]
    if failed:
        raise RuntimeError(f"runs did not finish: {', '.join(failed)}")
    return {"alone": alone, "one_by_one": one_by_one, "lockstep": lockstep}


def compare_main(args) -> int:
    steps = args.steps or 1000
    cfg = get_preset("gauss1d").config.replace(train={"device": args.device, "steps": steps})
    device = resolve_device(args.device)
    print(f"gauss1d preset, {len(COMPARE_LOSSES)} losses, {steps} steps per run, on {device} "
          f"(wall time, Trainer set-up and probes included)")
    t = compare_lockstep(cfg)
    serial = sum(t["one_by_one"].values())
    each = ", ".join(f"{name} {sec:.1f}" for name, sec in t["one_by_one"].items())
    print(f"  one run alone ({COMPARE_LOSSES[0]})   {t['alone']:7.1f} s")
    print(f"  one after another       {serial:7.1f} s  ({each})")
    print(f"  in lockstep             {t['lockstep']:7.1f} s  ({t['lockstep'] / serial:.0%} of one after another, "
          f"{t['lockstep'] / t['alone']:.1f}x one alone)")
    return 0


def main(args) -> int:
    device = resolve_device(args.device)
    if args.data:
        import os
        os.environ["GANLAB_DATA"] = args.data
    if args.target == "compare":
        return compare_main(args)
    if args.target == "gauss1d":
        cfg = get_preset("gauss1d").config.replace(train={"device": args.device})
        label, unit = "gauss1d", "steps/s"
        scale = 1
    elif args.target == "mnist":
        if args.model not in MNIST_PRESETS:
            print(f"unknown model {args.model!r}; choose from {', '.join(MNIST_PRESETS)}")
            return 2
        cfg = get_preset(MNIST_PRESETS[args.model]).config.replace(train={"device": args.device})
        label, unit = f"mnist {args.model} (batch {cfg.train.batch_size})", "images/s"
        scale = cfg.train.batch_size
    else:
        print(f"unknown bench target {args.target!r}; choose gauss1d, mnist or compare")
        return 2
    print(f"{label} on {device}, {args.seconds:.0f} s per measurement")
    bare = headless(cfg, args.seconds) * scale
    print(f"  headless              {bare:10.0f} {unit}")
    polled = in_polled_run(cfg, args.seconds) * scale
    print(f"  in a Run, polled 1/s  {polled:10.0f} {unit}  ({polled / bare:.0%} of headless)")
    return 0
