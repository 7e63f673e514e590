"""The run lifecycle: a background thread that starts, pauses, steps, stops and fails visibly."""
import threading
import time

import numpy as np
import pytest
import torch

from ganlab.config import Optim
from ganlab.runs import ACTIVE, History, Run, RunError, RunRegistry


from conftest import tiny, wait_for


def training_threads():
    return [t for t in threading.enumerate() if t.name.startswith("ganlab-run-")]


def test_a_run_trains_to_its_budget_and_publishes_cpu_arrays():
    run = Run(tiny(steps=120)).start()
    assert run.join(60)
    snap = run.snapshot()
    assert snap.status == "finished" and snap.step == 120
    assert len(snap.metrics["step"]) == 120 and snap.metrics["step"][-1] == 120
    assert np.isfinite(snap.metrics["loss_d"]).all()
    assert snap.meters["step"][-1] == 120 and snap.meters["w1"][-1] > 0
    for value in list(snap.metrics.values()) + list(snap.meters.values()):
        assert isinstance(value, np.ndarray)
    assert isinstance(snap.views["p_g"], np.ndarray) and not any(
        isinstance(v, torch.Tensor) for v in snap.views.values())
    assert not run.alive


def test_pause_single_steps_resume_and_stop():
    run = Run(tiny(steps=100_000)).start(paused=True)
    assert wait_for(lambda: run.snapshot().status == "paused")
    t = run.trainer
    run.step_once("d")
    assert wait_for(lambda: t.step == 1)
    assert (t.d_updates, t.g_updates) == (1, 0)
    run.step_once("g")
    run.step_once("both")
    assert wait_for(lambda: t.step == 3)
    assert (t.d_updates, t.g_updates) == (2, 2)
    assert wait_for(lambda: run.snapshot().step == 3)       # each single step is published
    time.sleep(0.3)
    assert t.step == 3                                       # still paused
    run.resume()
    assert wait_for(lambda: run.snapshot().step > 100)
    run.pause()
    assert wait_for(lambda: run.snapshot().status == "paused")
    paused_at = t.step
    time.sleep(0.3)
    assert t.step == paused_at
    start = time.monotonic()
    assert run.stop(wait=5)
    assert time.monotonic() - start < 1.0
    assert run.snapshot().status == "stopped"


def test_stop_while_running_takes_effect_within_a_second_and_leaves_no_thread():
    run = Run(tiny(steps=10_000_000)).start()
    assert wait_for(lambda: run.snapshot().step >= 50)
    start = time.monotonic()
    assert run.stop(wait=5)
    assert time.monotonic() - start < 1.0
    assert run.snapshot().status == "stopped"
    assert not run.alive
    assert not [t for t in training_threads() if t.name.endswith(run.id)]


def test_stop_while_paused_wakes_the_thread():
    run = Run(tiny(steps=10_000)).start(paused=True)
    assert wait_for(lambda: run.snapshot().status == "paused")
    start = time.monotonic()
    assert run.stop(wait=5)
    assert time.monotonic() - start < 1.0
    assert run.snapshot().status == "stopped" and not run.alive


def test_an_exception_in_the_thread_becomes_status_failed_with_its_message():
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA to make the run fail")
    run = Run(tiny(device="cuda")).start()
    assert run.join(30)
    snap = run.snapshot()
    assert snap.status == "failed"
    assert "CUDA" in snap.message and "no CUDA GPU" in snap.message


def test_a_nan_loss_stops_the_run_as_diverged_naming_the_step():
    exploding = Optim("sgd", lr=10.0, beta1=0.9)
    run = Run(tiny(steps=5000).replace(opt_g=exploding, opt_d=exploding)).start()
    assert run.join(30)
    snap = run.snapshot()
    assert snap.status == "diverged"
    assert "at step" in snap.message and "NaN or infinite" in snap.message
    step = int(snap.message.split("at step ")[1].split(";")[0])
    assert 1 <= step < 50
    assert snap.events and snap.events[0][1] == "divergence"


