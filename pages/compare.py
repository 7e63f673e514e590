"""Loss lab: one GAN trained with several losses, side by side, in lockstep."""
from contextlib import nullcontext

import streamlit as st

from ganlab import charts, charts2d, compare
from ganlab.meters import CONFIDENT, FID, MODES_COVERED
from ganlab.config import Experiment
from ganlab.data.mnist import available_splits, data_root, missing_message
from ganlab.losses import LOSSES
from ganlab.presets import get_preset, presets_for
from ganlab.tasks import TASKS
from ganlab.runs import ACTIVE, RunError
from pages import ui

PAGE = compare.PAGE
INTENT, NOTICE = "cmp-intent", "cmp-notice"
# The four classic losses are picked by default: a default comparison then costs what it always
# did (four runs, not seven). LSGAN, hinge and BCE + R1 are one click away in the picker.
DEFAULT_LOSSES = ["bce-ns", "bce-sat", "wgan-clip", "wgan-gp"]
SETTINGS = {
    False: "each loss with its own k and optimizers, from its paper or, where this task needs others, "
           "settings that fit it (the table under the settings)",
    True: "every loss with the same k and optimizers, this preset's",
}
LOOK_FOR_1D = """
1. **{copies} copies of one GAN**, the same initial weights and the same data: {settings}.
2. **The gradient chart** (log scale). On a 1D target G keeps up with D, so the two BCE lines stay
   close. Turn on "same settings for all" and raise k (D steps per G step): the stronger D gets, the
   further the saturating line falls below the non-saturating one, because log(1 − D(G(z))) is flat
   where D rejects the fakes.
3. **D(x) beside the raw scores.** Where D is sure, a sigmoid's D(x) is flat at 0 or 1: it points
   nowhere. The critics' f(x) and LSGAN's D(x) have no sigmoid, so they keep a slope that leads the
   fakes towards the data. With weight clipping every weight stays within ±c, so that critic's values,
   its slope and G's gradient all stay tiny.
4. **W1 to the target** is the fair score: one scale for every run. The loss curves are not: a WGAN's
   loss estimates a distance, a BCE loss is a log-probability, so never compare their values.
5. **When one run fails** (an alarm lights up, or it diverges), the others carry on.
"""
LOOK_FOR_MNIST = """
1. **{copies} copies of one GAN**, the same initial weights and the same digits: {settings}.
2. **The gradient chart** (log scale). Within a few dozen steps D rejects nearly every fake digit,
   and the saturating BCE line drops two or three orders of magnitude below the non-saturating one:
   log(1 − D(G(z))) is flat there, so G hears almost nothing, and its grid stays grey noise long
   after the non-saturating run's has begun to change.
3. **The sample grids** use the same z for every run, so the pictures differ only because G does.
4. **Quality over steps** is measured the same way for every run; the loss curves are not comparable
   across losses: a WGAN's loss estimates a distance, a BCE loss is a log-probability.
5. **When one run fails** (an alarm lights up, or it diverges), the others carry on.
"""
LOOK_FOR_2D = """
1. **{copies} copies of one GAN**, the same initial weights and the same points: {settings}.
2. **The planes.** Each run's fakes (red) over the real points (blue), with D's verdict or the
   critic's value behind them. BCE runs tend to pile onto a few modes and hop between them; the
   Wasserstein critics keep a slope that pulls the fakes out along the whole target.
3. **Modes covered and high-quality samples** are measured the same way for every run: how many
   modes hold at least a tenth of their fair share of high-quality fakes (a stricter count than
   PacGAN's, where one such fake captures a mode), and what share of fakes sits within 3σ of the data.
4. **The energy distance** is the fair overall score, in the data's own units. The loss curves are
   not: a WGAN's loss estimates a distance, a BCE loss is a log-probability.
5. **When one run fails** (an alarm lights up, or it diverges), the others carry on.
"""
ui.require_frame()

