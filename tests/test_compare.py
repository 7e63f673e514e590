"""Loss lab: runs that differ only in their loss, trained in lockstep."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from ganlab import charts, compare
from ganlab.config import Optim
from ganlab.losses import LOSSES
from ganlab.presets import get_preset
from ganlab.runs import RunError, RunRegistry
from ganlab.train import Trainer

from conftest import tiny, wait_for  # noqa: E402

ALL_LOSSES = ["bce-ns", "bce-sat", "wgan-clip", "wgan-gp"]


def run_threads(runs) -> list[str]:
    names = {f"ganlab-run-{r.id}" for r in runs}
    return [t.name for t in threading.enumerate() if t.name in names]


@pytest.fixture
def registry():
    reg = RunRegistry(max_active=8)
    yield reg
    reg.stop_all(wait=5)


def start_paused(registry, cfg, losses=ALL_LOSSES, same_settings=False):
    """A comparison whose trainers are built but have not stepped yet."""
    runs = compare.start_comparison(registry, cfg, losses, paused=True, same_settings=same_settings)
    assert wait_for(lambda: all(r.status == "paused" for r in runs))
    return runs


def record(calls: list, fn):
    def recorded(*args, **kwargs):
        out = fn(*args, **kwargs)
        calls.append(out[0].clone() if isinstance(out, tuple) else out.clone())
        return out
    return recorded


# -- the configs ---------------------------------------------------------------------------------

def test_with_same_settings_the_configs_differ_only_in_the_loss_name():
    base = tiny().replace(loss={"clip": 0.05, "gp_lambda": 0.1})
    cfgs = compare.comparison_configs(base, ALL_LOSSES, same_settings=True)
    assert [c.loss.name for c in cfgs] == ALL_LOSSES
    for cfg in cfgs:
        d = cfg.to_dict()
        d["loss"]["name"] = base.loss.name
        assert d == base.to_dict()
    with pytest.raises(ValueError, match="once"):
        compare.comparison_configs(base, ["bce-ns", "bce-ns"])
    with pytest.raises(ValueError, match="unknown loss"):
        compare.comparison_configs(base, ["bce-ns", "no-such-loss"])


def test_by_default_each_run_carries_its_losss_reference_k_and_optimizers():
    base = tiny().replace(loss={"clip": 0.05}, train={"d_steps": 3, "steps": 77, "seed": 9})
    cfgs = compare.comparison_configs(base, list(LOSSES))
    assert [c.loss.name for c in cfgs] == list(LOSSES)
    for cfg in cfgs:
        ref = LOSSES[cfg.loss.name].reference.for_task(cfg.task)
        assert (cfg.train.d_steps, cfg.opt_d, cfg.opt_g) == (ref.d_steps, ref.opt_d, ref.opt_g), cfg.loss.name
        assert all(getattr(cfg.loss, field) == value for field, value in ref.loss), cfg.loss.name
        # everything else is the base's: the data, the models, the seed, the budget, the loss's
        # knobs that the reference does not set
        d, b = cfg.to_dict(), base.to_dict()
        for section in ("opt_d", "opt_g"):
            d.pop(section), b.pop(section)
        d["train"]["d_steps"], d["loss"]["name"] = b["train"]["d_steps"], b["loss"]["name"]
        for field, _ in ref.loss:
            d["loss"][field] = b["loss"][field]
        assert d == b
    by_name = {c.loss.name: c for c in cfgs}
    # WGAN-GP on the 1D toy: λ = 0.1 as in the paper's toy code, Adam at 1e-3 with the paper's betas
    gp = by_name["wgan-gp"]
    assert (gp.train.d_steps, gp.opt_d.lr, gp.opt_d.beta1, gp.opt_d.beta2, gp.loss.gp_lambda) == (5, 1e-3, 0.0, 0.9, 0.1)
    assert by_name["wgan-clip"].loss.clip == 0.05                                  # the base's knob
    assert by_name["hinge"].opt_d.lr == 4e-4 and by_name["hinge"].opt_g.lr == 1e-4
    assert by_name["wgan-clip"].opt_d.name == "rmsprop"


def test_a_comparison_that_does_not_fit_under_the_limit_starts_nothing():
    reg = RunRegistry(max_active=3)
    with pytest.raises(RunError, match="limit is 3"):
        compare.start_comparison(reg, tiny(), ALL_LOSSES)
    assert reg.list() == []


# -- lockstep: same start, same data ----------------------------------------------------------------

def test_runs_start_from_identical_weights_and_see_the_same_batches(registry):
    # With "same settings" every run takes k = 1, so they draw the same batches throughout
    # (with reference settings, a run with k = 5 draws five real batches per step).
    runs = start_paused(registry, tiny(steps=6), same_settings=True)
    first = runs[0].trainer
    for run in runs[1:]:
        for net in ("G", "D"):
            a, b = getattr(first, net).state_dict(), getattr(run.trainer, net).state_dict()
            assert a.keys() == b.keys()
            assert all(torch.equal(a[k], b[k]) for k in a), f"{run.name}: {net} starts from other weights"
    # Record every real batch and every z each run draws from its generator.
    real, noise = {}, {}
    for run in runs:
        task = run.trainer.task
        real[run.name], noise[run.name] = [], []
        task.sample_real = record(real[run.name], task.sample_real)
        task.noise = record(noise[run.name], task.noise)
    compare.resume_runs(runs)
    assert all(run.join(30) for run in runs)
    assert [r.status for r in runs] == ["finished"] * 4
    ref = runs[0].name
    assert len(real[ref]) == 6 and len(noise[ref]) == 12          # k = 1: one real batch and two z per step
    for run in runs[1:]:
        assert len(real[run.name]) == len(real[ref]) and len(noise[run.name]) == len(noise[ref])
        assert all(torch.equal(a, b) for a, b in zip(real[ref], real[run.name])), f"{run.name}: other data"
        assert all(torch.equal(a, b) for a, b in zip(noise[ref], noise[run.name])), f"{run.name}: other z"


def test_losses_sharing_a_d_loss_agree_on_the_first_step(registry):
    # Same weights and same first batch: BCE-NS and BCE-sat have the same D loss, so their first
    # step's D figures must be equal to the bit, while their G losses differ (the loss is in effect).
    # "Same settings": the first step's figures are read after k D updates, so k and the optimizer must match.
    runs = compare.start_comparison(registry, tiny(steps=3), ALL_LOSSES, same_settings=True)
    assert all(run.join(30) for run in runs)
    first = {r.cfg.loss.name: {k: v[0] for k, v in r.snapshot().metrics.items()} for r in runs}
    ns, sat = first["bce-ns"], first["bce-sat"]
    assert ns["step"] == sat["step"] == 1
    for name in ("loss_d", "d_real", "d_fake"):
        assert ns[name] == sat[name], name
    assert ns["loss_g"] != sat["loss_g"]
    clip, gp = first["wgan-clip"], first["wgan-gp"]
    assert clip["d_real"] == gp["d_real"] and clip["d_fake"] == gp["d_fake"]   # critic values before any update


def test_no_run_starts_an_iteration_before_the_others_have_caught_up(registry):
    runs = start_paused(registry, tiny(steps=150))
    ahead = []   # (run, its step, the steps of the others) whenever a run started an iteration too early

    def watch(run):
        train_step = run.trainer.train_step

        def checked(*args, **kwargs):
            mine = run.trainer.step
            others = [r.trainer.step for r in runs if r is not run]
            if min(others) < mine:
                ahead.append((run.name, mine, others))
            return train_step(*args, **kwargs)
        run.trainer.train_step = checked

    for run in runs:
        watch(run)
    compare.resume_runs(runs)
    assert all(run.join(60) for run in runs)
    assert [r.snapshot().step for r in runs] == [150] * 4
    assert ahead == []


def test_a_paused_run_holds_only_itself_and_catches_up_when_resumed(registry):
    runs = compare.start_comparison(registry, tiny(steps=10_000_000), ALL_LOSSES)
    steps = lambda: [r.trainer.step if r.trainer else 0 for r in runs]   # noqa: E731
    assert wait_for(lambda: min(steps()) >= 20, timeout=120)   # conditions, not sleeps: a loaded CPU is slow
    paused = runs[1]
    paused.pause()
    assert wait_for(lambda: paused.status == "paused")
    held_at = paused.trainer.step
    others = [r for r in runs if r is not paused]
    before = [r.trainer.step for r in others]
    assert wait_for(lambda: all(r.trainer.step >= b + 100 for r, b in zip(others, before)), timeout=120)
    assert paused.trainer.step == held_at
    paused.resume()
    # Behind by 100+ steps, it trains while the others wait, and the group is in step again.
    assert wait_for(lambda: max(steps()) - min(steps()) <= 1 and min(steps()) > max(before) + 100, timeout=120)
    assert all(r.status == "running" for r in runs)


# -- the gradient reaching G --------------------------------------------------------------------------

def test_the_gradient_norm_reaching_g_is_recorded_for_every_step(registry):
    runs = compare.start_comparison(registry, tiny(steps=60), ALL_LOSSES)
    assert all(run.join(30) for run in runs)
    for run in runs:
        m = run.snapshot().metrics
        assert list(m["step"]) == list(range(1, 61))
        assert np.isfinite(m["g_grad_norm"]).all() and (m["g_grad_norm"] > 0).all(), run.name


def test_saturating_bce_starves_g_when_d_is_strong():
    # Train the same D, on the same data, until it rejects the fakes; then one G update each.
    # Saturating: the gradient is scaled by D(G(z)), near 0. Non-saturating: by 1 - D(G(z)), near 1.
    cfg = tiny().replace(opt_d=Optim("adam", lr=1e-3, beta1=0.5))
    figures = {}
    for loss in ("bce-sat", "bce-ns"):
        t = Trainer(cfg.replace(loss={"name": loss}))
        for _ in range(300):
            t.train_step("d")
        t.train_step("g")
        _, values = t.flush()
        figures[loss] = {"d_fake": values[-2, 3], "g_grad_norm": values[-1, 4]}
    assert figures["bce-sat"]["d_fake"] == figures["bce-ns"]["d_fake"] < 0.05   # the same, strong D
    assert 0 < figures["bce-sat"]["g_grad_norm"] < 0.05 * figures["bce-ns"]["g_grad_norm"]


# -- stopping, failing --------------------------------------------------------------------------------

def test_four_runs_stop_cleanly_each_within_a_second(registry):
    runs = compare.start_comparison(registry, tiny(steps=10_000_000), ALL_LOSSES)
    assert wait_for(lambda: all(r.trainer is not None and r.trainer.step >= 20 for r in runs))
    runs[2].pause()   # a paused member too
    for run in runs:   # one at a time: a run blocked in a lockstep wait must notice its own stop
        start = time.monotonic()
        assert run.stop(wait=5)
        assert time.monotonic() - start < 1.0, run.name
    assert [r.status for r in runs] == ["stopped"] * 4
    assert run_threads(runs) == []
    assert runs[0].lockstep.members == []


def test_stop_all_stops_the_group_at_once(registry):
    runs = compare.start_comparison(registry, tiny(steps=10_000_000), ALL_LOSSES)
    assert wait_for(lambda: all(r.trainer is not None and r.trainer.step >= 20 for r in runs))
    start = time.monotonic()
    assert compare.stop_runs(runs, wait=5)
    assert time.monotonic() - start < 1.0
    assert run_threads(runs) == []


def test_one_run_diverging_does_not_stop_the_others(registry):
    base = tiny(steps=300)
    exploding = base.replace(opt_g=Optim("sgd", lr=10.0), opt_d=Optim("sgd", lr=10.0))
    cfgs = [base.replace(loss={"name": "bce-ns"}), exploding,
            base.replace(loss={"name": "wgan-gp"}), base.replace(loss={"name": "bce-sat"})]
    runs = compare.start_group(registry, cfgs, ["a", "exploding", "c", "d"])
    assert all(run.join(60) for run in runs)
    assert runs[1].status == "diverged" and "NaN or infinite" in runs[1].snapshot().message
    for run in (runs[0], runs[2], runs[3]):
        assert run.status == "finished" and run.snapshot().step == 300, run.name


def test_on_mnist_wgan_gp_keeps_its_papers_settings():
    base = get_preset("mnist-mlp-seed003").config.replace(loss={"gp_lambda": 3.0})
    gp, = compare.comparison_configs(base, ["wgan-gp"])
    assert (gp.train.d_steps, gp.opt_d.lr, gp.opt_d.beta1, gp.loss.gp_lambda) == (5, 1e-4, 0.0, 10.0)
    # with the same settings for all, the base's λ stays
    assert compare.comparison_configs(base, ["wgan-gp"], same_settings=True)[0].loss.gp_lambda == 3.0
    assert compare.reference_loss_fields("mnist", ["bce-ns", "wgan-gp"]) == {"gp_lambda"}
    assert compare.reference_loss_fields("gauss1d", ["bce-ns", "hinge"]) == set()


def test_the_settings_table_shows_the_loss_setting_each_run_reads():
    rows = compare.settings_table(compare.comparison_configs(get_preset("gauss1d").config, list(LOSSES)))
    by_loss = {r["loss"]: r["loss settings"] for r in rows}
    assert by_loss[LOSSES["wgan-gp"].label] == "λ 0.1"
    assert by_loss[LOSSES["wgan-clip"].label] == "clip c 0.01"
    assert by_loss[LOSSES["bce-ns-r1"].label] == "γ 10"
    assert by_loss[LOSSES["bce-ns"].label] == ""


def test_caveats_name_what_still_differs():
    from ganlab.presets import get_preset
    dcgan = get_preset("mnist-dcgan").config
    assert any("BatchNorm" in n for n in compare.caveats(dcgan, ALL_LOSSES))
    assert not any("BatchNorm" in n for n in compare.caveats(dcgan, ["bce-ns", "wgan-clip"]))
    assert any("Dropout" in n for n in compare.caveats(get_preset("mnist-mlp-seed003").config, ALL_LOSSES))
    assert any("BatchNorm" in n and "R1" in n for n in compare.caveats(dcgan, ["bce-ns", "bce-ns-r1"]))


def test_caveats_say_which_settings_the_runs_use():
    base = tiny().replace(train={"d_steps": 1})
    reference = compare.caveats(base, ALL_LOSSES)
    assert any("reference settings" in n for n in reference)
    assert not any("k = 1" in n or "RMSProp" in n for n in reference)   # each loss has its own k and optimizer
    same = compare.caveats(base, ALL_LOSSES, same_settings=True)
    assert any("k = 1 here" in n for n in same) and any("RMSProp" in n for n in same)
    assert not any("k = 1 here" in n for n in compare.caveats(base, ["bce-ns", "lsgan"], same_settings=True))


# -- charts ------------------------------------------------------------------------------------------------

def histories():
    steps = np.arange(1, 101)
    return {loss: {"step": steps, "g_grad_norm": np.full(100, 10.0 ** -i), "loss_d": np.ones(100) * i,
                   "loss_g": np.ones(100), "w1": np.linspace(2, 0.1 * (i + 1), 100)}
            for i, loss in enumerate(ALL_LOSSES)}


def test_comparable_quantities_share_one_chart_with_a_line_per_loss():
    w1 = charts.w1_by_loss_figure(histories())
    assert [t.name for t in w1.data] == [charts.loss_short(loss) for loss in ALL_LOSSES]
    assert len({t.line.color for t in w1.data}) == 4
    grad = charts.grad_norm_by_loss_figure(histories())
    assert grad.layout.yaxis.type == "log"
    assert {t.name for t in grad.data if t.showlegend is not False} == {charts.loss_short(n) for n in ALL_LOSSES}
    panels = charts.loss_panels_figure(histories())
    assert "not compare" in panels.layout.title.text
    assert len(panels.layout.annotations) == 4   # one titled panel per run
    assert charts.w1_by_loss_figure({}).layout.annotations[0].text.startswith("No data")


def test_d_and_critic_figure_puts_bce_and_wasserstein_curves_apart():
    x = np.linspace(-2, 8, 50)
    views = {loss: {"x": x, "p_data": np.ones(50), "p_g": np.ones(50), "step": 10,
                    **LOSSES[loss].display(), "d_curve": np.linspace(-3, 3, 50)}
             for loss in ALL_LOSSES}
    fig = charts.d_and_critic_figure(views)
    curves = {t.name: t for t in fig.data if t.name.endswith("(x)")}
    assert set(curves) == {"BCE non-saturating: D(x)", "BCE saturating: D(x)", "WGAN clip: f(x)", "WGAN-GP: f(x)"}
    assert curves["BCE saturating: D(x)"].xaxis == "x" and curves["WGAN-GP: f(x)"].xaxis == "x2"
    views["wgan-gp"]["outside"] = 0.9   # fakes gone past the grid: their curve is flat, and says why
    names = {t.name for t in charts.d_and_critic_figure(views).data}
    assert "WGAN-GP: fakes · 90% off the chart" in names and "BCE saturating: fakes" in names
    only_bce = charts.d_and_critic_figure({"bce-ns": views["bce-ns"]})
    assert any("no run with a per-sample raw score" in a.text for a in only_bce.layout.annotations)


def test_the_explainer_shows_the_saturating_slope_vanish():
    fig = charts.g_loss_explainer_figure()
    by_name = {t.name: t for t in fig.data}
    sat = next(t for t in fig.data if t.name == "saturating" and t.xaxis == "x2")
    ns = next(t for t in fig.data if t.name == "non-saturating" and t.xaxis == "x2")
    s, slope_sat, slope_ns = np.asarray(sat.x), np.gradient(sat.y, sat.x), np.gradient(ns.y, ns.x)
    far_rejected = s < -4
    assert np.all(np.abs(slope_sat[far_rejected]) < 0.02) and np.all(slope_ns[far_rejected] < -0.98)
    assert "Wasserstein: −f (s = f)" in by_name


def test_bench_compare_prints_the_three_wall_times(capsys):
    from ganlab.__main__ import main
    assert main(["bench", "lockstep", "--steps", "20", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for line in ("one run alone (bce-ns)", "one after another", "in lockstep"):
        assert line in out
    assert "wgan-gp" in out and "of one after another" in out
