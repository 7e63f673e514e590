"""Each loss on hand-made scores, and why the stable forms matter."""
import math

import pytest
import torch

from ganlab.losses import LOSSES, gradient_penalty

LN2 = math.log(2)


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


def test_bce_d_loss_at_chance_is_2_ln2_and_near_zero_when_d_is_right():
    d = LOSSES["bce-ns"].d_loss
    assert math.isclose(d(t(0.0), t(0.0)).item(), 2 * LN2, rel_tol=1e-6)
    assert d(t(20.0), t(-20.0)).item() < 1e-6
    # D confidently wrong costs about |logit| on each side
    assert math.isclose(d(t(-20.0), t(20.0)).item(), 40.0, rel_tol=1e-3)


def test_generator_losses_at_chance():
    assert math.isclose(LOSSES["bce-ns"].g_loss(t(0.0)).item(), LN2, rel_tol=1e-6)     # -log(1/2)
    assert math.isclose(LOSSES["bce-sat"].g_loss(t(0.0)).item(), -LN2, rel_tol=1e-6)   # log(1 - 1/2)


def test_saturating_loss_gradient_vanishes_when_d_rejects_fakes():
    # D(G(z)) = sigmoid(-10) ~ 4.5e-5: G is losing badly.
    grads = {}
    for name in ("bce-sat", "bce-ns"):
        s = t(-10.0).requires_grad_(True)
        LOSSES[name].g_loss(s).backward()
        grads[name] = abs(s.grad.item())
    assert grads["bce-sat"] < 1e-4          # sigmoid(-10)
    assert grads["bce-ns"] > 0.99           # 1 - sigmoid(-10)


def test_bce_losses_stay_finite_where_log_of_sigmoid_overflows():
    s = t(-200.0)
    naive = -torch.log(torch.sigmoid(s))
    assert torch.isinf(naive)
    assert math.isclose(LOSSES["bce-ns"].g_loss(s).item(), 200.0, rel_tol=1e-6)
    assert torch.isfinite(LOSSES["bce-ns"].d_loss(t(200.0), t(200.0)))


def test_wasserstein_losses_are_differences_of_means():
    for name in ("wgan-clip", "wgan-gp"):
        loss = LOSSES[name]
        assert loss.output == "score" and loss.critic and loss.symbol == "f(x)" and loss.equilibrium is None
        assert math.isclose(loss.d_loss(t(1.0, 3.0), t(0.0, 2.0)).item(), 1.0 - 2.0)
        assert math.isclose(loss.g_loss(t(0.0, 2.0)).item(), -1.0)
    assert LOSSES["wgan-clip"].clip_weights and LOSSES["wgan-clip"].penalty is None
    assert LOSSES["wgan-gp"].penalty == "gp" and not LOSSES["wgan-gp"].clip_weights


def test_gradient_penalty_is_zero_for_a_1_lipschitz_linear_critic_and_grows_with_slope():
    real, fake = torch.randn(64, 3), torch.randn(64, 3)
    for slope, expected in ((1.0, 0.0), (3.0, 4.0), (0.5, 0.25)):
        w = torch.tensor([slope, 0.0, 0.0])
        penalty, norm = gradient_penalty(lambda x, labels: x @ w, real, fake)
        assert math.isclose(penalty.item(), expected, abs_tol=1e-5)
        assert math.isclose(norm.item(), slope, rel_tol=1e-5)


def test_one_sided_label_smoothing_moves_ds_best_answer_on_real_data_to_the_label():
    # BCE with real label 0.9: the loss on real data is least where D(x) = 0.9, not at D(x) -> 1.
    for name in ("bce-ns", "bce-sat", "bce-ns-r1"):
        d = LOSSES[name].d_loss
        assert LOSSES[name].labels
        at_label = t(math.log(0.9 / 0.1)).requires_grad_(True)      # logit(0.9)
        d(at_label, t(-5.0), 0.9).backward()
        assert abs(at_label.grad.item()) < 1e-6, name
        sure = t(8.0).requires_grad_(True)                           # D(x) = 0.9997: too sure now
        d(sure, t(-5.0), 0.9).backward()
        assert sure.grad.item() > 0.09, name                         # pushed back down
        # real label 1 is plain BCE; the fakes' side never changes
        assert math.isclose(d(t(0.0), t(0.0), 1.0).item(), 2 * LN2, rel_tol=1e-6)
        assert math.isclose(d(t(3.0), t(1.0), 0.9).item() - d(t(3.0), t(2.0), 0.9).item(),
                            d(t(3.0), t(1.0)).item() - d(t(3.0), t(2.0)).item(), rel_tol=1e-6)
    ls = LOSSES["lsgan"]
    assert ls.labels and math.isclose(ls.d_loss(t(0.9), t(0.0), 0.9).item(), 0.0, abs_tol=1e-7)
    assert math.isclose(ls.d_loss(t(1.0), t(0.0), 0.9).item(), 0.5 * 0.1 ** 2, rel_tol=1e-5)
    # The critics' losses have no labels to smooth.
    assert not any(LOSSES[n].labels for n in ("wgan-clip", "wgan-gp", "hinge"))


def test_with_smoothing_ds_best_answer_where_g_matches_the_data_is_half_the_real_label():
    # D sees a point equally often as real and as fake: its loss there is d_loss(s, s, t), least
    # at sigmoid(s) = t / 2 for BCE (s = t / 2 for LSGAN). The charts' equilibrium line follows.
    s = torch.linspace(-3, 3, 60001)
    for name, shown in (("bce-ns", torch.sigmoid(s)), ("lsgan", s)):
        losses = torch.stack([LOSSES[name].d_loss(v[None], v[None], 0.9) for v in s])
        assert math.isclose(shown[losses.argmin()].item(), 0.45, abs_tol=1e-3), name
        assert LOSSES[name].display(0.9)["equilibrium"] == pytest.approx(0.45)
        assert LOSSES[name].display()["equilibrium"] == 0.5
    assert LOSSES["hinge"].display(0.9)["equilibrium"] is None