st.title("Loss lab")
st.caption("The same GAN trained once per loss, side by side and in lockstep: the same seed, the same "
           "initial weights, the same data in the same order. Only the loss differs, so every difference "
           "you see comes from the loss.")

runs = compare.group_runs(ui.registry(), st.query_params.get("group"))
if st.query_params.get("group") and not runs:
    ui.gone("group", st.query_params["group"])
presets = {p.slug: p for task in TASKS for p in presets_for(task)}
picker, notes = st.columns([3, 2], vertical_alignment="bottom") if ui.teaching() else (st, nullcontext())
slug = picker.selectbox("Target", list(presets), format_func=lambda s: f"{s} — {presets[s].title}",
                        key="cmp-target")
preset = get_preset(slug)
with notes, ui.preset_notes(preset):   # folded in teaching mode
    st.caption(preset.about)
base = preset.config
losses = st.multiselect("Losses to compare", list(LOSSES), default=DEFAULT_LOSSES,
                        format_func=lambda n: LOSSES[n].label, key="cmp-losses")
same = st.toggle("Same settings for all", False, key="cmp-same",
                 help="Off: each loss trains with its reference k and optimizers (and WGAN-GP its λ). On: every loss trains "
                      "with this preset's, so only the loss differs.")
KEYS = "cmp:"   # before each setting's key: the page shows its shared settings and each loss's own
ui.fresh_settings("cmp-settings-from", slug, prefix=KEYS)


def settings() -> Experiment:
    with st.expander("Shared settings", expanded=False):
        c1, c2, c3, c4, c5, c6 = st.columns(6)
        steps = ui.setting(c1.number_input, "steps (each run)", "train.steps", value=base.train.steps, step=500,
                           help="The shared budget: every run trains this many G steps.")
        seed = ui.setting(c2.number_input, "seed", "train.seed", value=base.train.seed, step=1)
        d_steps = base.train.d_steps
        if same:   # otherwise each loss brings its own k
            d_steps = ui.setting(c3.number_input, "k (D steps per G step)", "train.d_steps", value=base.train.d_steps,
                                 step=1, help="A larger k makes D stronger, which starves the saturating loss.")
        # A loss setting that a picked loss's reference sets (WGAN-GP's λ) comes from the reference
        # while "same settings" is off: its widget would have no effect, so it is greyed out.
        fixed = set() if same else compare.reference_loss_fields(base.task, losses)
        why = "Set by the loss's reference settings (the table below); turn on \"Same settings for all\" to change it."
        clip = ui.setting(c4.number_input, "clip c (WGAN)", "loss.clip", value=base.loss.clip, format="%.3f",
                          disabled="clip" in fixed, help=why if "clip" in fixed else None)
        gp = ui.setting(c5.number_input, "GP λ (WGAN-GP)", "loss.gp_lambda", value=base.loss.gp_lambda,
                        disabled="gp_lambda" in fixed, help=why if "gp_lambda" in fixed else None)
        r1 = ui.setting(c6.number_input, "R1 γ (BCE + R1)", "loss.r1_gamma", value=base.loss.r1_gamma,
                        disabled="r1_gamma" in fixed, help=why if "r1_gamma" in fixed else None)
        if same:
            st.caption(f"Everything else comes from the preset: {base.opt_g.name} at lr {base.opt_g.lr:g} "
                       f"for G and {base.opt_d.lr:g} for D, batch {base.train.batch_size}.")
        else:
            st.caption(f"k, the optimizers and WGAN-GP's λ come from each loss's reference settings (its "
                       f"paper, or on the toys the settings that fit them); everything else from the preset: "
                       f"batch {base.train.batch_size}, the models, the data.")
    return base.replace(loss={"clip": clip, "gp_lambda": gp, "r1_gamma": r1},
                        train={"steps": int(steps), "seed": int(seed), "d_steps": int(d_steps)})


cfg, problem = ui.settings_panel(settings, lambda cfg: f"**Target** {preset.title}", loss=False, optim=same,
                                 prefix=KEYS)
if problem:
    st.error(problem)
