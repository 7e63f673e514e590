"""Runs: every run on this server, what each is doing, and controls for several at once."""
from pathlib import Path

import pandas as pd
import streamlit as st

from ganlab import charts, compare
from ganlab.chartview import X_AXES, apply_view
from ganlab.labels import loss_words, run_labels
from ganlab.meters import meter, summary_meters
from ganlab.runs import ACTIVE, RUNNING
from ganlab.speed import duration, seconds_left
from pages import ui

# A run's page is named after its file: pages/<page>.py.
PAGES = {p.stem for p in Path(__file__).parent.glob("*.py")} - {"runs", "ui", "__init__"}
LOG_SCALE = ("g_grad_norm", "gp_grad_norm")
ui.require_frame()

st.title("Runs")
st.caption("Every run on this server, from every page and every browser tab, and every run in the run store "
           "(from before a restart, and from the command line), newest first. Pick runs to stop, pause, "
           "resume, delete or open them, and to draw their curves on one chart.")

registry = ui.registry()
runs = registry.list()[::-1]   # newest first
if not runs:
    st.info("No runs yet. Start one on any lab page, and it is listed here.")
    st.stop()
by_id = {r.id: r for r in runs}


# Labels tell the runs apart: the start time and what each changed from its preset (ganlab.labels).
# Nothing that changes (the status, say): a multiselect keeps a pick by its label.
labels = run_labels(runs)


# The table fits a projector's 1280 px (820 px beside the sidebar) with runs of every lab in it, and
# so four meters (ganlab.meters headings them briefly): its text columns have fixed widths, and a
# longer label, status or loss is cut at its column's edge (the picker below shows whole labels).
WIDTHS = {"run": 180, "status": 170, "loss": 130}


def table(runs) -> pd.DataFrame:
    """One row per run, headed in words; a meter's column by its short heading (ganlab.meters),
    with its words in the heading's tooltip (see draw_table).

    Few columns, so that the table fits 1280 px: the label names the preset and any model or loss
    changed from it, the status says how an ended run did, the device shows only where the runs
    differ in it, a meter only where a run has it, and the speed and training time are on each
    run's own page.
    """
    names = run_labels(runs)   # the runs now: another tab may have started one since the page ran
    rows = []
    for run in runs:
        s = run.summary()
        device = s["device"] if s["gpu_memory"] is None else f"{s['device']} · {s['gpu_memory'] / 2**20:,.0f} MiB"
        device = None if device == "auto" else device   # not started: no device yet (a dash)
        rows.append({
            "run": names[run.id], "status": status_words(run, s), "loss": loss_words(run.cfg),
            "steps": f"{s['step']:,} / {s['budget']:,}", "device": device,
            **{meter(m).heading: s.get(m) for m in summary_meters()},
        })
    frame = pd.DataFrame(rows)
    devices = frame["device"].dropna()
    if devices.nunique() <= 1 and not devices.str.startswith("cuda").any():
        frame = frame.drop(columns="device")
    return frame.dropna(axis=1, how="all")   # meters no run has yet


def status_words(run, s: dict) -> str:
    """The status in words, in one column: a training run's with its time left ("~3m 05s left"), an
    ended run's with how it did against its preset's promise (ganlab.verdict) where that adds
    anything, as the run's own page badges it ("Finished · did not converge"; the page gives the
    sentence)."""
    words = ui.STATUS_WORDS.get(s["status"], ("", s["status"]))[1]
    if s["status"] == RUNNING:
        left = seconds_left(s["step"], s["budget"], s["steps_per_s"])
        return f"{words} · ~{duration(max(left, 1))} left" if left is not None else words
    ended = ui.run_verdict(run, run.snapshot())
    return f"{words} · {ended.headline}" if ended is not None and ended.headline else words


# Each list() reads every row of the store: the table's read serves the check that follows it.
listed = {"runs": runs}


def draw_table() -> None:
    listed["runs"] = registry.list()
    meters = {meter(m).heading: m for m in summary_meters()}
    shown = ui.meters_table(table(listed["runs"][::-1]), meters)   # newest first
    config = {column: st.column_config.Column(width=width) for column, width in WIDTHS.items()}
    # A meter's heading is short: pointed at, it gives the meter's words and which way is better.
    config |= {column: st.column_config.Column(help=", ".join(filter(None, (meter(name).words, meter(name).better))))
               for column, name in meters.items()}
    st.dataframe(shown, hide_index=True, key="runs-table", column_config=config, placeholder=ui.MISSING)


def any_active() -> bool:
    """Whether a run trains, read from the registry afresh unless the table has just read it."""
    current = listed.pop("runs", None)
    return any(r.status in ACTIVE for r in (registry.list() if current is None else current))


ui.refresh_while(draw_table, any_active)

# -- picking runs, and what to do with them -----------------------------------------------------
# Another tab may have deleted a picked run: drop it before the widgets are drawn.
if "runs-chosen" in st.session_state:
    st.session_state["runs-chosen"] = [i for i in st.session_state["runs-chosen"] if i in by_id]


