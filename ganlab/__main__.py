"""Command line: headless training, presets and benchmarks.

    python -m ganlab presets
    python -m ganlab train --preset gauss1d [--steps N] [--seed S] [--device auto] [--json]
                           [--set loss.name=hinge --set opt_d.lr=4e-4 ...]
    python -m ganlab bench --compare [--model mlp|dcgan] [--seconds 10]
    python -m ganlab bench gauss1d
    python -m ganlab export --preset gauss1d [--out train_gan.py]
    python -m ganlab bench lockstep [--steps N]
    python -m ganlab check-presets [--preset SLUG ...] [--seeds 10] [--json]
    python -m ganlab sweep --preset gauss1d --axis opt_d.lr=log:1e-4:1e-1:4 [--axis opt_g.lr=...]
                           [--seeds 100,101] [--steps N] [--address HOST:6379] [--json]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time

from ganlab.checks import FIRST_SEED
from ganlab.config import ConfigError, Experiment, apply_changes
from ganlab.presets import PRESETS, get_preset


def parse_override(text: str) -> tuple[str, str, object]:
    """"section.field=value" as (section, field, value); the value is JSON where it parses
    (4e-4, 5, true, [1, 2]), else the text as typed (hinge)."""
    key, sep, raw = text.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not section or not name:
        raise ConfigError(key.strip() or text, "give an override as section.field=value, e.g. opt_d.lr=4e-4")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return section, name, tuple(value) if isinstance(value, list) else value


def apply_overrides(cfg: Experiment, overrides: list[str]) -> Experiment:
    """`cfg` with every --set applied (a later one wins for the same field), checked as a link's
    settings are (config.apply_changes): every bad field is named at once (ConfigError)."""
    changes: dict[str, dict] = {}
    for text in overrides:
        section, name, value = parse_override(text)
        changes.setdefault(section, {})[name] = value
    return apply_changes(cfg, changes) if changes else cfg


def build_config(args) -> Experiment:
    cfg = apply_overrides(get_preset(args.preset).config, getattr(args, "set", None) or [])
    train = {}
    if args.steps is not None:
        train["steps"] = args.steps
    if args.seed is not None:
        train["seed"] = args.seed
    if args.device is not None:
        train["device"] = args.device
    if getattr(args, "data", None):
        os.environ["GANLAB_DATA"] = args.data
    return cfg.replace(train=train) if train else cfg


def summarize(snap) -> dict:
    """Final figures: losses averaged over the last recorded steps (one step is noisy)."""
    out = {"status": snap.status, "steps": snap.step, "seconds": round(snap.elapsed, 3)}
    for name in ("loss_d", "loss_g", "d_real", "d_fake"):
        col = snap.metrics.get(name)
        out[name] = float(col[-50:].mean()) if col is not None and len(col) else None
    for name, col in snap.meters.items():
        if name != "step" and len(col):
            out[name] = float(col[-1])
    if snap.status not in ("finished", "stopped"):
        out["message"] = snap.message
    return _finite(out)


def progress_line(snap) -> str:
    """"[running] step 1000/6000 (50 steps/s, about 1m 40s left)  w1=0.25": the CLI's progress."""
    from ganlab.speed import rate_text, time_left
    meters = "  ".join(f"{k}={snap.latest(k):.4g}" for k in snap.meters if k != "step"
                       and snap.latest(k) is not None)[:100]
    left = time_left(snap.step, snap.total_steps, snap.steps_per_s) if snap.status == "running" else ""
    return (f"[{snap.status}] step {snap.step}/{snap.total_steps} "
            f"({rate_text(snap.steps_per_s)} steps/s{', ' + left if left else ''})  {meters}")


def cmd_presets(args) -> int:
    for p in PRESETS.values():
        print(f"{p.slug:24s} {p.config.task:8s} {p.title}")
    return 0


