"""Sweeps: which settings make a GAN train? One preset, one or two of its settings over a range, a few
seeds each, trained as a sweep on Ray Tune (ganlab.sweeps); a map of the final meter, live."""
import os

import streamlit as st

from ganlab import charts_sweep
from ganlab.chartview import table_csv
from ganlab.config import ConfigError, encode_config
from ganlab.families import page_of
from ganlab.meters import meter
from ganlab.presets import get_preset, presets_for
from ganlab.runs import RunError
from ganlab.speed import duration
from ganlab.sweeps import MAX_SEEDS, MAX_VALUES, RUNNING, Axis, SweepError, SweepSpec, load_sweep, start_sweep, \
    sweep_listing, sweepable
from ganlab.tasks import TASKS
from pages import ui

KINDS = {"grid": "even grid", "log": "log grid", "random": "random"}
NONE = ""   # no second setting
DEFAULTS = ("opt_d.lr", "opt_g.lr")   # the first question a sweep answers: which learning rates train
SWEEP_WORDS = {"running": ("blue", "Running"), "finished": ("green", "Finished"), "stopped": ("gray", "Stopped"),
               "failed": ("red", "Failed"), "interrupted": ("orange", "Interrupted")}
ui.require_frame()

st.title("Sweeps")
st.caption("Pick a preset, one or two of its settings, each over a range, and how many seeds. Each trial is an "
           "ordinary ganlab run, with the same engine, meters and alarms, trained on Ray Tune: on this "
           "machine, or on a Ray cluster when an address is given. The map shows where in those settings the "
           "GAN trains, and where it diverges or collapses.")

board = ui.sweeps()
store = ui.run_store()[0]


def field_words(field: str) -> str:
    """"opt_d.lr" -> "D optimizer: learning rate", as the labs' settings call it."""
    return ui.setting_words(field, ui.CHANGE_LABELS.get(field, "").removeprefix("G ").removeprefix("D ") or None)


def sweep_words(row: dict) -> str:
    """A sweep in the picker: "3f2a9c1e: gauss1d, opt_d.lr × opt_g.lr (finished)"."""
    return f"{row['id']}: {row['preset']}, {' × '.join(row['fields'])} ({row['status']})"


def current(cfg, field: str) -> float:
    section, name = field.split(".")
    return getattr(getattr(cfg, section), name)


# -- which sweep the page shows: the link's (?sweep=ID); one from before a restart is read from the store
sweep_id = st.query_params.get("sweep")
sweep = board.get(sweep_id)
if sweep_id and sweep is None:
    try:
        sweep = load_sweep(store, sweep_id) if store is not None else None
    except SweepError:
        sweep = None
    if sweep is None:
        st.warning(f"The sweep in this link ({ui.plain(sweep_id)}) is not on this server or in its run store.",
                   icon=":material/link_off:")
        st.query_params.pop("sweep", None)
running = sweep is not None and sweep.status == RUNNING

