"""Charts are pure functions: build them from plain arrays and read the traces."""
import numpy as np
import pytest

from ganlab import charts
from ganlab.losses import LOSSES


def views(loss="bce-ns", d_curve=True):
    x = np.linspace(-1, 9, 50)
    return {"x": x, "p_data": np.exp(-(x - 4) ** 2), "p_g": np.exp(-(x - 3) ** 2),
            "d_curve": np.full(50, 0.5) if d_curve else None, "d_star": np.full(50, 0.5),
            "outside": 0.0, **LOSSES[loss].display(), "step": 300}


def names(fig):
    return [t.name for t in fig.data]


def test_density_figure_shows_target_samples_d_and_optimal_d():
    fig = charts.density_figure(views())
    assert names(fig) == ["generated (histogram)", "target pdf", "D(x)", "optimal D*(x)"]
    assert "step 300" in fig.layout.title.text
    assert fig.layout.yaxis2.range == (0, 1.02)          # D is a probability


def test_density_figure_for_a_critic_has_no_d_star_and_an_unbounded_axis():
    fig = charts.density_figure(views("wgan-gp"))
    assert names(fig) == ["generated (histogram)", "target pdf", "critic f(x)"]
    assert fig.layout.yaxis2.range is None


def test_density_figure_for_lsgan_has_d_star_on_an_unbounded_axis():
    # LSGAN's D is a raw score (no sigmoid), but its best D is BCE's: p_data / (p_data + p_g).
    fig = charts.density_figure(views("lsgan"))
    assert names(fig) == ["generated (histogram)", "target pdf", "D(x)", "optimal D*(x)"]
    assert fig.layout.yaxis2.range is None


def test_density_figure_without_a_per_sample_d_and_before_any_data():
    assert "D(x)" not in names(charts.density_figure(views(d_curve=False)))
    empty = charts.density_figure({})
    assert not empty.data and "Waiting" in empty.layout.annotations[0].text


def test_curves_are_raw_and_smoothed_and_smoothing_ignores_nans():
    history = {"step": np.arange(1, 101), "loss_d": np.linspace(2, 1, 100), "loss_g": np.ones(100)}
    fig = charts.loss_figure(history)
    assert names(fig) == ["D loss (raw)", "D loss", "G loss (raw)", "G loss"]
    smoothed = charts.smooth(np.array([1.0, np.nan, 3.0]), alpha=0.5)
    assert np.isfinite(smoothed).all() and smoothed[0] == 1.0 and 1.0 < smoothed[2] < 3.0
    assert charts.loss_figure({"step": np.array([])}).layout.annotations[0].text.startswith("No data")


def test_smoothing_is_the_debiased_average_of_the_finite_values_so_far():
    def by_hand(values, alpha):   # the definition, one value at a time
        out, avg, weight = [], 0.0, 0.0
        for v in values:
            if np.isfinite(v):
                avg, weight = (1 - alpha) * avg + alpha * v, (1 - alpha) * weight + alpha
            out.append(avg / weight if weight else np.nan)
        return np.array(out)

    rng = np.random.default_rng(0)
    values = rng.normal(3.0, 2.0, 20_000)   # long enough that a closed form would overflow
    values[rng.random(values.size) < 0.1] = np.nan
    values[:3], values[-1] = np.nan, np.inf
    for alpha in (0.5, 0.05, 0.001):
        np.testing.assert_allclose(charts.smooth(values, alpha), by_hand(values, alpha), rtol=1e-9, atol=1e-12)
    assert np.isnan(charts.smooth(np.full(4, np.nan))).all()
    assert len(charts.smooth(np.array([]))) == 0


def test_quality_and_gradient_charts():
    meters = {"step": np.array([0, 100]), "w1": np.array([4.0, 0.1]), "ks": np.array([1.0, 0.05])}
    fig = charts.quality_figure(meters)
    assert names(fig) == ["W1 to target", "KS statistic"] and list(fig.data[0].y) == [4.0, 0.1]
    grad = charts.grad_norm_figure({"step": np.arange(5), "g_grad_norm": np.logspace(0, -4, 5)})
    assert grad.layout.yaxis.type == "log"


def test_d_output_labels_follow_the_loss():
    history = {"step": np.arange(3), "d_real": np.ones(3), "d_fake": np.zeros(3)}
    assert "mean D(real)" in names(charts.d_outputs_figure(history))
    assert "mean f(real)" in names(charts.d_outputs_figure(history, views("wgan-clip")))
    assert "mean f(real)" in names(charts.d_outputs_figure(history, views("hinge")))
    assert "mean D(real)" in names(charts.d_outputs_figure(history, views("lsgan")))


def guides(fig) -> dict:
    """The dotted horizontal guide lines: {y: label}."""
    labels = {a.y: a.text for a in fig.layout.annotations}
    return {s.y0: labels.get(s.y0, "") for s in fig.layout.shapes if s.y0 == s.y1 and s.line.dash == "dot"}


def test_guide_lines_mark_equilibrium_noise_floors_and_the_uniform_share():
    history = {"step": np.arange(3), "d_real": np.ones(3), "d_fake": np.zeros(3)}
    assert guides(charts.d_outputs_figure(history)) == {0.5: ""}             # D at equilibrium
    assert guides(charts.d_outputs_figure(history, views("wgan-gp"))) == {}   # a critic has none
    assert guides(charts.d_outputs_figure(history, views("lsgan"))) == {0.5: ""}   # LSGAN, targets 0 and 1
    meters = {"step": np.array([0, 100]), "w1": np.array([4.0, 0.1]), "ks": np.array([1.0, 0.05])}
    assert guides(charts.quality_figure(meters)) == {0.02: "noise floor (W1)"}
    hist = {"step": np.array([0]), "modes_covered": np.array([9.0]), **{f"hist_{d}": np.array([0.1]) for d in range(10)}}
    assert guides(charts.digit_histogram_figure(hist)) == {0.1: "uniform"}


def test_image_figure_draws_the_grid_pixel_for_pixel():
    grid = (np.arange(30 * 40) % 256).astype(np.uint8).reshape(30, 40)
    fig = charts.image_figure(grid, "Samples")
    z = np.asarray(fig.data[0].z)
    assert z.shape == (30, 40, 3) and (z[:, :, 0] == grid).all()
    assert charts.image_figure(None, "Samples").layout.annotations[0].text.startswith("No samples")


def test_digit_histogram_and_mnist_meter_charts():
    meters = {"step": np.array([0, 100]), "fid": np.array([600.0, 90.0]), "modes_covered": np.array([2.0, 9.0]),
              "kl_uniform": np.array([1.5, 0.1])}
    meters.update({f"hist_{d}": np.array([0.0, 0.1]) for d in range(10)})
    bars = charts.digit_histogram_figure(meters)
    assert list(bars.data[0].y) == pytest.approx([0.1] * 10 + [0.0]) and "9 of 10 covered" in bars.layout.title.text
    # Samples the classifier is unsure of get a bar of their own, not a digit's.
    meters.update({f"hist_{d}": np.array([0.0, 0.06]) for d in range(10)}, confident=np.array([0.0, 0.6]))
    bars = charts.digit_histogram_figure(meters)
    assert bars.data[0].x[-1] == "not a digit" and bars.data[0].y[-1] == pytest.approx(0.4)
    assert names(charts.mnist_modes_figure(meters)) == ["digits covered (of 10)", "confident share (clearly a digit)",
                                                         "KL to uniform (nats)"]
    assert list(charts.mnist_quality_figure(meters).data[0].y) == [600.0, 90.0]
    assert charts.digit_histogram_figure({"step": np.array([0])}).layout.annotations
