"""Seed 002's autoencoder and VAE: the models, the KL term, training, a real Run, presets and charts."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ganlab import charts
from ganlab.autoencoders import METRICS, AutoencoderTrainer, latent_view, pca_2d
from ganlab.config import ConfigError, Experiment, Model, Noise, Optim
from ganlab.families import family_of, family_table, metric_names
from ganlab.models.autoencoder import (VAE, Autoencoder, Decoder, kl_to_standard_normal, reconstruction_loss,
                                       to_unit)
from ganlab.presets import get_preset, presets_for
from ganlab.runs import Run
from ganlab.train import DivergedError

from conftest import wait_for


def ae_config(data_dir, name="ae", steps=100, **train) -> Experiment:
    """The seed 002 preset, made small: batch 32 on the CPU, from the given data folder."""
    base = get_preset(f"mnist-{name}-seed002").config
    return base.replace(train={"steps": steps, "batch_size": 32, "device": "cpu", "data_dir": str(data_dir),
                               "snapshot_every": 50, **train})


# -- the models ---------------------------------------------------------------------------

def test_autoencoder_shapes_follow_the_seed():
    ae = Autoencoder(latent=3)
    widths = [m.out_features for m in ae.encoder if isinstance(m, torch.nn.Linear)]
    assert widths == [128, 64, 12, 3]
    assert [m.out_features for m in ae.decoder if isinstance(m, torch.nn.Linear)] == [12, 64, 128, 784]
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    assert ae.code(x).shape == (5, 3)
    out = ae(x)
    assert out.shape == (5, 1, 28, 28) and out.min() >= -1 and out.max() <= 1   # Tanh
    assert set(ae.losses(x)) == {"recon"}


def test_vae_shapes_follow_the_seed():
    vae = VAE(latent=20, hidden=400)
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (5, 20)
    logits, mu2, _ = vae(x)
    assert logits.shape == (5, 784) and torch.equal(mu, mu2)
    probs = vae.decode(torch.randn(7, 20))
    assert probs.shape == (7, 1, 28, 28) and probs.min() >= 0 and probs.max() <= 1   # sigmoid
    assert vae.generate(torch.randn(7, 20)).min() >= -1                              # back in the task's scale
    assert vae.reconstruct(x).shape == (5, 1, 28, 28)
    G = Decoder(vae)
    assert G(torch.randn(3, 20), None).shape == (3, 1, 28, 28)


def test_kl_term_matches_its_closed_form():
    mu = torch.tensor([[0.0, 0.0], [1.0, -2.0], [0.5, 3.0]])
    logvar = torch.tensor([[0.0, 0.0], [math.log(4.0), 0.0], [-1.0, 2.0]])
    expected = []
    for m_row, lv_row in zip(mu.tolist(), logvar.tolist()):
        expected.append(0.5 * sum(m * m + math.exp(lv) - lv - 1 for m, lv in zip(m_row, lv_row)))
    got = kl_to_standard_normal(mu, logvar)
    assert got.shape == (3,)
    assert got[0] == 0.0                       # the prior itself: no divergence
    assert torch.allclose(got, torch.tensor(expected), atol=1e-6)
    assert abs(got[1].item() - 0.5 * ((1 + 4 - math.log(4) - 1) + (4 + 1 - 0 - 1))) < 1e-6
    # and as torch.distributions computes it
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(2), torch.ones(2))
    assert torch.allclose(got, torch.distributions.kl_divergence(q, p).sum(1), atol=1e-6)


def test_reparameterization_passes_gradients_and_follows_the_generator():
    mu = torch.tensor([[1.0, -1.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, math.log(0.25)]], requires_grad=True)
    z = VAE.reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    z.sum().backward()
    assert mu.grad is not None and logvar.grad is not None and logvar.grad.abs().sum() > 0
    again = VAE.reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    assert torch.equal(z, again)
    many = VAE.reparameterize(mu.detach().expand(20000, 2), logvar.detach().expand(20000, 2),
                              torch.Generator().manual_seed(0))
    assert torch.allclose(many.mean(0), torch.tensor([1.0, -1.0]), atol=0.03)
    assert torch.allclose(many.std(0), torch.tensor([1.0, 0.5]), atol=0.03)


def test_reconstruction_losses_sum_over_pixels():
    target = torch.rand(4, 1, 28, 28)
    logits = torch.randn(4, 784)
    bce = reconstruction_loss("bce", logits, target)
    p = torch.sigmoid(logits)
    by_hand = -(target.flatten(1) * p.log() + (1 - target.flatten(1)) * (1 - p).log()).sum(1)
    assert torch.allclose(bce, by_hand, rtol=1e-4)
    mse = reconstruction_loss("mse", logits, target)
    assert torch.allclose(mse, ((p - target.flatten(1)) ** 2).sum(1), rtol=1e-5)
    assert torch.equal(to_unit(torch.tensor([-1.0, 0.0, 1.0])), torch.tensor([0.0, 0.5, 1.0]))


# -- configs and presets --------------------------------------------------------------------

def test_presets_carry_seed_002_settings_and_stay_off_the_gan_pages():
    ae, vae = get_preset("mnist-ae-seed002").config, get_preset("mnist-vae-seed002").config
    assert (ae.model.name, ae.noise.dim, ae.model.recon_loss) == ("ae", 3, "mse")
    assert (vae.model.name, vae.noise.dim, vae.model.g_hidden) == ("vae", 20, 400)
    for cfg in (ae, vae):
        assert cfg.opt_g.lr == 1e-3 and cfg.train.batch_size == 128 and cfg.noise.kind == "normal"
        assert Experiment.from_dict(cfg.to_dict()) == cfg
    gan_slugs = {p.slug for p in presets_for("mnist")}
    assert gan_slugs and not gan_slugs & {"mnist-ae-seed002", "mnist-vae-seed002"}
    assert {p.slug for p in presets_for("mnist", families=("ae", "vae"))} == {"mnist-ae-seed002",
                                                                              "mnist-vae-seed002"}
    assert family_of(ae) == "ae" and family_of(get_preset("mnist-dcgan").config) == "gan"
    assert metric_names(vae) == ("recon", "kl", "loss") and metric_names(ae) == ("recon",)


@pytest.mark.parametrize("make, field", [
    (lambda: Model(name="ae", recon_loss="bce"), "model.recon_loss"),
    (lambda: Model(name="vae", recon_loss="l1"), "model.recon_loss"),
    (lambda: Experiment(task="mnist", noise=Noise("uniform", 20), model=Model(name="vae")), "noise.kind"),
    (lambda: Experiment(task="gauss1d", noise=Noise("normal", 20), model=Model(name="vae")), "task"),
    (lambda: Experiment(task="mnist", noise=Noise("normal", 0), model=Model(name="vae")), "noise.dim"),
])
def test_bad_autoencoder_settings_name_the_field(make, field):
    with pytest.raises(ConfigError) as err:
        make()
    assert err.value.field == field


# -- training -------------------------------------------------------------------------------

def test_trainer_steps_flushes_and_probes_on_synthetic_digits(mnist_dir):
    t = AutoencoderTrainer(ae_config(mnist_dir, "vae"))
    for what in ("both", "d", "g"):          # every kind of step is one update of the one network
        t.train_step(what)
    assert t.step == 3
    steps, values = t.flush()
    assert list(steps) == [1, 2, 3] and values.shape == (3, len(METRICS["vae"]))
    recon, kl, loss = values.T
    assert np.allclose(loss, recon + kl, rtol=1e-5) and (kl >= 0).all()
    assert t.flush()[1].shape == (0, 3)     # read back once
    views, meters = t.probe()
    assert views["grid"].dtype == np.uint8 and views["grid"].shape == (8 * 30 + 2, 8 * 30 + 2)
    assert views["recon_grid"].shape == (4 * 30 + 2, 10 * 30 + 2)     # 2 pairs of rows, 10 digits
    latent = views["latent"]
    assert latent["points"].shape == (len(t.task.test_images), 2) and latent["axes"] == ("PC 1", "PC 2")
    assert latent["prior"].shape == (64, 2)
    assert meters["recon_mse_test"] > 0 and meters["kl_test"] >= 0
    assert "fid" not in meters               # 300 digits are too few for the classifier meters
    assert t.G(torch.zeros(2, 20)).shape == (2, 1, 28, 28)


def test_a_nan_loss_raises_diverged_error_at_flush(mnist_dir):
    t = AutoencoderTrainer(ae_config(mnist_dir, "ae"))
    t.train_step()
    with torch.no_grad():
        next(t.model.parameters()).fill_(float("nan"))
    t.train_step()
    with pytest.raises(DivergedError) as err:
        t.flush()
    assert err.value.step == 2 and err.value.metric == "recon"


def test_vae_loss_decreases_on_real_digits(shared_data):
    t = AutoencoderTrainer(ae_config(shared_data, "vae", batch_size=64))
    t.task.meters.wait()            # the classifier loads on its own thread; this test reads its meters
    _, before = t.probe()
    for _ in range(200):
        t.train_step()
    _, values = t.flush()
    loss = values[:, METRICS["vae"].index("loss")]
    assert loss[-20:].mean() < 0.6 * loss[:20].mean()
    _, after = t.probe()
    assert after["recon_mse_test"] < 0.7 * before["recon_mse_test"]      # on digits it never trained on
    # Prior samples scored like a GAN's: the VAE's N(0, I) draws start to read as digits (after
    # 200 steps they are blurry, so the confident meters count only a few kinds).
    assert after["fid"] < before["fid"] and after["confident"] > before["confident"] + 0.1
    assert after["modes_covered"] >= 2
    assert after["fid_recon"] < after["fid"]   # reconstructions beat random draws


def test_an_autoencoder_trains_in_a_real_run(shared_data, monkeypatch):
    from ganlab.tasks.mnist import Mnist
    monkeypatch.setattr(Mnist, "snapshot_seconds", 0)   # only the step-paced snapshots: their steps are known
    run = Run(ae_config(shared_data, "ae", steps=120)).start()
    assert run.join(120)
    snap = run.snapshot()
    assert snap.status == "finished", snap.message
    assert snap.step == 120 and len(snap.metrics["recon"]) == 120 and set(snap.metrics) == {"step", "recon"}
    assert np.isfinite(snap.metrics["recon"]).all()
    assert set(snap.meters["step"]) == {0, 50, 100, 120}
    assert {"recon_mse_test", "fid", "fid_recon", "modes_covered"} <= set(snap.meters)
    assert [s for s, _ in snap.images] == [0, 50, 100, 120]
    assert snap.views["recon_grid"].dtype == np.uint8 and snap.views["latent"]["points"].shape[1] == 3
    assert snap.alarms == () and snap.events == ()     # the GAN alarms do not apply
    assert run.page == "autoencoders"                 # the Runs page opens it on the AE & VAE lab
    G = run.generator_copy()                  # what the page explores: the decoder
    assert not G.training and G(torch.zeros(4, 3)).shape == (4, 1, 28, 28)
    rows = family_table([run, Run(get_preset("mnist-dcgan").config)])
    assert [r["family"] for r in rows] == ["GAN", "AE"]
    assert rows[0]["Fréchet distance"] is None and rows[1]["Fréchet distance"] == snap.latest("fid")
    assert rows[1]["reconstruction MSE (held out)"] == snap.latest("recon_mse_test")


def test_pause_single_steps_resume_and_stop(mnist_dir):
    run = Run(ae_config(mnist_dir, "vae", steps=100_000)).start(paused=True)
    assert wait_for(lambda: run.snapshot().status == "paused", 60)
    run.step_once("d")
    run.step_once("g")
    run.step_once("both")
    assert wait_for(lambda: run.snapshot().step == 3)
    assert set(run.snapshot().metrics) == {"step", "recon", "kl", "loss"}
    run.resume()
    assert wait_for(lambda: run.snapshot().step > 60, 60)
    assert run.stop(wait=10)
    assert run.snapshot().status == "stopped"


def test_a_diverging_autoencoder_run_says_so(mnist_dir):
    cfg = ae_config(mnist_dir, "vae", steps=400).replace(opt_g=Optim("sgd", lr=10.0, beta1=0.9))
    run = Run(cfg).start()
    assert run.join(60)
    snap = run.snapshot()
    assert snap.status == "diverged" and "became NaN or infinite" in snap.message, snap.message


# -- the latent view and the charts ------------------------------------------------------------

def test_pca_finds_the_plane_and_keeps_its_signs():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(500, 2)) * [3.0, 1.0]
    basis = np.linalg.qr(rng.normal(size=(20, 2)))[0].T          # two orthonormal directions in 20-D
    codes = plane @ basis + 5.0
    mean, axes, explained = pca_2d(codes)
    assert explained > 0.999 and np.allclose(mean, codes.mean(0))
    assert np.allclose(np.abs(axes @ basis.T), np.eye(2), atol=0.01)   # the long side first
    _, flipped_axes, _ = pca_2d(-codes)
    assert np.allclose(axes, flipped_axes) or np.allclose(axes, -flipped_axes)
    assert (axes[np.arange(2), np.abs(axes).argmax(1)] > 0).all()


def test_latent_figure_colours_codes_by_digit():
    rng = np.random.default_rng(1)
    digits = np.arange(100) % 10
    view3 = latent_view(rng.normal(size=(100, 3)), digits, rng.normal(size=(8, 3)))
    fig3 = charts.latent_figure(view3, "AE")
    assert [t.type for t in fig3.data] == ["scatter3d"] * 11
    assert [t.name for t in fig3.data[:10]] == [str(d) for d in range(10)]
    assert len(fig3.data[3].x) == 10 and len(fig3.data[10].x) == 8     # ten 3s; the eight random codes
    assert fig3.data[3].marker.color != fig3.data[4].marker.color
    view20 = latent_view(rng.normal(size=(100, 20)), digits, rng.normal(size=(8, 20)))
    spec2 = json.loads(charts.latent_figure(view20, "VAE").to_json())
    assert {t["type"] for t in spec2["data"]} == {"scatter"}
    assert "PCA, " in spec2["layout"]["title"]["text"]
    assert spec2["layout"]["xaxis"]["title"]["text"] == "PC 1"
    assert charts.latent_figure(None).layout.annotations       # says why it is empty


def test_loss_charts_draw_the_terms_apart():
    metrics = {"step": np.arange(1, 51), "recon": np.linspace(200, 100, 50), "kl": np.linspace(1, 20, 50),
               "loss": np.linspace(201, 120, 50)}
    recon = charts.reconstruction_figure(metrics, "vae")
    kl = charts.kl_figure(metrics)
    assert {t.name for t in recon.data} >= {"reconstruction"} and "per image" in recon.layout.title.text
    assert any(t.name.startswith("KL") for t in kl.data)
    assert "per pixel" in charts.reconstruction_figure(metrics, "ae").layout.title.text
    quality = charts.autoencoder_quality_figure({"step": np.array([0, 50]), "fid": np.array([300.0, 100.0]),
                                                 "fid_recon": np.array([200.0, 40.0])})
    assert {t.name for t in quality.data} == {"samples (random codes)", "reconstructions"}


@pytest.mark.parametrize("fast", [True, False])
def test_the_seeds_weight_decay_reaches_the_autoencoders_optimizer(mnist_dir, fast):
    # Seed 002 trains its autoencoder with Adam(lr=1e-3, weight_decay=1e-5).
    cfg = get_preset("mnist-ae-seed002").config.replace(train={"data_dir": str(mnist_dir), "fast": fast})
    trainer = AutoencoderTrainer(cfg)
    assert [g["weight_decay"] for g in trainer.opt.param_groups] == [1e-5]
    # It is a real L2 penalty: with zero gradient from the loss, Adam still shrinks the weights.
    w = next(trainer.model.parameters())
    w.grad = torch.zeros_like(w)
    before = w.detach().abs().sum()
    trainer.opt.step()
    assert w.detach().abs().sum() < before
