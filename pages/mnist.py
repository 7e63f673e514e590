"""The MNIST lab: watch a GAN learn to draw digits."""
import streamlit as st

from ganlab import charts, explore
from ganlab.config import DEVICES, ConfigError, Experiment
from ganlab.data.mnist import available_splits, data_root, download_mnist, missing_message
from ganlab.images import make_grid_image
from ganlab.meters import CONFIDENT
from ganlab.models import is_conditional
from ganlab.presets import presets_for
from ganlab.tasks import TASKS
from pages import ui

PAGE = TASK = "mnist"
ui.require_frame()

st.title(TASKS[TASK].label)
st.caption("A GAN learns to draw handwritten digits. The grid always shows G's answer to the same "
           "batch of z, so what changes is G.")

root = data_root()
splits = available_splits(root)
if not splits:
    st.warning(missing_message(root), icon="📂")
    if st.button("Download MNIST (about 11 MB)", icon=":material/download:"):
        bar = st.progress(0.0, "Starting the download…")
        try:
            download_mnist(root, progress=lambda frac, text: bar.progress(frac, text))
            st.rerun()
        except Exception as e:  # noqa: BLE001 - no traceback on the page
            st.error(f"The download failed: {ui.plain(e)}. Copy the IDX files into {root / 'MNIST' / 'raw'} instead.")
    st.stop()
st.caption(f"Training on the MNIST {' and '.join(splits)} split(s) in `{root.resolve()}`.")

run = ui.attached_run(PAGE)
preset, base = ui.preset_picker(PAGE, presets_for(TASK), "mn")


def settings() -> Experiment:
    with st.expander("Settings", expanded=False):
        c1, c2, c3 = st.columns(3)
        with c1:
            st.markdown("**Model**")
            model = ui.model_picker(TASK, base, help="Another model takes its settings from its own "
                                                     "preset, or the defaults where it has none.")
            latent = ui.setting(st.number_input, "latent size (z dims)", "noise.dim", value=base.noise.dim, step=10)
            st.markdown("**Loss**")
            loss = ui.loss_inputs(base.loss)
        with c2:
            opt_g = ui.optimizer_inputs("G optimizer", base.opt_g, "opt_g")
        with c3:
            opt_d = ui.optimizer_inputs("D optimizer", base.opt_d, "opt_d")
        st.markdown("**Model shape**")
        model_fields = ui.model_inputs(model, columns=4)
        tr = base.train
        c1, c2, c3, c4, c5 = st.columns(5)
        batch = int(ui.setting(c1.number_input, "batch size", "train.batch_size", value=tr.batch_size, step=32))
        n_critic = ui.setting(c2.number_input, "n_critic (D steps per G step)", "train.d_steps", value=tr.d_steps,
                              step=1)
        unit = c3.radio("budget in", ("steps", "epochs"), horizontal=True, key="mn-budget-unit")
        n_images = _training_images()
        if unit == "steps":
            steps = int(ui.setting(c3.number_input, "steps", "train.steps", value=tr.steps, step=500))
        else:
            epochs = ui.setting(c3.number_input, "epochs", "train.steps#epochs",
                                value=round(tr.steps * tr.batch_size / n_images, 1), step=1.0)
            steps = max(1, round(epochs * n_images / max(batch, 1)))
            if epochs > 0:
                c3.caption(f"= {steps:,} step{'s' if steps != 1 else ''} of {batch} on {n_images:,} images")
        seed = ui.setting(c4.number_input, "seed", "train.seed", value=tr.seed, step=1)
        device = ui.setting(c5.selectbox, "device", "train.device", DEVICES, index=DEVICES.index(tr.device))
        pause_on_alarm = ui.setting(st.toggle, "Pause when an alarm sounds", "train.pause_on_alarm",
                                    tr.pause_on_alarm)
        speed = ui.speed_inputs(tr)
    # Checked once every widget is drawn, so none disappears.
    problems = [ConfigError("train.steps", f"epochs must be > 0, got {epochs:g}")] \
        if unit == "epochs" and not epochs > 0 else []
    # replace(), not a new Experiment: every field this page shows no widget for (lr decay,
    # autosave, history sizes, ...) keeps the preset's value.
    return ui.replace_checked(base, problems, noise={"dim": int(latent)}, model=model_fields, loss=loss,
                              opt_g=opt_g, opt_d=opt_d,
                              train={"steps": steps, "batch_size": batch, "d_steps": int(n_critic),
                                     "seed": int(seed), "device": device, "pause_on_alarm": pause_on_alarm,
                                     **speed})


