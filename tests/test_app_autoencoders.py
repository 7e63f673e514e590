"""The AE & VAE lab, driven with AppTest: tiny runs on real digits, a bad setting, no data, the MNIST table."""
from pathlib import Path

import pytest
from conftest import chart_specs, open_app, run_until_ended

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
SHARED_DATA = ROOT.parent / "shared" / "data"
needs_mnist = pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(),
                                 reason=f"the real MNIST test split is not at {SHARED_DATA}")


def open_page(monkeypatch, data_dir):
    monkeypatch.setenv("GANLAB_DATA", str(data_dir))
    return open_app("pages/autoencoders.py", timeout=120)



def title(spec):
    return spec["layout"]["title"]["text"]


def test_without_data_the_page_says_where_to_put_it(monkeypatch, tmp_path):
    at = open_page(monkeypatch, tmp_path / "empty")
    text = " ".join(w.value for w in at.warning)
    assert "No MNIST data" in text and "MNIST lab page can download it" in text
    assert not at.get("plotly_chart") and not at.button


@needs_mnist
def test_a_bad_setting_is_a_message_and_start_waits(monkeypatch):
    at = open_page(monkeypatch, SHARED_DATA)
    at.number_input(key="train.batch_size").set_value(0).run()
    assert any("train.batch_size" in e.value for e in at.error)
    assert at.button(key="autoencoders-start").disabled
    at.number_input(key="train.batch_size").set_value(32).run()
    assert not at.error and not at.button(key="autoencoders-start").disabled
    decay = at.number_input(key="opt_g.weight_decay")
    assert decay.value == 1e-5                                   # the seed's weight decay
    decay.set_value(-1e-3).run()                                 # the widget's floor is 0
    assert not at.exception and at.number_input(key="opt_g.weight_decay").value >= 0


@needs_mnist
@pytest.mark.parametrize("preset", ["mnist-ae-seed002", "mnist-vae-seed002"])
def test_a_tiny_run_draws_losses_grids_and_the_latent_space(monkeypatch, preset):
    at = open_page(monkeypatch, SHARED_DATA)
    at.selectbox(key="ae-preset").set_value(preset).run()
    at.number_input(key="train.steps").set_value(40)
    at.number_input(key="train.batch_size").set_value(32)
    at.button(key="autoencoders-start").click().run()
    assert "run" in at.query_params
    text = run_until_ended(at, 180)
    assert "[Finished]" in text and "step **40** of 40" in text
    charts = chart_specs(at)
    titles = [title(s) for s in charts]
    names = {t.get("name") for s in charts for t in s["data"]}
    assert "reconstruction" in names
    recon_grid = next(s for s in charts if title(s).startswith("Held-out digits"))
    samples = next(s for s in charts if "decoded" in title(s) and s["data"][0]["type"] == "image")
    assert recon_grid["data"][0]["type"] == "image" and "step 40" in title(recon_grid)
    assert "step 40" in title(samples)
    latent = next(s for s in charts if title(s).startswith(("The AE", "The VAE")))
    assert {str(d) for d in range(10)} <= {t["name"] for t in latent["data"]}
    assert {"samples (random codes)", "reconstructions", "digits covered (of 10)"} <= names
    if preset == "mnist-ae-seed002":
        assert {t["type"] for t in latent["data"]} == {"scatter3d"}
        assert "not a generator" in title(samples)
        assert not any(t.startswith("KL term") for t in titles)
    else:
        assert {t["type"] for t in latent["data"]} == {"scatter"} and "PCA, " in title(latent)
        assert any(t.startswith("KL term") for t in titles)
    # The comparison table, here and on the MNIST page, has this run's row.
    family = "AE" if preset == "mnist-ae-seed002" else "VAE"
    table = at.dataframe[0].value
    assert family in set(table["family"]) and table["Fréchet distance"].notna().any()
    at.switch_page("pages/mnist.py").run()
    assert not at.exception
    assert family in set(at.dataframe[0].value["family"])
    # A meter a run does not have (a GAN's reconstruction error, say) is drawn as a dash, never None.
    assert {df.proto.placeholder for df in at.dataframe} == {"—"}


def test_a_finished_run_saves_a_checkpoint_for_the_saved_runs_page(monkeypatch, mnist_dir, tmp_path):
    saves = tmp_path / "saves"
    monkeypatch.setenv("GANLAB_SAVES", str(saves))
    at = open_page(monkeypatch, mnist_dir)
    at.selectbox(key="ae-preset").set_value("mnist-vae-seed002").run()
    at.number_input(key="train.steps").set_value(20)
    at.number_input(key="train.batch_size").set_value(16)
    at.button(key="autoencoders-start").click().run()
    assert "[Finished]" in run_until_ended(at, 120)
    [save] = [b for b in at.button if b.label == "Save a checkpoint"]
    save.click().run()
    assert not at.exception and not at.error
    [folder] = saves.iterdir()
    assert folder.name.startswith("mnist-vae-seed002-") and folder.name.endswith("-step20")
    from ganlab import checkpoints
    ckpt = checkpoints.load(folder)
    assert (ckpt.step, ckpt.cfg.model.name, ckpt.page) == (20, "vae", "autoencoders")
    labels = {b.label for b in at.get("download_button")}
    assert {"config.json", "weights.pt", "samples.png", "all (zip)",
            "Training script (PyTorch, no ganlab needed)"} <= labels


@needs_mnist
def test_one_network_has_one_step_button_and_it_makes_one_update(monkeypatch):
    from conftest import wait_for
    from pages.ui import registry
    at = open_page(monkeypatch, SHARED_DATA)
    labels = [b.label for b in at.button]
    assert "Step" in labels and not {"Step D", "Step G", "Step both"} & set(labels)
    at.button(key="autoencoders-step-both").click().run()
    run_id = at.query_params["run"]
    run = registry().get(run_id[0] if isinstance(run_id, list) else run_id)
    assert wait_for(lambda: run.status == "paused" and run.trainer is not None and run.trainer.step == 1, 60)
    run.stop(wait=5)

