"""The exported script: standalone, built from ganlab's own code, and it trains like ganlab."""
import math
import re
import subprocess
import sys
import types

import pytest

from ganlab.__main__ import main as cli
from ganlab.config import Loss
from ganlab.export import TASKS, ExportError, check, export_script
from ganlab.losses import LOSSES
from ganlab.models import MODELS
from ganlab.presets import PRESETS, get_preset, presets_for
from ganlab.train import Trainer

LOSS_LINE = re.compile(r"^step (\d+): loss_d (\S+) loss_g (\S+)$", re.M)
AE_LINE = re.compile(r"^step (\d+): (.+)$", re.M)
AE_PRESETS = ("mnist-ae-seed002", "mnist-vae-seed002")


def one_config_per_model():
    """A preset's config for every model the exported tasks use (1D: also the minibatch D)."""
    configs = {}
    for task in TASKS:
        for p in presets_for(task):
            key = p.config.model.name + ("-minibatch" if p.config.model.minibatch_d else "")
            configs.setdefault(key, p.config)
    return configs


def losses_of(output):
    return [(int(s), float(d), float(g)) for s, d, g in LOSS_LINE.findall(output)]


def run_script(path, *args, cwd):
    # -I: no PYTHONPATH, no user site-packages, not even the script's folder: ganlab cannot be imported.
    return subprocess.run([sys.executable, "-I", str(path), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def test_every_model_and_loss_exports_a_script_that_compiles():
    configs = one_config_per_model()
    gan_models = {cfg.model.name for cfg in configs.values()}
    assert gan_models == {name for name, spec in MODELS.items() if spec.task in TASKS}   # not the 2D lab's
    for key, cfg in configs.items():
        for loss in LOSSES:
            script = export_script(cfg.replace(loss=Loss(loss)))
            compile(script, f"{key}-{loss}.py", "exec")
            assert not re.search(r"^\s*(import|from)\s+(ganlab|scipy|pandas|streamlit)", script, re.M)


def test_the_models_and_losses_come_from_ganlabs_source():
    import inspect
    from ganlab import losses
    from ganlab.models import layers, maxout, mlp_mnist
    script = export_script(get_preset("mnist-maxout-seed004").config)
    for obj in (layers.mlp, maxout.Maxout, maxout.Discriminator, mlp_mnist.Generator, losses.gradient_penalty,
                losses.bce_d_loss, losses.r1_penalty, losses.lsgan_d_loss, losses.hinge_d_loss):
        assert inspect.getsource(obj) in script
    assert "def seed003_init" not in script           # only what this model uses


def ae_losses_of(output):
    """[(step, {term: value})] from an autoencoder script's "step 5: recon 0.1234 kl 5.6789 loss 5.9023"."""
    rows = []
    for step, rest in AE_LINE.findall(output):
        words = rest.split()
        rows.append((int(step), {name: float(v) for name, v in zip(words[::2], words[1::2])}))
    return rows


@pytest.mark.parametrize("slug", AE_PRESETS)
def test_the_autoencoders_export_scripts_of_ganlabs_own_source(slug):
    import inspect
    from ganlab.models import autoencoder, layers
    from ganlab.train import make_optimizer
    cfg = get_preset(slug).config
    check(cfg)                          # the AE & VAE page offers the script when this passes
    script = export_script(cfg)
    compile(script, f"{slug}.py", "exec")
    assert not re.search(r"^\s*(import|from)\s+(ganlab|scipy|pandas|streamlit)", script, re.M)
    if cfg.model.name == "vae":
        ours, other, build = autoencoder.VAE, autoencoder.Autoencoder, autoencoder.build_vae
        helpers = (autoencoder.kl_to_standard_normal, autoencoder.reconstruction_loss, autoencoder.to_unit)
    else:
        ours, other, build = autoencoder.Autoencoder, autoencoder.VAE, autoencoder.build_ae
        helpers = ()
    for obj in (ours, build, layers.mlp, make_optimizer, *helpers):
        assert inspect.getsource(obj) in script
    assert f"class {other.__name__}(" not in script      # only what this model uses
    assert f"model = {build.__name__}(cfg)" in script
    docstring = script.splitlines()[1]
    assert "GAN" not in docstring and ("VAE" if cfg.model.name == "vae" else "autoencoder") in docstring


def test_export_refuses_what_it_cannot_write():
    toy2d = [p for p in PRESETS.values() if p.config.task not in TASKS]
    if toy2d:
        with pytest.raises(ExportError, match="tasks"):
            export_script(toy2d[0].config)


def ganlab_metrics(trainer, steps: int):
    """The per-step metrics of `steps` steps of a ganlab trainer."""
    for _ in range(steps):
        trainer.train_step()
    return trainer.flush()[1]


def exec_script(script, argv, monkeypatch):
    """Run an exported script's main() in this process (faster than a subprocess per combination)."""
    module = types.ModuleType("exported")
    monkeypatch.setitem(sys.modules, "exported", module)     # dataclasses look their module up
    exec(compile(script, "exported.py", "exec"), module.__dict__)
    monkeypatch.setattr(sys, "argv", ["exported.py", *argv])
    return module.main()


@pytest.mark.parametrize("model", sorted(set(one_config_per_model())))
def test_every_model_trains_with_every_loss(model, mnist_dir, tmp_path, monkeypatch, capsys):
    cfg = one_config_per_model()[model].replace(          # the preset's shape, small
        model={"g_hidden": 16, "d_hidden": 16, "minibatch_group": 10}, noise={"dim": 8}, train={"batch_size": 20})
    for loss in LOSSES:
        script = export_script(cfg.replace(loss=Loss(loss)))
        code = exec_script(script, ["--steps", "2", "--data", str(mnist_dir), "--out", str(tmp_path / "s.png"),
                                    "--device", "cpu"], monkeypatch)
        out = capsys.readouterr().out
        assert code == 0, out
        rows = losses_of(out)
        assert rows and rows[-1][0] == 2 and all(math.isfinite(d) and math.isfinite(g) for _, d, g in rows)


def test_the_script_runs_ganlabs_own_iteration_and_its_one_lr_decay():
    # The iteration is not a template: the script holds the very functions the Trainer calls.
    import inspect
    from ganlab import export, iteration
    script = export_script(get_preset("mnist-dcgan").config)
    for fn in (iteration.train_iteration, iteration.train_step, iteration.lr_scale, iteration.set_lr,
               iteration.d_output):
        assert inspect.getsource(fn) in script
    for stage in ("(1) Update D", "(1a)", "(1b)", "(1c)", "(1d)", "(2) Update G", "(2a)", "(2b)"):
        assert stage in script
    # One lr-decay formula, in ganlab/iteration.py: neither export.py nor the Trainer writes its own.
    import ganlab.train
    assert "0.98" in inspect.getsource(iteration.lr_scale)
    assert "0.98" not in inspect.getsource(export) and "0.98" not in inspect.getsource(ganlab.train)
    assert script.count("0.98") == 1


@pytest.mark.parametrize("loss,k,decay", [("bce-ns", 1, False), ("wgan-gp", 1, False), ("wgan-clip", 1, False),
                                          ("lsgan", 1, False), ("hinge", 1, False), ("bce-ns-r1", 1, False),
                                          ("bce-ns", 3, True), ("wgan-gp", 5, True)])
def test_the_1d_script_trains_exactly_like_ganlab(loss, k, decay, monkeypatch, capsys):
    # ganlab's plain path (fast off) is what the script writes out: same init, same
    # random stream, same order of updates, so the same losses step for step; with
    # k > 1 and the learning rates decaying too.
    cfg = get_preset("gauss1d").config.replace(loss=Loss(loss), train={"steps": 12, "fast": False, "device": "cpu",
                                                                      "d_steps": k, "lr_decay": decay})
    values = ganlab_metrics(Trainer(cfg), 12)
    assert exec_script(export_script(cfg), ["--steps", "12", "--log-every", "1", "--device", "cpu"],
                       monkeypatch) == 0
    rows = losses_of(capsys.readouterr().out)
    assert [s for s, _, _ in rows] == list(range(1, 13))
    for (step, d, g), (ours_d, ours_g) in zip(rows, values[:, :2]):
        assert d == pytest.approx(ours_d, abs=1e-4) and g == pytest.approx(ours_g, abs=1e-4), step


@pytest.mark.parametrize("slug,changes", [
    ("mnist-mlp-seed003", {}), ("mnist-dcgan", {}), ("mnist-cgan", {}),
    # One-sided label smoothing, and dropout in the DCGAN's D (its masks from the run's stream).
    ("mnist-dcgan", {"loss": {"real_label": 0.9}, "model": {"dropout": 0.3}}),
    # G's extra 3x3 layers (model.g_refine): the script builds the same G.
    ("mnist-dcgan", {"model": {"g_refine": 1}}),
    # D's third strided convolution (model.d_depth 3): the script builds the same D.
    ("mnist-dcgan", {"model": {"d_depth": 3}})])
def test_an_mnist_script_trains_exactly_like_ganlab(slug, changes, mnist_dir, tmp_path, monkeypatch, capsys):
    # The same digits (ganlab's held-out split), batches, noise, labels and dropout masks in the
    # same order, and ganlab's plain path: the same losses step for step.
    cfg = get_preset(slug).config.replace(
        train={"steps": 8, "batch_size": 16, "fast": False, "device": "cpu", "data_dir": str(mnist_dir)}, **changes)
    values = ganlab_metrics(Trainer(cfg), 8)
    assert exec_script(export_script(cfg), ["--steps", "8", "--log-every", "1", "--device", "cpu",
                                            "--data", str(mnist_dir), "--out", str(tmp_path / "s.png")],
                       monkeypatch) == 0
    rows = losses_of(capsys.readouterr().out)
    assert [s for s, _, _ in rows] == list(range(1, 9))
    for (step, d, g), (ours_d, ours_g) in zip(rows, values[:, :2]):
        assert d == pytest.approx(ours_d, abs=1e-4) and g == pytest.approx(ours_g, abs=1e-4), step


@pytest.mark.parametrize("slug,recon_loss", [("mnist-ae-seed002", "mse"), ("mnist-vae-seed002", "mse"),
                                             ("mnist-vae-seed002", "bce")])
def test_the_autoencoder_scripts_train_exactly_like_ganlab(slug, recon_loss, mnist_dir, tmp_path, monkeypatch,
                                                           capsys):
    # Same init (the seed, then the build), the same held-out split, batches and VAE noise from one
    # generator in the same order, and plain Adam on both sides (fast off: fused Adam rounds
    # differently), so the terms agree step for step. abs=1e-4 only absorbs the script's
    # 4-decimal print; a different batch or init moves them far more.
    from ganlab.autoencoders import METRICS, AutoencoderTrainer
    cfg = get_preset(slug).config.replace(
        model={"recon_loss": recon_loss},
        train={"steps": 20, "batch_size": 16, "fast": False, "device": "cpu", "data_dir": str(mnist_dir)})
    values = ganlab_metrics(AutoencoderTrainer(cfg), 20)
    assert exec_script(export_script(cfg), ["--steps", "20", "--log-every", "1", "--device", "cpu",
                                            "--data", str(mnist_dir), "--out", str(tmp_path / "s.png"),
                                            "--recon-out", str(tmp_path / "r.png")], monkeypatch) == 0
    rows = ae_losses_of(capsys.readouterr().out)
    assert [s for s, _ in rows] == list(range(1, 21))
    names = METRICS[cfg.model.name]
    for (step, terms), ours in zip(rows, values):
        assert [terms[n] for n in names] == pytest.approx(list(ours), abs=1e-4), step
    assert values[-1][0] < values[0][0]            # it learned something: not a comparison of two no-ops
    assert (tmp_path / "s.png").is_file() and (tmp_path / "r.png").is_file()


def test_the_1d_script_runs_standalone(tmp_path, capsys):
    assert cli(["export", "--preset", "gauss1d", "--out", str(tmp_path / "train_gan.py")]) == 0
    done = run_script(tmp_path / "train_gan.py", "--steps", "5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = losses_of(done.stdout)
    assert rows[-1][0] == 5 and all(math.isfinite(d) and math.isfinite(g) for _, d, g in rows)
    assert "G's samples: mean" in done.stdout


def test_an_mnist_script_runs_standalone_on_the_real_digits(shared_data, tmp_path, capsys):
    assert cli(["export", "--preset", "mnist-cgan"]) == 0
    (tmp_path / "cgan.py").write_text(capsys.readouterr().out)
    done = run_script(tmp_path / "cgan.py", "--steps", "5", "--data", str(shared_data), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "10,000 digits" in done.stdout
    rows = losses_of(done.stdout)
    assert rows[-1][0] == 5 and all(math.isfinite(d) and math.isfinite(g) for _, d, g in rows)
    from PIL import Image
    assert Image.open(tmp_path / "samples.png").size[0] > 8 * 28      # a grid of 8 columns


def test_a_vae_script_runs_standalone_on_the_real_digits(shared_data, tmp_path):
    assert cli(["export", "--preset", "mnist-vae-seed002", "--out", str(tmp_path / "vae.py")]) == 0
    done = run_script(tmp_path / "vae.py", "--steps", "5", "--data", str(shared_data), "--device", "cpu",
                      cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "10,000 digits" in done.stdout
    rows = ae_losses_of(done.stdout)
    assert rows[-1][0] == 5 and all(math.isfinite(v) for _, terms in rows for v in terms.values())
    assert set(rows[-1][1]) == {"recon", "kl", "loss"}
    from PIL import Image
    assert Image.open(tmp_path / "samples.png").size[0] > 8 * 28      # 8 columns of decoded codes
    inputs_and_outputs = Image.open(tmp_path / "reconstructions.png")
    assert inputs_and_outputs.size[1] > 8 * 28                        # 4 (inputs, outputs) pairs of rows


def test_cli_export_names_an_unknown_preset():
    assert cli(["export", "--preset", "no-such-preset"]) == 2


def test_the_script_trains_on_as_many_cpu_threads_as_ganlab(tmp_path):
    from ganlab.tasks.mnist import Mnist
    assert cli(["export", "--preset", "gauss1d", "--out", str(tmp_path / "train_gan.py")]) == 0
    done = run_script(tmp_path / "train_gan.py", "--steps", "5", "--device", "cpu", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "on cpu with 1 CPU thread(s)" in done.stdout          # the 1D task's choice, whatever the cores
    mnist = export_script(get_preset("mnist-dcgan").config)
    assert f"'cpu_threads': {Mnist.cpu_threads}" in mnist          # the MNIST task's: half the cores
    two = export_script(get_preset("gauss1d").config.replace(train={"cpu_threads": 2}))
    assert "'cpu_threads': 2" in two                               # a run's own setting wins, as in ganlab


def test_offline_without_data_the_mnist_script_says_to_pass_data(tmp_path, capsys):
    import os
    assert cli(["export", "--preset", "mnist-dcgan"]) == 0
    (tmp_path / "dcgan.py").write_text(capsys.readouterr().out)
    # A proxy that refuses every connection: offline, quickly and for sure.
    env = {**os.environ, "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}
    done = subprocess.run([sys.executable, "-I", str(tmp_path / "dcgan.py"), "--steps", "1"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode != 0
    assert "Pass --data DIR" in done.stderr and "t10k-images-idx3-ubyte.gz" in done.stderr
    assert "Traceback" not in done.stderr
