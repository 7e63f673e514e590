"""Benchmarks that print figures. Nothing here asserts a speed.

    python -m ganlab bench --compare           MNIST images/s: the seed's DataLoader loop against
                                               ganlab's eager path, fast path, and fast path in a polled Run
    python -m ganlab bench gauss1d             steps/s headless, and inside a polled Run
    python -m ganlab bench mnist --model mlp   images/s for an MNIST model
    python -m ganlab bench lockstep            wall time of four 1D runs in lockstep, alone, one by one
    python -m ganlab bench gauss1d --store     steps/s of a polled Run without and with the run store, in turns
    python -m ganlab bench stop [--steps N]    Stop's latency p50/p95 in each state (setup, training,
                                               large k, paused); N stops per state; --model STATE for one
    python -m ganlab bench sweep [--steps N]   a 16-trial gauss1d sweep (4 x 4 learning rates) on a local Ray,
                                               against the same 16 configs one after another without Ray
"""
from __future__ import annotations

import time

from ganlab.config import Experiment, Model
from ganlab.fast import graph_blocker
from ganlab.models import models_for
from ganlab.presets import get_preset, presets_for
from ganlab.runs import Run, RunRegistry
from ganlab.train import Trainer, describe_path, resolve_device


def mnist_models(conditional: bool = True) -> list[str]:
    """The MNIST GANs, from the model registry (without the conditional ones if asked)."""
    return [spec.name for spec in models_for("mnist") if conditional or not spec.conditional]


def mnist_config(model: str) -> tuple[str, Experiment]:
    """(what it is, a config) to time `model` with: its own preset's (mnist-<model>: the figures in
    the README are timed on it), else its first preset's, or, for a model registered without a
    preset, the first MNIST preset's with the model's default settings."""
    presets = presets_for("mnist")
    own = [p for p in presets if p.config.model.name == model]
    preset = next((p for p in own if p.slug == f"mnist-{model}"), own[0] if own else None)
    if preset is not None:
        return preset.slug, preset.config
    return f"{model} (its defaults)", presets[0].config.replace(model=Model(model))


def _sync(device) -> None:
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize()


def on_own_thread(measure, *args):
    """measure(*args) on a thread of its own, the way the app trains: a Run's thread
    trains while other threads draw.

    On a CPU this matters. GNU OpenMP keeps a pool of workers for every thread that
    has run a parallel op, and once more workers exist than cores it stops spinning
    between ops, which costs a small model 40% (measured on 2 cores). A measurement
    on the main thread would leave its pool behind and slow every one after it.
    """
    import threading
    result = []

    def target():
        try:
            result.append(measure(*args))
        except BaseException as e:  # noqa: BLE001 - re-raised on the caller's thread
            result.append(e)

    thread = threading.Thread(target=target, name="ganlab-bench")
    thread.start()
    thread.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


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
    return polled_rates(cfg, seconds, poll)[0]