# -- a new sweep's settings: open until a sweep is shown, then folded away so that its map comes first
presets = {p.slug: p for task in TASKS for p in presets_for(task)}
chosen = []   # (setting number, field, kind, low, high, n)
with st.expander("New sweep", icon=":material/tune:", expanded=sweep is None):
    c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
    slug = c1.selectbox("Preset", list(presets), format_func=lambda s: f"{s} — {presets[s].title}", key="sw-preset")
    preset = get_preset(slug)
    steps = c2.number_input("steps per trial", min_value=1, value=min(preset.config.train.steps, 2000), step=100,
                            key=f"sw-steps-{slug}", help="Each trial's budget, in G steps")
    n_seeds = c3.number_input("seeds per setting", min_value=1, max_value=MAX_SEEDS, value=1, step=1,
                              key="sw-seeds", help="The third axis: each setting trained once per seed. Its "
                                                   "cell shows the median, and how many seeds went wrong.")
    first_seed = c4.number_input("first seed", min_value=0, value=100, step=1, key="sw-first-seed")
    fields = sweepable(preset.config.task)
    for i, default in enumerate(DEFAULTS):
        cols = st.columns([3, 1.5, 1, 1, 1], vertical_alignment="bottom")
        options = fields if i == 0 else [NONE] + fields
        field = cols[0].selectbox(f"Setting {i + 1}", options, index=options.index(default) if i == 0 else 0,
                                  format_func=lambda f: field_words(f) if f else "none", key=f"sw-field-{i}")
        if not field:
            continue
        value, lr = float(current(preset.config, field)), field.endswith(".lr")
        low, high = (value / 10, value * 10) if lr else (value / 2, value * 2) if value else (0.0, 1.0)
        key = f"sw-{i}-{slug}-{field}"   # a setting's range starts from the preset's value of it
        kind = cols[1].selectbox("spaced", list(KINDS), index=1 if lr else 0, format_func=KINDS.get,
                                 key=f"{key}-kind")
        low = cols[2].number_input("low", value=low, format="%g", key=f"{key}-low")
        high = cols[3].number_input("high", value=high, format="%g", key=f"{key}-high")
        n = cols[4].number_input("values", min_value=1, max_value=MAX_VALUES, value=3, step=1, key=f"{key}-n")
        chosen.append((i + 1, field, kind, low, high, int(n)))
    address = st.text_input("Ray cluster address", value=os.environ.get("RAY_ADDRESS", ""), key="sw-address",
                            placeholder="empty: Ray on this machine",
                            help="A Ray cluster's address (HEAD:6379, or ray://HEAD:10001); empty starts Ray on "
                                 "this machine, on its cores. RAY_ADDRESS fills it in.")

    def build_spec():
        """The sweep the settings ask for, or None and every problem with them, each naming its setting."""
        problems, axes = [], []
        for number, field, kind, low, high, n in chosen:
            try:
                axes.append(Axis(field, kind, float(low), float(high), n))
            except SweepError as e:
                problems.append(f"**Setting {number}** ({ui.plain(field_words(field))}): {ui.plain(e.message)}")
        if len(chosen) == 2 and chosen[0][1] == chosen[1][1]:
            problems.append("**Setting 2** is setting 1 again: pick another, or none.")
        if problems:
            return None, problems
        try:
            spec = SweepSpec(slug, tuple(axes), steps=int(steps),
                             seeds=tuple(range(int(first_seed), int(first_seed) + int(n_seeds))))
            spec.trials()   # every trial's config is built and checked: a value out of its field's range is named
        except (SweepError, ConfigError) as e:
            words = field_words(e.field) if "." in e.field else e.field
            return None, [f"**{ui.plain(words)}**: {ui.plain(e.message)}"]
        return spec, []

    spec, problems = build_spec()
    if problems:
        st.error("Fix " + ("this setting" if len(problems) == 1 else f"these {len(problems)} settings") +
                 " to start the sweep:\n" + "".join(f"\n- {p}" for p in problems), icon=":material/error:")
    else:
        shape = " × ".join(str(len(values)) for values in spec.values())
        seeds = f" × {len(spec.seeds)} seeds" if len(spec.seeds) > 1 else f", seed {spec.seeds[0]}"
        st.caption(f"{len(spec.trials()):,} trials ({shape}{seeds}) of {spec.steps:,} steps each, mapped by "
                   f"{meter(spec.metric).words}.")
    if st.button("Start sweep", type="primary", icon=":material/play_arrow:", key="sw-start",
                 disabled=spec is None or running,
                 help="The sweep shown is running: stop it first" if running else "Train every trial of this sweep"):
        try:
            started = start_sweep(spec, store=store, address=address.strip() or None, owner=ui.browser_id())
        except SweepError as e:
            st.error(f"The sweep could not start: {ui.plain(e)}", icon=":material/error:")
        else:
            board[started.id] = started
            st.query_params["sweep"] = started.id
            st.rerun()   # drawn again with the settings folded and the new sweep's map below

# -- every sweep this server knows: started here, or in the run store (from before a restart, or the CLI)
listed = {row["id"]: row for row in (sweep_listing(store) if store is not None else [])}
for s in board.values():   # this process's own: its status as it is now, ahead of the store's next write
    listed[s.id] = {"id": s.id, "created": s.created, "preset": s.spec.preset, "fields": s.spec.fields,
                    "status": s.status}
if sweep is None:
    ids = sorted(listed, key=lambda i: listed[i]["created"], reverse=True)
    if ids:
        picked_id = st.selectbox("Sweep shown", ids, index=None, format_func=lambda i: sweep_words(listed[i]),
                                 key="sw-shown-none", placeholder="Pick a sweep to show")
        if picked_id is not None:
            st.query_params["sweep"] = picked_id
            st.rerun()
    st.info("Pick settings and press **Start sweep**" + (", or pick a sweep to show." if ids else "."))
    st.stop()

# -- the sweep, live ---------------------------------------------------------------------------------
x_axis, y_axis = sweep.spec.axes[0], (sweep.spec.axes[1] if len(sweep.spec.axes) > 1 else None)
axis_fields = list(sweep.spec.fields)
rows_now = sweep.rows()
# The meters with a direction (a distance, a count of modes) make a map; the sweep's own comes first.
options = [sweep.spec.metric] + [m for m in charts_sweep.meters_in(rows_now)
                                 if m != sweep.spec.metric and meter(m).higher_is_better is not None]
ids = sorted(listed, key=lambda i: listed[i]["created"], reverse=True)
c1, c2, c3 = st.columns([3, 2, 1], vertical_alignment="bottom")
picked_id = c1.selectbox("Sweep shown", ids, index=ids.index(sweep.id) if sweep.id in ids else None,
                         format_func=lambda i: sweep_words(listed[i]),
                         # The status is in the key: a browser keeps a picker's shown words while its key stays.
                         key=f"sw-shown-{sweep.id}-{sweep.status}")
if picked_id is not None and picked_id != sweep.id:
    st.query_params["sweep"] = picked_id
    st.rerun()
