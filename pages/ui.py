"""Pieces every page shares: the run registry, attaching to a run, controls, status.

This is the only place (with the page files) that touches Streamlit. The
training threads never do: they write into their Run, and the pages read the
Run's latest snapshot.
"""
from __future__ import annotations

import os
import threading

import streamlit as st

from ganlab.config import ConfigError, Experiment
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


def enter_frame() -> None:
    """Called by app.py on every run, before the page script."""
    _frame.active = True


def require_frame() -> None:
    """Pages run inside app.py's frame. On a fresh server, Streamlit's legacy
    pages/ routing can run a page file alone; send that visit through app.py."""
    if not getattr(_frame, "active", False):
        st.switch_page("app.py")
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


def controls(run: Run | None, cfg: Experiment | None, page: str, name: str = "") -> None:
    """Start, Pause/Resume, Step (D, G, both) and Stop.

    The actions run as on_click callbacks, before the script reruns, so the
    page that follows already shows the new state (no stale buttons).
    """
    snap = run.snapshot() if run else None
    active = snap is not None and snap.status in ACTIVE
    paused = snap is not None and snap.status == PAUSED
    notice_key = f"{page}-notice"

    def act(action):
        def callback():
            try:
                action()
            except RunError as e:
                st.session_state[notice_key] = str(e)
        return callback

    def start():
        attach(registry().create(cfg, name=name, page=page))

    def step(what):
        target = run if active else None
        if target is None:   # stepping with no live run starts one, paused
            target = registry().create(cfg, name=name, page=page, paused=True)
            attach(target)
        target.step_once(what)

    cols = st.columns([1.1, 1.2, 1, 1, 1, 1])
    cols[0].button("Start", icon=":material/play_arrow:", type="primary", disabled=cfg is None or active, key=f"{page}-start",
                   on_click=act(start),
                   help="A run is training: stop it first" if active else "Train a new run with these settings")
    cols[1].button("Resume" if paused else "Pause", icon=":material/play_circle:" if paused else ":material/pause:",
                   disabled=not active, key=f"{page}-pause",
                   on_click=act(lambda: run.resume() if paused else run.pause()))
    can_step = active or cfg is not None
    cols[2].button("Step D", disabled=not can_step, key=f"{page}-step-d", on_click=act(lambda: step("d")),
                   help="k discriminator updates, then pause")
    cols[3].button("Step G", disabled=not can_step, key=f"{page}-step-g", on_click=act(lambda: step("g")),
                   help="One generator update, then pause")
    cols[4].button("Step both", disabled=not can_step, key=f"{page}-step-both",
                   on_click=act(lambda: step("both")), help="One full iteration, then pause")
    cols[5].button("Stop", icon=":material/stop:", disabled=not active, key=f"{page}-stop", on_click=act(lambda: run.stop(wait=2.0)))
    if notice_key in st.session_state:
        st.warning(st.session_state.pop(notice_key))


def status_line(snap: Snapshot) -> None:
    color, word = STATUS_WORDS.get(snap.status, ("gray", snap.status))
    rate = f" · {snap.steps_per_s:,.0f} steps/s" if snap.status == RUNNING and snap.steps_per_s else ""
    st.markdown(f":{color}-badge[{word}] step **{snap.step:,}** of {snap.total_steps:,}{rate}"
                f" · {snap.elapsed:,.1f} s training")
    st.progress(snap.progress)
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