def polled_rates(cfg: Experiment, seconds: float, poll: float = 1.0, store=None) -> tuple[float, float]:
    """in_polled_run's steps/s, and steps per second of this process's CPU time (all its threads:
    on a shared machine the wall clock moves with other people's load, CPU time much less).
    With `store` (a ganlab.store.Store) the Run is recorded as the app records every run."""
    run = Run(cfg.replace(train={"steps": 10**8}))
    if store is not None:
        store.watch(run)
    run.start()

    def steps_done() -> int:   # the live counter: snapshots come only every snapshot_every steps
        return run.step

    while steps_done() < 20 and run.alive:
        time.sleep(0.01)
    start_step, start, cpu = steps_done(), time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds and run.alive:
        time.sleep(poll)
        snap = run.snapshot()
        _ = (snap.metrics, snap.meters, snap.views)   # what a page reads to draw
    end_step, end, cpu = steps_done(), time.perf_counter(), time.process_time() - cpu
    run.stop()
    return (end_step - start_step) / (end - start), (end_step - start_step) / max(cpu, 1e-9)


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
    if args.seconds is None:
        # --compare's figures include the probes a Run makes every snapshot_every steps
        # (a classifier pass for MNIST): a longer window averages over more of them.
        args.seconds = 20.0 if args.compare else 10.0
    if args.data:
        import os
        os.environ["GANLAB_DATA"] = args.data
    if args.compare:
        return reference_main(args)
    if args.target == "lockstep":
        return compare_main(args)
    if args.target == "stop":
        return stop_main(args)
    if args.target == "memory":
        return memory_main(args)
    if args.target == "sweep":
        return sweep_main(args)
    if args.target == "gauss1d":
        cfg = get_preset("gauss1d").config.replace(train={"device": args.device})
        label, unit = "gauss1d", "steps/s"
        scale = 1
    elif args.target == "mnist":
        args.model = args.model or "mlp"
        if args.model not in mnist_models():
            print(f"unknown model {args.model!r}; choose from {', '.join(mnist_models())}")
            return 2
        cfg = mnist_config(args.model)[1].replace(train={"device": args.device})
        label, unit = f"mnist {args.model} (batch {cfg.train.batch_size})", "images/s"
        scale = cfg.train.batch_size
    else:
        print(f"unknown bench target {args.target!r}; choose gauss1d, mnist, lockstep, stop or memory "
              f"(or --compare)")
        return 2
    print(f"{label} on {device}, {args.seconds:.0f} s per measurement")
    if getattr(args, "store", False):
        return store_main(cfg, args.seconds, scale, unit, rounds=args.rounds or 3)
    bare = on_own_thread(headless, cfg, args.seconds) * scale
    print(f"  headless              {bare:10.0f} {unit}")
    polled = in_polled_run(cfg, args.seconds) * scale
    print(f"  in a Run, polled 1/s  {polled:10.0f} {unit}  ({polled / bare:.0%} of headless)")
    return 0