if base.task == "mnist" and not available_splits(data_root()):
    st.warning(missing_message(data_root()) + " The MNIST lab page can download it.", icon="📂")
    cfg = None
if len(losses) < 2:
    st.info("Pick at least two losses to compare.")
with ui.folded("Each loss's settings", icon=":material/table:"):
    for note in compare.caveats(cfg or base, losses, same):
        st.caption(f"Note: {note}")
    if losses:
        st.dataframe(compare.settings_table(compare.comparison_configs(cfg or base, losses, same)),
                     hide_index=True, key="cmp-settings")


def carry_out(intent: tuple, runs: list) -> list:
    kind, run_id = intent
    if kind == "start":
        runs = compare.start_comparison(ui.registry(), cfg, losses, name=slug, same_settings=same)
        st.query_params["group"] = runs[0].lockstep.group
    elif kind == "pause-all":
        for run in runs:
            run.pause()
    elif kind == "resume-all":
        compare.resume_runs(runs)
    elif kind == "stop-all":
        compare.stop_runs(runs, wait=2.0)
    else:
        run = next((r for r in runs if r.id == run_id), None)
        if run is None:
            pass
        elif kind == "pause":
            run.pause()
        elif kind == "resume":
            run.resume()
        elif kind == "stop":
            compare.stop_runs([run], wait=2.0)
    return runs


# A click only records what was asked; it is carried out here, before the buttons are drawn,
# so they show the new state (and Start gets the settings as they are on this rerun).
intent = st.session_state.pop(INTENT, None)
if intent:
    try:
        runs = carry_out(intent, runs)
    except (RunError, ValueError) as e:
        st.session_state[NOTICE] = str(e)


def ask(kind: str, run_id: str = ""):
    return lambda: st.session_state.__setitem__(INTENT, (kind, run_id))


active = [r for r in runs if r.status in ACTIVE and not ui.elsewhere(r)]   # another process's: only watched
all_paused = bool(active) and all(r.paused for r in active)   # asked for: see ui.controls
c1, c2, c3 = st.columns(3)
c1.button("Start all", icon=":material/play_arrow:", type="primary", key="cmp-start", on_click=ask("start"),
          disabled=cfg is None or len(losses) < 2 or bool(active),
          help="This comparison is training: stop it first" if active else "One run per loss, in lockstep")
c2.button("Resume all" if all_paused else "Pause all", disabled=not active, key="cmp-pause",
          icon=":material/play_circle:" if all_paused else ":material/pause:",
          on_click=ask("resume-all" if all_paused else "pause-all"))
c3.button("Stop all", icon=":material/stop:", disabled=not active, key="cmp-stop", on_click=ask("stop-all"))
if NOTICE in st.session_state:
    st.warning(ui.plain(st.session_state.pop(NOTICE)))


def run_controls() -> None:
    """Each run's own Pause and Stop, under its loss's name."""
    st.caption("Pausing a run pauses only that run. Resumed, it catches up while the others wait, so all "
               "the curves keep sharing their steps.")
    if any(ui.elsewhere(r) for r in runs):
        st.caption("Another process trains this comparison (the command line, or another server on this run "
                   "store): this page shows its record as it grows, and only that process can pause or stop it.")
    for col, run in zip(st.columns(len(runs)), runs):
        paused = run.status in ACTIVE and run.paused
        col.markdown(f"**{LOSSES[run.cfg.loss.name].label}**")
        b1, b2 = col.columns(2)
        b1.button("Resume" if paused else "Pause", key=f"cmp-pause-{run.id}", disabled=run not in active,
                  on_click=ask("resume" if paused else "pause", run.id))
        b2.button("Stop", key=f"cmp-stop-{run.id}", disabled=run not in active, on_click=ask("stop", run.id))


# Each task's charts in two parts: the first shows what the runs make (densities, sample grids,
# planes), the rest how they got there (the curves) and why.
def first_1d(snaps: dict) -> None:
    ui.chart(st, charts.densities_by_loss_figure({loss: s.views for loss, s in snaps.items()}), "cmp-densities")