def skipped(what: str, remote: list) -> str:
    """What an action did not do to the runs another process trains (ui.elsewhere): said, not claimed."""
    if not remote:
        return ""
    one = len(remote) == 1
    rest = "can be deleted here once it ends" if one else "can be deleted here once they end"
    if what != "delete":
        rest = f"can only be {'stopped' if what == 'stop' else what + 'd'} there"
    return f"{len(remote)} {'run is' if one else 'runs are'} trained by another process and {rest}."


def act(what: str, confirmed: bool = False) -> None:
    picked = [by_id[i] for i in st.session_state.get("runs-chosen", []) if i in by_id]
    remote = [run for run in picked if ui.elsewhere(run)]
    chosen = [run for run in picked if run not in remote]
    st.session_state.pop("runs-confirm", None)
    foreign = [run for run in chosen if not ui.mine(run)]
    if foreign and not confirmed:
        # A class shares the server: another browser's run is stopped only on purpose.
        st.session_state["runs-confirm"] = (what, len(foreign))
        return
    if what == "stop":
        compare.stop_runs(chosen, wait=2.0)
    elif what == "pause":
        for run in chosen:
            run.pause()
    elif what == "resume":
        # A comparison's runs resume together (see compare.resume_runs); other runs one by one.
        groups: dict = {}
        for run in chosen:
            groups.setdefault(id(run.lockstep) if run.lockstep else run.id, []).append(run)
        for members in groups.values():
            compare.resume_runs(members)
    elif what == "delete":
        for run in chosen:
            registry.delete(run.id)
        st.session_state["runs-chosen"] = [run.id for run in remote]
    done = f"{what.capitalize()}: {len(chosen)} run(s)." if chosen else ""
    st.session_state["runs-notice"] = " ".join(filter(None, (done, skipped(what, remote)))) or \
        "Pick one or more runs first."


chosen_ids = st.multiselect("Pick runs", list(by_id), format_func=lambda i: labels[i], key="runs-chosen",
                            placeholder="Pick runs to control, open or overlay")
chosen = [by_id[i] for i in chosen_ids]
cols = st.columns(5)
cols[0].button("Stop", icon=":material/stop:", key="runs-stop", on_click=act, args=("stop",))
cols[1].button("Pause", icon=":material/pause:", key="runs-pause", on_click=act, args=("pause",))
cols[2].button("Resume", icon=":material/play_circle:", key="runs-resume", on_click=act, args=("resume",))
cols[3].button("Delete", icon=":material/delete:", key="runs-delete", on_click=act, args=("delete",),
               help="Stops the run and forgets it: its charts go too, from the run store as well")
cols[4].button("Refresh", icon=":material/refresh:", key="runs-refresh",
               help="Runs started elsewhere appear here on the next refresh")
if "runs-confirm" in st.session_state:
    what, n = st.session_state["runs-confirm"]
    ui.ask_anyway("runs-confirm", f"{n} of the picked runs {'was' if n == 1 else 'were'} started in another "
                  f"browser, perhaps by someone else. {what.capitalize()} {'it' if n == 1 else 'them'} anyway?",
                  what.capitalize(), act, (what, True))
if "runs-notice" in st.session_state:
    st.caption(st.session_state.pop("runs-notice"))
for run in chosen:
    if run.page in PAGES:
        query = {"group": run.lockstep.group} if run.lockstep is not None else {"run": run.id}
        st.page_link(f"pages/{run.page}.py", label=f"Open {ui.plain(labels[run.id])} on its page",
                     icon=":material/open_in_new:", query_params=query)

# -- the overlay: one metric, the picked runs (the newest OVERLAY_RUNS when none is picked) ---------
OVERLAY_RUNS = 12   # a store may hold a thousand runs: reading every record would hold the page for seconds
shown = chosen or runs[:OVERLAY_RUNS]
per_step = list(dict.fromkeys(c for r in shown for c in r.snapshot().metrics if c != "step"))
columns = per_step + sorted({c for r in shown for c in r.snapshot().meters
                             if c != "step" and c not in per_step and not c.startswith(("hist_", "mode_share_"))})
if st.session_state.get("runs-metric") not in columns:
    st.session_state.pop("runs-metric", None)
metric = st.selectbox("Metric to overlay", columns, key="runs-metric",
                      format_func=lambda c: f"{charts.metric_words(c)} ({c})") if columns else None
view = ui.curve_view("runs")


def draw_overlay() -> None:
    if metric is None:
        st.info("The picked runs have no curves yet.")
        return
    series = {}
    for run in shown:
        snap = run.snapshot()
        s = snap.series(metric)
        if s is not None:
            steps, values = s
            series[labels[run.id]] = (snap.wall_seconds(steps) if view.x == "wall" else steps, values)
    fig = charts.overlay_figure(series, metric, smooth_alpha=0.05 if metric in per_step else None,
                                log_y=metric in LOG_SCALE)
    apply_view(fig, view)   # each run's x is its own wall time already
    fig.update_xaxes(title_text=X_AXES[view.x])
    ui.chart(st, fig, "runs-overlay")


ui.refresh_while(draw_overlay, any_active)
