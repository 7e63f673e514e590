"""The 2D lab: a GAN learns a point set in the plane, with D's surface, G's push and G's manifold."""
from pathlib import Path

import streamlit as st

from ganlab import charts, charts2d
from ganlab.config import TARGETS_2D, ConfigError, Experiment, Target2D
from ganlab.data.toy2d import PointsFileError, default_points_dir, read_points_csv, save_points
from ganlab.meters import HIGH_QUALITY, MODES_COVERED
from ganlab.presets import presets_for
from ganlab.tasks import TASKS
from pages import ui

PAGE = TASK = "toy2d"
TARGET_LABELS = {"ring": "ring of Gaussians", "grid": "grid of Gaussians", "line": "a line",
                 "moons": "two moons", "csv": "your own points (CSV)"}
LAYERS = {"surface": "D / critic surface", "real": "real points", "fake": "generated points",
          "arrows": "G's push (arrows)", "manifold": "G's manifold"}
ui.require_frame()

st.title(TASKS[TASK].label)
st.caption("A generator learns a set of points in the plane. Behind the points, D's verdict on every "
           "place (blue: real, red: fake); the arrows show where G's loss pushes each fake, and the grey "
           "mesh is a regular grid of z values as G maps it into the plane.")

run = ui.attached_run(PAGE)
preset, base = ui.preset_picker(PAGE, presets_for(TASK), "t2d")


@st.cache_data(max_entries=8, show_spinner=False)
def saved_upload(data: bytes, folder: str) -> tuple[str, int]:
    """Check an uploaded CSV and keep it under its content hash: (path, number of points)."""
    points = read_points_csv(data)
    return str(save_points(points, folder)), len(points)


def target_inputs(t: Target2D) -> tuple[dict, str]:
    """The target's fields, and what is wrong with an uploaded CSV ("" when nothing is).

    The target is built after every widget is drawn, so one bad value does not hide the rest.
    """
    kind = ui.setting(st.selectbox, "target", "toy2d.kind", TARGETS_2D, index=TARGETS_2D.index(t.kind),
                      format_func=TARGET_LABELS.get)
    args = {"kind": kind}
    if kind == "ring":
        args["modes"] = int(ui.setting(st.number_input, "Gaussians", "toy2d.modes", value=t.modes, step=1))
        args["radius"] = ui.setting(st.number_input, "radius", "toy2d.radius", value=t.radius)
    elif kind == "grid":
        args["grid_size"] = int(ui.setting(st.number_input, "Gaussians per side", "toy2d.grid_size",
                                           value=t.grid_size, step=1))
        args["spacing"] = ui.setting(st.number_input, "spacing", "toy2d.spacing", value=t.spacing)
    elif kind == "line":
        args["length"] = ui.setting(st.number_input, "length", "toy2d.length", value=t.length)
        args["angle"] = ui.setting(st.number_input, "angle (degrees)", "toy2d.angle", value=t.angle)
    elif kind == "moons":
        args["radius"] = ui.setting(st.number_input, "moon radius", "toy2d.radius", value=t.radius)
    if kind != "csv":
        args["std"] = ui.setting(st.number_input, "std σ (of each Gaussian, or around the curve)", "toy2d.std",
                                 value=t.std, format="%.3f", step=0.01)
        return args, ""
    # No type= filter: the browser would keep a refused file listed beside the next one; every file
    # comes here and gets one message (read_points_csv checks it).
    upload = ui.setting(st.file_uploader, "CSV of points: two numeric columns (x, y), an optional header row",
                        "toy2d.csv_path")
    if upload is None:
        return args, NO_UPLOAD
    try:
        path, n = saved_upload(upload.getvalue(), str(default_points_dir()))
        if not Path(path).is_file():   # the cache folder was cleared since: save it again
            saved_upload.clear()
            path, n = saved_upload(upload.getvalue(), str(default_points_dir()))
    except PointsFileError as e:
        return args, f"{upload.name} cannot be used: {e}"
    name = Path(path).name
    st.caption(f"{n:,} points, kept on this server as {name} (named by its content), so the run can be repeated.")
    return {**args, "csv_path": name}, ""


