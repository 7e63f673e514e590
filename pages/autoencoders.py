"""The AE & VAE lab: seed 002's autoencoder and variational autoencoder, baselines beside the GANs."""
import streamlit as st

from ganlab import charts
from ganlab.config import DEVICES, Experiment
from ganlab.data.mnist import available_splits, data_root, missing_message
from ganlab.presets import presets_for
from pages import ui

PAGE = "autoencoders"
ui.require_frame()

st.title("AE & VAE lab")
st.caption("An autoencoder squeezes each digit into a few numbers and draws it back; a variational "
           "autoencoder also keeps those numbers near N(0, I), so random codes decode to digits. Both "
           "are judged with the same classifier meters as the GANs on the MNIST lab.")

root = data_root()
splits = available_splits(root)
if not splits:
    st.warning(missing_message(root) + " The MNIST lab page can download it.", icon="📂")
    st.stop()

run = ui.attached_run(PAGE)
preset, base = ui.preset_picker(PAGE, presets_for("mnist", families=("ae", "vae")), "ae")
vae = base.model.name == "vae"


def settings() -> Experiment:
    with st.expander("Settings", expanded=False):
        c1, c2, c3 = st.columns(3)
        with c1:
            latent = ui.setting(st.number_input, "code size (latent dims)", "noise.dim", value=base.noise.dim, step=1)
            model = {}
            if vae:
                hidden = ui.setting(st.number_input, "hidden width", "model.g_hidden", value=base.model.g_hidden,
                                    step=50)
                recon = ui.setting(st.selectbox, "reconstruction loss", "model.recon_loss", ("bce", "mse"),
                                   index=("bce", "mse").index(base.model.recon_loss),
                                   help="bce: a Bernoulli decoder (Kingma & Welling); "
                                        "mse: the seed's summed squared error")
                model = {"g_hidden": int(hidden), "recon_loss": recon}
            else:
                st.caption("The autoencoder's loss is the MSE on pixels in [−1, 1], as in the seed.")
        with c2:
            opt = ui.optimizer_inputs("Optimizer", base.opt_g, "opt_g")
        with c3:
            tr = base.train
            batch = ui.setting(st.number_input, "batch size", "train.batch_size", value=tr.batch_size, step=32)
            steps = ui.setting(st.number_input, "steps", "train.steps", value=tr.steps, step=500)
            seed = ui.setting(st.number_input, "seed", "train.seed", value=tr.seed, step=1)
            device = ui.setting(st.selectbox, "device", "train.device", DEVICES, index=DEVICES.index(tr.device))
    # replace(), not a new Experiment: every field this page shows no widget for keeps the preset's value.
    return base.replace(noise={"dim": int(latent)}, model=model, opt_g=opt,
                        train={"steps": int(steps), "batch_size": int(batch), "seed": int(seed), "device": device})


cfg, problem = ui.settings_panel(settings, lambda cfg: f"**Model** {preset.title}")
if problem:
    st.error(problem)
ui.set_url_config(cfg, preset)
run = ui.controls(run, cfg, PAGE, name=preset.slug, one_network=True)   # no D and G: one Step


def draw(snap):
    family = run.cfg.model.name
    step = snap.views.get("step", 0)
    ui.status_line(snap, images=True)
    view = ui.curve_view("ae")
    left, right = st.columns(2)
    ui.chart(left, charts.reconstruction_figure(snap.metrics, family), "ae-recon-loss", view, snap)
    if family == "vae":
        ui.chart(left, charts.kl_figure(snap.metrics), "ae-kl", view, snap)
    latent = "The AE's code" if family == "ae" else "The VAE's mean code μ"
    ui.chart(right, charts.latent_figure(snap.views.get("latent"), f"{latent}, step {step}"), "ae-latent")
    left, right = st.columns(2)
    ui.chart(left, charts.image_figure(snap.views.get("recon_grid"), f"Held-out digits over their reconstructions, "
                                       f"step {step}", height=300), "ae-recon-grid")
    what = ("Samples: a fixed z from N(0, I), decoded" if family == "vae" else
            "Random z from N(0, I), decoded: not a generator")
    grid_step, grid = snap.images[-1] if snap.images else (step, None)
    ui.chart(right, charts.image_figure(grid, f"{what}, step {grid_step}", height=300), "ae-samples")
    ui.digit_meters(snap, charts.autoencoder_quality_figure, "ae", view)


ui.live(draw, run)
ui.checkpoint_panel(run)
ui.mnist_runs_table(run, "Beside the GANs", "Each MNIST run's latest meters. The Fréchet distance and digits "
                    "covered judge samples the same way for every family.", "ae-families")
