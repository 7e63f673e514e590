"""Pieces every page shares: the run registry, attaching to a run, controls, status.

This is the only place (with the page files) that touches Streamlit. The
training threads never do: they write into their Run, and the pages read the
Run's latest snapshot.
"""
from __future__ import annotations

import os
import threading

import streamlit as st

from ganlab.config import OPTIMIZERS, ConfigError, Experiment, Optim
from ganlab.runs import ACTIVE, DIVERGED, FAILED, FINISHED, PAUSED, RUNNING, STOPPED, Run, RunError, \
    RunRegistry, Snapshot

REFRESH_SECONDS = 1.0

STATUS_WORDS = {
    "created": ("gray", "Ready"),
    "starting": ("blue", "Starting…"),
    RUNNING: ("blue", "Training"),
    PAUSED: ("orange", "Paused"),
    FINISHED: ("green", "Finished"),
    STOPPED: ("gray", "Stopped"),
    FAILED: ("red", "Failed"),
    DIVERGED: ("red", "Diverged"),
}


@st.cache_resource
def registry() -> RunRegistry:
    """One registry per server process: runs survive reloads, reruns and other tabs."""
    return RunRegistry(max_active=int(os.environ.get("GANLAB_MAX_RUNS", "8")))


_frame = threading.local()


def frame() -> None:
    """What every page shows around itself: the sidebar with device and data folder."""
    from ganlab.data.mnist import available_splits, data_root
    from ganlab.system import device_summary
    _frame.active = True
    with st.sidebar:
        st.markdown("### ganlab")
        st.caption(f"**Device:** {device_summary()}")
        root = data_root()
        splits = available_splits(root)
        found = f"MNIST {' + '.join(splits)} split" if splits else "no MNIST found"
        st.caption(f"**Data folder:** `{root.resolve()}` ({found}). Set `GANLAB_DATA` to change it.")


def require_frame() -> None:
    """Pages run inside app.py's frame.

    On a fresh server, Streamlit routes a first visit by its legacy pages/
    rules (until some session has called st.navigation), which runs a page
    file alone. Then draw the frame here, and switch the server to app.py's
    navigation, as that first st.navigation call would, so later runs go
    through app.py.
    """
    if not getattr(_frame, "active", False):
        try:
            from streamlit.runtime.pages_manager import PagesManager
            PagesManager.uses_pages_directory = False
        except ImportError:
            pass
        frame()
    _frame.active = False


def attached_run(page: str) -> Run | None:
    """The run named in the URL (?run=ID), if it exists and belongs to this page."""
    run = registry().get(st.query_params.get("run"))
    return run if run is not None and run.page == page else None


def attach(run: Run | None) -> None:
    if run is None:
        st.query_params.pop("run", None)
    else:
        st.query_params["run"] = run.id


def build_config(make) -> tuple[Experiment | None, str | None]:
    """Call make() -> Experiment; a bad value becomes a message, not a traceback."""
    try:
        return make(), None
    except ConfigError as e:
        return None, f"**{e.field}**: {str(e).split(': ', 1)[-1]}"


def controls(run: Run | None, cfg: Experiment | None, page: str, name: str = "") -> Run | None:
    """Start, Pause/Resume, Step (D, G, both) and Stop. Returns the run to show.

    A click only records what was asked; it is carried out here, with the
    settings as they are on this run of the script (a click that also changed
    a setting gets the new value), and before the buttons are drawn, so they
    show the new state.
    """
    intent_key, notice_key = f"{page}-intent", f"{page}-notice"
    intent = st.session_state.pop(intent_key, None)
    if intent:
        try:
            run = _carry_out(intent, run, cfg, page, name)
        except RunError as e:
            st.session_state[notice_key] = str(e)

    snap = run.snapshot() if run else None
    active = snap is not None and snap.status in ACTIVE
    paused = snap is not None and snap.status == PAUSED

    def ask(what):
        return lambda: st.session_state.__setitem__(intent_key, what)

    cols = st.columns([1.1, 1.2, 1, 1, 1, 1])
    cols[0].button("Start", icon=":material/play_arrow:", type="primary", disabled=cfg is None or active,
                   key=f"{page}-start", on_click=ask("start"),
                   help="A run is training: stop it first" if active else "Train a new run with these settings")
    cols[1].button("Resume" if paused else "Pause", icon=":material/play_circle:" if paused else ":material/pause:",
                   disabled=not active, key=f"{page}-pause", on_click=ask("resume" if paused else "pause"))
    can_step = active or cfg is not None
    cols[2].button("Step D", disabled=not can_step, key=f"{page}-step-d", on_click=ask("step-d"),
                   help="k discriminator updates, then pause")
    cols[3].button("Step G", disabled=not can_step, key=f"{page}-step-g", on_click=ask("step-g"),
                   help="One generator update, then pause")
    cols[4].button("Step both", disabled=not can_step, key=f"{page}-step-both", on_click=ask("step-both"),
                   help="One full iteration, then pause")
    cols[5].button("Stop", icon=":material/stop:", disabled=not active, key=f"{page}-stop", on_click=ask("stop"))
    if notice_key in st.session_state:
        st.warning(st.session_state.pop(notice_key))
    return run