def test_controls_on_an_ended_run_do_the_sensible_thing():
    run = Run(tiny(steps=20)).start()
    assert run.join(30)
    assert run.stop() is True                  # stop on a finished run: nothing to do
    assert run.snapshot().status == "finished"
    with pytest.raises(RunError):
        run.start()                            # a run starts once
    with pytest.raises(RunError):
        run.step_once("both")


def test_history_stays_bounded_and_spans_the_whole_run():
    h = History(("a",), cap=16)
    for start in range(1, 100_001, 1000):
        steps = np.arange(start, start + 1000)
        h.extend(steps, steps[:, None].astype(float))
    frame = h.frame()
    assert len(frame["step"]) <= 16
    # evenly spread: gaps of at most 2 * span / cap, from start to end
    assert frame["step"][0] <= 100_000 // 8 and frame["step"][-1] >= 100_000 - 100_000 // 8
    assert np.diff(frame["step"]).max() <= 100_000 // 8
    np.testing.assert_array_equal(frame["a"], frame["step"])


def test_a_long_run_keeps_a_bounded_history():
    run = Run(tiny(steps=3000, history_cap=32)).start()
    assert run.join(120)
    snap = run.snapshot()
    assert snap.step == 3000
    assert len(snap.metrics["step"]) <= 32 and len(snap.meters["step"]) <= 32
    assert snap.metrics["step"][-1] >= 3000 - 3000 // 16


def test_registry_runs_several_at_once_and_enforces_its_limit():
    registry = RunRegistry(max_active=3)
    runs = [registry.create(tiny(steps=10_000_000, seed=i), name=f"r{i}") for i in range(3)]
    with pytest.raises(RunError, match="limit is 3"):
        registry.create(tiny())
    assert wait_for(lambda: all(r.snapshot().step >= 50 for r in runs))
    assert {r.id for r in registry.list()} == {r.id for r in runs}
    registry.delete(runs[0].id)
    assert registry.get(runs[0].id) is None and not runs[0].alive
    registry.create(tiny(steps=10), name="fits now")
    registry.stop_all()
    assert not any(r.alive for r in registry.list())


def test_registry_is_safe_under_concurrent_creates():
    registry = RunRegistry(max_active=100)
    errors = []

    def create():
        try:
            registry.create(tiny(steps=5), start=False)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=create) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(registry.list()) == 16


def test_an_alarm_is_recorded_as_an_event_and_can_pause_the_run():
    # Two far-apart modes and a G that barely learns: it covers neither mode,
    # which the collapse alarm reports once its warm-up has passed.
    from ganlab.config import Target1D
    cfg = tiny(steps=5000, pause_on_alarm=True).replace(
        target=Target1D(kind="mixture", means=(-6.0, 6.0), stds=(0.2, 0.2), weights=(0.5, 0.5)),
        opt_g=Optim("adam", lr=1e-6))
    run = Run(cfg).start()
    assert wait_for(lambda: run.snapshot().status == "paused", timeout=60)
    snap = run.snapshot()
    assert snap.step < 5000
    assert [a.kind for a in snap.alarms] == ["mode_collapse"]
    assert "of the 2 modes" in snap.alarms[0].text
    assert any(kind == "mode_collapse" for _, kind, _ in snap.events)
    assert snap.meters["modes_covered"][-1] == 0
    assert run.stop()


def test_borrow_lends_the_models_between_two_steps():
    assert Run(tiny()).borrow().__enter__() is None            # no models before the thread builds them
    run = Run(tiny(steps=10_000_000)).start()
    assert wait_for(lambda: run.step >= 5 and run.has_model)
    with run.borrow() as trainer:
        step, weights = trainer.step, {k: v.clone() for k, v in trainer.G.state_dict().items()}
        assert not wait_for(lambda: run.step != step, timeout=0.3)       # training waits for the borrower
        assert all(torch.equal(v, trainer.G.state_dict()[k]) for k, v in weights.items())
    assert wait_for(lambda: run.step > step)                              # and goes on once it is back
    assert run.stop(wait=5)


