"""Checkpoints: save a run as one folder, load it back safely, resume it exactly."""
import json

import numpy as np
import pytest
import torch

from conftest import tiny
from ganlab import checkpoints
from ganlab.checkpoints import CheckpointError
from ganlab.config import Experiment, Loss, Model, Noise, Optim, Train
from ganlab.runs import FINISHED, RunRegistry
from ganlab.train import Trainer


def finished_run(cfg, registry=None, **kwargs):
    registry = registry or RunRegistry()
    run = registry.create(cfg, **kwargs)
    assert run.join(120), "the run did not end"
    assert run.status == FINISHED, run.snapshot().message
    return run


@pytest.fixture
def saved(tmp_path):
    """A finished 100-step 1D run and its checkpoint folder."""
    run = finished_run(tiny(100), name="tiny")
    return run, checkpoints.save(run, tmp_path / "saves" / "tiny")


def test_save_writes_one_folder_that_loads_back(saved):
    run, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "meters.csv", "metrics.csv", "weights.pt"]
    header = json.loads((folder / "config.json").read_text())
    assert header["format"] == "ganlab-checkpoint" and header["version"] == checkpoints.VERSION
    assert (header["name"], header["page"], header["step"]) == ("tiny", "gauss1d", 100)
    assert Experiment.from_dict(header["experiment"]) == run.cfg

    ckpt = checkpoints.load(folder)
    assert ckpt.cfg == run.cfg and ckpt.step == 100 and ckpt.name == "tiny"
    for name, tensor in run.trainer.G.state_dict().items():
        assert torch.equal(ckpt.state["G"][name], tensor)
    snap = run.snapshot()
    assert np.array_equal(ckpt.metrics["step"], snap.metrics["step"])
    np.testing.assert_array_equal(ckpt.metrics["loss_d"], snap.metrics["loss_d"])
    np.testing.assert_array_equal(ckpt.meters["w1"], snap.meters["w1"])
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")], "a temporary folder was left"


def test_an_r1_run_keeps_its_gamma_through_a_save(tmp_path):
    cfg = tiny(20).replace(loss=Loss("bce-ns-r1", r1_gamma=2.5))
    run = finished_run(cfg, name="r1")
    folder = checkpoints.save(run, tmp_path / "r1")
    assert json.loads((folder / "config.json").read_text())["experiment"]["loss"]["r1_gamma"] == 2.5
    ckpt = checkpoints.load(folder)
    assert (ckpt.cfg.loss.name, ckpt.cfg.loss.r1_gamma) == ("bce-ns-r1", 2.5)
    assert ckpt.cfg == run.cfg


