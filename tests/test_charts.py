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


def test_loss_charts_name_their_y_axis():
    history = {"step": np.arange(1, 11), "loss_d": np.ones(10), "loss_g": np.ones(10), "g_grad_norm": np.ones(10)}
    assert charts.loss_figure(history).layout.yaxis.title.text == "loss"
    assert charts.loss_panels_figure({"bce-ns": history, "wgan-gp": history}).layout.yaxis.title.text == "loss"
    assert charts.grad_norm_figure(history).layout.yaxis.title.text == "‖∇G‖"
    d = {"step": np.arange(3), "d_real": np.ones(3), "d_fake": np.zeros(3)}
    assert charts.d_outputs_figure(d, views("wgan-gp")).layout.yaxis.title.text == "mean f(x)"


def test_a_pages_charts_share_the_step_range_they_are_given():
    # The losses are recorded every step, the meters every few hundred: without a shared range,
    # the loss chart ends at 800 and the W1 chart beside it at 600.
    metrics = {"step": np.arange(1, 801), "loss_d": np.ones(800), "loss_g": np.ones(800)}
    meters = {"step": np.array([0, 200, 400, 600]), "w1": np.ones(4), "ks": np.ones(4)}
    figures = [charts.loss_figure(metrics, x_max=800), charts.quality_figure(meters, x_max=800),
               charts.loss_panels_figure({"bce-ns": metrics, "lsgan": metrics}, x_max=800),
               charts.w1_by_loss_figure({"bce-ns": meters}, x_max=800)]
    for fig in figures:
        axes = [fig.layout[name] for name in fig.layout if name.startswith("xaxis")]
        assert axes and all(tuple(axis.range) == (0, 800) for axis in axes), fig.layout.title.text
    assert charts.quality_figure(meters).layout.xaxis.range is None      # no range given: fitted to the data


def test_d_star_is_drawn_only_where_the_densities_are_large_enough_to_mean_something():
    from ganlab.metrics import optimal_discriminator
    x = np.linspace(-2, 10, 121)
    p_data = np.exp(-(x - 4) ** 2 / (2 * 1.25 ** 2)) / (1.25 * np.sqrt(2 * np.pi))
    p_g = np.where(np.abs(x - 3.5) < 2, 0.25, 0.0)           # a histogram: nothing in the tails
    stray = np.argmin(np.abs(x - 9.5))
    p_g[stray] = 0.002                                         # and one stray fake far out
    shown = dict(views(), x=x, p_data=p_data, p_g=p_g, d_star=optimal_discriminator(p_data, p_g), d_curve=None)
    line = next(t for t in charts.density_figure(shown).data if t.name == "optimal D*(x)")
    y = np.asarray(line.y, dtype=float)
    total = p_data + p_g
    drawn = total >= 0.05 * total.max()
    assert np.isnan(y[~drawn]).all() and (~drawn).sum() > 40      # both tails left out
    np.testing.assert_allclose(y[drawn], (p_data / total)[drawn])  # the rest is D* itself
    # Where both densities are ~0, the ratio jumps to 0 (the stray fake) or 1 (the target's far tail): not drawn.
    assert shown["d_star"][stray] < 0.02 and shown["d_star"][0] > 0.99
    assert np.isnan(y[stray]) and np.isnan(y[0])


def font_sizes(node) -> list:
    """Every font size set anywhere in a figure's JSON."""
    if isinstance(node, dict):
        return [v["size"] for k, v in node.items() if k.endswith("font") and isinstance(v, dict) and "size" in v] + \
               [s for v in node.values() for s in font_sizes(v)]
    if isinstance(node, (list, tuple)):
        return [s for v in node for s in font_sizes(v)]
    return []


def test_projector_fonts_make_every_chart_text_16_px_or_more_and_leave_the_figure_alone():
    history = {"step": np.arange(1, 11), "loss_d": np.ones(10), "loss_g": np.ones(10)}
    figures = [charts.loss_figure(history), charts.loss_panels_figure({"bce-ns": history, "wgan-gp": history}),
               charts.empty_figure("Densities", "Waiting…"), charts.g_loss_explainer_figure(),
               charts.figure([], "t", legend=dict(title=dict(text="runs", font=dict(size=10))))]   # any font set
    for fig in figures:
        before = fig.to_plotly_json()
        big = charts.projector_fonts(fig)
        layout = big.layout.to_plotly_json()
        assert layout["font"]["size"] >= 16 and min(font_sizes(big.to_plotly_json())) >= 16
        # Written out, not inherited: Streamlit's theme gives ticks and legends 12 px in the template.
        axes = [big.layout[a] for a in layout if a.startswith(("xaxis", "yaxis"))]
        assert all(axis.tickfont.size >= 16 and axis.title.font.size >= 16 and axis.automargin for axis in axes)
        assert big.layout.legend.font.size >= 16 and big.layout.title.font.size >= 16
        assert fig.to_plotly_json() == before           # a new figure: the one passed in is unchanged
    big_note = charts.figure([], "t", annotations=[dict(text="note", font=dict(size=24))])
    assert charts.projector_fonts(big_note).layout.annotations[0].font.size == 24   # larger text keeps its size


def test_the_2d_surface_is_pale_with_outlined_points_and_its_colour_bar_under_the_plane():
    from ganlab import charts2d
    g = np.linspace(-2, 2, 5)
    plane = {"box": ((-2, -2), (2, 2)), "surface_x": g, "surface_y": g, "surface": np.zeros((5, 5)),
             "real": np.zeros((3, 2)), "fake": np.ones((3, 2)), "output": "probability", "symbol": "D(x)"}
    fig = charts2d.plane_figure(plane, arrows=False, manifold=False)
    surface = fig.data[0]

    def luminance(hex_colour):
        r, g, b = (int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    # RdBu's ends (#67001f, #053061) have a luminance near 0.05: points vanish on them.
    assert min(luminance(colour) for _, colour in surface.colorscale) > 0.5
    assert surface.opacity in (None, 1)        # opaque: the colour bar shows the plane's own colours
    assert surface.colorbar.orientation == "h" and surface.colorbar.x == 0.5 and surface.colorbar.xanchor == "center"
    for points in fig.data[1:]:
        assert points.marker.line.width >= 1 and points.marker.line.color == "white"
