"""The 2D lab's engine: targets, the CSV loader, the meters, the probe's views and a short training run."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganlab import charts2d, metrics
from ganlab.config import ConfigError, Experiment, Loss, Model, Noise, Target2D, Train
from ganlab.data.toy2d import MAX_CSV_BYTES, MAX_POINTS, PointsFileError, Target, read_points_csv, save_points
from ganlab.presets import presets_for
from ganlab.tasks.toy2d import ARROWS, SURFACE_BINS, Toy2D, manifold_grid
from ganlab.train import Trainer


def sample(cfg: Target2D, n=4000, seed=0) -> np.ndarray:
    return Target(cfg).sample(n, torch.Generator().manual_seed(seed), "cpu").numpy()


def tiny2d(steps=200, loss="bce-ns", **target) -> Experiment:
    return Experiment(task="toy2d", toy2d=Target2D(**target), noise=Noise("normal", 2),
                      model=Model("mlp2d", g_hidden=64, g_depth=2, d_hidden=64, d_depth=2, d_activation="leaky_relu"),
                      loss=Loss(loss, gp_lambda=0.1),
                      train=Train(steps=steps, batch_size=128, snapshot_every=50, device="cpu"))


# -- targets ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["ring", "grid", "line", "moons"])
def test_samplers_give_points_on_the_device_and_repeat_per_seed(kind):
    cfg = Target2D(kind=kind)
    a, b, c = sample(cfg, seed=1), sample(cfg, seed=1), sample(cfg, seed=2)
    assert a.shape == (4000, 2) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    low, high = Target(cfg).bounds()
    assert np.mean(np.all((a >= low) & (a <= high), axis=1)) > 0.98


def test_ring_modes_sit_on_the_circle_with_the_given_std():
    cfg = Target2D(kind="ring", modes=8, radius=2.0, std=0.05)
    x = sample(cfg, n=16_000)
    target = Target(cfg)
    nearest, _ = metrics.nearest_mode(x, target.centers, cfg.std)
    assert np.allclose(np.linalg.norm(target.centers, axis=1), 2.0)
    counts = np.bincount(nearest, minlength=8)
    assert counts.min() > 16_000 / 8 * 0.85                     # every mode drawn about equally
    for k in range(8):
        mine = x[nearest == k]
        assert np.allclose(mine.mean(axis=0), target.centers[k], atol=0.01)
        assert np.allclose(mine.std(axis=0), 0.05, rtol=0.1)


def test_grid_is_centred_and_evenly_spaced():
    target = Target(Target2D(kind="grid", grid_size=5, spacing=2.0, std=0.05))
    assert target.centers.shape == (25, 2) and target.num_parts == 25
    assert np.allclose(np.unique(target.centers[:, 0]), [-4, -2, 0, 2, 4])
    x = sample(target.cfg, n=10_000)
    assert np.allclose(x.mean(axis=0), 0, atol=0.1)


def test_line_and_moons_points_lie_on_their_curves():
    for cfg in (Target2D(kind="line", length=4.0, angle=30.0, std=0.02), Target2D(kind="moons", std=0.02)):
        x = sample(cfg)
        part, stds_away = Target(cfg).assign(x)
        assert np.mean(stds_away <= 3) > 0.99                   # nearly all within 3σ of the curve
        assert np.median(stds_away) < 1.0
    line = sample(Target2D(kind="line", length=4.0, angle=30.0, std=0.001))
    assert np.allclose(line[:, 1], line[:, 0] * math.tan(math.radians(30)), atol=0.01)
    assert line[:, 0].max() == pytest.approx(2 * math.cos(math.radians(30)), abs=0.02)
    moons = Target(Target2D(kind="moons", std=0.02))
    part, _ = moons.assign(sample(moons.cfg))
    assert 0.45 < part.mean() < 0.55                             # both moons, half each


def test_target_config_is_checked():
    with pytest.raises(ConfigError, match="toy2d.kind"):
        Target2D(kind="spiral")
    with pytest.raises(ConfigError, match="toy2d.std"):
        Target2D(std=0.0)
    with pytest.raises(ConfigError, match="toy2d.modes"):
        Target2D(modes=1)
    with pytest.raises(ConfigError, match="toy2d.csv_path"):
        Target2D(kind="csv")
    with pytest.raises(ConfigError, match="model.name"):
        Experiment(task="toy2d")                                 # the 1D model cannot draw points
    cfg = tiny2d(kind="grid", grid_size=3)
    assert Experiment.from_dict(cfg.to_dict()) == cfg
    assert Experiment.from_dict({"task": "gauss1d"}).toy2d == Target2D()     # configs saved before 2D


def test_a_link_carries_2d_settings_but_never_a_server_path():
    from ganlab.config import decode_config, encode_config
    preset = presets_for("toy2d")[0].config
    changed = preset.replace(toy2d={"std": 0.07, "modes": 6})
    assert decode_config(encode_config(changed, preset), preset) == changed
    own = preset.replace(toy2d={"kind": "csv", "csv_path": "points-0123456789abcdef.csv"})
    with pytest.raises(ConfigError, match="csv_path"):                        # the file stays on the server
        decode_config(encode_config(own, preset), preset)


@pytest.mark.parametrize("path", ["/etc/passwd", "../points-0123456789abcdef.csv", "points.csv",
                                  "/tmp/points-0123456789abcdef.csv", "points-0123456789ABCDEF.csv"])
def test_a_config_names_a_kept_point_set_never_a_server_path(path):
    with pytest.raises(ConfigError, match="toy2d.csv_path: must name an uploaded point set"):
        Target2D(kind="csv", csv_path=path)


# -- your own points ----------------------------------------------------------------------------

def test_csv_loader_reads_points_with_or_without_a_header(tmp_path):
    rows = "".join(f"{i},{-i / 2}\n" for i in range(12))
    plain = read_points_csv(rows.encode())
    assert plain.shape == (12, 2) and plain[3].tolist() == [3.0, -1.5]
    assert np.array_equal(read_points_csv(("x,y\n" + rows).encode()), plain)
    assert np.array_equal(read_points_csv(rows.replace(",", ";").encode()), plain)
    assert np.array_equal(read_points_csv(("\ufeffx\ty\n" + rows.replace(",", "\t")).encode("utf-8")), plain)
    path = tmp_path / "p.csv"
    path.write_text(rows)
    assert np.array_equal(read_points_csv(path), plain)


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"\n \n", "empty"),
    (b"x,y\n" + b"1,2\n" * 5 + b"3,oops\n" + b"1,2\n" * 5, "line 7, column 2 is not a number"),
    (b"1,2,3\n" * 20, "line 1 has 3 columns"),
    (b"1,2\n" * 10 + b"5\n", "line 11 has 1 column;"),
    (b"1,2\n" * 10 + b"nan,1\n", "line 11: NaN or infinite"),
    (b"1,2\n" * 10 + b"1,inf\n", "line 11: NaN or infinite"),
    (b"1,2\n" * 3, "has 3 points; give at least"),
    (b"\xff\xfe\x00\x01garbage", "not a text"),
    (b"1,2\n" * (MAX_CSV_BYTES // 4 + 1), "limit is"),
])
def test_csv_loader_explains_bad_files(content, message):
    with pytest.raises(PointsFileError, match=message.replace("(", r"\(")):
        read_points_csv(content)


def test_saved_points_are_named_by_their_content_and_train_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))         # where kept point sets live
    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 2)) + [3, -1]
    path = save_points(points)
    assert path.parent == tmp_path / "ganlab" / "points"
    assert save_points(points.copy()) == path                   # same points, same file
    assert save_points(points + 1) != path
    assert np.array_equal(read_points_csv(path), points)        # exact round trip
    cfg = tiny2d(steps=2, kind="csv", csv_path=path.name)
    task = Toy2D(cfg, torch.device("cpu"))
    drawn = task.sample_real(500, torch.Generator().manual_seed(0))[0].numpy()
    assert {tuple(p) for p in drawn} <= {tuple(p) for p in points.astype(np.float32)}
    assert task.alarm_options() == {}
    with pytest.raises(PointsFileError, match="no longer on this server"):
        Toy2D(tiny2d(kind="csv", csv_path="points-0123456789abcdef.csv"), torch.device("cpu"))


def test_an_error_in_a_points_file_never_quotes_its_content():
    secret = b"x,y\n" + b"1,2\n" * 12 + b"API_TOKEN=sk-live-1234567890ab,3\n"
    with pytest.raises(PointsFileError) as caught:
        read_points_csv(secret)
    assert "line 14, column 1" in str(caught.value) and "sk-live" not in str(caught.value)


def test_a_file_of_too_many_lines_is_refused_before_it_is_parsed(monkeypatch):
    import ganlab.data.toy2d as toy2d
    monkeypatch.setattr(toy2d, "_is_number", lambda text: pytest.fail("parsed a file over the line limit"))
    with pytest.raises(PointsFileError, match="more than 200,000 lines"):
        read_points_csv(b"1,2\n" * (MAX_POINTS + 5))


# -- meters ------------------------------------------------------------------------------------

RING = Target2D(kind="ring", modes=8, radius=2.0, std=0.02)


def coverage(points, cfg=RING):
    target = Target(cfg)
    covered, quality, _ = metrics.mode_coverage(*target.assign(points), target.num_parts)
    return covered, quality


def test_mode_coverage_on_constructed_sets():
    centers = Target(RING).centers
    assert coverage(sample(RING, n=2000)) == (8, pytest.approx(0.99, abs=0.01))
    one_mode = centers[3] + 0.02 * np.random.default_rng(0).normal(size=(2000, 2))
    assert coverage(one_mode) == (1, pytest.approx(0.99, abs=0.01))
    far = np.full((2000, 2), 10.0)
    assert coverage(far) == (0, 0.0)
    between = 2.0 * np.stack([np.cos(np.pi / 8 + np.pi / 4 * np.arange(8))] * 2, axis=1)   # between modes
    assert coverage(np.repeat(between, 250, axis=0))[1] == 0.0
    # A few strays in a mode do not cover it: 5 of 2000 samples is far below its fair share.
    strays = np.concatenate([np.repeat(centers[:1], 1995, axis=0), np.repeat(centers[1:2], 5, axis=0)])
    assert coverage(strays)[0] == 1
    # ... but under PacGAN's own rule one high-quality sample captures a mode.
    assert metrics.modes_captured(*Target(RING).assign(strays), 8) == 2
    assert metrics.modes_captured(*Target(RING).assign(far), 8) == 0
    assert metrics.modes_captured(*Target(RING).assign(sample(RING, n=2000)), 8) == 8


def test_energy_distance_is_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(800, 2)), rng.normal(size=(800, 2))
    same = metrics.energy_distance(a, b)
    assert same < 0.01
    shifted = [metrics.energy_distance(a, b + [d, 0]) for d in (0.5, 1.0, 2.0)]
    assert shifted[0] > 5 * 0.01 and shifted[0] < shifted[1] < shifted[2]


# -- the probe ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    trainer = Trainer(tiny2d(steps=20))
    for _ in range(20):
        trainer.train_step()
    return trainer


def test_probe_views_have_the_shapes_the_charts_need(trained):
    views, meters = trained.probe()
    assert views["real"].shape[1] == 2 and views["fake"].shape[1] == 2
    assert views["surface"].shape == (SURFACE_BINS, SURFACE_BINS)
    assert views["arrow_at"].shape == views["arrow_grad"].shape == (ARROWS, 2)
    assert views["manifold"].shape == (22, 41, 2)
    assert views["num_modes"] == 8 and trained.task.alarm_options() == {"num_modes": 8}
    assert set(meters) == {"energy", "high_quality", "modes_covered", "modes_captured"}
    assert all(np.isfinite(v) for v in meters.values())


def test_the_decision_surface_is_d_on_the_grid(trained):
    views, _ = trained.probe()
    s = views["surface"]
    assert np.all((s >= 0) & (s <= 1))                           # BCE: probabilities
    i, j = 17, 42                                                # row i is y, column j is x
    point = torch.tensor([[views["surface_x"][j], views["surface_y"][i]]], dtype=torch.float32)
    with torch.no_grad():
        assert torch.sigmoid(trained.D(point)).item() == pytest.approx(s[i, j], abs=1e-5)
    low, high = views["box"]
    assert views["surface_x"][0] == pytest.approx(low[0]) and views["surface_y"][-1] == pytest.approx(high[1])


def test_the_arrows_are_g_losses_gradient_and_leave_the_models_grads_alone(trained):
    for p in trained.D.parameters():
        p.grad = None
    views, _ = trained.probe()
    assert all(p.grad is None for p in trained.D.parameters())
    x = torch.tensor(views["arrow_at"][:3], requires_grad=True)
    per_point = torch.nn.functional.softplus(-trained.D(x))      # each fake's own non-saturating G loss
    (grad,) = torch.autograd.grad(per_point.sum(), x)
    assert np.allclose(views["arrow_grad"][:3], grad.numpy(), atol=1e-5)


def test_a_wasserstein_surface_is_the_raw_critic():
    trainer = Trainer(tiny2d(steps=2, loss="wgan-gp"))
    views, _ = trainer.probe()
    point = torch.tensor([[views["surface_x"][5], views["surface_y"][9]]], dtype=torch.float32)
    with torch.no_grad():
        assert trainer.D(point).item() == pytest.approx(views["surface"][9, 5], abs=1e-5)
    assert views["output"] == "score" and views["critic"]


def test_the_manifold_grid_sweeps_the_first_two_z_dims():
    z = manifold_grid(Noise("normal", 4))
    assert z.shape == (22, 41, 4)
    assert torch.all(z[..., 2:] == 0)                            # the others held at N(0, I)'s middle
    assert z[0, :, 0].tolist() == torch.linspace(-2, 2, 41).tolist() and torch.all(z[0, :, 1] == -2)
    assert manifold_grid(Noise("uniform", 1)).shape == (1, 41, 1)
    assert torch.all(manifold_grid(Noise("uniform", 3))[..., 2] == 0.5)


# -- charts ------------------------------------------------------------------------------------

def test_the_plane_figure_draws_each_layer_on_request(trained):
    views, meters = trained.probe()
    views["step"] = 20
    names = lambda fig: [t.name for t in fig.data]                # noqa: E731
    full = charts2d.plane_figure(views)
    assert names(full) == ["D(x)", "G's manifold (a z grid, mapped)", "real", "generated",
                           "G's push (−∇ of G's loss)"]
    heat = full.data[0]
    assert np.asarray(heat.z).shape == (SURFACE_BINS, SURFACE_BINS) and heat.zmin == 0 and heat.zmax == 1
    assert len(full.data[2].x) == len(views["real"])
    arrows = full.data[4]
    assert sum(v is None for v in arrows.x) == 2 * ARROWS        # a shaft and a head per arrow
    assert names(charts2d.plane_figure(views, surface=False, arrows=False, manifold=False)) == ["real", "generated"]
    assert "step 20" in full.layout.title.text
    assert full.layout.yaxis.scaleanchor == "x"                  # circles look like circles


def test_arrows_point_along_the_push_and_keep_relative_lengths():
    xs, ys = charts2d.arrow_segments(np.zeros((2, 2)), np.array([[1.0, 0.0], [0.0, -0.5]]), longest=2.0)
    assert (xs[1], ys[1]) == (2.0, 0.0)                          # the longest: 2 long, along +x
    assert (xs[8], ys[8]) == (0.0, -1.0)                         # half as long, along -y
    assert charts2d.arrow_segments(np.zeros((1, 2)), np.zeros((1, 2)), 1.0) == ([], [])


def test_meter_figures_read_the_meters():
    meters = {"step": np.array([100, 200]), "energy": np.array([0.5, 0.2]),
              "modes_covered": np.array([3.0, 6.0]), "high_quality": np.array([0.2, 0.6])}
    energy = charts2d.energy_figure(meters, floor=0.003)
    assert list(energy.data[0].y) == [0.5, 0.2]
    assert [(s.y0, s.line.dash) for s in energy.layout.shapes] == [(0.003, "dot")]    # the noise floor
    assert energy.layout.annotations[0].text == "noise floor"
    modes = charts2d.coverage_figure(meters, 8)
    assert "6 of 8 covered" in modes.layout.title.text
    both = charts2d.coverage_figure({**meters, "modes_captured": np.array([5.0, 8.0])}, 8)
    assert "8 of 8 captured, 6 of 8 covered" in both.layout.title.text
    assert [t.name for t in both.data] == list(charts2d.MODE_RULES.values())   # each rule named in words
    assert "PacGAN" in both.data[0].name and list(both.data[0].y) == [5.0, 8.0]
    assert modes.layout.yaxis.range == (0, 8.5) and modes.layout.shapes[0].y0 == 8     # all 8 modes
    quality = charts2d.quality_figure(meters)
    assert list(quality.data[0].y) == [0.2, 0.6] and quality.layout.yaxis.range == (0, 1.02)
    by_loss = charts2d.meters_by_loss_figures({"bce-ns": meters, "wgan-gp": meters})
    assert len(by_loss) == 3 and {t.name for t in by_loss[1].data} == {"BCE non-saturating", "WGAN-GP"}


# -- training --------------------------------------------------------------------------------------

def test_a_short_run_on_the_ring_moves_g_onto_the_data():
    # G starts as a blob at the origin, inside the ring. 400 steps take it out onto the ring.
    cfg = tiny2d(steps=400, kind="ring", std=0.1).replace(opt_g={"lr": 1e-3}, opt_d={"lr": 1e-3})
    trainer = Trainer(cfg)
    _, before = trainer.probe()
    for _ in range(cfg.train.steps):
        trainer.train_step()
    _, after = trainer.probe()
    assert before["high_quality"] == 0 and before["modes_covered"] == 0
    assert after["energy"] < 0.5 * before["energy"]
    assert after["high_quality"] > 0.05 and after["modes_covered"] >= 3


def test_the_2d_presets_build():
    slugs = {p.slug for p in presets_for("toy2d")}
    assert {"toy2d-ring", "toy2d-ring-wgan-gp", "toy2d-grid", "toy2d-moons"} <= slugs
    for p in presets_for("toy2d"):
        Toy2D(p.config, torch.device("cpu"))