def test_the_config_changes_only_on_the_runs_thread():
    run = Run(tiny(steps=10_000_000)).start(paused=True)
    assert wait_for(lambda: run.status == "paused")
    before = run.cfg
    run.set_save_every(1000)
    run.reconfigure(lr_g=1e-4)
    assert wait_for(lambda: run.cfg.train.save_every == 1000 and run.cfg.opt_g.lr == 1e-4)
    assert before.train.save_every == 0 and before.opt_g.lr != 1e-4     # replaced, never changed in place
    assert run.trainer.cfg.opt_g.lr == 1e-4
    assert run.stop(wait=5)


def test_runs_past_a_limit_wait_their_turn_in_order_when_asked_to_queue():
    registry = RunRegistry(max_active=2, per_owner=1)
    first = registry.create(tiny(steps=10_000_000, seed=1), name="a1", owner="a")
    with pytest.raises(RunError, match="limit is 1 a browser"):
        registry.create(tiny(), name="a0", owner="a")          # without queue: refused, as before
    second = registry.create(tiny(steps=10_000_000, seed=2), name="a2", owner="a", queue=True)
    other = registry.create(tiny(steps=10_000_000, seed=3), name="b1", owner="b")
    third = registry.create(tiny(steps=10_000_000, seed=4), name="c1", owner="c", queue=True)
    gone = registry.create(tiny(steps=10_000_000, seed=5), name="c2", owner="c", queue=True)
    try:
        assert first.status in ACTIVE and other.status in ACTIVE
        assert (registry.place(second), registry.place(third), registry.place(gone)) == (1, 2, 3)
        assert second.status == "created"                       # waiting: a's limit is 1
        with pytest.raises(RunError, match="the limit is 2"):
            registry.create(tiny(), name="d1", owner="d")
        gone.stop()
        assert registry.place(gone) is None
        first.stop()
        assert wait_for(lambda: second.status in ACTIVE)       # a's turn: its own limit freed
        assert registry.place(third) == 1 and third.status == "created"   # the server's limit holds
        other.stop()
        assert wait_for(lambda: third.status in ACTIVE)
        assert gone.status == "stopped" and registry.place(third) is None
    finally:
        registry.stop_all()


def test_training_threads_give_way_to_the_threads_that_answer_pages():
    import os
    run = Run(tiny(steps=10_000_000)).start()
    try:
        assert wait_for(lambda: run.status == "running")
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, run._thread.native_id) == min(19, mine + 10)
    finally:
        run.stop()


def test_training_steps_hold_back_while_a_page_answers_and_never_for_long(monkeypatch):
    from ganlab.worker import Foreground
    gate = Foreground()
    released = threading.Event()
    with gate.serving():
        waiter = threading.Thread(target=lambda: (gate.wait_turn(), released.set()))
        waiter.start()
        assert not released.wait(0.3)              # held back while the page is being served
    assert released.wait(10)                       # and free as soon as the answer is out
    monkeypatch.setattr(Foreground, "MAX_WAIT", 0.05)
    with gate.serving():
        gate.wait_turn()                           # a page that never ends cannot stall training


def test_an_ended_run_gives_back_its_digits_and_keeps_what_save_and_the_page_need(mnist_dir, tmp_path):
    # A class's server holds dozens of ended runs; an MNIST run's digits on the device are
    # most of its memory, and nothing needs them once training is over.
    import gc
    import weakref

    from ganlab import checkpoints
    from ganlab.presets import PRESETS
    cfg = PRESETS["mnist-mlp-seed003"].config.replace(
        train={"steps": 4, "batch_size": 16, "snapshot_every": 2, "data_dir": str(mnist_dir), "device": "cpu"})
    run = RunRegistry().create(cfg, name="digits", paused=True)
    assert wait_for(lambda: run.status == "paused", 60)
    with run.borrow() as trainer:
        digits = weakref.ref(trainer.task.images)
    run.resume()
    assert run.join(60) and run.status == "finished"
    gc.collect()
    assert digits() is None, "an ended run still holds its training digits"
    assert run.snapshot().images[-1][0] == 4                                         # the page still draws it
    saved = checkpoints.load(checkpoints.save(run, tmp_path / "saved"))                     # and Save still works
    assert saved.step == 4
    assert run.generator_copy() is not None                                           # and so does Explore