def rest_1d(snaps: dict, clock, x_max: int) -> None:
    views = {loss: s.views for loss, s in snaps.items()}
    metrics = {loss: s.metrics for loss, s in snaps.items()}
    meters = {loss: s.meters for loss, s in snaps.items()}
    view = ui.curve_view("cmp")
    c1, c2 = st.columns(2)
    ui.chart(c1, charts.w1_by_loss_figure(meters, x_max), "cmp-w1", view, clock)
    ui.chart(c2, charts.grad_norm_by_loss_figure(metrics, x_max), "cmp-grad", view, clock)
    if any(MODES_COVERED.name in m for m in meters.values()):   # mixtures: does each run find every mode?
        title = charts.better_title(MODES_COVERED.name, "Modes covered")
        ui.chart(st, charts.by_loss_figure(meters, MODES_COVERED.name, title, x_max=x_max), "cmp-modes", view, clock)
    ui.chart(st, charts.d_and_critic_figure(views), "cmp-d-critic")
    ui.chart(st, charts.loss_panels_figure(metrics, x_max), "cmp-loss-panels", view, clock)


def first_mnist(snaps: dict) -> None:
    for col, (loss, snap) in zip(st.columns(len(snaps)), snaps.items()):
        step, grid = snap.images[-1] if snap.images else (0, None)
        ui.chart(col, charts.image_figure(grid, f"{charts.loss_short(loss)}, step {step}", height=300),
                 f"cmp-grid-{loss}")


def rest_mnist(snaps: dict, clock, x_max: int) -> None:
    view = ui.curve_view("cmp")
    meters = {loss: s.meters for loss, s in snaps.items()}
    metrics = {loss: s.metrics for loss, s in snaps.items()}
    classifier = {name: charts.better_title(name, text) for name, text in (
        (FID.name, "Fréchet distance to real digits"), (MODES_COVERED.name, "Digits covered, of 10"),
        (CONFIDENT.name, "Confident share: clearly a digit"))}
    shown = [name for name in classifier if any(name in m for m in meters.values())]
    for col, name in zip(st.columns(max(len(shown), 1)), shown):
        ui.chart(col, charts.by_loss_figure(meters, name, classifier[name], x_max=x_max), f"cmp-{name}", view, clock)
    if not shown:
        ui.chart(st, charts.d_test_panels_figure(meters, x_max), "cmp-d-test", view, clock)
    ui.chart(st, charts.grad_norm_by_loss_figure(metrics, x_max), "cmp-grad", view, clock)
    ui.chart(st, charts.loss_panels_figure(metrics, x_max), "cmp-loss-panels", view, clock)


def first_2d(snaps: dict) -> None:
    for col, (loss, snap) in zip(st.columns(len(snaps)), snaps.items()):
        ui.chart(col, charts2d.plane_figure(snap.views, arrows=False, manifold=False, height=340,
                                            title=f"{charts.loss_short(loss)}, step {snap.views.get('step', 0)}"),
                 f"cmp-plane-{loss}")


def rest_2d(snaps: dict, clock, x_max: int) -> None:
    view = ui.curve_view("cmp")
    meters = {loss: s.meters for loss, s in snaps.items()}
    for col, (i, fig) in zip(st.columns(3), enumerate(charts2d.meters_by_loss_figures(meters, x_max))):
        ui.chart(col, fig, f"cmp-2d-meter-{i}", view, clock)
    metrics = {loss: s.metrics for loss, s in snaps.items()}
    ui.chart(st, charts.grad_norm_by_loss_figure(metrics, x_max), "cmp-grad", view, clock)
    ui.chart(st, charts.loss_panels_figure(metrics, x_max), "cmp-loss-panels", view, clock)


CHARTS = {"gauss1d": (first_1d, rest_1d), "toy2d": (first_2d, rest_2d), "mnist": (first_mnist, rest_mnist)}


