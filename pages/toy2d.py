"""The 2D lab: a GAN learns a point set in the plane, with D's surface, G's push and G's manifold."""
import dataclasses
from pathlib import Path

import streamlit as st

from ganlab import charts, charts2d
from ganlab.config import TARGETS_2D, ConfigError, Experiment, Target2D
from ganlab.data.toy2d import PointsFileError, default_points_dir, read_points_csv, save_points
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
preset, base, k = ui.preset_picker(PAGE, presets_for(TASK), "t2d")


@st.cache_data(max_entries=8, show_spinner=False)
def saved_upload(data: bytes, folder: str) -> tuple[str, int]:
    """Check an uploaded CSV and keep it under its content hash: (path, number of points)."""
    points = read_points_csv(data)
    return str(save_points(points, folder)), len(points)


def target_inputs(t: Target2D) -> tuple[dict, str]:
    """The target's fields, and what is wrong with an uploaded CSV ("" when nothing is).

    The target is built after every widget is drawn, so one bad value does not hide the rest.
    """
    kind = st.selectbox("target", TARGETS_2D, index=TARGETS_2D.index(t.kind), format_func=TARGET_LABELS.get,
                        key=k + "kind")
    args = {"kind": kind}
    if kind == "ring":
        args["modes"] = int(st.number_input("Gaussians", value=t.modes, step=1, key=k + "modes"))
        args["radius"] = st.number_input("radius", value=t.radius, key=k + "radius")
    elif kind == "grid":
        args["grid_size"] = int(st.number_input("Gaussians per side", value=t.grid_size, step=1, key=k + "side"))
        args["spacing"] = st.number_input("spacing", value=t.spacing, key=k + "spacing")
    elif kind == "line":
        args["length"] = st.number_input("length", value=t.length, key=k + "length")
        args["angle"] = st.number_input("angle (degrees)", value=t.angle, key=k + "angle")
    elif kind == "moons":
        args["radius"] = st.number_input("moon radius", value=t.radius, key=k + "radius")
    if kind != "csv":
        args["std"] = st.number_input("std σ (of each Gaussian, or around the curve)", value=t.std,
                                      format="%.3f", step=0.01, key=k + "std")
        return args, ""
    upload = st.file_uploader("CSV of points: two numeric columns (x, y), an optional header row",
                              type=["csv", "txt"], key=k + "csv")
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
            nk = st.selectbox("noise", ("normal", "uniform"), index=("normal", "uniform").index(base.noise.kind),
                              key=k + "nk")
            nd = st.number_input("z dimension", value=base.noise.dim, step=1, key=k + "nd",
                                 help="2 lets the manifold chart show all of z; with more, it varies the "
                                      "first two and holds the rest at their middle.")
        with c2:
            st.markdown("**Models**")
            m = ui.model_picker(TASK, base, k)
            mlp = ui.mlp_inputs(m, k if m.name == base.model.name else f"{k}{m.name}-")
            st.markdown("**Loss**")
            loss = ui.loss_inputs(base.loss, k)
        with c3:
            opt_g = ui.optimizer_inputs("G optimizer", base.opt_g, k + "G optimizer")
            opt_d = ui.optimizer_inputs("D optimizer", base.opt_d, k + "D optimizer")
        train = ui.toy_train_inputs(base.train, k)
    if csv_problem:
        raise ConfigError("toy2d.csv_path", csv_problem)
    # replace(), not a new Experiment: every field this page shows no widget for keeps the preset's value.
    return base.replace(toy2d=target_args, noise={"kind": nk, "dim": int(nd)}, model=dataclasses.replace(m, **mlp),
                        loss=loss, opt_g=opt_g, opt_d=opt_d, train=train)


cfg, problem = ui.settings_panel(settings, lambda cfg: f"**Target** {TARGET_LABELS[cfg.toy2d.kind]}")
if problem and problem.endswith(NO_UPLOAD):   # a prompt, not a mistake
    st.info("Upload a CSV of points under **Settings → Target** to start.", icon=":material/upload_file:")
elif problem:
    st.error(f"Fix this setting to start: {problem}")
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
    fit = ui.projected   # large chart text in teaching mode
    # In teaching mode the plane is as tall as a projector's screen, so that it fills the page's width.
    height = 700 if ui.teaching() else 560
    if "stage" in views:
        ui.stage_caption(views["stage"])
        st.plotly_chart(fit(charts2d.stage_figure_2d(views["stage"], views, height=height)), key="t2d-stage")
    st.plotly_chart(fit(charts2d.plane_figure(views, **shown, height=height)), key="t2d-plane")
    c1, c2 = st.columns(2)
    x_max = snap.step   # every curve chart ends at the run's step, whatever its last record
    c1.plotly_chart(fit(charts2d.energy_figure(meters, views.get("energy_floor"), x_max)), key="t2d-energy")
    if "modes_covered" in meters:
        c2.plotly_chart(fit(charts2d.coverage_figure(meters, views.get("num_modes", 0), x_max)), key="t2d-modes")
    if "high_quality" in meters:
        c1.plotly_chart(fit(charts2d.quality_figure(meters, x_max)), key="t2d-quality")
    c2.plotly_chart(fit(charts.loss_figure(snap.metrics, x_max)), key="t2d-loss")
    c1.plotly_chart(fit(charts.d_outputs_figure(snap.metrics, views, x_max)), key="t2d-dout")
    c2.plotly_chart(fit(charts.grad_norm_figure(snap.metrics, x_max)), key="t2d-grad")


ui.live(draw, run)
