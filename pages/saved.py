"""Saved runs: checkpoints on disk, to resume training or to explore without training."""
import time
from pathlib import Path

import streamlit as st

from ganlab import charts, checkpoints
from ganlab.meters import FID
from ganlab.config import ConfigError
from ganlab.families import family_of
from ganlab.labels import loss_words
from ganlab.models import is_conditional
from ganlab.runs import RunError
from ganlab.worker import describe_error
from pages import ui

ui.require_frame()

st.title("Saved runs")
root = checkpoints.saves_root()
st.caption(f"Checkpoints in `{root.resolve()}` (set `GANLAB_SAVES` to change it). Save one from a lab page's "
           f"**Save & download**, let a run save itself every N steps, or upload a zipped checkpoint.")


@st.cache_resource(max_entries=2, show_spinner=False)
def _load(folder: str, stamp: tuple) -> checkpoints.Checkpoint:
    # `stamp` (the files' modification times) makes a re-saved folder load afresh.
    return checkpoints.load(folder)


@st.cache_data(max_entries=4, show_spinner=False)
def _explore(folder: str, stamp: tuple) -> tuple[dict, dict]:
    return checkpoints.explore(_load(folder, stamp))


def _stamp(folder: Path) -> tuple:
    return tuple(p.stat().st_mtime_ns for p in sorted(folder.iterdir()))


# No type= filter: the browser would list a file of another type with its own error and keep it
# beside the next upload. Any file comes here, is checked (import_zip), and gets one message.
upload = st.file_uploader("Upload a zipped checkpoint", key="saved-upload",
                          help="A .zip from **Save & download**: config.json, weights.pt and the CSVs.")
if upload is not None:
    imported = st.session_state.setdefault("saved-imported", {})   # once per upload, not per rerun
    if upload.file_id not in imported:
        try:
            imported[upload.file_id] = ("ok", checkpoints.import_zip(upload.getvalue(), root).name)
        except checkpoints.CheckpointError as e:
            imported[upload.file_id] = ("error", str(e))
        if imported[upload.file_id][0] == "ok":
            st.session_state["saved-pick"] = imported[upload.file_id][1]
    kind, text = imported[upload.file_id]
    if kind == "error":
        st.error(f"That upload is not a usable checkpoint: {ui.plain(text)}")
    else:
        st.success(f"Imported as {ui.plain(text)}.")

saves = checkpoints.list_saved(root)
if not saves:
    st.info("No checkpoints yet.")
    st.stop()
# A dash where a folder could not be read, never "None" or a blank.
st.dataframe(
    [{"name": s.name, "task": s.task or None, "model": s.model or None, "loss": s.loss or None,
      "step": None if s.error else s.step,
      "saved": time.strftime("%Y-%m-%d %H:%M", time.localtime(s.saved_at)) if s.saved_at else None,
      "folder": s.folder.name, "problem": s.error or None} for s in saves],
    hide_index=True, key="saved-table", placeholder=ui.MISSING)

names = [s.folder.name for s in saves]
if st.session_state.get("saved-pick") not in names:
    st.session_state["saved-pick"] = names[0]
pick = st.selectbox("Checkpoint", names, key="saved-pick")
folder = root / pick
try:
    stamp = _stamp(folder)
    ckpt = _load(str(folder), stamp)
except (checkpoints.CheckpointError, OSError) as e:   # OSError: deleted since the list was made
    st.error(f"This checkpoint cannot be used: {ui.plain(e)}")
    st.stop()

cfg = ckpt.cfg
st.markdown(f"**{ui.plain(ckpt.name)}** · {cfg.task} · {cfg.model.name} · {loss_words(cfg)} · step **{ckpt.step:,}** "
            f"of {cfg.train.steps:,}")
c1, c2, c3 = st.columns([1, 1, 2])
until = c1.number_input("Train until step", min_value=ckpt.step + 1, step=100, key=f"saved-until-{pick}",
                        value=cfg.train.steps if cfg.train.steps > ckpt.step else 2 * ckpt.step,
                        help="The saved budget, or more to go on training a finished run. With decaying "
                             "learning rates, the schedule follows the new budget.")
if c2.button("Resume training", icon=":material/play_arrow:", type="primary", key="saved-resume"):
    try:
        run = ui.registry().create(cfg.replace(train={"steps": int(until)}), name=ckpt.name, page=ckpt.page,
                                   resume=ckpt)
    except (RunError, ConfigError) as e:   # ConfigError: over this server's budget (cost.check)
        st.warning(ui.plain(e))
    else:
        st.switch_page(f"pages/{ckpt.page}.py", query_params={"run": run.id})
c3.download_button("Download (zip)", lambda: checkpoints.zip_folder(folder), file_name=f"{pick}.zip",
                   mime="application/zip", icon=":material/folder_zip:", key="saved-zip", on_click="ignore")

family = family_of(cfg)   # "gan", "ae" or "vae"
if st.toggle("Explore the saved generator", key="saved-explore",
             help="An AE's or a VAE's generator is its decoder."):
    try:
        views, meters = _explore(str(folder), stamp)
    except (checkpoints.CheckpointError, ValueError, RuntimeError, OSError) as e:
        # A points file gone from this server, a device it cannot use: one line, never a traceback.
        st.error(f"This checkpoint cannot be explored: {ui.plain(describe_error(e))}")
        st.stop()
    if "grid" in views:
        title = {"gan": f"Samples from the saved G, step {ckpt.step}",
                 "vae": f"Samples from the saved VAE: a fixed z from N(0, I), decoded, step {ckpt.step}",
                 "ae": f"Random z from N(0, I), decoded by the saved AE: not a generator, step {ckpt.step}",
                 }[family]
        if is_conditional(cfg.model.name):
            title += " · row r asks for digit r"
        ui.chart(st, charts.image_figure(views["grid"], title), "saved-grid")
    elif cfg.task == "gauss1d":
        ui.chart(st, charts.density_figure(views), "saved-density")
        st.caption(f"W1 to the target {meters['w1']:.3f} · KS {meters['ks']:.3f} (10,000 samples)")
    # A checkpoint keeps its curves over steps, not when each was recorded: no wall time here.
    view = ui.curve_view("saved", wall=False)
    left, right = st.columns(2)
    if family == "gan":
        ui.chart(left, charts.loss_figure(ckpt.metrics), "saved-loss", view)
    else:   # an autoencoder has no D and G losses: its reconstruction term (and the VAE's KL)
        ui.chart(left, charts.reconstruction_figure(ckpt.metrics, family), "saved-loss", view)
        if family == "vae":
            ui.chart(left, charts.kl_figure(ckpt.metrics), "saved-kl", view)
    if cfg.task == "gauss1d" and ckpt.meters:
        ui.chart(right, charts.quality_figure(ckpt.meters), "saved-quality", view)
    elif FID.name in ckpt.meters:
        quality = charts.mnist_quality_figure if family == "gan" else charts.autoencoder_quality_figure
        ui.chart(right, quality(ckpt.meters), "saved-quality", view)