metric = c2.selectbox("Meter on the map", options, format_func=lambda m: meter(m).words, key=f"sw-meter-{sweep.id}")


def stop_sweep(confirmed: bool = False) -> None:
    # A class shares the server: a sweep another browser started is stopped only on purpose (as on Runs).
    if not confirmed and not ui.mine(sweep):
        st.session_state["sw-confirm"] = sweep.id
        return
    st.session_state.pop("sw-confirm", None)
    sweep.stop()


c3.button("Stop sweep", icon=":material/stop:", key="sw-stop", disabled=not running, on_click=stop_sweep,
          help="Trials still training stop where they are; those not started never do; the ended ones are kept")
if running and st.session_state.get("sw-confirm") == sweep.id:
    ui.ask_anyway("sw-confirm", "This sweep was started in another browser, perhaps by someone else. Stop it anyway?",
                  "Stop", stop_sweep, (True,))
if sweep.id not in board:
    st.caption("A sweep from the run store: " + ("another process runs it, and this page follows its record."
                                                  if sweep.status == RUNNING else "read as it was recorded."))


def draw_sweep() -> None:
    done, total, left = sweep.progress()
    color, word = SWEEP_WORDS.get(sweep.status, ("gray", sweep.status))
    line = f":{color}-badge[{ui.plain(word)}] **{done:,}** of {total:,} trials done"
    st.markdown(line + (f" · about {duration(max(left, 1))} left" if sweep.status == RUNNING and left else ""))
    st.progress(done / total if total else 0.0)
    if sweep.message:
        (st.error if sweep.status == "failed" else st.caption)(ui.plain(sweep.message))
    rows = sweep.rows()
    fig = charts_sweep.sweep_heatmap(rows, x_axis.field, y_axis.field if y_axis else None, metric,
                                     x_title=field_words(x_axis.field), y_title=field_words(y_axis.field) if y_axis
                                     else "", log_x=x_axis.kind == "log", log_y=y_axis is not None and
                                     y_axis.kind == "log")
    ui.chart(st, fig, "sw-map")
    frame = charts_sweep.trials_frame(rows, axis_fields, {f: field_words(f) for f in axis_fields})
    shown = charts_sweep.table_shown(frame, metric)
    headings = {meter(m).heading: m for m in charts_sweep.meters_in(rows) if meter(m).heading in shown}
    settings = {field_words(f): "{:.3g}" for f in axis_fields}
    st.dataframe(ui.meters_table(shown, headings, settings | {"seconds": "{:.1f}"}), hide_index=True,
                 key="sw-table", placeholder=ui.MISSING)
    st.download_button("Trials (CSV)", lambda: table_csv(frame), file_name=f"sweep-{sweep.id}.csv",
                       mime="text/csv", key="sw-csv", on_click="ignore", icon=":material/download:",
                       type="tertiary", help="One row per trial: its settings, seed, status and final meters")


ui.refresh_while(draw_sweep, lambda: sweep.status == RUNNING)

# -- picked trials: their curves overlaid, and one opened as a run on its lab page --------------------
labels = {r["trial"]: charts_sweep.trial_label(r, axis_fields) for r in rows_now}
picked = st.multiselect("Trials to compare", list(labels), format_func=labels.get, key=f"sw-picked-{sweep.id}",
                        placeholder="Pick trials to overlay their curves, or to open one as a run")
if picked:
    columns = list(dict.fromkeys(c for t in picked for c in sweep.curves(t) if c != "step"))
    curve = st.selectbox("Curve", columns, format_func=lambda c: meter(c).words, key="sw-curve") if columns else None

    def draw_curves() -> None:
        if curve is None:
            st.info("The picked trials have no curves yet: a trial reports at each snapshot.")
            return
        ui.chart(st, charts_sweep.sweep_curves({labels[t]: sweep.curves(t) for t in picked}, curve), "sw-curves")

    ui.refresh_while(draw_curves, lambda: sweep.status == RUNNING)
    cols = st.columns(min(len(picked), 4))
    for i, trial in enumerate(picked):
        if cols[i % len(cols)].button(f"Open #{trial} as a run", icon=":material/open_in_new:",
                                      key=f"sw-open-{sweep.id}-{trial}",
                                      help="Trains this trial's settings again, as a new run on its lab page"):
            cfg = sweep.cfg_of(trial)
            try:
                run = ui.registry().create(cfg, name=f"trial {trial} of sweep {sweep.id}",
                                           page=page_of(cfg), owner=ui.browser_id(), queue=True)
            except (RunError, ConfigError) as e:   # ConfigError: over this server's budget (cost.check)
                st.warning(ui.plain(e))
            else:
                # The lab opens on the trial's settings (a link's ?preset=&cfg=) with its run attached.
                base = get_preset(sweep.spec.preset).config
                query = {"run": run.id, "preset": sweep.spec.preset}
                if cfg != base:
                    query["cfg"] = encode_config(cfg, base)
                st.switch_page(f"pages/{page_of(cfg)}.py", query_params=query)