def sweep_main(args) -> int:
    """Wall time of a 16-trial sweep on a local Ray against its 16 configs trained one after another in
    this process (ganlab alone), both recording into a temporary run store; Ray's overhead per trial."""
    import os
    import statistics
    import tempfile

    from ganlab.store import Store
    from ganlab.runs import run_to_end
    from ganlab.sweeps import Axis, SweepSpec, ray_for, shutdown_ray, start_sweep
    steps = args.steps or 2000
    spec = SweepSpec("gauss1d", (Axis("opt_d.lr", "log", 1e-4, 1e-1, 4), Axis("opt_g.lr", "log", 1e-4, 1e-1, 4)),
                     steps=steps)
    trials = spec.trials()
    print(f"gauss1d, {len(trials)} trials (opt_d.lr x opt_g.lr, 4 x 4 log grid), {steps:,} steps each, "
          f"load {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory() as folder:
        store = Store(folder)
        start = time.perf_counter()
        ray_for()
        ray_start = time.perf_counter() - start
        start = time.perf_counter()
        sweep = start_sweep(spec, store)
        sweep.join()
        ray_wall = time.perf_counter() - start
        rows = sweep.rows()
        in_ray = [r["seconds"] for r in rows if r.get("seconds") is not None]
        slots = min(len(trials), int(__import__("ray").cluster_resources().get("CPU", 1)))
        shutdown_ray()
        print(f"  Ray local: start {ray_start:.1f} s; the sweep {ray_wall:.1f} s on {slots} CPUs "
              f"({sweep.message}); load {os.getloadavg()[0]:.1f}")
        alone = []
        start = time.perf_counter()
        for t in trials:
            begin = time.perf_counter()
            run_to_end(t.cfg, f"bench {t.index}", store)
            alone.append(time.perf_counter() - begin)
        serial = time.perf_counter() - start
    print(f"  ganlab alone, one after another: {serial:.1f} s; a trial {statistics.median(alone):.2f} s "
          f"(median), {max(alone):.2f} s at worst; load {os.getloadavg()[0]:.1f}")
    if in_ray:
        print(f"  a trial inside Ray: {statistics.median(in_ray):.2f} s (median), {max(in_ray):.2f} s at worst")
    print(f"  the sweep took {ray_wall / serial:.0%} of one after another; Ray's overhead per trial "
          f"{(ray_wall * slots - serial) / len(trials):.2f} s of a CPU (sweep wall x CPUs - serial, over trials)")
    return 0


def store_main(cfg: Experiment, seconds: float, scale: int, unit: str, rounds: int) -> int:
    """A polled Run without and with the run store (a temporary one), in turns, so that a
    shared machine's load falls on both alike; the median of the ratios."""
    import shutil
    import statistics
    import tempfile

    from ganlab.store import Store
    folder = tempfile.mkdtemp(prefix="ganlab-bench-store-")
    try:
        store, wall, cpu = Store(folder), [], []
        for i in range(rounds):
            # In turns, and each first in every other round: every Run's thread leaves an OpenMP pool
            # behind (see on_own_thread), so the second of a pair runs with one pool more.
            if i % 2:
                on, on_cpu = polled_rates(cfg, seconds, store=store)
                off, off_cpu = polled_rates(cfg, seconds)
            else:
                off, off_cpu = polled_rates(cfg, seconds)
                on, on_cpu = polled_rates(cfg, seconds, store=store)
            wall.append(on / off)
            cpu.append(on_cpu / off_cpu)
            print(f"  round {i + 1}: without the store {off * scale:10.0f} {unit}, with it {on * scale:10.0f} {unit} "
                  f"({on / off:.1%}); per CPU second {on_cpu / off_cpu:.1%}")
        store.close()
        for name, ratios in (("wall clock", wall), ("per CPU second", cpu)):
            print(f"  with the store, {name}: median {statistics.median(ratios):.1%}, "
                  f"worst {min(ratios):.1%} of without")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def memory_main(args) -> int:
    """What a server keeps of each ended run: its RSS after N short runs of a model's MNIST preset
    have ended, with the run store (the models go back to it) and without (they stay in memory)."""
    import gc
    import os
    import shutil
    import tempfile

    from ganlab.store import Store
    from ganlab.worker import _trim_heap

    def rss_mib() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    slug, cfg = mnist_config(args.model or "dcgan")
    cfg = cfg.replace(train={"device": args.device, "steps": args.steps or 20, "snapshot_every": 10})
    n = 10
    print(f"{slug}: server memory per ended run ({n} runs of {cfg.train.steps} steps; RSS after the heap is trimmed)")
    folder = tempfile.mkdtemp(prefix="ganlab-bench-memory-")
    try:
        for label, store in (("with the run store", Store(folder)), ("without a store", None)):
            registry = RunRegistry(max_active=n + 1, store=store)

            def ended(seed: int):
                run = registry.create(cfg.replace(train={"seed": seed}), name=f"{slug} {seed}")
                run.join()
                return run

            # The first runs load what every later one shares (the digits' files, the classifier, torch's
            # caches): the slope over the next n is what each more run keeps.
            warm = [ended(seed) for seed in range(3)]
            gc.collect(), _trim_heap()
            before = rss_mib()
            runs = warm + [ended(seed) for seed in range(3, n + 3)]
            if store is not None:
                store.flush()
            gc.collect(), _trim_heap()
            kept = sum(run.trainer is not None for run in runs)
            print(f"  {label:20s} {(rss_mib() - before) / n:5.1f} MiB a run ({kept} of {len(runs)} keep their "
                  f"models in memory)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


# -- bench --compare: ganlab against the seed's own training loop --------------------------

COMPARE_MODELS = ("mlp", "dcgan")   # by default: the seeds' MLP and conv net (--model: any unconditional one)


def seed_style_loader(batch_size: int, data_dir: str | None):
    """MNIST the way seed 003 feeds it: a PIL image per digit, ToTensor and Normalize
    in the DataLoader's loop, and a host-to-device copy per batch."""
    import torch
    import torchvision.transforms as transforms
    from PIL import Image
    from ganlab.data.mnist import load_mnist

    images, labels = load_mnist(data_dir)
    standardize = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])

    class Digits(torch.utils.data.Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            return standardize(Image.fromarray(images[i].numpy(), mode="L")), int(labels[i])

    return torch.utils.data.DataLoader(Digits(), batch_size, shuffle=True, drop_last=True)


def reference_loop(cfg: Experiment, seconds: float, warmup: int = 5) -> float:
    """Steps/s of seed 003's run_epoch on the same G and D: a DataLoader, D(real) and
    D(G(z)) in separate passes (without detaching G), the paper's losses written out,
    plain Adam."""
    import torch
    from ganlab.models import build_models
    from ganlab.train import seeded

    device = resolve_device(cfg.train.device)
    if device.type == "cpu" and cfg.train.cpu_threads:
        torch.set_num_threads(cfg.train.cpu_threads)
    B, z_dim = cfg.train.batch_size, cfg.noise.dim
    with seeded(cfg.train.seed):
        G, D = (m.to(device).train() for m in build_models(cfg))
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.opt_g.lr, betas=(cfg.opt_g.beta1, cfg.opt_g.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.opt_d.lr, betas=(cfg.opt_d.beta1, cfg.opt_d.beta2))
    loader = seed_style_loader(B, cfg.train.data_dir or None)
    steps, start = -warmup, None
    while True:
        for img_batch, _ in loader:
            if steps == 0:
                _sync(device)
                start = time.perf_counter()
            img_batch = img_batch.to(device)
            opt_d.zero_grad()
            p_real = torch.sigmoid(D(img_batch))      # ganlab's D returns logits; the seed's ends in a sigmoid
            p_fake = torch.sigmoid(D(G(torch.randn(B, z_dim, device=device))))
            loss_d = (-torch.log(p_real) - torch.log(1.0 - p_fake)).mean()
            loss_d.backward()
            opt_d.step()
            opt_g.zero_grad()
            p_fake = torch.sigmoid(D(G(torch.randn(B, z_dim, device=device))))
            loss_g = -torch.log(p_fake).mean()
            loss_g.backward()
            opt_g.step()
            steps += 1
            if start is not None and time.perf_counter() - start >= seconds:
                _sync(device)
                return steps / (time.perf_counter() - start)


def reference_comparison(cfg: Experiment, seconds: float) -> dict:
    """images/s of the four configurations, one after another in this process, each
    on a thread of its own (see on_own_thread).

    On a CPU every configuration gets all the cores (torch's default, which the
    seed's loop runs with), so the figures compare loops, not thread counts.
    """
    import os
    B = cfg.train.batch_size
    if resolve_device(cfg.train.device).type == "cpu":
        cfg = cfg.replace(train={"cpu_threads": os.cpu_count() or 1})
    return {
        "reference": on_own_thread(reference_loop, cfg, seconds) * B,
        "eager": on_own_thread(headless, cfg.replace(train={"fast": False}), seconds) * B,
        "fast": on_own_thread(headless, cfg.replace(train={"fast": True}), seconds) * B,
        "fast, in a polled Run": in_polled_run(cfg.replace(train={"fast": True}), seconds) * B,
    }


def reference_main(args) -> int:
    from ganlab.system import device_summary
    device = resolve_device(args.device)
    # The seed's loop feeds no labels: a conditional model cannot run in it.
    if args.model and args.model not in mnist_models(conditional=False):
        print(f"--compare covers {', '.join(mnist_models(conditional=False))}; got {args.model!r}")
        return 2
    models = [args.model] if args.model else list(COMPARE_MODELS)
    print(f"bench --compare on {device} ({device_summary()}), {args.seconds:.0f} s per measurement")
    for model in models:
        what, cfg = mnist_config(model)
        cfg = cfg.replace(train={"device": args.device})
        path = describe_path(cfg.train.fast, device, graph_blocker(cfg, device))   # as a Trainer would say
        print(f"\n{what}, batch {cfg.train.batch_size}, {device.type} "
              f"[ganlab's path: {path}]")
        figures = reference_comparison(cfg, args.seconds)
        ref = figures["reference"]
        for name, images_per_s in figures.items():
            print(f"  {name:<24} {images_per_s:10,.0f} images/s  {images_per_s / ref:6.2f}x the reference")
        print(f"  in a Run: {figures['fast, in a polled Run'] / figures['fast']:.0%} of headless")
    return 0


# -- bench stop: how long Stop takes to end a run's thread, in each state --------------------

def _live_step(run: Run) -> int:
    return run.step


def stop_states(device: str = "cpu", data: str | None = None) -> dict:
    """{state: (config, how to reach that state)}: the states a page can stop a run in.

    "setup" builds a model wide enough to take seconds; "training" is the MNIST DCGAN
    on its preset; "large k" is a 1D run with k = 1,000 D updates per step on a big batch,
    "huge batch" the same on a batch of a million (one D update takes seconds on a CPU);
    "largest update" the DCGAN on the largest batch this machine's budget lets a page start
    (cost.MAX_UPDATE_SECONDS), the longest stretch between two stop points; "paused" a 1D
    run paused before its first step.
    """
    gauss = get_preset("gauss1d").config.replace(train={"device": device, "steps": 10**8})
    mnist = get_preset("mnist-dcgan").config.replace(train={"device": device, "steps": 10**8,
                                                              "data_dir": data or ""})
    return {
        "setup": (gauss.replace(model={"g_hidden": 8192, "d_hidden": 8192, "g_depth": 4, "d_depth": 4}),
                  lambda run: run.status == "starting", {}, 0.5),
        "training": (mnist, lambda run: _live_step(run) >= 2, {}, 0.5),
        "large k": (gauss.replace(train={"d_steps": 1000, "batch_size": 20_000}),
                    lambda run: run.status == "running", {}, 0.5),
        # Issue 20's worst case; its stages take seconds each, so the stops spread over 10 s.
        "huge batch": (gauss.replace(train={"d_steps": 1000, "batch_size": 1_000_000}),
                       lambda run: run.status == "running", {}, 10.0),
        "largest update": (_largest_batch(mnist), lambda run: _live_step(run) >= 1, {}, 1.0),
        "paused": (gauss, lambda run: run.status == "paused", {"paused": True}, 0.5),
    }


def _largest_batch(cfg: Experiment) -> Experiment:
    """`cfg` on the largest power-of-two batch that cost.check lets a page start."""
    from ganlab import cost
    best = cfg
    for batch in (2 ** n for n in range(4, 20)):
        try:
            cost.check(bigger := cfg.replace(train={"batch_size": batch}))
        except cost.BudgetError:
            return best
        best = bigger
    return best


def stop_latency(cfg: Experiment, reached, start_kw: dict, spread: float, trials: int, rng,
                 limit: float = 120.0) -> list[float]:
    """Seconds from stop() to the end of the run's thread, once per trial.

    Each trial starts a run, waits until `reached(run)`, then a random 0 to `spread`
    seconds more (so that the stop lands anywhere in a step or a phase of setup), and stops it.
    """
    out = []
    for _ in range(trials):
        run = Run(cfg).start(**start_kw)
        deadline = time.monotonic() + limit
        while not reached(run) and run.alive and time.monotonic() < deadline:
            time.sleep(0.005)
        if not run.alive:
            raise RuntimeError(f"the run ended before it could be stopped: {run.snapshot().message}")
        time.sleep(rng.uniform(0.0, spread))
        start = time.perf_counter()
        ended = run.stop(wait=limit)
        out.append(time.perf_counter() - start if ended else float("inf"))
    return out


def stop_main(args) -> int:
    import random

    import numpy as np
    rng = random.Random(0)
    trials = args.steps or 10
    print(f"stop latency: seconds from Stop to the end of the run's thread, {trials} stops per state "
          f"on {args.device}")
    for state, (cfg, reached, start_kw, spread) in stop_states(args.device, args.data).items():
        if args.model and args.model != state:
            continue
        seconds = stop_latency(cfg, reached, start_kw, spread, trials, rng)
        p50, p95 = np.percentile(seconds, [50, 95])
        print(f"  {state:<10} p50 {p50:6.3f} s   p95 {p95:6.3f} s   max {max(seconds):6.3f} s", flush=True)
    return 0