@st.cache_data(show_spinner=False)
def _count_images(root_text: str, splits_key: tuple) -> int:
    from ganlab.data.mnist import load_mnist
    return len(load_mnist(root_text)[1])


def _training_images() -> int:
    return _count_images(str(root), tuple(splits))


cfg, problem = ui.settings_panel(settings, lambda cfg: f"**Model** {preset.title}")
if problem:
    st.error(problem)
ui.set_url_config(cfg, preset)
run = ui.controls(run, cfg, PAGE, name=preset.slug)


conditional_run = run is not None and is_conditional(run.cfg.model.name)


def draw(snap):
    ui.status_line(snap, images=True)
    # In teaching mode the grid takes more of the width, and is tall enough to fill it.
    left, right = st.columns([3, 2] if ui.teaching() else [1, 1])
    grid_height = 560 if ui.teaching() else 420
    x_max = snap.step   # every curve chart ends at the run's step, whatever its last record
    with left:
        grids = snap.images
        if grids:
            index = len(grids) - 1
            if len(grids) > 1 and not st.toggle("Follow the latest grid", True, key="mn-follow"):
                steps = [s for s, _ in grids]
                chosen = st.select_slider("Grid at step", steps, value=steps[-1], key="mn-grid-step")
                index = steps.index(chosen)
            step, grid = grids[index]
            title = f"Samples from a fixed z, step {step}"
            if conditional_run:
                title += " · row r asks for digit r"
            ui.chart(st, charts.image_figure(grid, title, grid_height), "mn-grid")
        else:
            ui.chart(st, charts.image_figure(None, "Samples", grid_height), "mn-grid")
    with right:
        view = ui.curve_view("mn", narrow=True)   # half the page or less: its controls in two rows
        ui.chart(st, charts.loss_figure(snap.metrics, x_max), "mn-loss", view, snap)
        ui.chart(st, charts.d_test_figure(snap.meters, snap.views, x_max), "mn-dtest", view, snap)
    if ui.digit_meters(snap, charts.mnist_quality_figure, "mn", view):
        ui.meter_calibration(root)


ui.live(draw, run)
ui.checkpoint_panel(run)


if run is not None and run.has_model:
    st.subheader("Explore the generator")
    st.caption("Uses a copy of G taken between two training steps, so exploring never disturbs training.")
    c1, c2, c3 = st.columns(3)
    seed_a = c1.number_input("z seed A", value=1, step=1, key="mn-za")
    seed_b = c2.number_input("z seed B", value=2, step=1, key="mn-zb")
    conditional = is_conditional(run.cfg.model.name)
    digit = c3.selectbox("digit", range(10), key="mn-digit") if conditional else None
    if st.button("Interpolate A → B", icon=":material/linear_scale:", key="mn-interp"):
        images = explore.walk(run.generator_copy(), run.cfg.noise, int(seed_a), int(seed_b), label=digit)
        ui.chart(st, charts.image_figure(make_grid_image(images, nrow=10), "From z A to z B", height=160),
                 "mn-interp-chart")
    if conditional and st.button(f"Generate the digit {digit}", icon=":material/draw:", key="mn-gen-digit"):
        images = explore.generate_digit(run.generator_copy(), int(digit), 20, run.cfg.noise, int(seed_a))
        ui.chart(st, charts.image_figure(make_grid_image(images, nrow=10), f"Twenty {digit}s", height=220),
                 "mn-digit-grid")

ui.mnist_runs_table(run, "GANs beside the autoencoders",
                    "The latest meters of each MNIST run. Train an AE or a VAE on the AE & VAE lab page.",
                    "mn-families")
