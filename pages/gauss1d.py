"""The 1D lab: a GAN learns a 1D distribution while you watch."""
import streamlit as st

from ganlab import charts
from ganlab.config import ACTIVATIONS, Experiment, Model, Noise, Target1D, Train
from ganlab.presets import get_preset, presets_for
from pages import ui

PAGE = "gauss1d"
ui.require_frame()

st.title("1D Gaussian lab")
st.caption("A generator learns a 1D distribution. Watch its density move onto the target, and the "
           "discriminator's D(x) beside the optimal D*(x) = p_data / (p_data + p_g).")

run = ui.attached_run(PAGE)
presets = {p.slug: p for p in presets_for("gauss1d")}
slug = st.selectbox("Preset", list(presets), format_func=lambda s: f"{s} — {presets[s].title}",
                    key="g1d-preset")
preset = get_preset(slug)
st.caption(preset.about)
if preset.expect:
    st.warning(preset.expect, icon="⚠️")
base = preset.config
k = f"g1d-{slug}-"   # widget keys per preset, so switching preset restores its values


def settings() -> Experiment:
    with st.expander("Settings", expanded=False):
        c1, c2, c3 = st.columns(3)
        with c1:
            st.markdown("**Target**")
            t = base.target
            kinds = ("gaussian", "mixture", "uniform")
            kind = st.selectbox("distribution", kinds, index=kinds.index(t.kind), key=k + "kind")
            target_args = {"kind": kind}
            if kind == "gaussian":
                target_args["mean"] = st.number_input("mean μ", value=t.mean, key=k + "mu")
                target_args["std"] = st.number_input("std σ", value=t.std, key=k + "sigma")
            elif kind == "mixture":
                target_args["means"] = _floats(st.text_input("means", ", ".join(map(str, t.means)), key=k + "mus"))
                target_args["stds"] = _floats(st.text_input("stds", ", ".join(map(str, t.stds)), key=k + "sigmas"))
                target_args["weights"] = _floats(st.text_input("weights (sum to 1)", ", ".join(map(str, t.weights)),
                                                               key=k + "weights"))
            else:
                target_args["low"] = st.number_input("low", value=t.low, key=k + "low")
                target_args["high"] = st.number_input("high", value=t.high, key=k + "high")
            st.markdown("**Noise z**")
            nk = st.selectbox("noise", ("normal", "uniform"), index=("normal", "uniform").index(base.noise.kind),
                              key=k + "nk")
            nd = st.number_input("z dimension", value=base.noise.dim, step=1, key=k + "nd")
        with c2:
            st.markdown("**Models**")
            m = base.model
            g_hidden = st.number_input("G width", value=m.g_hidden, step=8, key=k + "gw")
            g_depth = st.number_input("G hidden layers", value=m.g_depth, step=1, key=k + "gd")
            g_act = st.text_input("G activation(s)", m.g_activation, key=k + "ga",
                                  help="one of " + ", ".join(ACTIVATIONS) + ", or one per hidden layer")
            d_hidden = st.number_input("D width", value=m.d_hidden, step=8, key=k + "dw")
            d_depth = st.number_input("D hidden layers", value=m.d_depth, step=1, key=k + "dd")
            d_act = st.text_input("D activation(s)", m.d_activation, key=k + "da")
            minibatch = st.toggle("Minibatch D (seed 000's \"data and variances\")", m.minibatch_d, key=k + "mb",
                                  help="D sees a whole group of samples and their squared deviations. "
                                       "It fights collapse but hides per-sample errors.")
            st.markdown("**Loss**")
            loss = ui.loss_inputs(base.loss, k)
        with c3:
            opt_g = ui.optimizer_inputs("G optimizer", base.opt_g, k + "G optimizer")
            opt_d = ui.optimizer_inputs("D optimizer", base.opt_d, k + "D optimizer")
        c1, c2, c3, c4, c5 = st.columns(5)
        tr = base.train
        steps = c1.number_input("steps", value=tr.steps, step=500, key=k + "steps")
        batch = c2.number_input("batch size", value=tr.batch_size, step=32, key=k + "batch")
        d_steps = c3.number_input("k (D steps per G step)", value=tr.d_steps, step=1, key=k + "k")
        seed = c4.number_input("seed", value=tr.seed, step=1, key=k + "seed")
        device = c5.selectbox("device", ("auto", "cpu", "cuda"), key=k + "device")
        lr_decay = st.toggle("Decay learning rates to 2% over the run", tr.lr_decay, key=k + "decay")
        pause_on_alarm = st.toggle("Pause when an alarm sounds", tr.pause_on_alarm, key=k + "alarm-pause")
    return Experiment(
        task="gauss1d", target=Target1D(**target_args), noise=Noise(nk, int(nd)),
        model=Model("mlp1d", int(g_hidden), int(g_depth), g_act, int(d_hidden), int(d_depth), d_act,
                    minibatch_d=minibatch, minibatch_group=m.minibatch_group),
        loss=loss, opt_g=opt_g, opt_d=opt_d,
        train=Train(steps=int(steps), batch_size=int(batch), d_steps=int(d_steps), seed=int(seed), device=device,
                    lr_decay=lr_decay, pause_on_alarm=pause_on_alarm, snapshot_every=tr.snapshot_every))


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.replace(";", ",").split(",") if v.strip())
    except ValueError:
        return (float("nan"),)


cfg, problem = ui.build_config(settings)
if problem:
    st.error(f"Fix this setting to start: {problem}")
run = ui.controls(run, cfg, PAGE, name=slug)


def draw(snap):
    ui.status_line(snap)
    wasserstein = bool(snap.views.get("wasserstein"))
    st.plotly_chart(charts.density_figure(snap.views), key="g1d-density")
    c1, c2 = st.columns(2)
    c1.plotly_chart(charts.loss_figure(snap.metrics), key="g1d-loss")
    c2.plotly_chart(charts.d_outputs_figure(snap.metrics, wasserstein), key="g1d-dout")
    c1.plotly_chart(charts.quality_figure(snap.meters), key="g1d-quality")
    c2.plotly_chart(charts.grad_norm_figure(snap.metrics), key="g1d-grad")
    if "modes_covered" in snap.meters:
        c1.plotly_chart(charts.modes_figure(snap.meters), key="g1d-modes")


ui.live(draw, run)