def _carry_out(intent: str, run: Run | None, cfg: Experiment | None, page: str, name: str) -> Run | None:
    active = run is not None and run.status in ACTIVE
    if intent == "start" and cfg is not None and not active:
        run = registry().create(cfg, name=name, page=page)
        attach(run)
    elif intent in ("pause", "resume") and active:
        run.pause() if intent == "pause" else run.resume()
    elif intent == "stop" and run is not None:
        run.stop(wait=2.0)
    elif intent.startswith("step-"):
        if not active:
            if cfg is None:
                return run
            run = registry().create(cfg, name=name, page=page, paused=True)   # stepping starts a paused run
            attach(run)
        run.step_once(intent.removeprefix("step-"))
    return run


def optimizer_inputs(label: str, opt: Optim, key: str) -> Optim:
    st.markdown(f"**{label}**")
    name = st.selectbox("optimizer", OPTIMIZERS, index=OPTIMIZERS.index(opt.name), key=key + "opt")
    lr = st.number_input("learning rate", value=opt.lr, format="%.5f", step=1e-4, key=key + "lr")
    b1 = st.number_input("β1 (momentum for SGD)", value=opt.beta1, step=0.05, key=key + "b1")
    b2 = st.number_input("β2", value=opt.beta2, step=0.001, format="%.3f", key=key + "b2")
    return Optim(name, lr, b1, b2)


def loss_inputs(base, key: str):
    """Loss name, clip value and GP λ."""
    from ganlab.config import Loss
    from ganlab.losses import LOSSES
    name = st.selectbox("loss", list(LOSSES), index=list(LOSSES).index(base.name),
                        format_func=lambda n: LOSSES[n].label, key=key + "loss")
    clip = st.number_input("clip c (WGAN)", value=base.clip, format="%.3f", key=key + "clip")
    gp = st.number_input("GP λ (WGAN-GP)", value=base.gp_lambda, key=key + "gp")
    return Loss(name, clip=clip, gp_lambda=gp)


def status_line(snap: Snapshot, images: bool = False) -> None:
    color, word = STATUS_WORDS.get(snap.status, ("gray", snap.status))
    rate = ""
    if snap.status == RUNNING and snap.steps_per_s:
        rate = f" · {snap.steps_per_s:,.0f} steps/s"
        if images:
            rate += f" · {snap.samples_per_s:,.0f} images/s"
    st.markdown(f":{color}-badge[{word}] step **{snap.step:,}** of {snap.total_steps:,}{rate}"
                f" · {snap.elapsed:,.1f} s training")
    st.progress(snap.progress)
    for alarm in snap.alarms:
        st.markdown(f":red-badge[:material/warning: {alarm.kind.replace('_', ' ')}] {alarm.text}")
    if snap.status == FAILED:
        st.error(f"The run failed: {snap.message}")
    elif snap.status == DIVERGED:
        st.error(f"The run diverged: {snap.message}")
    elif snap.status in (FINISHED, STOPPED) and snap.message:
        st.caption(snap.message.capitalize() + ".")


def live(draw, run: Run | None) -> None:
    """Redraw `draw(snapshot)` every REFRESH_SECONDS while the run trains; once otherwise."""
    polling = run is not None and run.snapshot().status in ACTIVE

    @st.fragment(run_every=REFRESH_SECONDS if polling else None)
    def _live():
        snap = run.snapshot()
        draw(snap)
        if polling and snap.status not in ACTIVE:
            st.rerun()   # the run ended: redraw the whole page once, and stop polling

    if run is None:
        st.info("Pick settings and press **Start**, or **Step** to go one update at a time.")
        return
    _live()