def draw(first: bool = True, rest: bool = True) -> None:
    """The runs' status lines, the task's first chart and the rest of its charts (or some of them)."""
    snaps = {run.cfg.loss.name: run.snapshot() for run in runs}
    first_chart, rest_charts = CHARTS.get(runs[0].cfg.task, CHARTS["gauss1d"])
    if rest:
        for col, snap in zip(st.columns(len(snaps)), snaps.values()):
            with col:
                ui.status_line(snap, images=runs[0].cfg.task == "mnist")   # with the run's alarms, if any sound
    if first:
        first_chart(snaps)
    if rest:
        # The runs train in lockstep, so step s of each came at about the same moment: the clock of
        # the run that got furthest gives every run's wall time.
        clock = max(snaps.values(), key=lambda snap: snap.step)
        rest_charts(snaps, clock, clock.step)   # the runs' curves share one step range


def draw_first() -> None:
    draw(rest=False)


def draw_rest() -> None:
    draw(first=False)


def training() -> bool:
    return any(r.snapshot().status in ACTIVE for r in runs)


if not runs:
    st.info("Pick a target and the losses, then press **Start all**.")
else:
    st.caption(f"Comparison `{runs[0].lockstep.group}`: {runs[0].name.split(' · ')[0]}, "
               f"{runs[0].cfg.train.steps:,} steps per run.")
    if ui.teaching():
        # On a projector the picture comes first, so that it starts on a 1280 × 720 screen while the
        # runs train: then each run's controls, its status, and the curves.
        ui.refresh_while(draw_first, training)
        run_controls()
        ui.refresh_while(draw_rest, training)
    else:
        run_controls()
        ui.refresh_while(draw, training)

# Below the charts, so that the picker, Start all and the charts come first on the screen.
with st.expander("What to look for (to read aloud)", expanded=True):
    shown_task = runs[0].cfg.task if runs else base.task
    count = len(runs) if runs else len(losses)   # the runs shown, or the losses picked
    copies = {2: "Two", 3: "Three", 4: "Four", 5: "Five", 6: "Six", 7: "Seven"}.get(count, str(count))
    st.markdown({"mnist": LOOK_FOR_MNIST, "toy2d": LOOK_FOR_2D}.get(shown_task, LOOK_FOR_1D).format(
        copies=copies, settings=SETTINGS[same]))

st.subheader("How the losses differ")
ui.chart(st, charts.g_loss_explainer_figure(), "cmp-explainer")
st.markdown("""
- **Saturating BCE, log(1 − D(G(z)))**: the loss of the 2014 paper's minimax game. Its slope with
  respect to D's score is −D(G(z)), so when D confidently rejects a fake the curve (right) is flat and
  G's gradient vanishes, exactly when G is worst. Early in training, while D tells the fakes apart
  easily, that is most of the time.
- **Non-saturating BCE, −log D(G(z))**: the same fixed point, but steep when D rejects the fakes, so G
  learns most when it is losing. Against D's raw score it bends into a line of slope −1, like the
  Wasserstein loss.
- **Wasserstein, −f(G(z))**: the critic has no sigmoid, so its value is unbounded and the loss is
  linear in it: the slope is −1 everywhere, and G's gradient comes from how f changes across x. That
  only works if f is kept roughly 1-Lipschitz, by clipping its weights (WGAN) or by penalising its
  gradient norm (WGAN-GP).
- **Least squares (LSGAN), ½(D(G(z)) − 1)²**: D regresses its raw output onto 1 for real and 0 for
  fake. No sigmoid, so a fake far on the wrong side still gets a gradient that grows with the distance.
  Its best D is BCE's, p_data / (p_data + p_g): 0.5 everywhere once G matches the data.
- **Hinge, −f(G(z))**: G's side is the Wasserstein loss; the critic only learns from points inside its
  margin (real scored below 1, fake above −1), which keeps its values from running away.
- **BCE + R1**: non-saturating BCE, with D's squared gradient norm on real data as a penalty
  (γ/2 · E‖∇D(x)‖²). D goes flat at the data, so once G matches it nothing pushes G away again.
""")