def test_a_save_that_fails_midway_leaves_the_old_save_intact(saved, monkeypatch):
    run, folder = saved
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(checkpoints.torch, "save", disk_full)
    with pytest.raises(CheckpointError, match="the disk is full"):
        checkpoints.save(run, folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    monkeypatch.undo()

    real_replace, renames = checkpoints.os.replace, []
    monkeypatch.setattr(checkpoints, "_exchange", lambda a, b: False)   # a system without an atomic swap

    def rename_in_fails(src, dst):     # the old save is renamed aside, then the new one fails to go in
        renames.append(dst)
        if len(renames) == 2:
            raise OSError(5, "Input/output error")
        real_replace(src, dst)
    monkeypatch.setattr(checkpoints.os, "replace", rename_in_fails)
    with pytest.raises(CheckpointError, match="Input/output error"):
        checkpoints.save(run, folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    monkeypatch.undo()

    for words in ("PytorchStreamWriter failed writing file data/0: file write failed",
                  "[enforce fail at inline_container.cc:672] . unexpected pos 49920 vs 49812"):
        def writer_fails(*args, words=words, **kwargs):   # how torch.save reports a full disk
            raise RuntimeError(words)
        monkeypatch.setattr(checkpoints.torch, "save", writer_fails)
        with pytest.raises(CheckpointError, match="could not save to .*new: the disk is full"):
            checkpoints.save(run, folder.parent / "new")
        assert sorted(p.name for p in folder.parent.iterdir()) == ["tiny"]     # no half folder, no temporary


def test_saving_again_replaces_the_old_save_and_never_a_foreign_folder(saved, tmp_path):
    run, folder = saved
    (folder / "stale.txt").write_text("from the old save")
    checkpoints.save(run, folder)
    assert not (folder / "stale.txt").exists() and checkpoints.load(folder).step == 100
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("...")
    with pytest.raises(CheckpointError, match="not a ganlab checkpoint"):
        checkpoints.save(run, precious)
    assert (precious / "chapter1.tex").read_text() == "..."


def edit_config(folder, change):
    path = folder / "config.json"
    header = json.loads(path.read_text())
    change(header)
    path.write_text(json.dumps(header))


def test_missing_corrupt_truncated_and_foreign_files_are_clear_errors(saved, tmp_path):
    run, folder = saved
    with pytest.raises(CheckpointError, match="no checkpoint folder"):
        checkpoints.load(tmp_path / "nowhere")

    weights = folder / "weights.pt"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="weights.pt is corrupt or truncated"):
        checkpoints.load(folder)
    weights.write_bytes(b"\x00not a pytorch file at all")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        checkpoints.load(folder)
    torch.save({"model": torch.nn.Linear(2, 2).state_dict()}, weights)      # somebody else's .pt
    with pytest.raises(CheckpointError, match="not a ganlab checkpoint"):
        checkpoints.load(folder)
    weights.unlink()
    with pytest.raises(CheckpointError, match="no weights.pt"):
        checkpoints.load(folder)
    weights.write_bytes(good)
    assert checkpoints.load(folder).step == 100

    (folder / "metrics.csv").write_text("step,loss_d\n1,banana\n")
    with pytest.raises(CheckpointError, match="metrics.csv.*not a number"):
        checkpoints.load(folder)
    (folder / "config.json").write_text("{ this is not json")
    with pytest.raises(CheckpointError, match="config.json is corrupt"):
        checkpoints.load(folder)
    (folder / "config.json").write_text(json.dumps({"task": "gauss1d"}))
    with pytest.raises(CheckpointError, match="not a ganlab checkpoint"):
        checkpoints.load(folder)


def test_a_pickle_that_runs_code_is_refused_without_running_it(saved, tmp_path):
    run, folder = saved
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('ran')",))

    state = checkpoints.trainer_state(run.trainer)
    state["G"]["extra"] = Payload()
    torch.save(state, folder / "weights.pt")
    with pytest.raises(CheckpointError, match="could run code"):
        checkpoints.load(folder)
    assert not marker.exists()


def test_weights_that_do_not_fit_the_config_and_bad_configs_are_named(saved):
    run, folder = saved
    edit_config(folder, lambda h: h["experiment"]["model"].update(g_hidden=32))
    with pytest.raises(CheckpointError, match="G does not match config.json"):
        checkpoints.load(folder)
    edit_config(folder, lambda h: h["experiment"]["model"].update(g_hidden=16))
    edit_config(folder, lambda h: h["experiment"]["opt_g"].update(lr=-1))
    with pytest.raises(CheckpointError, match=r"config.json: opt_g.lr: must be in \(0, 10\]"):
        checkpoints.load(folder)
    edit_config(folder, lambda h: h["experiment"]["opt_g"].update(lr=2e-4))
    edit_config(folder, lambda h: h.update(version=99))
    with pytest.raises(CheckpointError, match="version 99"):
        checkpoints.load(folder)
    edit_config(folder, lambda h: h.update(version=1, step=7))
    with pytest.raises(CheckpointError, match="weights.pt is at step 100 but config.json says 7"):
        checkpoints.load(folder)


def curves(snap):
    m = snap.metrics
    return m["step"], np.column_stack([m["loss_d"], m["loss_g"], m["d_real"]])


@pytest.mark.parametrize("loss, opt", [("bce-ns", "adam"), ("wgan-gp", "rmsprop")])
def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, loss, opt):
    # No dropout: it may draw from PyTorch's global random stream, which a checkpoint
    # does not carry (every run in the process shares it).
    o = Optim(opt, lr=1e-3, beta1=0.5)
    cfg = tiny(150).replace(loss=Loss(loss), opt_g=o, opt_d=o)
    registry = RunRegistry()
    whole = finished_run(cfg, registry)
    first = finished_run(cfg.replace(train={"steps": 60}), registry, name="first")
    ckpt = checkpoints.load(checkpoints.save(first, tmp_path / "first"))
    resumed = finished_run(ckpt.cfg.replace(train={"steps": 150}), registry, name="first", resume=ckpt)

    steps, values = curves(resumed.snapshot())
    whole_steps, whole_values = curves(whole.snapshot())
    assert np.array_equal(steps, whole_steps) and steps[-1] == 150
    np.testing.assert_array_equal(values, whole_values)         # the same losses, step for step
    np.testing.assert_array_equal(resumed.snapshot().meters["w1"][-1], whole.snapshot().meters["w1"][-1])
    assert (resumed.trainer.d_updates, resumed.trainer.g_updates) == (150, 150)
    assert any(kind == "resumed" and "at step 60" in text for _, kind, text in resumed.snapshot().events)


