"""MNIST: the loader, the four image models, the task, exploring G, and the presets."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ganlab.config import ConfigError, Experiment, Loss, Model, Noise, Train
from ganlab.data.mnist import MnistCorruptError, MnistNotFoundError, load_mnist
from ganlab.explore import generate_digit, interpolate, seeded_z, slerp, walk
from ganlab.images import make_grid_image
from ganlab.losses import LOSSES
from ganlab.models import build_models, is_conditional
from ganlab.presets import get_preset, presets_for
from ganlab.train import Trainer
from mnist_files import write_idx, write_mnist_folder

IMAGE_MODELS = ("mlp", "maxout", "dcgan", "cgan")


def tiny_config(data_dir, model="mlp", loss="bce-ns", **train) -> Experiment:
    """Small enough that one step takes milliseconds on a CPU."""
    return Experiment(
        task="mnist",
        noise=Noise("normal", 16),
        model=Model(name=model, g_hidden=16, d_hidden=16, maxout_k=3),
        loss=Loss(loss),
        train=Train(**{"batch_size": 32, "device": "cpu", "data_dir": str(data_dir), **train}),
    )


# -- loading ------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "raw"])
@pytest.mark.parametrize("layout", [("MNIST", "raw"), ()], ids=["torchvision-layout", "flat"])
def test_loads_idx_files(tmp_path, gz, layout):
    images, labels = write_mnist_folder(tmp_path.joinpath(*layout), n=50, gz=gz)
    got_images, got_labels = load_mnist(tmp_path)
    assert got_images.dtype == torch.uint8 and got_images.shape == (50, 28, 28)
    assert np.array_equal(got_images.numpy(), images)
    assert np.array_equal(got_labels.numpy(), labels)


def test_loads_both_splits_together(tmp_path):
    write_mnist_folder(tmp_path, n=30, split="train", seed=1)
    write_mnist_folder(tmp_path, n=20, split="test", seed=2)
    images, labels = load_mnist(tmp_path)
    assert len(images) == len(labels) == 50


def test_loads_the_real_test_split(shared_data):
    images, labels = load_mnist(shared_data)
    assert images.shape == (10_000, 28, 28)
    counts = torch.bincount(labels, minlength=10)
    assert len(counts) == 10 and counts.min() > 800          # about 1,000 of each digit
    assert images.max() == 255 and images.float().mean() < 60  # white strokes on black


def test_missing_data_says_where_to_put_it(tmp_path):
    with pytest.raises(MnistNotFoundError) as err:
        load_mnist(tmp_path)
    message = str(err.value)
    assert str(tmp_path.resolve()) in message and "GANLAB_DATA" in message
    # A training run reports the same error rather than training on nothing.
    with pytest.raises(MnistNotFoundError):
        Trainer(tiny_config(tmp_path))


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "raw"])
def test_truncated_file_is_reported_as_corrupt(tmp_path, gz):
    write_mnist_folder(tmp_path, n=20, gz=gz)
    path = tmp_path / ("t10k-images-idx3-ubyte" + (".gz" if gz else ""))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MnistCorruptError, match="t10k-images"):
        load_mnist(tmp_path)


def test_wrong_shape_is_reported_as_corrupt(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((5, 32, 32), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(MnistCorruptError, match="shapes"):
        load_mnist(tmp_path)


# -- models -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_model_shapes(name):
    cfg = Experiment(task="mnist", noise=Noise("normal", 100), model=Model(name=name, g_hidden=32, d_hidden=32))
    G, D = build_models(cfg)
    z = torch.randn(5, 100)
    labels = torch.tensor([0, 3, 7, 9, 1]) if is_conditional(name) else None
    images = G(z, labels)
    assert images.shape == (5, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1          # the data's range
    scores = D(images, labels)
    assert scores.shape == (5,)


def test_models_follow_the_seed_shapes():
    seed003 = get_preset("mnist-mlp-seed003").config
    G, D = build_models(seed003)
    sizes = [m.out_features for m in G.modules() if isinstance(m, torch.nn.Linear)]
    assert sizes == [256, 256, 784]
    assert [m.negative_slope for m in D.modules() if isinstance(m, torch.nn.LeakyReLU)] == [0.01, 0.01]
    # Seed 003's init: every bias drawn from U(0.1, 0.2).
    biases = torch.cat([m.bias for m in D.modules() if isinstance(m, torch.nn.Linear)])
    assert biases.min() >= 0.1 and biases.max() <= 0.2


def test_maxout_unit_outputs_the_largest_piece():
    from ganlab.models.maxout import Maxout
    layer = Maxout(2, 1, k=3)
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        layer.linear.bias.zero_()
    x = torch.tensor([[2.0, 5.0], [-3.0, -1.0]])
    assert layer(x).flatten().tolist() == [5.0, 4.0]           # max(2, 5, -7), max(-3, -1, 4)


def test_dcgan_critic_has_no_batchnorm_under_gradient_penalty():
    # The penalty needs each score's gradient with respect to its own sample;
    # BatchNorm would mix the samples of a batch.
    for loss, expect_bn in (("bce-ns", True), ("wgan-gp", False), ("bce-ns-r1", False)):
        cfg = Experiment(task="mnist", noise=Noise("normal", 100), model=Model(name="dcgan", g_hidden=8, d_hidden=8),
                         loss=Loss(loss))
        _, D = build_models(cfg)
        has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())
        assert has_bn == expect_bn, loss


def test_cgan_label_changes_the_image():
    cfg = Experiment(task="mnist", noise=Noise("normal", 100), model=Model(name="cgan", g_hidden=32, d_hidden=32))
    G, D = build_models(cfg)
    G.eval()
    z = torch.randn(1, 100).repeat(2, 1)
    with torch.no_grad():
        three, seven = G(z, torch.tensor([3, 7]))
    assert (three - seven).abs().max() > 1e-3
    # D judges the pair: the same image scores differently under another label.
    with torch.no_grad():
        scores = D(three.expand(2, 1, 28, 28), torch.tensor([3, 7]))
    assert scores[0] != scores[1]
    with pytest.raises(ValueError, match="label"):
        G(z, None)


def test_new_model_fields_are_validated():
    with pytest.raises(ConfigError, match="model.maxout_k"):
        Model(name="maxout", maxout_k=0)
    with pytest.raises(ConfigError, match="model.leaky_slope"):
        Model(leaky_slope=-0.1)
    with pytest.raises(ConfigError, match="model.g_dropout"):
        Model(g_dropout=1.0)
    for bad in (-1, 5):
        with pytest.raises(ConfigError, match="model.g_refine"):
            Model(name="dcgan", g_refine=bad)
    # The DCGAN's D has 2 or 3 strided convolutions; an MLP's d_depth keeps its wider range.
    for bad in (1, 4):
        with pytest.raises(ConfigError, match="model.d_depth"):
            Model(name="dcgan", d_depth=bad)
    assert Model(name="mlp", d_depth=4).d_depth == 4


def small_dcgan(**model) -> tuple[torch.nn.Module, torch.nn.Module]:
    cfg = Experiment(task="mnist", noise=Noise("normal", 16),
                     model=Model(name="dcgan", g_hidden=8, d_hidden=8, **model))
    return build_models(cfg)


def conv_outputs(net: torch.nn.Module, x: torch.Tensor, kernel: tuple | None = None) -> tuple[list, torch.Tensor]:
    """The (C, H, W) that each Conv2d of net (of one kernel size, when given) puts out on x; net(x)."""
    seen = []
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d) and kernel in (None, m.kernel_size):
            m.register_forward_hook(lambda m, args, out: seen.append(tuple(out.shape[1:])))
    return seen, net(x)


def weight_names(net: torch.nn.Module) -> set[str]:
    """What a checkpoint names net's weights: BatchNorm's running statistics left out."""
    return {name for name in net.state_dict() if not name.endswith(("running_mean", "running_var",
                                                                     "num_batches_tracked"))}


def test_dcgan_g_refine_adds_3x3_convolutions_at_7x7_and_14x14():
    # With model.g_refine, G looks at the digit again at each scale before it upsamples. Without
    # it G keeps pytorch/examples' layout and the weight names runs saved before carry.
    sizes = []
    for refine in (0, 2):
        seen, images = conv_outputs(small_dcgan(g_refine=refine)[0], torch.randn(3, 16), kernel=(3, 3))
        assert images.shape == (3, 1, 28, 28) and images.abs().max() <= 1
        sizes.append(seen)
    assert sizes == [[], [(16, 7, 7), (16, 7, 7), (8, 14, 14), (8, 14, 14)]]
    assert weight_names(small_dcgan(g_refine=0)[0]) == {"net.0.weight", "net.1.weight", "net.1.bias",
                                                        "net.3.weight", "net.4.weight", "net.4.bias",
                                                        "net.6.weight"}


def test_dcgan_d_depth_3_judges_a_4x4_map_and_depth_2_keeps_its_weight_names():
    # model.d_depth 3 adds a strided convolution in D, from 7x7 to 4x4 with twice the channels,
    # before the score. Depth 2 stays pytorch/examples' D, so runs saved before still load.
    shapes = []
    for depth in (2, 3):
        seen, scores = conv_outputs(small_dcgan(d_depth=depth)[1], torch.randn(3, 1, 28, 28))
        assert scores.shape == (3,)
        shapes.append(seen)
    assert shapes == [[(8, 14, 14), (16, 7, 7), (1, 1, 1)],
                      [(8, 14, 14), (16, 7, 7), (32, 4, 4), (1, 1, 1)]]
    assert weight_names(small_dcgan(d_depth=2)[1]) == {"net.0.weight", "net.0.bias", "net.2.weight",
                                                       "net.3.weight", "net.3.bias", "net.5.weight",
                                                       "net.5.bias"}


def test_dcgan_d_takes_dropout_without_renaming_its_weights():
    # model.dropout reaches the DCGAN's D: in training its scores change from pass to pass, in eval
    # they do not, and its weights keep their names, so checkpoints from before still load.
    plain, dropped = small_dcgan(dropout=0.0)[1], small_dcgan(dropout=0.5)[1]
    assert plain.state_dict().keys() == dropped.state_dict().keys()
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    dropped.load_state_dict(plain.state_dict())
    with torch.no_grad():
        dropped.eval(), plain.eval()
        assert torch.equal(dropped(x), plain(x))
        dropped.train(), plain.train()
        assert not torch.equal(dropped(x), dropped(x))
        assert torch.equal(plain(x), plain(x))


def test_label_smoothing_keeps_d_from_growing_certain_of_real_data(mnist_dir):
    # Train D alone: with real label 1 it grows sure of the real digits (D(x) -> 1); with
    # one-sided label smoothing at 0.8 it settles near 0.8, which the D(x) chart shows.
    from ganlab.iteration import train_step
    d_real = {}
    for label in (1.0, 0.8):
        t = Trainer(tiny_config(mnist_dir, "dcgan").replace(loss={"real_label": label},
                                                            opt_d={"lr": 2e-3}))
        for _ in range(60):
            train_step(t, "d")
        d_real[label] = t.last["d_real"].item()
    assert d_real[1.0] > 0.95
    assert abs(d_real[0.8] - 0.8) < 0.05, d_real


# -- training -----------------------------------------------------------------------------

@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("model", IMAGE_MODELS)
def test_every_loss_trains_every_model(mnist_dir, model, loss):
    t = Trainer(tiny_config(mnist_dir, model, loss, batch_size=8))
    before = [p.detach().clone() for p in t.G.parameters()]
    t.train_step()
    _, values = t.flush()                  # raises DivergedError on NaN or inf
    assert values.shape[0] == 1 and np.isfinite(values).all()
    assert any(not torch.equal(a, b) for a, b in zip(before, t.G.parameters()))


def test_discriminator_learns_to_tell_digits_from_noise(mnist_dir):
    t = Trainer(tiny_config(mnist_dir))
    real = t.task.test_images
    noise = torch.rand(len(real), 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1

    def gap() -> float:
        with torch.no_grad():
            return (torch.sigmoid(t.D(real)).mean() - torch.sigmoid(t.D(noise)).mean()).item()

    start = gap()
    for _ in range(30):
        t.train_step()
    assert gap() > start + 0.2


# -- the task: data on the device, and probes ---------------------------------------------------

def test_held_out_digits_never_reach_training(tmp_path):
    # Every image unique: its index is written into its first two pixels.
    n = 300
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 0, 0], images[:, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 10)

    def ids(x: torch.Tensor) -> set[int]:
        pixels = ((x[:, 0, 0, :2] + 1) * 127.5).round().long()
        return set((pixels[:, 0] + 256 * pixels[:, 1]).tolist())

    task = Trainer(tiny_config(tmp_path)).task
    train, held = ids(task.images), ids(task.test_images)
    assert len(held) == 30 and len(train) == 270 and not train & held     # 10% of 300 held out
    # Every run holds out the same images, so runs' meters compare.
    assert ids(Trainer(tiny_config(tmp_path, seed=7)).task.test_images) == held


@pytest.mark.parametrize("model", ["mlp", "cgan"])
def test_probe_shows_a_grid_and_d_on_held_out_digits(mnist_dir, model):
    t = Trainer(tiny_config(mnist_dir, model))
    t.train_step()
    views, meters = t.probe()
    grid = views["grid"]
    rows = 10 if model == "cgan" else 8                                   # one row per digit for the CGAN
    assert grid.dtype == np.uint8 and grid.shape == (rows * 30 + 2, 8 * 30 + 2)
    assert set(meters) == {"d_real_test", "d_fake_test"}
    assert all(0 <= v <= 1 for v in meters.values())                     # probabilities under BCE


def test_probe_does_not_change_the_run(mnist_dir):
    # Watching a run must not alter it: two runs with different probe schedules stay identical.
    a, b = (Trainer(tiny_config(mnist_dir, "dcgan")) for _ in range(2))
    for step in range(4):
        a.train_step()
        b.train_step()
        b.probe()
    assert all(torch.equal(p, q) for p, q in zip(a.G.state_dict().values(), b.G.state_dict().values()))
    # The grid's z is fixed, so an unchanged G draws the same picture twice.
    assert np.array_equal(b.probe()[0]["grid"], b.probe()[0]["grid"])


def test_grid_image_places_cells_row_by_row():
    images = -torch.ones(3, 1, 28, 28)
    images[1] = 1.0                                                       # the second cell is white
    grid = make_grid_image(images, nrow=2, padding=2)
    assert grid.shape == (2 * 30 + 2, 2 * 30 + 2)
    assert grid[2:30, 2:30].max() == 0                                    # cell (0, 0): black
    assert grid[2:30, 32:60].min() == 255                                 # cell (0, 1): white
    assert grid[0, 0] == 128 and (grid[32:60, 32:60] == 128).all()        # border, and the empty cell


# -- exploring G ------------------------------------------------------------------------------

def test_interpolation_runs_from_z0_to_z1():
    cfg = Experiment(task="mnist", noise=Noise("normal", 100), model=Model(name="dcgan", g_hidden=8))
    G, _ = build_models(cfg)
    z0, z1 = torch.randn(2, 100, generator=torch.Generator().manual_seed(0))
    frames = interpolate(G, z0, z1, steps=5)
    assert frames.shape == (5, 1, 28, 28) and G.training                # G's mode is restored
    G.eval()
    with torch.no_grad():
        ends = G(torch.stack([z0, z1]))
    assert torch.allclose(frames[0], ends[0], atol=1e-5) and torch.allclose(frames[-1], ends[1], atol=1e-5)


def test_slerp_keeps_the_norm_of_normal_noise_typical():
    z0, z1 = torch.randn(2, 100, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.5])
    middle_arc, middle_line = slerp(z0, z1, t)[0], (z0 + z1) / 2
    typical = (z0.norm() + z1.norm()) / 2                                 # about 10 = sqrt(100)
    assert abs(middle_arc.norm() - typical) < 0.5
    assert middle_line.norm() < 0.8 * typical                             # the straight line sags inwards


def test_generate_digit_is_repeatable_and_follows_the_digit():
    cfg = Experiment(task="mnist", noise=Noise("normal", 100), model=Model(name="cgan", g_hidden=32, d_hidden=32))
    G, _ = build_models(cfg)
    four = generate_digit(G, 4, n=6, noise=cfg.noise, seed=3)
    again = generate_digit(G, 4, n=6, noise=cfg.noise, seed=3)
    five = generate_digit(G, 5, n=6, noise=cfg.noise, seed=3)
    assert four.shape == (6, 1, 28, 28) and torch.equal(four, again) and not torch.equal(four, five)


@pytest.mark.parametrize("kind", ["normal", "uniform"])
def test_a_walk_starts_and_ends_at_the_seeds_z_drawn_from_the_runs_noise(kind):
    cfg = Experiment(task="mnist", noise=Noise(kind, 100), model=Model(name="mlp", g_hidden=16, d_hidden=16))
    G, _ = build_models(cfg)
    z = torch.cat([seeded_z(cfg.noise, 1, 1, "cpu"), seeded_z(cfg.noise, 2, 1, "cpu")])
    assert (z.min() >= 0) == (kind == "uniform")                          # uniform z stays in its box
    frames = walk(G, cfg.noise, 1, 2, steps=4)
    G.eval()
    with torch.no_grad():
        ends = G(z)
    assert frames.shape == (4, 1, 28, 28)
    assert torch.allclose(frames[0], ends[0], atol=1e-5) and torch.allclose(frames[-1], ends[1], atol=1e-5)


# -- presets ----------------------------------------------------------------------------------

def test_mnist_presets_exist_for_each_seed_system():
    slugs = {p.slug for p in presets_for("mnist")}
    assert {"mnist-mlp-seed003", "mnist-maxout-seed004", "mnist-dcgan", "mnist-cgan"} <= slugs


@pytest.mark.parametrize("preset", presets_for("mnist"), ids=lambda p: p.slug)
def test_mnist_preset_takes_a_step(mnist_dir, preset):
    cfg = preset.config.replace(train={"data_dir": str(mnist_dir), "device": "cpu", "batch_size": 16})
    t = Trainer(cfg)
    t.train_step()
    assert np.isfinite(t.flush()[1]).all()
