"""The run store (ganlab.store): runs recorded as they train, read back after a restart, by other
processes, and by TensorBoard; a broken file or a full disk never stops training."""
import collections
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import types
import uuid
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny, wait_for
from ganlab import store as store_module
from ganlab.presets import get_preset
from ganlab.runs import RunRegistry
from ganlab.snapshots import Snapshot
from ganlab.store import INTERRUPTED, Store, StoreError, open_default

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    folder = tmp_path / "store"
    monkeypatch.setenv("GANLAB_STORE", str(folder))
    return folder


def finished(registry, cfg, name="gauss1d"):
    run = registry.create(cfg, name=name)
    assert run.join(120), "the run did not end"
    registry.store.flush()
    return run


def cli(*args, store: Path, **kw):
    env = {**os.environ, "GANLAB_STORE": str(store), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "ganlab", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


SMALL = ["--set", "model.g_hidden=16", "--set", "model.d_hidden=16", "--set", "train.batch_size=64",
         "--set", "train.snapshot_every=20"]


# -- a restart ------------------------------------------------------------------------------------

def test_a_run_recorded_by_one_registry_is_listed_with_its_curves_and_meters_by_a_fresh_one(store_dir):
    first = RunRegistry(store=Store(store_dir))
    run = finished(first, tiny(steps=300), name="before the restart")
    live = run.snapshot()

    again = RunRegistry(store=Store(store_dir))     # a new process over the same folder
    (stored,) = again.list()
    assert (stored.id, stored.name, stored.status, stored.step) == (run.id, "before the restart", "finished", 300)
    snap = again.get(run.id).snapshot()
    assert snap.status == "finished" and snap.total_steps == 300
    for name in ("loss_d", "loss_g", "d_real"):
        np.testing.assert_array_equal(snap.metrics[name], live.metrics[name])
    np.testing.assert_array_equal(snap.meters["step"], live.meters["step"])
    np.testing.assert_allclose(snap.meters["w1"], live.meters["w1"])
    np.testing.assert_array_equal(snap.views["p_g"], live.views["p_g"])     # the density chart's data
    assert stored.summary()["w1"] == pytest.approx(live.latest("w1"))
    assert stored.cfg == run.cfg


def test_the_history_in_the_store_is_bounded_as_in_memory(store_dir):
    registry = RunRegistry(store=Store(store_dir))
    run = finished(registry, tiny(steps=600, history_cap=16).replace(train={"snapshot_every": 10}))
    snap = Store(store_dir).stored_run(run.id).snapshot()
    assert snap.step == 600 and len(snap.metrics["step"]) <= 16
    np.testing.assert_array_equal(snap.metrics["step"], run.snapshot().metrics["step"])


def test_delete_and_retention_remove_runs_from_the_store(store_dir, monkeypatch):
    registry = RunRegistry(store=Store(store_dir))
    runs = [finished(registry, tiny(steps=60), name=f"run {i}") for i in range(3)]
    folder = registry.store.tensorboard_dir(runs[0].id, runs[0].name)
    assert folder.is_dir()
    registry.delete(runs[0].id)
    assert [r.id for r in Store(store_dir).stored_runs()] == [runs[2].id, runs[1].id]
    assert not folder.exists()

    monkeypatch.setenv("GANLAB_STORE_KEEP_RUNS", "2")
    newest = finished(registry, tiny(steps=60), name="run 3")
    assert [r.id for r in Store(store_dir).stored_runs()] == [newest.id, runs[2].id]


def test_opening_a_store_trims_it_to_the_retention_setting_and_keeps_running_rows(store_dir, monkeypatch):
    monkeypatch.delenv("GANLAB_STORE_KEEP_RUNS", raising=False)
    monkeypatch.delenv("GANLAB_STORE_KEEP_DAYS", raising=False)
    writer = Store(store_dir)   # a CLI process, say, filling the store while no server trims it
    cfg, now = get_preset("gauss1d").config, time.time()

    def recorded(name, created, status):
        run = Recorded(cfg, name, "gauss1d")
        run.created = run.started = created
        run.publish(10)
        writer.watch(run)
        writer.flush()
        if status != "running":
            run.alive = False
            run.publish(10, status=status)
            writer.flush()
        return run

    training = recorded("still training", now - 5 * 86400, "running")   # the oldest row, its process alive
    old = [recorded(f"old {i}", now - 3 * 86400 + i, "finished") for i in range(2)]
    new = [recorded(f"new {i}", now - 60 + i, status) for i, status in enumerate(("stopped", "finished", "failed"))]
    assert len(Store(store_dir).rows()) == 6                 # the defaults keep them all

    monkeypatch.setenv("GANLAB_STORE_KEEP_DAYS", "1")
    assert [r["id"] for r in Store(store_dir).rows()] == [r.id for r in new[::-1]] + [training.id]
    assert not writer.tensorboard_dir(old[0].id, old[0].name).exists()

    monkeypatch.setenv("GANLAB_STORE_KEEP_RUNS", "2")
    rows = Store(store_dir).rows()
    assert [r["id"] for r in rows] == [new[2].id, new[1].id, training.id]
    assert rows[-1]["status"] == "running"
    training.alive = False
    training.publish(10, status="stopped")
    writer.flush()                         # its recording ends with the test


def test_an_ended_run_gives_its_models_back_and_still_saves_explores_and_resumes(store_dir, tmp_path, monkeypatch):
    import gc
    import weakref

    import torch

    from ganlab import checkpoints
    from ganlab.runs import Run
    monkeypatch.setenv("GANLAB_SAVES", str(tmp_path / "saves"))
    registry = RunRegistry(store=Store(store_dir))
    run = registry.create(tiny(steps=200), name="kept", paused=True)
    assert wait_for(lambda: run.trainer is not None)
    models = [weakref.ref(run.trainer.G), weakref.ref(run.trainer.D), weakref.ref(run.trainer.opt_d)]
    run.resume()
    assert run.join(120)
    gc.collect()
    assert all(ref() is None for ref in models), "an ended run still holds its models"
    assert run.trainer is None and run.has_model and run.step == 200

    twin = Run(tiny(steps=200)).start()      # the same config and seed, kept in memory
    assert twin.join(120)
    ckpt = checkpoints.load(checkpoints.save(run))
    assert ckpt.step == 200
    for key, tensor in twin.trainer.G.state_dict().items():
        assert torch.equal(ckpt.state["G"][key], tensor)
    z = torch.randn(32, 1, generator=torch.Generator().manual_seed(7))
    expected = twin.generator_copy()(z)
    assert torch.equal(run.generator_copy()(z), expected)

    registry.store.close()                          # a restart: the process writes what is left at exit
    again = RunRegistry(store=Store(store_dir))
    stored = again.get(run.id)
    assert stored.has_model and torch.equal(stored.generator_copy()(z), expected)
    resumed = again.create(ckpt.cfg.replace(train={"steps": 300}), resume=checkpoints.load(checkpoints.save(stored)))
    assert resumed.join(120) and resumed.status == "finished" and resumed.step == 300


# -- processes: killed, and several at once ----------------------------------------------------------

def test_a_cli_run_killed_with_9_is_listed_as_interrupted_at_its_last_recorded_step(store_dir):
    proc = cli("train", "--preset", "gauss1d", "--steps", "1000000", *SMALL, store=store_dir)
    try:
        assert wait_for(lambda: store_dir.joinpath("runs.sqlite").exists(), 120)
        reader = Store(store_dir)
        assert wait_for(lambda: any(r["step"] >= 60 for r in reader.rows()), 180), proc.stderr.read()
        (row,) = reader.rows()
        assert row["status"] == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    (row,) = Store(store_dir).rows()
    assert row["status"] == INTERRUPTED and row["step"] >= 60
    out = cli("runs", "--json", store=store_dir).communicate(timeout=120)[0]
    (listed,) = json.loads(out)
    assert listed["status"] == INTERRUPTED and listed["step"] == row["step"] and listed["budget"] == 1_000_000
    assert listed["id"] == row["id"] and "w1" in listed["meters"]


def test_two_processes_and_this_one_record_into_one_store_at_once(store_dir):
    procs = [cli("train", "--preset", "gauss1d", "--steps", "400", "--seed", str(seed), *SMALL, store=store_dir)
             for seed in (1, 2)]
    here = RunRegistry(store=Store(store_dir))
    run = here.create(tiny(steps=400), name="this process")
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    assert run.join(120)
    here.store.flush()
    rows = Store(store_dir).rows()
    assert sorted(r["name"] for r in rows) == ["gauss1d", "gauss1d", "this process"]
    assert all(r["status"] == "finished" and r["step"] == 400 for r in rows)
    for stored in Store(store_dir).stored_runs():
        assert stored.snapshot().metrics["step"][-1] == 400


# -- bad files and full disks ------------------------------------------------------------------------

@pytest.mark.parametrize("content, words", [
    (b"this is no database, just text " * 100, "cannot be used as the run store"),
    ("foreign", "another program's SQLite database"),
])
def test_a_corrupt_or_foreign_store_file_is_refused_with_its_name_and_left_alone(store_dir, content, words):
    store_dir.mkdir()
    path = store_dir / "runs.sqlite"
    if content == "foreign":
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE notes (text TEXT)")
            db.execute("INSERT INTO notes VALUES ('mine')")
        db.close()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(StoreError) as info:
        Store(store_dir)
    assert str(path) in str(info.value) and words in str(info.value)
    store, problem = open_default()
    assert store is None and str(path) in problem and "\n" not in problem
    assert path.read_bytes() == before


def test_a_full_disk_stops_the_recording_never_the_training(store_dir, monkeypatch):
    real_write, writes = Store._write, []

    def filling_up(self, t, snap, now):
        writes.append(snap.step)
        if len(writes) > 1:
            raise sqlite3.OperationalError("database or disk is full")
        real_write(self, t, snap, now)

    monkeypatch.setattr(Store, "_write", filling_up)
    registry = RunRegistry(store=Store(store_dir))
    run = registry.create(tiny(steps=2000).replace(train={"snapshot_every": 20}), name="full disk")
    assert wait_for(lambda: registry.store.problem(run.id) is not None, 120)
    assert run.join(300)
    snap = run.snapshot()
    assert snap.status == "finished" and snap.step == 2000
    (event,) = [text for _, kind, text in snap.events if kind == "store"]
    assert "recording stopped" in event and "disk is full" in event
    assert "recording stopped" in registry.store.problem(run.id)


# -- TensorBoard, and sample grids -------------------------------------------------------------------

class Recorded:
    """A run-shaped object whose snapshots the test sets: what the store reads of a Run."""

    def __init__(self, cfg, name, page):
        self.id, self.name, self.page, self.cfg = uuid.uuid4().hex[:10], name, page, cfg
        self.device, self.lockstep, self.alive = "cpu", None, True
        self.created = self.started = time.time()
        self.ended = None
        self._publisher = types.SimpleNamespace(events=collections.deque())
        self.snap = None

    def snapshot(self):
        return self.snap

    def publish(self, step, status="running", grids=()):
        steps = np.arange(1, step + 1)
        self.snap = Snapshot(self.id, self.name, status, "", step, 1000, 1.0, 10.0, 640.0,
                             metrics={"step": steps, "loss_d": np.log1p(steps.astype(float))},
                             meters={"step": steps[::10], "fid": 100.0 / steps[::10]},
                             views={"loss": "bce-ns"}, images=tuple(grids))


def grid(step):
    return np.full((62, 62), step % 256, dtype=np.uint8)


def test_event_files_hold_the_scalars_grids_and_settings_and_the_store_keeps_the_ring(store_dir):
    from tensorboard.backend.event_processing import event_accumulator
    store = Store(store_dir)
    run = Recorded(get_preset("mnist-mlp-seed003").config, "mnist-mlp-seed003", "mnist")
    run.publish(0)
    store.watch(run)
    ring = collections.deque(maxlen=3)
    for step in (10, 20, 30, 40, 50):
        ring.append((step, grid(step)))
        run.publish(step, grids=ring)
        store.flush()
    run.alive = False
    run.publish(50, status="finished", grids=ring)
    store.flush()

    stored = Store(store_dir).stored_run(run.id)
    assert [s for s, _ in stored.snapshot().images] == [30, 40, 50]
    np.testing.assert_array_equal(stored.snapshot().images[-1][1], grid(50))

    acc = event_accumulator.EventAccumulator(str(store.tensorboard_dir(run.id, run.name)),
                                             size_guidance={event_accumulator.IMAGES: 0})
    acc.Reload()
    assert {"metrics/loss_d", "meters/fid"} <= set(acc.Tags()["scalars"])
    loss = acc.Scalars("metrics/loss_d")
    assert loss[-1].step == 50 and loss[-1].value == pytest.approx(np.log1p(50))
    assert [e.step for e in acc.Images("samples")] == [10, 20, 30, 40, 50]
    assert "_hparams_/session_start_info" in acc.summary_metadata


def test_a_write_waits_for_another_processs_transaction_instead_of_failing(store_dir):
    import threading
    registry = RunRegistry(store=Store(store_dir))
    run = registry.create(tiny(steps=100000).replace(train={"snapshot_every": 20}), name="waits")
    assert wait_for(lambda: any(r["step"] > 0 for r in Store(store_dir).rows()), 120)
    other = sqlite3.connect(store_dir / "runs.sqlite", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")          # another process holds the write lock for a while
    holding = threading.Timer(2 * store_module.FLUSH_SECONDS + 1, other.execute, ("COMMIT",))
    holding.start()
    step_then = run.step
    assert wait_for(lambda: run.step > step_then + 100, 120)
    holding.join()
    assert wait_for(lambda: Store(store_dir).rows()[0]["step"] > step_then, 60)
    run.stop()
    assert registry.store.problem(run.id) is None
    other.close()
