"""The 1D lab: a GAN learns a 1D distribution while you watch."""
import streamlit as st

from ganlab import charts
from ganlab.config import ConfigError, Experiment, Target1D
from ganlab.meters import MODES_COVERED
from ganlab.presets import presets_for
from ganlab.tasks import TASKS
from pages import ui

PAGE = TASK = "gauss1d"
ui.require_frame()
teaching = ui.teaching()   # for a class: the settings fold into one line (ui.settings_panel)

st.title(TASKS[TASK].label)
st.caption("A generator learns a 1D distribution. Watch its density move onto the target, and the "
           "discriminator's D(x) beside the optimal D*(x) = p_data / (p_data + p_g).")

run = ui.attached_run(PAGE)
preset, base = ui.preset_picker(PAGE, presets_for(TASK), "g1d")


def settings() -> Experiment:
    with st.expander("Settings", expanded=False):
        c1, c2, c3 = st.columns(3)
        with c1:
            st.markdown("**Target**")
            t = base.target
            typos = []   # raised once every widget is drawn, so that none disappears
            kinds = ("gaussian", "mixture", "uniform")
            kind = ui.setting(st.selectbox, "distribution", "target.kind", kinds, index=kinds.index(t.kind))
            target_args = {"kind": kind}
            if kind == "gaussian":
                target_args["mean"] = ui.setting(st.number_input, "mean μ", "target.mean", value=t.mean)
                target_args["std"] = ui.setting(st.number_input, "std σ", "target.std", value=t.std)
            elif kind == "mixture":
                target_args["means"] = _numbers("means", t.means, typos)
                target_args["stds"] = _numbers("stds", t.stds, typos)
                target_args["weights"] = _numbers("weights", t.weights, typos, "weights (sum to 1)")
            else:
                target_args["low"] = ui.setting(st.number_input, "low", "target.low", value=t.low)
                target_args["high"] = ui.setting(st.number_input, "high", "target.high", value=t.high)
            st.markdown("**Noise z**")
            nk = ui.setting(st.selectbox, "noise", "noise.kind", ("normal", "uniform"),
                            index=("normal", "uniform").index(base.noise.kind))
            nd = ui.setting(st.number_input, "z dimension", "noise.dim", value=base.noise.dim, step=1)
        with c2:
            st.markdown("**Models**")
            m = ui.model_picker(TASK, base)
            model = ui.model_inputs(m)
            minibatch = ui.setting(st.toggle, "Minibatch D (seed 000's \"data and variances\")", "model.minibatch_d",
                                   m.minibatch_d, help="D sees a whole group of samples and their squared "
                                                       "deviations. It fights collapse but hides per-sample errors.")
            st.markdown("**Loss**")
            loss = ui.loss_inputs(base.loss)
        with c3:
            opt_g = ui.optimizer_inputs("G optimizer", base.opt_g, "opt_g")
            opt_d = ui.optimizer_inputs("D optimizer", base.opt_d, "opt_d")
        train = ui.toy_train_inputs(base.train)
    # replace(), not a new Experiment: every field this page shows no widget for (D's dropout, the
    # leaky slope, the minibatch group, ...) keeps the preset's value. A list with a typo keeps
    # the preset's target, so the typo is named rather than a length mismatch.
    return ui.replace_checked(base, typos, target=base.target if typos else target_args,
                              noise={"kind": nk, "dim": int(nd)},
                              model={**model, "minibatch_d": minibatch}, loss=loss,
                              opt_g=opt_g, opt_d=opt_d, train=train)


def _numbers(field: str, values: tuple[float, ...], typos: list, label: str = "") -> tuple[float, ...]:
    """A comma-separated list of numbers. A typo goes into `typos`, named, rather than surfacing
    later as a length mismatch."""
    text = ui.setting(st.text_input, label or field, f"target.{field}", ", ".join(f"{v:g}" for v in values))
    numbers = []
    for item in text.replace(";", ",").split(","):
        if item.strip():
            try:
                numbers.append(float(item))
            except ValueError:
                typos.append(ConfigError(f"target.{field}", f"{item.strip()!r} is not a number"))
    return tuple(numbers)


def _target_text(t: Target1D) -> str:
    return {"gaussian": f"N({t.mean:g}, {t.std:g}²)", "uniform": f"U({t.low:g}, {t.high:g})",
            "mixture": f"a mixture of {len(t.means)} Gaussians"}[t.kind]


cfg, problem = ui.settings_panel(settings, lambda cfg: f"**Target** {_target_text(cfg.target)}")
if problem:
    st.error(problem)
ui.set_url_config(cfg, preset)
run = ui.controls(run, cfg, PAGE, name=preset.slug)
ui.slow_motion_button(run, cfg, PAGE)
ui.change_panel(run, PAGE)


def draw(snap):
    ui.status_line(snap)
    if "stage" in snap.views:
        ui.stage_caption(snap.views["stage"])
        ui.chart(st, charts.stage_figure_1d(snap.views["stage"], snap.views), "g1d-stage")
    ui.chart(st, charts.density_figure(snap.views), "g1d-density")
    view = ui.curve_view("g1d")
    c1, c2 = st.columns(2)
    x_max = snap.step   # every curve chart ends at the run's step, whatever its last record
    ui.chart(c1, charts.loss_figure(snap.metrics, x_max), "g1d-loss", view, snap)
    ui.chart(c2, charts.d_outputs_figure(snap.metrics, snap.views, x_max), "g1d-dout", view, snap)
    ui.chart(c1, charts.quality_figure(snap.meters, x_max), "g1d-quality", view, snap)
    ui.chart(c2, charts.grad_norm_figure(snap.metrics, x_max), "g1d-grad", view, snap)
    if MODES_COVERED.name in snap.meters:
        ui.chart(c1, charts.modes_figure(snap.meters, x_max), "g1d-modes", view, snap)


ui.live(draw, run)
if not teaching:
    ui.checkpoint_panel(run)
