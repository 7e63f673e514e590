"""The loss registry: each loss says what it means, and the app learns a new one from its entry alone."""
import math
import re

import pytest
import torch

from ganlab.config import Loss
from ganlab.losses import LOSSES, OUTPUTS, PENALTIES, GANLoss, r1_penalty
from ganlab.presets import get_preset
from ganlab.train import Trainer


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


def test_every_loss_says_what_it_means():
    colors = [loss.color for loss in LOSSES.values()]
    assert len(set(colors)) == len(colors)                                  # one colour per loss
    assert len({loss.short for loss in LOSSES.values()}) == len(LOSSES)
    for name, loss in LOSSES.items():
        assert loss.name == name and loss.label and loss.short, name
        assert re.fullmatch(r"#[0-9a-f]{6}", loss.color), name
        assert loss.output in OUTPUTS and loss.penalty in PENALTIES, name
        assert loss.symbol in ("D(x)", "f(x)") and (loss.symbol == "f(x)") == loss.critic, name
        assert loss.mode_alarm == (loss.output == "probability"), name
        ref = loss.reference
        # the reference settings pass the config's own checks
        cfg = get_preset("gauss1d").config.replace(loss={"name": name}, opt_d=ref.opt_d, opt_g=ref.opt_g,
                                                   train={"d_steps": ref.d_steps})
        assert cfg.opt_d == ref.opt_d and cfg.train.d_steps == ref.d_steps >= 1


def test_the_four_first_losses_keep_their_colours_and_names():
    assert {n: (LOSSES[n].color, LOSSES[n].short) for n in ("bce-ns", "bce-sat", "wgan-clip", "wgan-gp")} == {
        "bce-ns": ("#ff7f0e", "BCE non-saturating"), "bce-sat": ("#e377c2", "BCE saturating"),
        "wgan-clip": ("#2ca02c", "WGAN clip"), "wgan-gp": ("#9467bd", "WGAN-GP")}


def test_lsgan_and_hinge_on_hand_made_scores():
    ls, hinge = LOSSES["lsgan"], LOSSES["hinge"]
    assert math.isclose(ls.d_loss(t(1.0), t(0.0)).item(), 0.0)                 # D exactly on its targets
    assert math.isclose(ls.d_loss(t(0.5), t(0.5)).item(), 0.25)                # at equilibrium: 2 * 1/2 * 1/4
    assert math.isclose(ls.g_loss(t(0.0)).item(), 0.5)
    assert math.isclose(hinge.d_loss(t(2.0), t(-3.0)).item(), 0.0)             # outside the margin: nothing
    assert math.isclose(hinge.d_loss(t(0.0), t(0.0)).item(), 2.0)
    assert math.isclose(hinge.d_loss(t(0.5, -1.0), t(0.0)).item(), (0.5 + 2.0) / 2 + 1.0)
    assert math.isclose(hinge.g_loss(t(1.0, 3.0)).item(), -2.0)
    assert (ls.output, ls.symbol, ls.equilibrium, ls.critic) == ("score", "D(x)", 0.5, False)
    assert (hinge.output, hinge.critic, hinge.equilibrium) == ("score", True, None)


def test_r1_is_the_squared_slope_at_the_data():
    real = torch.randn(32, 3)
    for slope in (0.0, 1.0, 3.0):
        w = torch.tensor([slope, 0.0, 0.0])
        penalty, norm = r1_penalty(lambda x, labels: x @ w, real)
        assert math.isclose(penalty.item(), slope ** 2, abs_tol=1e-5)
        assert math.isclose(norm.item(), slope, abs_tol=1e-5)
    assert LOSSES["bce-ns-r1"].penalty == "r1" and LOSSES["bce-ns-r1"].output == "probability"


def test_r1_gamma_is_checked_like_gp_lambda():
    from ganlab.config import ConfigError
    with pytest.raises(ConfigError, match="loss.r1_gamma"):
        Loss("bce-ns-r1", r1_gamma=-1.0)


def test_r1_weighs_the_d_loss_by_gamma():
    # With γ = 0 the R1 run is plain non-saturating BCE; with γ > 0 its D loss is larger.
    cfg = get_preset("gauss1d").config.replace(train={"steps": 3, "device": "cpu", "fast": False})
    values = {}
    for name, gamma in (("bce-ns", 10.0), ("bce-ns-r1", 0.0), ("bce-ns-r1", 10.0)):
        trainer = Trainer(cfg.replace(loss={"name": name, "r1_gamma": gamma}))
        trainer.train_step()
        values[name, gamma] = trainer.flush()[1][0]
    assert values["bce-ns", 10.0][0] == pytest.approx(values["bce-ns-r1", 0.0][0], abs=1e-6)
    assert values["bce-ns-r1", 10.0][0] > values["bce-ns-r1", 0.0][0]
    assert values["bce-ns-r1", 10.0][5] > 0                                      # its gradient norm is recorded


@pytest.mark.parametrize("name", ["lsgan", "hinge", "bce-ns-r1"])
def test_a_new_loss_with_its_reference_settings_improves_w1_on_the_1d_gaussian(name):
    # The full 6,000-step runs (W1 below 0.15) are measured outside the test suite; here a
    # short run must clearly move G towards the target from where it starts.
    from ganlab.compare import comparison_configs
    base = get_preset("gauss1d").config.replace(train={"steps": 1000, "device": "cpu", "seed": 3, "lr_decay": False})
    cfg = comparison_configs(base, [name])[0]
    trainer = Trainer(cfg)
    start = trainer.probe()[1]["w1"]
    for _ in range(cfg.train.steps):
        trainer.train_step()
    trainer.flush()
    end = trainer.probe()[1]["w1"]
    assert end < 0.6 * start, (start, end)   # hinge's G (lr 1e-4) is the slowest to start


def throwaway_loss():
    return GANLoss("throwaway", "Throwaway loss, for a test", "Throwaway", "#123456",
                   LOSSES["bce-ns"].d_loss, LOSSES["bce-ns"].g_loss, LOSSES["bce-ns"].reference)


def test_a_loss_added_to_the_registry_alone_shows_on_the_loss_lab_and_the_1d_page(monkeypatch):
    from conftest import open_app
    monkeypatch.setitem(LOSSES, "throwaway", throwaway_loss())
    at = open_app("pages/compare.py")
    assert "Throwaway loss, for a test" in at.multiselect(key="cmp-losses").options
    at.multiselect(key="cmp-losses").set_value(["bce-ns", "throwaway"]).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["loss"]) == ["BCE, non-saturating G loss", "Throwaway loss, for a test"]
    at = open_app("pages/gauss1d.py")
    picker = next(s for s in at.selectbox if s.label == "loss")
    assert "Throwaway loss, for a test" in picker.options
