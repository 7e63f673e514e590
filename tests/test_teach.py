"""Teaching controls in the engine: slow motion stage by stage, and changes between steps."""
import numpy as np
import pytest
import torch

from ganlab import charts
from ganlab.config import ConfigError, Loss
from ganlab.runs import Run, RunError
from ganlab.teach import STAGES, SlowMotion, reconfigured
from ganlab.train import Trainer

from conftest import tiny, wait_for


def weights(model):
    return torch.cat([p.detach().flatten().clone() for p in model.parameters()])


def stage_of(run):
    return run.snapshot().views.get("stage")


def paused_run(cfg):
    run = Run(cfg).start(paused=True)
    assert wait_for(lambda: run.snapshot().status == "paused")
    return run


def test_slow_motion_advances_stage_by_stage():
    run = paused_run(tiny(steps=1000, device="cpu"))
    t = run.trainer
    try:
        g0, d0 = weights(t.G), weights(t.D)
        seen = []
        for i, name in enumerate(STAGES):
            run.step_stage()
            assert wait_for(lambda: (stage_of(run) or {}).get("number") == i + 1)
            snap = run.snapshot()
            stage = snap.views["stage"]
            seen.append(stage["stage"])
            assert stage["caption"] and stage["title"]
            assert snap.step == (1 if name == "g_update" else 0)      # the step counts once it is complete
            g, d = weights(t.G), weights(t.D)
            # Weights change only at the update stages: D's at stage 4, G's at stage 6.
            assert torch.equal(d, d0) == (i < 3)
            assert torch.equal(g, g0) == (i < 5)
            for value in stage.values():
                assert not isinstance(value, torch.Tensor)
        assert seen == list(STAGES)
    finally:
        run.stop()
    assert (t.d_updates, t.g_updates, t.step) == (1, 1, 1)


def test_each_stage_carries_its_data():
    t = Trainer(tiny(device="cpu"))
    slow = SlowMotion(t)
    views = [slow.advance() for _ in STAGES]
    sample, predict, d_loss, d_update, g_loss, g_update = views
    assert sample["real"].shape == sample["fake"].shape == (64, 1)
    assert "d_real" not in sample and "loss_d" not in predict
    assert len(predict["d_real"]) == 64 and ((0 <= predict["d_fake"]) & (predict["d_fake"] <= 1)).all()
    assert np.isfinite(d_loss["loss_d"]) and f"{d_loss['loss_d']:.3f}" in d_loss["caption"]
    assert d_update["d_curve"].shape == d_update["d_curve_after"].shape == (len(d_update["grid"]),)
    assert not np.array_equal(d_update["d_curve"], d_update["d_curve_after"])    # D moved
    # G's push is the direction that lowers G's loss: towards higher D, so its sign follows D's slope.
    slope = np.interp(g_loss["fake"].ravel(), g_loss["grid"].ravel()[1:], np.diff(g_loss["d_curve"]))
    push = g_loss["push"].ravel()
    clear = np.abs(slope) > 1e-4
    assert clear.any() and (np.sign(push[clear]) == np.sign(slope[clear])).mean() > 0.9
    assert g_update["fake_after"].shape == g_update["fake"].shape
    assert not np.array_equal(g_update["fake_after"], g_update["fake"])          # G moved
    assert g_update["done"] and t.step == 1


@pytest.mark.parametrize("cfg", [tiny(device="cpu"), tiny(device="cpu", fast=False),
                                 tiny(device="cpu", d_steps=3).replace(loss=Loss("wgan-gp"))],
                         ids=["fast", "eager", "wgan-gp-k3"])
def test_a_slow_motion_iteration_is_exactly_a_training_step(cfg):
    # Same seed, same code: walking the stages must not change what training does.
    a, b = Trainer(cfg), Trainer(cfg)
    for _ in range(3):
        a.train_step()
    b.train_step()
    slow = SlowMotion(b)
    while not slow.done:
        slow.advance()
    b.train_step()
    assert (a.step, a.d_updates, a.g_updates) == (b.step, b.d_updates, b.g_updates)
    np.testing.assert_array_equal(a.flush()[1], b.flush()[1])
    assert torch.equal(weights(a.G), weights(b.G)) and torch.equal(weights(a.D), weights(b.D))


def test_with_k_d_steps_the_d_stages_repeat_and_say_which():
    slow = SlowMotion(Trainer(tiny(device="cpu", d_steps=3)))
    views = []
    while not slow.done:
        views.append(slow.advance())
    assert [v["stage"] for v in views] == list(STAGES[:4]) * 3 + list(STAGES[4:])
    assert views[4]["caption"].startswith("D step 2 of 3")
    assert not views[-1]["caption"].startswith("D step")


def test_another_control_completes_a_half_shown_iteration_first():
    run = paused_run(tiny(steps=1000, device="cpu"))
    try:
        run.step_stage()
        run.step_stage()
        assert wait_for(lambda: (stage_of(run) or {}).get("number") == 2)
        run.step_once("both")
        assert wait_for(lambda: run.snapshot().step == 2)
        assert (run.trainer.d_updates, run.trainer.g_updates) == (2, 2)
        assert "stage" not in run.snapshot().views      # the stage view went with its iteration
    finally:
        run.stop()


