"""Sweeps on Ray Tune (ganlab.sweeps): a real local Ray, tiny 1D trials, on the CPU.

Ray starts once for the test session (conftest.ray_session: a small object store) and is shut down at
its end; the 2x2 sweep runs once and four tests read it.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny, wait_for
from ganlab import cost
from ganlab.config import Optim
from ganlab.cost import BudgetError
from ganlab.presets import PRESETS, Preset, register
from ganlab.store import Store
from ganlab.sweeps import Axis, SweepError, SweepSpec, load_sweep, shutdown_ray, start_sweep, sweep_listing

ROOT = Path(__file__).resolve().parents[1]
TINY = "test-sweep-tiny"   # plain SGD, which a huge learning rate really does blow up (Adam's steps stay small)


@pytest.fixture(scope="module", autouse=True)
def tiny_preset():
    register(Preset(TINY, "tiny 1D for the sweep tests",
                    tiny(steps=200).replace(opt_d=Optim("sgd", lr=0.01), opt_g=Optim("sgd", lr=0.01)), "tests"))
    yield
    PRESETS.pop(TINY, None)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return Store(tmp_path_factory.mktemp("sweep-store"))


@pytest.fixture(scope="module")
def grid_sweep(ray_session, store):
    """D's learning rate 0.01 and 10 (which diverges) x G's 0.01 and 0.1, on seed 100."""
    spec = SweepSpec(TINY, (Axis("opt_d.lr", "log", 0.01, 10, 2), Axis("opt_g.lr", "log", 0.01, 0.1, 2)))
    sweep = start_sweep(spec, store)
    assert sweep.join(600), sweep.rows()
    return sweep


def test_a_2x2_sweep_has_a_row_per_trial_and_marks_the_diverging_ones(grid_sweep):
    rows = grid_sweep.rows()
    assert grid_sweep.status == "finished", grid_sweep.message
    assert [(r["opt_d.lr"], r["opt_g.lr"]) for r in rows] == [(0.01, 0.01), (0.01, 0.1), (10.0, 0.01), (10.0, 0.1)]
    for r in rows[:2]:
        assert r["status"] == "finished" and r["reason"] == "" and r["step"] == 200, r
        assert r["run_id"] and math.isfinite(r["w1"]) and r["w1"] > 0
    for r in rows[2:]:
        assert r["status"] == "diverged", r
        assert "became NaN or infinite at step" in r["reason"]
    assert grid_sweep.progress()[:2] == (4, 4)
    curves = grid_sweep.curves(0)
    # Every snapshot the run published (at the start, then every 50 steps), however fast it ran.
    assert list(curves["step"]) == [0, 50, 100, 150, 200] and len(curves["w1"]) == 5
    assert all(math.isfinite(v) for v in curves["loss_d"][1:])   # no loss before the first step


def test_each_trial_is_an_ordinary_run_in_the_run_store(grid_sweep, store):
    runs = {r["id"]: r for r in store.rows()}
    for row in grid_sweep.rows():
        assert runs[row["run_id"]]["status"] == row["status"]


def test_a_trials_config_run_alone_gives_the_same_final_meters(grid_sweep):
    """Bit for bit, under the threads Ray gives a one-CPU trial (OMP_NUM_THREADS=1: numpy's BLAS threads
    change the last digit of W1)."""
    row = grid_sweep.rows()[1]
    alone = ("import json, sys; from ganlab.config import Experiment; from ganlab.runs import Run; "
             "run = Run(Experiment.from_dict(json.loads(sys.argv[1]))).start(); run.join(); snap = run.snapshot(); "
             "print(json.dumps({'status': snap.status, **{k: snap.latest(k) for k in snap.meters}}))")
    out = subprocess.run([sys.executable, "-c", alone, json.dumps(grid_sweep.cfg_of(1).to_dict())], cwd=ROOT,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    meters = json.loads(out.stdout.splitlines()[-1])
    assert meters["status"] == "finished"
    for name in ("w1", "ks", "fake_mean", "fake_std"):
        assert meters[name] == row[name], name


def test_a_fresh_store_reads_the_sweep_back(grid_sweep, store):
    again = Store(store.root)
    listed = [s for s in sweep_listing(again) if s["id"] == grid_sweep.id]
    assert [(s["status"], s["done"], s["total"], s["fields"]) for s in listed] == \
        [("finished", 4, 4, ("opt_d.lr", "opt_g.lr"))]
    back = load_sweep(again, grid_sweep.id)
    assert back.status == "finished" and back.spec == grid_sweep.spec
    assert back.rows() == grid_sweep.rows()
    assert list(back.curves(0)["w1"]) == list(grid_sweep.curves(0)["w1"])


def test_stop_ends_a_sweep_of_long_trials(ray_session, store):
    spec = SweepSpec(TINY, (Axis("opt_d.lr", "grid", 0.01, 0.02, 2),), seeds=(100, 101), steps=10_000_000)
    sweep = start_sweep(spec, store, max_concurrent=1)
    try:
        assert wait_for(lambda: any(r["step"] > 0 for r in sweep.rows()), timeout=600), sweep.rows()
    finally:
        sweep.stop()
    assert sweep.join(300)
    rows = sweep.rows()
    assert sweep.status == "stopped"
    assert [r["status"] for r in rows] == ["stopped"] * 4
    assert [bool(r["run_id"]) for r in rows] == [True, False, False, False]   # the pending ones never started
    assert sweep.message == "stopped: 0 trials had ended, 1 was cut short and 3 never started"
    assert sweep.progress()[:2] == (0, 4)     # none ran to its end
    assert [r["reason"] for r in rows[1:]] == ["the sweep was stopped before this trial started"] * 3
    # The trial's run was stopped too, not left training (or reading "running") in Ray's worker. Tune
    # ends a stopped trial's process without waiting for its thread (FunctionTrainable.cleanup), so on a
    # starved CPU the process may go before the run has written its end: it then reads "interrupted".
    assert wait_for(lambda: store.rows(rows[0]["run_id"])[0]["status"] in ("stopped", "interrupted"), timeout=60), \
        store.rows(rows[0]["run_id"])[0]["status"]


def test_shutting_ray_down_stops_the_running_sweep_first(ray_session, store):
    # Tune, still fitting after ray.shutdown(), would start a Ray of its own, which later died with the
    # process ("Failed to connect to GCS ... The program will terminate").
    import ray
    spec = SweepSpec(TINY, (Axis("opt_d.lr", "grid", 0.01, 0.02, 2),), steps=10_000_000)
    sweep = start_sweep(spec, store, max_concurrent=1)
    try:
        assert wait_for(lambda: any(r["status"] == "running" for r in sweep.rows()), timeout=600), sweep.rows()
    finally:
        shutdown_ray()
    assert sweep.join(0) and sweep.status == "stopped", sweep.message
    assert not ray.is_initialized()


@pytest.mark.parametrize("make, field", [
    (lambda: Axis("opt_d.lrx", "log", 1e-4, 1e-1, 4), "opt_d.lrx"),
    (lambda: Axis("opt_d.lr", "log", 0, 1e-1, 4), "opt_d.lr"),
    (lambda: Axis("opt_d.lr", "grid", 1e-1, 1e-4, 4), "opt_d.lr"),
    (lambda: Axis("opt_d.lr", "grid", 1e-4, 1e-1, 13), "opt_d.lr"),
    (lambda: Axis("train.seed", "grid", 1, 4, 4), "train.seed"),
    (lambda: SweepSpec("gauss1d", (Axis("opt_g.lr", "grid", 5, 20, 2),)), "opt_g.lr"),
    (lambda: SweepSpec("gauss1d", (Axis("toy2d.radius", "grid", 1, 2, 2),)), "toy2d.radius"),
    (lambda: SweepSpec("gauss1d", (Axis("opt_g.lr", "grid", 1e-3, 2e-3, 2),), seeds=(1, 1)), "seeds"),
    (lambda: SweepSpec("no-such", (Axis("opt_g.lr", "grid", 1e-3, 2e-3, 2),)), "preset"),
])
def test_a_bad_spec_is_a_sweep_error_naming_the_field(make, field):
    with pytest.raises(SweepError) as e:
        make()
    assert e.value.field == field and str(e.value).startswith(field)


def test_axis_values():
    assert Axis("opt_d.lr", "log", 1e-4, 1e-1, 4).values() == [1e-4, 1e-3, 1e-2, 1e-1]
    steps = Axis("train.d_steps", "grid", 1, 2, 4).values()   # 1, 1.33, 1.67, 2: whole numbers, each once
    assert steps == [1, 2] and all(type(v) is int for v in steps)
    drawn = Axis("opt_d.lr", "random", 1e-4, 1e-1, 6)
    assert drawn.values(0) == drawn.values(0) != drawn.values(1)
    assert all(1e-4 <= v <= 1e-1 for v in drawn.values(0))


def test_a_spec_round_trips_through_json_and_makes_the_product_of_its_axes():
    spec = SweepSpec("gauss1d", (Axis("opt_d.lr", "log", 1e-4, 1e-1, 4), Axis("train.d_steps", "grid", 1, 2, 2)),
                     seeds=(100, 101), steps=500)
    assert SweepSpec.from_json(spec.to_json()) == spec and spec.metric == "w1"
    trials = spec.trials()
    assert len(trials) == 16
    t = trials[5]
    assert (t.params, t.seed) == ({"opt_d.lr": 1e-3, "train.d_steps": 1}, 101)
    assert (t.cfg.opt_d.lr, t.cfg.train.d_steps, t.cfg.train.seed, t.cfg.train.steps) == (1e-3, 1, 101, 500)
    assert t.cfg.opt_g == PRESETS["gauss1d"].config.opt_g


def test_the_cli_names_a_bad_axis_and_exits_2(capsys):
    from ganlab.__main__ import main
    assert main(["sweep", "--preset", "gauss1d", "--axis", "opt_d.lr=log:1e-4:1e-1:4",
                 "--axis", "opt_g.lr=log:-1:1e-1:4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: opt_g.lr:") and "low > 0" in err


def test_the_cli_runs_a_sweep_and_prints_its_rows_as_json(ray_session, capsys, monkeypatch, tmp_path):
    from ganlab.__main__ import main
    monkeypatch.setenv("GANLAB_STORE", str(tmp_path))
    assert main(["sweep", "--preset", TINY, "--axis", "opt_g.lr=grid:0.01:0.02:2", "--steps", "100",
                 "--json"]) == 0
    out = capsys.readouterr()
    rows = json.loads(out.out)
    assert [(r["opt_g.lr"], r["status"], r["step"]) for r in rows] == [(0.01, "finished", 100), (0.02, "finished", 100)]
    assert "trials done" in out.err


def test_a_store_from_before_sweeps_gets_the_sweep_tables_and_keeps_its_runs(tmp_path):
    import sqlite3
    old = Store(tmp_path)
    old.close()
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    db.executescript("DROP TABLE sweep_trials; DROP TABLE sweeps; PRAGMA user_version = 1;")
    db.execute("INSERT INTO runs (id, name, page, preset, grp, task, model, loss, device, config, status, message, "
               "step, budget, created, updated, elapsed, steps_per_s, latest, pid, pid_start, host, beat, problem) "
               "VALUES ('r1', 'old run', 'gauss1d', '', '', 'gauss1d', 'mlp1d', 'bce-ns', 'cpu', '{}', 'finished', "
               "'', 10, 10, 1, 1, 1, 1, '{}', 1, '', 'h', 1, '')")
    db.commit()
    db.close()
    again = Store(tmp_path)
    assert again.sweeps() == [] and [r["id"] for r in again.rows()] == ["r1"]
    assert again._db().execute("PRAGMA user_version").fetchone()[0] == 2


def test_a_trial_that_finished_with_mode_collapse_sounding_is_collapsed():
    from ganlab.alarms import Alarm
    from ganlab.snapshots import Snapshot
    from ganlab.sweeps import trial_outcome
    collapse = Alarm("mode_collapse", 900, "Mode collapse: G draws only 1 of the 2 modes.", "Try a Wasserstein loss.")

    def ended(status, message="", alarms=()):
        return Snapshot("r", "n", status, message, 1000, 1000, 1.0, 0.0, 0.0, alarms=alarms)

    assert trial_outcome(ended("finished", alarms=(collapse,))) == (
        "collapsed", "Mode collapse: G draws only 1 of the 2 modes. Try a Wasserstein loss.")
    expected = Alarm("mode_collapse", 900, "Mode collapse.", expected=True)   # the preset's warm-up says so
    assert trial_outcome(ended("finished", alarms=(expected,))) == ("finished", "")
    assert trial_outcome(ended("diverged", "loss_d became NaN\nat step 4")) == ("diverged", "loss_d became NaN at step 4")


def test_a_failed_trial_is_recorded_with_its_reason_and_the_others_go_on(ray_session, store):
    # D 8,192 wide and 16 deep is a valid setting, but over any ordinary machine's budget for one run
    # (ganlab.cost: 16.5 GB, and 14 s an update on 2 cores): its trial fails before it builds anything,
    # on the machine that runs it, and says why in one line. The one 16 wide trains as usual.
    deep = "test-sweep-deep-d"
    register(Preset(deep, "tiny 1D with a 16-layer D", tiny(steps=200).replace(model={"d_depth": 16}), "tests"))
    try:
        spec = SweepSpec(deep, (Axis("model.d_hidden", "grid", 16, 8192, 2),))
        with pytest.raises(BudgetError):     # the premise, on the machine that runs this test
            cost.check(spec.trials()[1].cfg)
        sweep = start_sweep(spec, store)
        assert sweep.join(600), sweep.rows()
    finally:
        PRESETS.pop(deep, None)
    narrow, wide = sweep.rows()
    assert sweep.status == "finished" and narrow["status"] == "finished" and narrow["w1"] is not None
    assert wide["status"] == "failed" and wide["reason"].startswith("model:") and "\n" not in wide["reason"]
    assert "16.5 GB" in wide["reason"]
    assert sweep.message == "1 of 2 trials ran to the end; 1 failed"


def test_a_trial_asks_ray_for_a_quarter_gpu_where_the_cluster_has_gpus_and_for_its_threads_otherwise(monkeypatch):
    # No GPU is lent to CI: Ray's view of the cluster is what decides, so it is set here.
    import ray
    from ganlab.sweeps import _resources
    cfg = tiny()                                               # device "auto"
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 16.0, "GPU": 2.0})
    assert _resources(cfg) == ({"cpu": 1, "gpu": 0.25}, True)  # four trials share a GPU
    assert _resources(cfg.replace(train={"device": "cpu"})) == ({"cpu": 1}, False)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    assert _resources(cfg) == ({"cpu": 1}, False)
    assert _resources(cfg.replace(train={"cpu_threads": 2})) == ({"cpu": 2}, False)
