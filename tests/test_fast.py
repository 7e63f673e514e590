"""The fast path trains the same GAN as the plain PyTorch step, only faster."""
import numpy as np
import pytest
import torch

from ganlab.config import Experiment, Loss, Optim, Train
from ganlab.presets import get_preset
from ganlab.runs import Run
from ganlab.train import METRICS, Trainer

from conftest import tiny as tiny_1d

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def tiny(**sections) -> Experiment:
    return tiny_1d().replace(**sections)


def losses(cfg: Experiment, steps: int) -> np.ndarray:
    t = Trainer(cfg)
    for _ in range(steps):
        t.train_step()
    return t.flush()[1]


def both_paths(cfg: Experiment, steps: int) -> tuple[np.ndarray, np.ndarray]:
    return (losses(cfg.replace(train={"fast": True}), steps),
            losses(cfg.replace(train={"fast": False}), steps))


def test_fast_and_eager_agree_on_the_1d_preset():
    cfg = get_preset("gauss1d").config.replace(train={"device": "cpu", "steps": 100})
    fast, eager = both_paths(cfg, 60)
    # Same maths in another order (fused Adam, one D pass over real and fake): float rounding only.
    np.testing.assert_allclose(fast, eager, rtol=2e-3, atol=1e-5)


@pytest.mark.parametrize("loss", ["bce-sat", "wgan-clip", "wgan-gp"])
def test_fast_and_eager_agree_for_every_loss(loss):
    cfg = tiny(loss=Loss(loss), train={"steps": 50, "d_steps": 2})
    fast, eager = both_paths(cfg, 30)
    np.testing.assert_allclose(fast, eager, rtol=2e-3, atol=1e-5)


def test_fast_and_eager_agree_on_mnist_models(mnist_dir):
    # No dropout here: the two paths draw D's masks for real and fake in a different order.
    base = get_preset("mnist-mlp-seed003").config.replace(
        model={"dropout": 0.0, "g_dropout": 0.0},
        train={"device": "cpu", "batch_size": 32, "data_dir": str(mnist_dir)})
    fast, eager = both_paths(base, 15)
    np.testing.assert_allclose(fast, eager, rtol=2e-3, atol=1e-5)


def test_dcgan_batchnorm_sees_real_and_fake_apart_on_both_paths(mnist_dir):
    cfg = get_preset("mnist-dcgan").config.replace(
        train={"device": "cpu", "batch_size": 16, "data_dir": str(mnist_dir)})
    fast, eager = both_paths(cfg, 5)
    np.testing.assert_allclose(fast, eager, rtol=2e-3, atol=1e-5)


def test_dropout_runs_agree_in_distribution(mnist_dir):
    # With dropout the masks differ per path, so the runs differ in detail, not in behaviour.
    cfg = get_preset("mnist-mlp-seed003").config.replace(
        train={"device": "cpu", "batch_size": 64, "data_dir": str(mnist_dir)})
    fast, eager = both_paths(cfg, 40)
    d = METRICS.index("loss_d")
    assert abs(fast[-20:, d].mean() - eager[-20:, d].mean()) < 0.25 * abs(eager[-20:, d].mean())


def test_switching_the_fast_path_off_uses_the_plain_step():
    t = Trainer(tiny(train={"fast": False}))
    assert t.path.startswith("eager")
    assert not t.opt_g.defaults.get("fused") and not t.opt_d.defaults.get("fused")
    t.train_step()
    # The plain step computes D's weight gradients during G's update too, as the seeds do.
    assert all(p.grad is not None for p in t.D.parameters())

    fast = Trainer(tiny())
    assert fast.path.startswith("fast") and fast.opt_g.defaults["fused"]
    fast.train_step()   # D's gradients come from its own step; G's step skips them
    assert all(p.requires_grad for p in fast.D.parameters())


def test_a_run_with_the_fast_path_off_trains_to_the_end():
    run = Run(tiny(train={"fast": False, "steps": 40, "snapshot_every": 10})).start()
    assert run.join(60)
    snap = run.snapshot()
    assert snap.status == "finished" and snap.step == 40
    assert snap.path.startswith("eager")


def test_the_gradient_penalty_is_part_of_the_seed():
    cfg = tiny(loss=Loss("wgan-gp"), train={"steps": 20})
    np.testing.assert_array_equal(losses(cfg, 10), losses(cfg, 10))


def test_fast_is_a_checked_setting():
    from ganlab.config import ConfigError
    with pytest.raises(ConfigError, match="train.fast"):
        Train(fast="yes")
    assert Experiment.from_dict(tiny(train={"fast": False}).to_dict()).train.fast is False