def test_reconfigure_changes_lr_k_and_loss_without_resetting_the_run():
    run = paused_run(tiny(steps=1000, device="cpu"))
    t = run.trainer
    try:
        for _ in range(3):
            run.step_once("both")
        assert wait_for(lambda: run.snapshot().step == 3)
        assert run.snapshot().views["critic"] is False
        lines = run.reconfigure(lr_g=1e-4, lr_d=5e-4, d_steps=2, loss="wgan-gp")
        assert lines == ["lr_g 0.0002 → 0.0001", "lr_d 0.0002 → 0.0005", "d_steps 1 → 2",
                         "loss bce-ns → wgan-gp"]
        assert wait_for(lambda: len(run.snapshot().events) == 4)
        assert run.snapshot().events[0] == (3, "change", "step 3: lr_g 0.0002 → 0.0001")
        assert t.opt_g.param_groups[0]["lr"] == 1e-4 and t.opt_d.param_groups[0]["lr"] == 5e-4
        assert run.cfg.loss.name == "wgan-gp" and t.loss.name == "wgan-gp"
        run.step_once("both")
        assert wait_for(lambda: run.snapshot().step == 4)
        snap = run.snapshot()
        assert (t.d_updates, t.g_updates) == (3 + 2, 4)                 # k = 2 from now on
        assert list(snap.metrics["step"]) == [1, 2, 3, 4]               # the history goes on
        assert snap.views["critic"] is True                             # the page now draws a critic
        assert np.isfinite(snap.metrics["gp_grad_norm"][-1]) and snap.metrics["gp_grad_norm"][-1] > 0
    finally:
        run.stop()


def test_a_change_during_slow_motion_waits_for_the_iteration_to_end():
    run = paused_run(tiny(steps=1000, device="cpu"))
    t = run.trainer
    try:
        for number in (1, 2):
            run.step_stage()
            assert wait_for(lambda: (stage_of(run) or {}).get("number") == number)
        run.reconfigure(d_steps=2)     # requests are taken in order: it comes before stage 3
        for number in (3, 4, 5, 6):
            run.step_stage()
            assert wait_for(lambda: (stage_of(run) or {}).get("number") == number)
            assert "D step" not in stage_of(run)["caption"] and t.cfg.train.d_steps == (2 if number == 6 else 1)
        assert run.snapshot().events == ((1, "change", "step 1: d_steps 1 → 2"),)
        run.step_once("both")
        assert wait_for(lambda: run.snapshot().step == 2)
        assert t.d_updates == 1 + 2
    finally:
        run.stop()


def test_reconfigure_refuses_bad_values_and_ended_runs():
    run = paused_run(tiny(steps=1000, device="cpu"))
    with pytest.raises(ConfigError):
        run.reconfigure(lr_g=-1.0)
    with pytest.raises(ConfigError):
        run.reconfigure(loss="no-such-loss")
    with pytest.raises(ValueError):
        run.reconfigure(batch_size=8)
    assert run.reconfigure(lr_g=run.cfg.opt_g.lr) == []          # no change, no event
    run.stop()
    with pytest.raises(RunError):
        run.reconfigure(lr_g=1e-3)
    with pytest.raises(RunError):
        run.step_stage()


def test_reconfigured_lists_only_what_changed():
    cfg = tiny()
    new, lines = reconfigured(cfg, lr_g=cfg.opt_g.lr, d_steps=4)
    assert lines == ["d_steps 1 → 4"] and new.train.d_steps == 4 and new.opt_g == cfg.opt_g


def test_stage_figure_draws_each_stage():
    t = Trainer(tiny(device="cpu"))
    views, _ = t.probe()
    slow = SlowMotion(t)
    names = {}
    for stage in STAGES:
        fig = charts.stage_figure_1d(slow.advance(), views)
        names[stage] = {tr.name for tr in fig.data}
        assert f"{STAGES.index(stage) + 1}." in fig.layout.title.text
    assert {"real points", "fake points", "D(x)"} <= names["sample"]
    assert {"D(x) on real", "D(x) on fake"} <= names["d_predict"]
    assert {"D(x) before", "D(x) after"} <= names["d_update"]
    assert "G's push on each fake" in names["g_loss"]
    assert {"fakes before", "fakes after"} <= names["g_update"]


def test_stage_figure_arrows_point_the_way_of_the_push():
    stage = {"stage": "g_loss", "number": 5, "title": "G's loss and gradients", "iteration": 1, "d_steps": 1,
             "grid": np.linspace(-1, 1, 21)[:, None], "d_curve": np.linspace(0.2, 0.8, 21),
             "fake": np.array([[0.0], [0.5]]), "push": np.array([[1.0], [-2.0]]), "critic": False}
    fig = charts.stage_figure_1d(stage)
    arrows = [tr for tr in fig.data if tr.name == "G's push on each fake"][0]
    xs = [x for x in arrows.x if x is not None]
    assert xs[1] > xs[0] and xs[3] < xs[2]                     # right for +push, left for -push
    assert abs(xs[3] - xs[2]) > abs(xs[1] - xs[0])             # the bigger push, the longer arrow


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_slow_motion_and_reconfigure_with_the_cuda_graph():
    cfg = tiny(device="cuda")
    a, b = Trainer(cfg), Trainer(cfg)
    for _ in range(6):          # past the capture: b replays the graph
        a.train_step(), b.train_step()
    assert b._graph is not None
    slow = SlowMotion(b)
    while not slow.done:
        slow.advance()
    a.train_step()
    b.train_step()               # the graph again, after an eager iteration
    np.testing.assert_allclose(a.flush()[1], b.flush()[1], rtol=1e-4, atol=1e-6)
    new, _ = reconfigured(b.cfg, d_steps=2, loss="wgan-gp")
    b.reconfigure(new)
    for _ in range(3):
        b.train_step()
    assert b._graph is not None and b.d_updates == 8 * 1 + 3 * 2
    assert np.isfinite(b.flush()[1]).all()