def cmd_train(args) -> int:
    from ganlab.runs import RunRegistry
    from ganlab.verdict import of_snapshot
    from ganlab.store import open_default
    cfg = build_config(args)
    store, problem = open_default()   # the run is recorded as it trains; `python -m ganlab runs` lists it
    if problem:
        print(problem, file=sys.stderr)
    registry = RunRegistry(store=store)
    run = registry.create(cfg, name=args.preset)
    last = -1.0
    try:
        while run.alive:
            run.join(0.5)
            snap = run.snapshot()
            if time.monotonic() - last > 2 or not run.alive:
                last = time.monotonic()
                print(progress_line(snap), file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        run.stop()
    snap = run.snapshot()
    if args.out:
        _write_outputs(run, args.out)
    summary = summarize(snap)
    ended = of_snapshot(run.cfg, snap)
    if ended is not None:
        summary.update(verdict=ended.text, outcome=ended.outcome)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{snap.status}: {snap.message}")
        if ended is not None and ended.outcome not in ("failed", "diverged"):   # those the message says
            print(ended.text)
    return 0 if snap.status in ("finished", "stopped") else 1


def _write_outputs(run, out_dir: str) -> None:
    from ganlab.images import save_png
    os.makedirs(out_dir, exist_ok=True)
    snap = run.snapshot()
    if snap.images:
        path = os.path.join(out_dir, f"{run.name}-step{snap.images[-1][0]}.png")
        save_png(snap.images[-1][1], path)
        print(f"wrote {path}", file=sys.stderr)


def cmd_export(args) -> int:
    from ganlab.export import ExportError, export_script
    preset = get_preset(args.preset)
    try:
        script = export_script(preset.config, preset.title)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.out:
        with open(args.out, "w") as f:
            f.write(script)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(script, end="")
    return 0


def cmd_check_presets(args) -> int:
    from ganlab.checks import check_preset
    slugs = args.preset or [p.slug for p in PRESETS.values() if p.promises]
    presets = [get_preset(slug) for slug in slugs]
    if args.set:
        # The promise is then checked on other settings: for trying a change before it goes into a preset.
        presets = [dataclasses.replace(p, config=apply_overrides(p.config, args.set)) for p in presets]
    if args.data:
        os.environ["GANLAB_DATA"] = args.data
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    report = []
    for preset in presets:
        if not preset.promises:
            print(f"{preset.slug}: makes no promise to check", file=sys.stderr)
            continue
        log = (lambda line: print(line, file=sys.stderr, flush=True))
        results, verdicts = check_preset(preset, seeds, args.steps, args.device, progress=log)
        steps = args.steps or preset.config.train.steps
        seconds = sorted(r.seconds for r in results)
        report.append({"preset": preset.slug, "steps": steps, "seeds": seeds, "set": args.set or [],
                       "seconds_median": seconds[len(seconds) // 2], "seconds_max": seconds[-1],
                       "promises": [{"promise": str(v.promise), "meter": v.promise.meter, "kept": v.kept,
                                     "runs": v.runs, "median": v.median, "worst": v.worst} for v in verdicts],
                       "runs": [{"seed": r.seed, "status": r.status, "seconds": round(r.seconds, 1),
                                 **{p.meter: r.meters.get(p.meter) for p in preset.promises}} for r in results]})
        if not args.json:
            changed = f" with {', '.join(args.set)}" if args.set else ""
            print(f"{preset.slug}{changed}: {steps:,} steps on seeds {seeds[0]}-{seeds[-1]}, "
                  f"{seconds[len(seconds) // 2]:.0f} s a run (median; slowest {seconds[-1]:.0f} s)")
            for verdict in verdicts:
                print(f"  {verdict}")
    if args.json:
        print(json.dumps(_finite(report)))
    return 0


def _finite(value):
    """The value with NaN and infinities as None, so that the JSON is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def cmd_runs(args) -> int:
    from ganlab.store import StoreError, listing, open_store
    try:
        rows = listing(open_store())
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([_finite(r) for r in rows]))
        return 0
    for r in rows:
        meters = "  ".join(f"{k}={v:.4g}" for k, v in r["meters"].items())
        print(f"{r['id']}  {r['started_at']}  {r['status']:11s} {r['step']:>9,} / {r['budget']:<9,} "
              f"{r['preset'] or '-':24s} {r['name']}  {meters}")
    if not rows:
        print("no runs in the store yet", file=sys.stderr)
    return 0


def parse_seeds(text: str) -> tuple[int, ...]:
    """"100,101" or "100-109" as seeds; SweepError naming --seeds."""
    from ganlab.sweeps import SweepError
    seeds = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            low, dash, high = part.partition("-")
            seeds += range(int(low), int(high) + 1) if dash else [int(part)]
    except ValueError:
        raise SweepError("seeds", f"give whole numbers such as 100,101 or 100-109, got {text[:40]!r}") from None
    return tuple(seeds)


def sweep_table(sweep) -> list[str]:
    """The trials as text lines: settings, status, the mapped meter, and why a trial did not finish."""
    metric = sweep.spec.metric
    lines = [f"{'trial':>5} {'seed':>5} " + " ".join(f"{f:>12}" for f in sweep.spec.fields) +
             f" {'status':10s} {metric:>10}  reason"]
    for r in sweep.rows():
        value = r.get(metric)
        shown = "-" if value is None or value != value else f"{value:.4g}"
        lines.append(f"{r['trial']:>5} {r['seed']:>5} " + " ".join(f"{r[f]:>12.4g}" for f in sweep.spec.fields) +
                     f" {r['status']:10s} {shown:>10}  {r['reason'][:80]}")
    return lines


def cmd_sweep(args) -> int:
    from ganlab.speed import duration
    from ganlab.store import open_default
    from ganlab.sweeps import SweepError, SweepSpec, parse_axis, start_sweep
    try:
        spec = SweepSpec(args.preset, tuple(parse_axis(a) for a in args.axis), parse_seeds(args.seeds),
                         args.steps, args.metric)
        store, problem = open_default()   # trials are recorded as runs; the sweep's rows beside them
        if problem:
            print(problem, file=sys.stderr)
        sweep = start_sweep(spec, store, address=args.address, max_concurrent=args.max_concurrent)
    except SweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"sweep {sweep.id}: {sweep.total} trials of {spec.preset}", file=sys.stderr, flush=True)
    last = -1.0
    try:
        while not sweep.join(0.5):
            if time.monotonic() - last > 2:
                last = time.monotonic()
                done, total, left = sweep.progress()
                left = f", about {duration(max(left, 1))} left" if left is not None else ""
                print(f"[{sweep.status}] {done}/{total} trials done{left}  ({sweep.message})", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("stopping the sweep (Ctrl-C again to leave at once)...", file=sys.stderr, flush=True)
        sweep.stop()
        deadline = time.monotonic() + 60
        while not sweep.join(0.5) and time.monotonic() < deadline:
            pass
    print(f"{sweep.status}: {sweep.message}", file=sys.stderr)
    if args.json:
        print(json.dumps([_finite(r) for r in sweep.rows()]))
    else:
        print("\n".join(sweep_table(sweep)))
    return 0 if sweep.status in ("finished", "stopped") else 1


def cmd_bench(args) -> int:
    from ganlab import bench
    return bench.main(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganlab", description="ganlab from the command line")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("presets", help="list the presets")

    train = sub.add_parser("train", help="train a preset headless")
    train.add_argument("--preset", required=True, help="a slug from `python -m ganlab presets`")
    train.add_argument("--steps", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument("--device", choices=("auto", "cpu", "cuda"))
    train.add_argument("--data", help="MNIST folder (default: $GANLAB_DATA or ./data)")
    train.add_argument("--out", help="folder for the final sample grid (PNG)")
    train.add_argument("--json", action="store_true", help="print the final metrics as one JSON line")
    train.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE",
                       help="change one config field, e.g. --set loss.name=hinge --set opt_d.lr=4e-4 "
                            "(repeatable; values are read as JSON where they parse, else as text)")

    runs = sub.add_parser("runs", help="list the runs in the run store ($GANLAB_STORE), newest first")
    runs.add_argument("--json", action="store_true", help="print a JSON list of objects")

    export = sub.add_parser("export", help="print a preset as a standalone PyTorch training script")
    export.add_argument("--preset", required=True, help="a slug from `python -m ganlab presets`")
    export.add_argument("--out", help="write the script to this file instead")

    check = sub.add_parser("check-presets", help="train presets on fresh seeds; each promise against what it measured")
    check.add_argument("--preset", action="append", help="a preset to check (repeatable; default: all with promises)")
    check.add_argument("--seeds", type=int, default=10, help="how many seeds (default 10)")
    check.add_argument("--first-seed", type=int, default=FIRST_SEED,
                       help="the first seed (default 100: seeds below are for tuning presets)")
    check.add_argument("--steps", type=int, help="override the preset's budget")
    check.add_argument("--device", choices=("auto", "cpu", "cuda"))
    check.add_argument("--data", help="MNIST folder (default: $GANLAB_DATA or ./data)")
    check.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE",
                       help="change a setting of every checked preset (repeatable), e.g. opt_g.lr=5e-4")
    check.add_argument("--json", action="store_true", help="print the report as JSON")

    sweep = sub.add_parser("sweep", help="train a preset over a grid of settings and seeds on Ray Tune")
    sweep.add_argument("--preset", required=True, help="a slug from `python -m ganlab presets`")
    sweep.add_argument("--axis", action="append", required=True, metavar="SECTION.FIELD=KIND:LOW:HIGH:N",
                       help="a setting and its values, kind grid, log or random: e.g. opt_d.lr=log:1e-4:1e-1:4 "
                            "(once or twice)")
    sweep.add_argument("--seeds", default="100", help="seeds, e.g. 100,101 or 100-109 (default 100)")
    sweep.add_argument("--steps", type=int, help="each trial's budget (default: the preset's)")
    sweep.add_argument("--metric", help="the meter the table shows (default: the task's main meter, e.g. w1)")
    sweep.add_argument("--address", help="a Ray cluster, e.g. HEAD:6379 (default: $RAY_ADDRESS, else a local Ray)")
    sweep.add_argument("--max-concurrent", type=int, help="at most this many trials at once (default: what Ray fits)")
    sweep.add_argument("--json", action="store_true", help="print the trials as a JSON list of objects")

    bench = sub.add_parser("bench", help="measure training speed")
    bench.add_argument("target", nargs="?", default="gauss1d",
                       help="gauss1d, mnist, lockstep (four 1D runs in lockstep), stop (Stop's latency), sweep (16 "
                            "1D trials on a local Ray against one after another), or "
                            "memory (server memory per ended MNIST run, with and without the run store)")
    bench.add_argument("--compare", action="store_true",
                       help="MNIST MLP (seed 003) and DCGAN: the seed's DataLoader loop against ganlab's "
                            "eager path, fast path, and fast path inside a polled Run")
    from ganlab.models import models_for
    bench.add_argument("--model", help=f"mnist model: {', '.join(m.name for m in models_for('mnist'))} (default "
                                       f"mlp; with --compare, only that one); for stop: one state only")
    bench.add_argument("--seconds", type=float, help="time per measurement (default 10; 20 with --compare)")
    bench.add_argument("--steps", type=int, help="steps per run for bench lockstep (default 1000); stops per state for bench stop (10)")
    bench.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    bench.add_argument("--data", help="MNIST folder")
    bench.add_argument("--store", action="store_true",
                       help="gauss1d or mnist: a polled Run without and with the run store, in turns")
    bench.add_argument("--rounds", type=int, help="rounds of --store (default 3)")

    args = parser.parse_args(argv)
    from ganlab.data.mnist import MnistCorruptError, MnistNotFoundError
    try:
        return {"presets": cmd_presets, "train": cmd_train, "export": cmd_export,
                "bench": cmd_bench, "runs": cmd_runs, "check-presets": cmd_check_presets,
                "sweep": cmd_sweep}[args.command](args)
    except ConfigError as e:
        for one in e.errors:   # every bad setting, one a line
            print(f"error: {one}", file=sys.stderr)
        return 2
    except (KeyError, MnistNotFoundError, MnistCorruptError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