# -- CUDA: the whole iteration as one graph ---------------------------------------------------------

def cuda_cfg(name: str, **train) -> Experiment:
    return get_preset(name).config.replace(train={"device": "cuda", "batch_size": 64, **train})


@cuda
@pytest.mark.parametrize("preset", ["gauss1d", "gauss1d-wgan-gp", "gauss1d-seed000"])
def test_cuda_graph_replays_the_1d_step(preset):
    cfg = cuda_cfg(preset, lr_decay=True, steps=200)
    t = Trainer(cfg)
    for _ in range(50):
        t.train_step()
    assert t._graph is not None, t.path
    fast = t.flush()[1]
    eager = losses(cfg.replace(train={"fast": False}), 50)
    assert np.isfinite(fast).all()
    if "seed000" not in preset:   # the minibatch D is the same maths; dropout-free presets agree closely
        np.testing.assert_allclose(fast[:, :2], eager[:, :2], rtol=5e-2, atol=5e-3)


@cuda
@pytest.mark.parametrize("preset", ["mnist-mlp-seed003", "mnist-dcgan", "mnist-cgan", "mnist-maxout-seed004"])
def test_cuda_graph_trains_every_mnist_model(preset, mnist_dir):
    cfg = cuda_cfg(preset, data_dir=str(mnist_dir), steps=100)
    t = Trainer(cfg)
    params = [p.detach().clone() for p in t.G.parameters()]
    for _ in range(30):
        t.train_step()
    assert t._graph is not None, t.path
    assert np.isfinite(t.flush()[1]).all()
    assert any(not torch.equal(a, b) for a, b in zip(params, t.G.parameters()))   # replays really update G
    t.train_step("d")   # a single eager step between replays
    t.train_step()
    assert np.isfinite(t.flush()[1]).all()


@cuda
def test_rmsprop_trains_eagerly_on_cuda_and_says_why():
    cfg = tiny(opt_g=Optim("rmsprop", lr=5e-5), opt_d=Optim("rmsprop", lr=5e-5), loss=Loss("wgan-clip"),
               train={"device": "cuda"})
    t = Trainer(cfg)
    for _ in range(10):
        t.train_step()
    assert t._graph is None and "Adam" in t.path


def test_bench_compare_prints_every_configuration(mnist_dir, capsys):
    from ganlab.__main__ import main
    assert main(["bench", "--compare", "--model", "mlp", "--seconds", "0.3", "--device", "cpu",
                 "--data", str(mnist_dir)]) == 0
    out = capsys.readouterr().out
    for name in ("reference", "eager", "fast", "fast, in a polled Run"):
        line = next(line for line in out.splitlines() if line.strip().startswith(name + " "))
        assert "images/s" in line and "x the reference" in line
    assert "1.00x the reference" in out and "of headless" in out


def test_bench_without_mnist_says_where_to_put_it(tmp_path, monkeypatch, capsys):
    from ganlab.__main__ import main
    monkeypatch.setenv("GANLAB_DATA", str(tmp_path))     # restored afterwards: bench sets it from --data
    assert main(["bench", "--compare", "--model", "mlp", "--seconds", "0.3", "--device", "cpu",
                 "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"No MNIST data in {tmp_path}" in err and "Traceback" not in err


def test_dropout_keeps_1_minus_p_of_units_scaled_up_and_passes_gradients_through_the_same_mask():
    from ganlab.models.layers import Dropout
    layer = Dropout(0.3)
    layer.generator = torch.Generator().manual_seed(0)
    x = torch.full((400, 256), 2.0, requires_grad=True)
    y = layer(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.01
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 2.0 / 0.7))
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.7)
    layer.eval()
    assert torch.equal(layer(x), x)          # evaluation: no dropout


def test_dropout_is_part_of_the_seed_even_with_runs_training_at_once(mnist_dir):
    # Dropout draws from the run's generator, not torch's global one that every run shares.
    cfg = get_preset("mnist-mlp-seed003").config.replace(
        train={"device": "cpu", "batch_size": 32, "steps": 30, "snapshot_every": 30, "data_dir": str(mnist_dir)})
    alone = losses(cfg, 30)
    runs = [Run(cfg).start(), Run(cfg.replace(train={"seed": 7})).start()]
    assert all(run.join(120) for run in runs)
    together = runs[0].snapshot().metrics
    np.testing.assert_array_equal(np.stack([together[m] for m in METRICS], axis=1), alone)