NO_UPLOAD = "upload a CSV file of points"


def settings() -> Experiment:
    with st.expander("Settings", expanded=False):
        c1, c2, c3 = st.columns(3)
        with c1:
            st.markdown("**Target**")
            target_args, csv_problem = target_inputs(base.toy2d)
            st.markdown("**Noise z**")
            nk = ui.setting(st.selectbox, "noise", "noise.kind", ("normal", "uniform"),
                            index=("normal", "uniform").index(base.noise.kind))
            nd = ui.setting(st.number_input, "z dimension", "noise.dim", value=base.noise.dim, step=1,
                            help="2 lets the manifold chart show all of z; with more, it varies the "
                                 "first two and holds the rest at their middle.")
        with c2:
            st.markdown("**Models**")
            m = ui.model_picker(TASK, base)
            model = ui.model_inputs(m)
            st.markdown("**Loss**")
            loss = ui.loss_inputs(base.loss)
        with c3:
            opt_g = ui.optimizer_inputs("G optimizer", base.opt_g, "opt_g")
            opt_d = ui.optimizer_inputs("D optimizer", base.opt_d, "opt_d")
        train = ui.toy_train_inputs(base.train)
    # replace(), not a new Experiment: every field this page shows no widget for keeps the preset's value.
    # A CSV that cannot be used keeps the preset's target, so the CSV's problem is the one named.
    problems = [ConfigError("toy2d.csv_path", csv_problem)] if csv_problem else []
    return ui.replace_checked(base, problems, toy2d=base.toy2d if problems else target_args,
                              noise={"kind": nk, "dim": int(nd)}, model=model,
                              loss=loss, opt_g=opt_g, opt_d=opt_d, train=train)


cfg, problem = ui.settings_panel(settings, lambda cfg: f"**Target** {TARGET_LABELS[cfg.toy2d.kind]}")
if problem and problem.endswith(NO_UPLOAD):   # a prompt, not a mistake
    st.info("Upload a CSV of points under **Settings → Target** to start.", icon=":material/upload_file:")
elif problem:
    st.error(problem)
ui.set_url_config(cfg, preset)
run = ui.controls(run, cfg, PAGE, name=preset.slug)
ui.slow_motion_button(run, cfg, PAGE)
ui.change_panel(run, PAGE)

st.markdown("**Layers**")
shown = {name: col.toggle(label, True, key=f"t2d-layer-{name}")
         for col, (name, label) in zip(st.columns(len(LAYERS)), LAYERS.items())}


def draw(snap):
    ui.status_line(snap)
    views, meters = snap.views, snap.meters
    # In teaching mode the plane is as tall as a projector's screen, so that it fills the page's width.
    height = 700 if ui.teaching() else 560
    if "stage" in views:
        ui.stage_caption(views["stage"])
        ui.chart(st, charts2d.stage_figure_2d(views["stage"], views, height=height), "t2d-stage")
    ui.chart(st, charts2d.plane_figure(views, **shown, height=height), "t2d-plane")
    view = ui.curve_view("t2d")
    c1, c2 = st.columns(2)
    x_max = snap.step   # every curve chart ends at the run's step, whatever its last record
    ui.chart(c1, charts2d.energy_figure(meters, views.get("energy_floor"), x_max), "t2d-energy", view, snap)
    if MODES_COVERED.name in meters:
        ui.chart(c2, charts2d.coverage_figure(meters, views.get("num_modes", 0), x_max), "t2d-modes", view, snap)
    if HIGH_QUALITY.name in meters:
        ui.chart(c1, charts2d.quality_figure(meters, x_max), "t2d-quality", view, snap)
    ui.chart(c2, charts.loss_figure(snap.metrics, x_max), "t2d-loss", view, snap)
    ui.chart(c1, charts.d_outputs_figure(snap.metrics, views, x_max), "t2d-dout", view, snap)
    ui.chart(c2, charts.grad_norm_figure(snap.metrics, x_max), "t2d-grad", view, snap)


ui.live(draw, run)
ui.checkpoint_panel(run)