def test_restore_fits_an_optimizer_that_runs_another_way():
    # Saved from the fast path (fused Adam), resumed with it off (plain Adam): the
    # moments carry over, and the new optimizer keeps its own way of running.
    fast = Trainer(tiny(50))
    for _ in range(5):
        fast.train_step()
    state = checkpoints.trainer_state(fast)
    plain = Trainer(tiny(50, fast=False))
    checkpoints.restore(plain, state)
    assert not plain.opt_g.param_groups[0].get("fused")
    p = next(plain.G.parameters())
    assert torch.equal(plain.opt_g.state[p]["exp_avg"], state["opt_g"]["state"][0]["exp_avg"])
    plain.train_step()
    assert plain.step == 6


def test_a_stream_saved_on_another_kind_of_device_is_reseeded_and_said_so():
    trainer = Trainer(tiny(50))
    state = checkpoints.trainer_state(trainer)
    state["rng_device"] = "cuda"               # as if saved on a GPU: its state means nothing to a CPU stream
    resumed = Trainer(tiny(50))
    notes = checkpoints.restore(resumed, state)
    assert notes == ["saved on cuda, resumed on cpu: the random stream was reseeded"]
    resumed.train_step()
    assert resumed.step == 1


def test_autosave_writes_checkpoints_during_a_run_and_keeps_the_latest(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_SAVES", str(tmp_path / "saves"))
    run = finished_run(tiny(200, save_every=40), name="auto")
    saves = checkpoints.list_saved()
    assert [s.step for s in saves] == [200, 160, 120]           # the latest KEEP_AUTOSAVES, newest first
    assert all(s.name == "auto" and s.task == "gauss1d" and not s.error for s in saves)
    assert all(f"-{run.id}-step" in s.folder.name for s in saves)
    ckpt = checkpoints.load(saves[1].folder)
    assert ckpt.step == 160 and ckpt.metrics["step"][-1] == 160   # metrics flushed up to the save
    assert not [p for p in (tmp_path / "saves").iterdir() if p.name.startswith(".")]


def test_autosave_can_be_switched_on_for_a_run_already_going(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_SAVES", str(tmp_path / "saves"))
    run = RunRegistry().create(tiny(100), paused=True)
    run.set_save_every(50)
    run.resume()
    assert run.join(60) and run.status == FINISHED
    assert sorted(s.step for s in checkpoints.list_saved()) == [50, 100]
    assert checkpoints.load(checkpoints.list_saved()[0].folder).cfg.train.save_every == 50


def test_a_failing_autosave_is_an_event_and_the_run_goes_on(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GANLAB_SAVES", str(blocker / "saves"))
    run = finished_run(tiny(100, save_every=50))
    failures = [text for _, kind, text in run.snapshot().events if kind == "checkpoint"]
    assert len(failures) == 2 and all(t.startswith("checkpoint failed: cannot write to") for t in failures)
    assert run.snapshot().step == 100


def test_explore_shows_a_saved_1d_generator_without_training(saved):
    run, folder = saved
    views, meters = checkpoints.explore(checkpoints.load(folder))
    assert views["p_g"].sum() > 0 and len(views["x"]) == len(views["p_g"])
    assert meters["w1"] == pytest.approx(run.snapshot().meters["w1"][-1])


def test_mnist_checkpoint_has_the_sample_grid_and_explores_as_a_grid(mnist_dir, tmp_path):
    cfg = Experiment(task="mnist", noise=Noise(dim=8),
                     model=Model("cgan", g_hidden=16, d_hidden=16, g_depth=1, d_depth=1),
                     train=Train(steps=4, batch_size=16, snapshot_every=2, data_dir=str(mnist_dir)))
    run = finished_run(cfg, name="digits")
    folder = checkpoints.save(run, tmp_path / "digits")
    from PIL import Image
    grid = np.asarray(Image.open(folder / "samples.png"))
    assert np.array_equal(grid, run.snapshot().images[-1][1])
    views, _ = checkpoints.explore(checkpoints.load(folder))
    assert views["grid"].shape == grid.shape                    # 10 rows of digits, 8 columns


def test_a_zipped_checkpoint_travels_and_a_bad_upload_leaves_nothing(saved, tmp_path):
    run, folder = saved
    other = tmp_path / "elsewhere"
    imported = checkpoints.import_zip(checkpoints.zip_folder(folder), other)
    assert imported.parent == other and checkpoints.load(imported).step == 100

    with pytest.raises(CheckpointError, match="not a zip file"):
        checkpoints.import_zip(b"PK\x03\x04 garbage", other)
    (folder / "weights.pt").write_bytes(b"tampered")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        checkpoints.import_zip(checkpoints.zip_folder(folder), other)
    assert sorted(p.name for p in other.iterdir()) == [imported.name]


# -- autoencoders: the same format, with the model and its optimizer --------------------------

def ae_config(data_dir, name="ae", steps=40, **train):
    """The seed 002 preset, made tiny: batch 32 on the CPU."""
    from ganlab.presets import get_preset
    return get_preset(f"mnist-{name}-seed002").config.replace(train={
        "steps": steps, "batch_size": 32, "device": "cpu", "data_dir": str(data_dir), "snapshot_every": 20,
        **train})


@pytest.mark.parametrize("name", ["ae", "vae"])
def test_an_autoencoder_resumes_exactly_like_an_uninterrupted_run(shared_data, tmp_path, name, monkeypatch):
    monkeypatch.setenv("GANLAB_DATA", str(shared_data))   # a checkpoint keeps no data folder: the server's own
    from ganlab.tasks.mnist import Mnist
    monkeypatch.setattr(Mnist, "snapshot_seconds", 0)      # only the step-paced snapshots: the same in both runs
    cfg = ae_config(shared_data, name, steps=40)
    registry = RunRegistry()
    whole = finished_run(cfg, registry, page="autoencoders")
    first = finished_run(cfg.replace(train={"steps": 20}), registry, name="first", page="autoencoders")
    folder = checkpoints.save(first, tmp_path / "first")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "meters.csv", "metrics.csv",
                                                         "samples.png", "weights.pt"]
    assert json.loads((folder / "config.json").read_text())["page"] == "autoencoders"
    ckpt = checkpoints.load(folder)
    assert ckpt.page == "autoencoders" and ckpt.step == 20 and ckpt.cfg == first.cfg.replace(train={"data_dir": ""})
    assert {"model", "opt"} <= set(ckpt.state) and not {"G", "D", "opt_g", "opt_d"} & set(ckpt.state)
    resumed = finished_run(ckpt.cfg.replace(train={"steps": 40}), registry, name="first", page=ckpt.page,
                           resume=ckpt)

    a, b = whole.snapshot(), resumed.snapshot()
    assert b.step == 40 and set(b.metrics) == set(a.metrics) == {"step", *metric_names_of(cfg)}
    for column in a.metrics:                                       # the same losses, step for step
        np.testing.assert_array_equal(b.metrics[column], a.metrics[column])
    assert list(b.meters["step"]) == list(a.meters["step"]) == [0, 20, 40]
    assert b.meters["recon_mse_test"][-1] == a.meters["recon_mse_test"][-1]
    assert b.meters["fid"][-1] == pytest.approx(a.meters["fid"][-1], rel=1e-6)
    assert np.array_equal(b.images[-1][1], a.images[-1][1])       # the same decodes of the fixed z
    for key, tensor in whole.trainer.model.state_dict().items():
        assert torch.equal(resumed.trainer.model.state_dict()[key], tensor)
    assert any(kind == "resumed" and "at step 20" in text for _, kind, text in b.events)


def metric_names_of(cfg):
    from ganlab.families import metric_names
    return metric_names(cfg)


def test_an_autoencoder_autosaves_and_explores_as_a_grid(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_SAVES", str(tmp_path / "saves"))
    run = finished_run(ae_config(mnist_dir, "vae", steps=40, save_every=20), name="vae", page="autoencoders")
    saves = checkpoints.list_saved()
    assert [(s.step, s.model, s.task, s.error) for s in saves] == [(40, "vae", "mnist", ""), (20, "vae", "mnist", "")]
    ckpt = checkpoints.load(saves[0].folder)
    assert ckpt.metrics["step"][-1] == 40 and set(ckpt.metrics) == {"step", "recon", "kl", "loss"}
    views, meters = checkpoints.explore(ckpt)
    # The saved decoder's answer to the page's fixed z: the very grid the live run last showed.
    assert views["step"] == 40 and meters == {}
    assert np.array_equal(views["grid"], run.snapshot().images[-1][1])
    G = checkpoints.generator(ckpt)
    assert not G.training and G(torch.zeros(2, ckpt.cfg.noise.dim)).shape == (2, 1, 28, 28)


def test_a_corrupt_or_mismatched_autoencoder_checkpoint_is_a_clear_error(mnist_dir, tmp_path):
    run = finished_run(ae_config(mnist_dir, "ae", steps=20), name="ae", page="autoencoders")
    folder = checkpoints.save(run, tmp_path / "ae")
    weights = folder / "weights.pt"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="weights.pt is corrupt or truncated"):
        checkpoints.load(folder)
    weights.write_bytes(good)

    edit_config(folder, lambda h: h["experiment"]["noise"].update(dim=5))     # another code size
    with pytest.raises(CheckpointError, match=r"weights.pt: model does not match config.json \(encoder.6.weight has shape \(3, 12\)"):
        checkpoints.load(folder)
    edit_config(folder, lambda h: h["experiment"]["noise"].update(dim=3))
    edit_config(folder, lambda h: h["experiment"]["model"].update(name="vae"))  # a VAE's config, an AE's weights
    with pytest.raises(CheckpointError, match="model does not match config.json"):
        checkpoints.load(folder)
    edit_config(folder, lambda h: h["experiment"]["model"].update(name="ae"))
    assert checkpoints.load(folder).step == 20

    state = torch.load(weights, weights_only=True)
    state["opt"]["state"][0]["exp_avg"] = torch.zeros(3)
    torch.save(state, weights)
    with pytest.raises(CheckpointError, match=r"opt's exp_avg for parameter 0 has shape \(3,\)"):
        checkpoints.load(folder)
    del state["opt"]
    torch.save(state, weights)
    with pytest.raises(CheckpointError, match="weights.pt has no opt state"):
        checkpoints.load(folder)

    gan = finished_run(tiny(10), name="gan")          # a GAN's weights under an AE's config
    torch.save(checkpoints.trainer_state(gan.trainer), weights)
    edit_config(folder, lambda h: h.update(step=10))
    with pytest.raises(CheckpointError, match="weights.pt has no model state"):
        checkpoints.load(folder)
