"""Pieces every page shares: the run registry, attaching to a run, controls, status.

This is the only place (with the page files) that touches Streamlit. The
training threads never do: they write into their Run, and the pages read the
Run's latest snapshot.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import threading
import time
from collections.abc import Callable

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from ganlab.config import OPTIMIZERS, SECTIONS, ConfigError, ConfigErrors, Experiment, Optim, decode_config, \
    encode_config
from ganlab.meters import CONFIDENT, FID, MODES_COVERED
from ganlab.runs import ACTIVE, CREATED, DIVERGED, FAILED, FINISHED, PAUSED, RUNNING, STARTING, STOPPED, Run, \
    RunError, RunRegistry, Snapshot
from ganlab.speed import rate_text, time_left
from ganlab.tasks import TASKS

REFRESH_SECONDS = 1.0

_MARKUP = re.compile(r"([\\`*_{}\[\]<>#|~:$])")   # links, images, emphasis, code, HTML, directives, math


def plain(value) -> str:
    """Text from outside (a run's name, a link's value, an error that quotes one) for a Markdown
    element: every markup character escaped, so a name like ![x](http://host/x.png) shows as
    typed instead of making the browser fetch an image. One line, at most 300 characters."""
    text = " ".join(str(value).split())
    text = text if len(text) <= 300 else text[:299] + "…"
    return _MARKUP.sub(r"\\\1", text)

STATUS_WORDS = {
    "created": ("gray", "Ready"),
    "starting": ("blue", "Starting…"),
    RUNNING: ("blue", "Training"),
    PAUSED: ("orange", "Paused"),
    FINISHED: ("green", "Finished"),
    STOPPED: ("gray", "Stopped"),
    FAILED: ("red", "Failed"),
    DIVERGED: ("red", "Diverged"),
    "interrupted": ("orange", "Interrupted"),   # ganlab.store: its process ended while it trained
}


# The pages after the home page, for app.py's navigation and the home page's links:
# (file and URL name, title, icon, what it is for). A task's lab is titled as its spec says.
PAGES = [
    ("gauss1d", TASKS["gauss1d"].label, ":material/show_chart:",
     "G learns a bell curve from noise. The densities, D's verdict and each update in slow motion. Start here."),
    ("toy2d", TASKS["toy2d"].label, ":material/scatter_plot:",
     "Rings, grids and moons: D's surface over the plane, the push G's loss gives each point, and modes missed."),
    ("mnist", TASKS["mnist"].label, ":material/draw:",
     "Handwritten digits from an MLP, maxout, DCGAN or conditional GAN, judged by a classifier as they form."),
    ("autoencoders", "AE & VAE lab", ":material/compress:",
     "An autoencoder and a VAE on the same digits: reconstructions, the codes, and samples from the prior."),
    ("compare", "Loss lab", ":material/compare_arrows:",
     "One GAN trained once per loss (BCE, Wasserstein with clipping or gradient penalty), side by side."),
    ("sweeps", "Sweeps", ":material/grid_on:",
     "Which settings make a GAN train? One or two settings over a range, several seeds: a map of the result."),
    ("runs", "Runs", ":material/list:",
     "Every run on this server: pause, stop, or overlay their curves."),
    ("saved", "Saved runs", ":material/save:",
     "Checkpoints on disk: resume a run, or open it to explore."),
]


@st.cache_resource
def run_store():
    """(the run store, "") or (None, one line on why there is none): ganlab.store.open_default."""
    from ganlab.store import open_default
    return open_default()


@st.cache_resource
def registry() -> RunRegistry:
    """One registry per server process: runs survive reloads, reruns and other tabs, and with the
    run store (ganlab.store) restarts too."""
    return RunRegistry(max_active=int(os.environ.get("GANLAB_MAX_RUNS", "8")),
                       per_owner=int(os.environ.get("GANLAB_MAX_RUNS_PER_SESSION", "3")), store=run_store()[0])


@st.cache_resource
def sweeps() -> dict:
    """The sweeps this server process started, {id: ganlab.sweeps.Sweep}: like the runs' registry,
    a sweep outlives a reload, a rerun and a second tab. (After a restart the run store has them.)"""
    return {}


def browser_id() -> str:
    """Who is asking: the same for every tab and reload of one browser, different for the next.

    Read from Streamlit's XSRF cookie, which the server set for this browser: its token is
    masked afresh on every page load ("2|mask|masked token|time"), so it is unmasked here.
    Without the cookie (XSRF protection switched off, or AppTest) it is "": such runs belong
    to nobody, and any page may steer them, as the command line's do.
    """
    cookie = st.context.cookies.get("_streamlit_xsrf", "")
    parts = cookie.split("|") if isinstance(cookie, str) else []
    try:
        token = bytes(a ^ b for a, b in zip(bytes.fromhex(parts[1]), bytes.fromhex(parts[2])))
    except (IndexError, ValueError):
        return ""
    return hashlib.sha256(token).hexdigest()[:16] if token else ""


def mine(run: Run | None) -> bool:
    """May this browser use the controls of a run (or a sweep)? Its own, and those nobody owns (the command line)."""
    return run is not None and run.owner in ("", browser_id())


def ask_anyway(key: str, question: str, label: str, on_yes: Callable, args: tuple = ()) -> None:
    """What a page asks before it acts on runs or a sweep another browser started (see mine): the
    question, then "<label> anyway" (on_yes(*args)) or Cancel, which forgets session_state[key]."""
    st.warning(question, icon=":material/group:")
    yes, no = st.columns([1, 5])
    yes.button(f"{label} anyway", key=f"{key}-yes", on_click=on_yes, args=args)
    no.button("Cancel", key=f"{key}-no", on_click=lambda: st.session_state.pop(key, None))


def elsewhere(run: Run | None) -> bool:
    """Does another process train the run (the command line, another server on this store)? This
    server reads its record from the run store as it grows, and cannot pause, step or stop it."""
    return bool(getattr(run, "stored", False)) and run.status in ACTIVE + (CREATED,)


def waiting(run: Run | None) -> int | None:
    """The run's place in the queue for a free slot, or None when it is not waiting."""
    return registry().place(run) if run is not None else None


_frame = threading.local()
TEACHING_KEY = "teaching-mode"
TEACHING_PARAM = "teach"   # ?teach=1 in a page's link turns teaching mode on, and keeps it on through a reload


def page_setup() -> None:
    """The page's title, icon and wide layout; a toolbar without Streamlit's Deploy button,
    which means nothing to a class."""
    st.set_page_config(page_title="ganlab", page_icon="🧪", layout="wide")
    st.set_option("client.toolbarMode", "viewer")


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
        store, problem = run_store()
        if problem:
            st.warning(plain(problem), icon=":material/database_off:")
        else:
            st.caption(f"**Run store:** `{store.root}`. Set `GANLAB_STORE` to change it.")
        teaching_from_url()
        st.toggle("Teaching mode", key=TEACHING_KEY,
                  help="For projecting in class: each lab's settings and notes fold away so the charts start on "
                       "the first screen, chart text is large, and so are the slow-motion captions. "
                       "`?teach=1` in a page's link turns it on.")
        teaching_to_url()
    if teaching():
        # A projector's screen is short (720 px): the page starts under the toolbar, not 6rem below it.
        st.html("<style>[data-testid='stMainBlockContainer'] { padding-top: 3.5rem; }</style>")


def navigation():
    """app.py's navigation: the home page at the root URL, and each of PAGES at a URL of its
    own (/gauss1d, /mnist, ...), so that a link to a lab, with its ?preset= and ?cfg=, opens it."""
    home = st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)
    return st.navigation([home] + [st.Page(f"pages/{name}.py", title=title, icon=icon, url_path=name)
                                   for name, title, icon, _ in PAGES])


def require_frame() -> None:
    """Pages run inside app.py's frame.

    On a fresh server, Streamlit routes a first visit by its legacy pages/
    rules (until some session has called st.navigation): it lists every file
    in pages/ in the sidebar and runs the page file alone. Then declare
    app.py's navigation here, which replaces that list and switches the server
    to it for later runs, and draw the frame.
    """
    if not getattr(_frame, "active", False):
        page_setup()
        navigation()
        if st.context.headers.get("Host") and not st.session_state.get("ganlab-rerouted"):
            # A browser's first visit: run again, now inside app.py's navigation. Drawn here, the
            # page's widgets would carry the legacy route's ids, and the first upload or click
            # would be dropped on the next run. (AppTest, which has no HTTP request and routes
            # every run the legacy way, draws the page here.)
            st.session_state["ganlab-rerouted"] = True
            st.rerun()
        frame()
    _frame.active = False


def attached_run(page: str) -> Run | None:
    """The run named in the URL (?run=ID), if it exists and belongs to this page."""
    run_id = st.query_params.get("run")
    run = registry().get(run_id)
    if run_id and run is None:
        gone("run", run_id)
    return run if run is not None and run.page == page else None


def gone(param: str, value: str) -> None:
    """A link names a run (or comparison) this server no longer has: say so, and drop it from the URL."""
    st.warning(f"The {'comparison' if param == 'group' else 'run'} in this link ({plain(value)}) is not on this "
               "server: a delete on the Runs page (or the store's retention) removed it, or it ran while the "
               "run store was off. Saved checkpoints are on the Saved runs page.", icon=":material/link_off:")
    st.query_params.pop(param, None)


def attach(run: Run | None) -> None:
    if run is None:
        st.query_params.pop("run", None)
    else:
        st.query_params["run"] = run.id


# -- the URL holds the page's settings (?preset=SLUG&cfg=...), so a link reproduces them ----------

def preset_picker(page: str, presets: list, prefix: str):
    """The preset selectbox, its notes, and the settings to start the widgets from.

    Returns (preset, base config). The base is a shared link's settings when the
    page was opened from one, else the preset's; the settings widgets start from
    it afresh whenever it changes (fresh_settings).
    """
    from contextlib import nullcontext

    from ganlab.presets import get_preset
    by_slug = {p.slug: p for p in presets}
    url_config_init(page, by_slug, f"{prefix}-preset")
    # In teaching mode the notes fold into an expander beside the picker, a row saved for the charts.
    picker, notes = st.columns([3, 2], vertical_alignment="bottom") if teaching() else (st, nullcontext())
    slug = picker.selectbox("Preset", list(by_slug), format_func=lambda s: f"{s} — {by_slug[s].title}",
                            key=f"{prefix}-preset")
    preset = get_preset(slug)
    with notes, preset_notes(preset):
        st.caption(preset.about)
        if preset.expect:
            st.warning(preset.expect, icon="⚠️")
    base, tag = url_config(page, preset)
    fresh_settings(f"{page}-settings-from", (slug, tag))
    return preset, base


def folded(label: str, icon: str | None = None):
    """Where notes go: on the page, or in teaching mode folded into an expander titled `label`,
    so that the controls and charts start on a projector's first screen."""
    from contextlib import nullcontext
    return st.expander(label, icon=icon) if teaching() else nullcontext()


def preset_notes(preset):
    """Where a preset's notes go (folded in teaching mode)."""
    return folded("About this preset" + (" (read this first)" if preset.expect else ""),
                  icon=":material/warning:" if preset.expect else ":material/info:")


def url_config_init(page: str, presets: dict, preset_key: str) -> None:
    """Once per session, before the preset selectbox: open the page on the link's preset and settings.

    The link's config is kept in session_state for url_config(). A bad link
    gets a warning, and the page shows the preset's own settings.
    """
    kept = f"{page}-url-config"
    if kept in st.session_state:
        return
    st.session_state[kept] = None
    slug, text = st.query_params.get("preset"), st.query_params.get("cfg")
    if slug is None and text is None:
        return
    if slug not in presets:
        st.warning(f"This link names no preset of this page ({plain(slug or 'none')}); showing the default settings.")
        return
    st.session_state[preset_key] = slug
    if not text:
        return
    try:
        cfg = decode_config(text, presets[slug].config)
    except ConfigError as e:
        st.warning(f"The settings in this link could not be read ({plain(e)}); showing the {slug} preset's own "
                   f"settings.")
        return
    st.session_state[kept] = (slug, cfg, hashlib.sha1(text.encode()).hexdigest()[:8])


def url_config(page: str, preset) -> tuple[Experiment, str]:
    """The settings to draw the widgets with, and a tag that differs per link, so that widgets
    drawn for a link start from its values rather than from what an earlier run of the page
    left in their state (fresh_settings)."""
    kept = st.session_state.get(f"{page}-url-config")
    if kept and kept[0] == preset.slug:
        return kept[1], kept[2] + "-"
    return preset.config, ""


def set_url_config(cfg: Experiment | None, preset) -> None:
    """Write the page's settings into the URL: the preset, and what differs from it."""
    if cfg is None:
        return   # settings out of range: the URL keeps the last good ones
    try:
        text = encode_config(cfg, preset.config) if cfg != preset.config else None
    except ValueError:   # a value JSON cannot hold (NaN)
        return
    for key, value in (("preset", preset.slug), ("cfg", text)):
        if value is None:
            if key in st.query_params:
                del st.query_params[key]
        elif st.query_params.get(key) != value:
            st.query_params[key] = value


class DrawLoad:
    """How long the live charts of every session on this server take to draw.

    Every tab polls its charts, and each redraw holds Python's lock while it builds
    figures: ten tabs redrawing every second can take all of a 2-core server, and its
    clicks then wait. So the interval stretches until drawing takes at most a quarter of
    the server's time: n charts of d seconds each, every T seconds, with T >= 4 * n * d
    (at a half, 2 * n * d, the health endpoint took 0.8 s at p95 with eight runs training).
    """
    MAX_SECONDS = 5.0

    def __init__(self):
        self._lock = threading.Lock()
        self._drawn: dict[tuple, tuple[float, float]] = {}   # (session, chart) -> (seconds, when)

    def record(self, key: tuple, seconds: float) -> None:
        now = time.monotonic()
        with self._lock:
            old = self._drawn.get(key, (seconds, now))[0]
            self._drawn[key] = (0.7 * old + 0.3 * seconds, now)

    def interval(self) -> float:
        now = time.monotonic()
        with self._lock:
            for key in [k for k, (_, when) in self._drawn.items() if now - when > 3 * self.MAX_SECONDS]:
                del self._drawn[key]           # a tab closed, or its run ended
            busy = sum(seconds for seconds, _ in self._drawn.values())
        return min(self.MAX_SECONDS, max(REFRESH_SECONDS, 4 * busy))


@st.cache_resource
def draw_load() -> DrawLoad:
    return DrawLoad()   # one per server process, shared by every session


def polled_alone() -> bool:
    """Whether this script run is a fragment's own poll (run_every), not a whole run of the page."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)


def refresh_while(draw, active) -> None:
    """Redraw draw() while active() holds, every REFRESH_SECONDS or longer on a busy server
    (DrawLoad); once otherwise.

    The fragment polls only while something trains; when that ends, the whole
    page reruns once, so its buttons show the new state, and polling stops.
    """
    polling = active()
    load = draw_load()
    ctx = get_script_run_ctx()
    code = getattr(draw, "__code__", None)   # which chart: where its draw function is written
    key = (ctx.session_id if ctx else "", code.co_filename if code else "", code.co_firstlineno if code else 0)
    every = load.interval() if polling else None

    @st.fragment(run_every=every)
    def _refresh():
        started = time.perf_counter()
        draw()
        if polling:
            load.record(key, time.perf_counter() - started)
            # Only on a poll of its own: within a whole run of the page (a click's answer) the page is
            # being drawn as things are now, and a rerun there would cut that run short.
            if not polled_alone():
                return
            if not active():
                st.rerun()   # everything ended: redraw the whole page once, and stop polling
            elif not 0.5 * every <= load.interval() <= 1.5 * every:
                st.rerun()   # the server got busier (or quieter): poll at the new pace

    _refresh()


# -- settings widgets: each keyed by the config field it sets, so that its error can point at it ---

SECTION_WORDS = {"opt_g": "G optimizer", "opt_d": "D optimizer", "noise": "noise z", "target": "target",
                 "toy2d": "target"}
_drawing = threading.local()   # the settings being drawn: their keys' prefix, and each field's widget


def setting(widget, label: str, field: str, *args, **kwargs):
    """`widget(label, *args, **kwargs)`, keyed by the config field it sets ("opt_g.lr"; with the
    prefix of a page that shows two configs, "cmp:opt_g.lr"), with a place under it where
    build_config shows that field's error. A second widget for one field (the MNIST lab's budget
    in epochs) names itself after a "#": "train.steps#epochs"."""
    value = widget(label, *args, key=getattr(_drawing, "prefix", "") + field, **kwargs)
    drawn = getattr(_drawing, "widgets", None)
    if drawn is not None:
        # widget.__self__ is the container it was called on (st's main one follows `with column:`)
        drawn[field.partition("#")[0]] = (label, widget.__self__.empty(), value is None)
    return value


def fresh_settings(mark: str, drawn_from, prefix: str = "", section: str | None = None,
                   keep: tuple = ()) -> None:
    """Settings widgets keep what was typed into them across reruns, whatever value= says. When
    what they are drawn from changes (another preset, a link, another model: `drawn_from`), forget
    them, so that they start from the new values: all of them, or those of one `section`."""
    if st.session_state.get(mark) == drawn_from:
        return
    st.session_state[mark] = drawn_from
    for key in list(st.session_state):
        field = key[len(prefix):] if isinstance(key, str) and key.startswith(prefix) else ""
        if field.partition(".")[0] in SECTIONS and section in (None, field.partition(".")[0]) and field not in keep:
            del st.session_state[key]


def setting_words(field: str, label: str | None) -> str:
    """A field as the page shows it: "opt_g.lr" with its widget's label -> "G optimizer: learning rate"."""
    section, _, name = field.rpartition(".")
    words = label or name.replace("_", " ")
    return f"{SECTION_WORDS[section]}: {words}" if section in SECTION_WORDS else words


def replace_checked(base: Experiment, problems: list[ConfigError], **sections) -> Experiment:
    """base.replace(**sections), its errors raised together with `problems` the page found while
    drawing the widgets (a typo in a list, a missing upload), so that all of them show at once."""
    try:
        cfg = base.replace(**sections)
    except ConfigError as e:
        raise ConfigErrors(problems + e.errors) from None
    if problems:
        raise ConfigErrors(problems)
    return cfg


def build_config(make, prefix: str = "") -> tuple[Experiment | None, str | None]:
    """Call make() -> Experiment, which draws its widgets with setting(); a bad value becomes a
    message, not a traceback. Every bad field shows at once, under its widget, and in the
    message returned: by its widget's label, then the config field (as a link's cfg= and the
    command line know it)."""
    _drawing.prefix, _drawing.widgets = prefix, {}
    try:
        return make(), None
    except ConfigError as e:
        drawn, under = _drawing.widgets, {}
        for error in e.errors:
            field = _widget_field(error.field)
            _, place, empty = drawn.get(field, (None, None, False))
            if place is not None:
                under.setdefault(field, (place, empty, []))[2].append(plain(error.message))
        for place, empty, messages in under.values():
            # A widget still empty (no file uploaded yet) is asked for, not told it is wrong.
            if empty:
                place.info(" ".join(messages), icon=":material/info:")
            else:
                place.error(" ".join(messages), icon=":material/error:")
        return None, config_problems(e, {field: setting_words(field, label) for field, (label, _, _) in drawn.items()},
                                     "start")
    finally:
        _drawing.prefix, _drawing.widgets = "", None


def _widget_field(field: str) -> str:
    return re.sub(r"\[\d+\]$", "", field)   # target.stds[1]: the stds widget's


def config_problems(error: ConfigError, words: dict[str, str], to: str) -> str:
    """Every bad field of a ConfigError (one, or ConfigErrors' several) in one message, each in the
    words its widget goes by (`words`: config field -> words), then as the config field (as a link's
    cfg= and the command line know it): "Fix these 2 settings to start: ..."."""
    lines = []
    for one in error.errors:
        field = _widget_field(one.field)
        # The field and the message may carry a link's or an upload's text: escaped (plain).
        # Inside a code span nothing renders but a backtick, which would end it.
        lines.append(f"**{plain(words.get(field) or setting_words(field, None))}** "
                     f"(`{one.field.replace('`', '')[:100]}`) {plain(one.message)}")
    if len(lines) == 1:
        return f"Fix this setting to {to}: {lines[0]}"
    return f"Fix these {len(lines)} settings to {to}:\n" + "".join(f"\n- {line}" for line in lines)


def controls(run: Run | None, cfg: Experiment | None, page: str, name: str = "",
             one_network: bool = False) -> Run | None:
    """Start, Pause/Resume, Step (D, G, both) and Stop. Returns the run to show.

    With one_network (an autoencoder), a single Step button makes one update.

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
        except (RunError, ConfigError) as e:   # ConfigError: over this server's budget (cost.check)
            st.session_state[notice_key] = str(e)

    snap = run.snapshot() if run else None
    place = waiting(run)
    others = run is not None and not mine(run)
    remote = elsewhere(run)
    # Another browser's run, or another process's, can be watched here, not steered: Start makes one
    # of this browser's own.
    active = snap is not None and (snap.status in ACTIVE or place is not None) and not others and not remote
    # The pause asked for, not the status: the status changes only once the training thread has
    # seen the request, after these buttons are drawn.
    paused = active and run.paused

    def ask(what):
        return lambda: st.session_state.__setitem__(intent_key, what)

    cols = st.columns([1.1, 1.2, 1, 1, 1, 1])
    cols[0].button("Start", icon=":material/play_arrow:", type="primary", disabled=cfg is None or active,
                   key=f"{page}-start", on_click=ask("start"),
                   help="A run is training: stop it first" if active else "Train a new run with these settings")
    cols[1].button("Resume" if paused else "Pause", icon=":material/play_circle:" if paused else ":material/pause:",
                   disabled=not active, key=f"{page}-pause", on_click=ask("resume" if paused else "pause"))
    can_step = active or cfg is not None
    if one_network:
        cols[2].button("Step", disabled=not can_step, key=f"{page}-step-both", on_click=ask("step-both"),
                       help="One update, then pause")
    else:
        cols[2].button("Step D", disabled=not can_step, key=f"{page}-step-d", on_click=ask("step-d"),
                       help="k discriminator updates, then pause")
        cols[3].button("Step G", disabled=not can_step, key=f"{page}-step-g", on_click=ask("step-g"),
                       help="One generator update, then pause")
        cols[4].button("Step both", disabled=not can_step, key=f"{page}-step-both", on_click=ask("step-both"),
                       help="One full iteration, then pause")
    cols[3 if one_network else 5].button("Stop", icon=":material/stop:", disabled=not active, key=f"{page}-stop",
                                         on_click=ask("stop"))
    if notice_key in st.session_state:
        st.warning(plain(st.session_state.pop(notice_key)))
    if remote:
        st.caption("Another process trains this run (the command line, or another server on this run store): "
                   "this page shows its record as it grows, and only that process can pause, step or stop it. "
                   "Start trains a run of your own.")
    elif others and snap.status in ACTIVE:
        st.caption("Another browser started this run: you can watch it here, and stop or pause it from the "
                   "Runs page. Start trains a run of your own.")
    if place is not None and not others:
        st.info(f"Waiting for a free slot: number {place} in line. It starts by itself when another run "
                f"ends; Stop takes it out of the line.", icon=":material/hourglass_top:")
    return run


def _carry_out(intent: str, run: Run | None, cfg: Experiment | None, page: str, name: str) -> Run | None:
    own = mine(run) and not elsewhere(run)
    active = own and (run.status in ACTIVE or waiting(run) is not None)
    if intent == "start" and cfg is not None and not active:
        run = registry().create(cfg, name=name, page=page, owner=browser_id(), queue=True)
        attach(run)
    elif intent in ("pause", "resume") and active:
        run.pause() if intent == "pause" else run.resume()
    elif intent == "stop" and own:
        run.stop(wait=2.0)
    elif intent.startswith("step-") or intent == "stage":
        if not active:
            if cfg is None:
                return run
            # Stepping starts a paused run at once: past a limit it is refused, not queued.
            run = registry().create(cfg, name=name, page=page, paused=True, owner=browser_id())
            attach(run)
        run.step_stage() if intent == "stage" else run.step_once(intent.removeprefix("step-"))
    return run


def optimizer_inputs(label: str, opt: Optim, section: str) -> dict:
    """An optimizer's fields (section: opt_g or opt_d)."""
    st.markdown(f"**{label}**")
    return {
        "name": setting(st.selectbox, "optimizer", f"{section}.name", OPTIMIZERS, index=OPTIMIZERS.index(opt.name)),
        "lr": setting(st.number_input, "learning rate", f"{section}.lr", value=opt.lr, format="%g", step=1e-4),
        "beta1": setting(st.number_input, "β1 (momentum for SGD)", f"{section}.beta1", value=opt.beta1, step=0.05),
        "beta2": setting(st.number_input, "β2", f"{section}.beta2", value=opt.beta2, step=0.001, format="%.3f"),
        "weight_decay": setting(st.number_input, "weight decay", f"{section}.weight_decay", value=opt.weight_decay,
                                min_value=0.0, step=1e-5, format="%g",
                                help="An L2 penalty on the weights, added to the gradients."),
    }


def loss_inputs(base) -> dict:
    """Loss name, clip value, GP λ, R1 γ and the real label: Loss fields."""
    from ganlab.losses import LOSSES
    return {
        "name": setting(st.selectbox, "loss", "loss.name", list(LOSSES), index=list(LOSSES).index(base.name),
                        format_func=lambda n: LOSSES[n].label),
        "clip": setting(st.number_input, "clip c (WGAN)", "loss.clip", value=base.clip, format="%.3f"),
        "gp_lambda": setting(st.number_input, "GP λ (WGAN-GP)", "loss.gp_lambda", value=base.gp_lambda),
        "r1_gamma": setting(st.number_input, "R1 γ (BCE + R1)", "loss.r1_gamma", value=base.r1_gamma,
                            help="The R1 penalty is γ/2 times D's squared gradient norm on real data."),
        "real_label": setting(st.number_input, "real label (BCE, LSGAN)", "loss.real_label", value=base.real_label,
                              step=0.05, format="%.2f",
                              help="D's target on real data. 0.9 is one-sided label smoothing "
                                   "(Salimans et al. 2016): D is never pushed to be certain."),
    }


def model_picker(task: str, base: Experiment, help: str | None = None):
    """The task's models, from the model registry, shown by their labels: a Model.

    The preset's model keeps the preset's settings. Another model takes its section from that
    model's own preset, or the defaults where it has none (a newly registered model, say), and
    the model's other widgets start afresh from it.
    """
    from ganlab.config import Model
    from ganlab.models import models_for
    from ganlab.presets import presets_for
    labels = {spec.name: spec.label for spec in models_for(task)}
    names = list(labels)
    current = base.model.name
    name = setting(st.selectbox, "model", "model.name", names, index=names.index(current) if current in names else 0,
                   format_func=lambda n: labels[n], help=help)
    fresh_settings(f"{task}-model-settings-from", name, section="model", keep=("model.name",))
    if name == current:
        return base.model
    return next((p.config.model for p in presets_for(task) if p.config.model.name == name), Model(name))


def model_inputs(model, columns: int = 1) -> dict:
    """A widget for each Model field the model's spec names (ganlab.models.Setting), in `columns`
    side by side: the model section, `model`'s fields with those the widgets show as set there."""
    from ganlab.models import model_spec
    settings = model_spec(model.name).settings
    places = st.columns(columns) if columns > 1 else [st.container()]
    values = dataclasses.asdict(model)
    for i, s in enumerate(settings):
        place, value = places[i % len(places)], getattr(model, s.field)
        if isinstance(value, str):
            values[s.field] = setting(place.text_input, s.label, f"model.{s.field}", value, help=s.help)
        else:
            step = type(value)(s.step)   # an int field gets an int step, so the widget returns ints
            values[s.field] = setting(place.number_input, s.label, f"model.{s.field}", value=value, step=step,
                                      help=s.help)
    return values


def toy_train_inputs(train) -> dict:
    """Steps, batch, k, seed, device and the run's switches, for the toy labs: Train fields
    (the others keep `train`'s values)."""
    from ganlab.config import DEVICES
    c1, c2, c3, c4, c5 = st.columns(5)
    return {
        "steps": int(setting(c1.number_input, "steps", "train.steps", value=train.steps, step=500)),
        "batch_size": int(setting(c2.number_input, "batch size", "train.batch_size", value=train.batch_size, step=32)),
        "d_steps": int(setting(c3.number_input, "k (D steps per G step)", "train.d_steps", value=train.d_steps,
                               step=1)),
        "seed": int(setting(c4.number_input, "seed", "train.seed", value=train.seed, step=1)),
        "device": setting(c5.selectbox, "device", "train.device", DEVICES, index=DEVICES.index(train.device)),
        "lr_decay": setting(st.toggle, "Decay learning rates to 2% over the run", "train.lr_decay", train.lr_decay),
        "pause_on_alarm": setting(st.toggle, "Pause when an alarm sounds", "train.pause_on_alarm",
                                  train.pause_on_alarm),
        **speed_inputs(train),
    }


def speed_inputs(train) -> dict:
    """The fast-path switch, and how often the run publishes a snapshot: Train fields."""
    c1, c2 = st.columns(2)
    fast = setting(c1.toggle, "Fast path", "train.fast", train.fast,
                   help="Fused Adam, fewer passes over D and, on a CUDA GPU, the whole iteration replayed "
                        "as one CUDA graph. Off: the plain PyTorch step, to debug or compare.")
    every = setting(c2.number_input, "Publish a snapshot every N steps", "train.snapshot_every",
                    value=train.snapshot_every, step=10,
                    help="Charts and meters update at each snapshot, and the meters cost training "
                         "time. The page's own refresh costs the run nothing.")
    return {"fast": fast, "snapshot_every": int(every)}


def status_line(snap: Snapshot, images: bool = False) -> None:
    color, word = STATUS_WORDS.get(snap.status, ("gray", snap.status))
    run = registry().get(snap.run_id)
    if run is not None:
        # What was asked and not yet seen by the thread: say so now, not at the next refresh.
        if snap.status == "created" and waiting(run) is not None:
            color, word = "orange", "Queued"
        elif snap.status == RUNNING and run.paused:
            color, word = "orange", "Pausing…"
        elif snap.status == PAUSED and not run.paused:
            color, word = "blue", "Resuming…"
    rate = ""
    if snap.status == RUNNING and snap.steps_per_s:
        rate = f" · {rate_text(snap.steps_per_s)} steps/s"
        if images:
            rate += f" · {rate_text(snap.samples_per_s)} images/s"
        left = time_left(snap.step, snap.total_steps, snap.steps_per_s)
        rate += f" · {left}" if left else ""
    ended = run_verdict(run, snap)
    badge = f":{color}-badge[{word}]"
    if ended is not None and ended.headline:   # so that a run far from its target never reads "Finished" alone
        badge += f" :{ended.color}-badge[{ended.headline}]"
    st.markdown(f"{badge} step **{snap.step:,}** of {snap.total_steps:,}{rate}"
                f" · {snap.elapsed:,.1f} s training")
    st.progress(snap.progress)
    if snap.path and not teaching():   # a detail for the curious, not for a class's screen
        st.caption(f"Training path: {snap.path}")
    history = status_history(snap)
    if history and not teaching():
        st.caption(f"Status changes, by step: {history}")
    for alarm in snap.alarms:
        color, icon = ("gray", ":material/schedule:") if alarm.expected else ("red", ":material/warning:")
        st.markdown(f":{color}-badge[{icon} {alarm.kind.replace('_', ' ')}] {plain(alarm.text)}")
    store = registry().store
    problem = store.problem(snap.run_id) if store is not None else None
    problem = problem or getattr(run, "problem", "")    # a stored run's, from before a restart
    if problem:
        st.warning(f"The run store is {plain(problem)}; training goes on.", icon=":material/database_off:")
    if snap.status == "interrupted":
        st.warning(f"Interrupted: {plain(snap.message)}.", icon=":material/power_off:")
    if snap.status == FAILED:
        st.error(f"The run failed: {plain(snap.message)}")
    elif snap.status == DIVERGED:
        st.error(f"The run diverged: {plain(snap.message)}")
    elif ended is not None:
        st.caption(plain(ended.text))
    elif snap.status in (FINISHED, STOPPED) and snap.message:
        st.caption(plain(snap.message.capitalize()) + ".")


HISTORY_SHOWN = 12   # the latest status changes in the line; a run paused a hundred times keeps it short


def status_history(snap: Snapshot) -> str:
    """The run's status changes as the run store recorded them, with the step of each: "training at 0 ·
    paused at 1,200 · training at 1,200 · stopped at 3,000"; "" without a store, or while there is
    only one to tell."""
    store = registry().store
    if store is None:
        return ""
    # Its setting up (ready, starting) is no change anyone made.
    changes = [(step, status) for _, step, status in store.statuses(snap.run_id)
               if status not in (CREATED, STARTING)]
    if changes and changes[-1][1] != snap.status:
        # Newer than the last record: a change since the last flush, or a record whose process is gone
        # (which the store reads as interrupted).
        changes.append((snap.step, snap.status))
    if len(changes) < 2:
        return ""                                   # one status: the badge says it

    def words(status: str) -> str:   # a status from a store file may be anything: shown as text
        return STATUS_WORDS[status][1].lower() if status in STATUS_WORDS else plain(status)

    line = " · ".join(f"{words(status)} at {step:,}" for step, status in changes[-HISTORY_SHOWN:])
    earlier = len(changes) - HISTORY_SHOWN
    return (f"({earlier:,} earlier) " if earlier > 0 else "") + line


def run_verdict(run: Run | None, snap: Snapshot):
    """How the run ended, against its preset's promise (ganlab.verdict); None while it trains."""
    from ganlab.verdict import of_snapshot
    return of_snapshot(run.cfg, snap) if run is not None else None


def digit_meters(snap: Snapshot, quality_figure, prefix: str, view=None) -> bool:
    """The classifier meters' row on an MNIST page: quality over steps, digits covered, the histogram.

    True when it is drawn; until the classifier is ready (it trains beside the run) a caption says so.
    `view`: the reader's view of the curves (curve_view)."""
    import numpy as np
    from ganlab import charts
    fid = snap.meters.get(FID.name)
    if fid is not None and np.isfinite(fid).any():
        c1, c2, c3 = st.columns(3)
        chart(c1, quality_figure(snap.meters, snap.step), f"{prefix}-fid", view, snap)
        chart(c2, charts.mnist_modes_figure(snap.meters, snap.step), f"{prefix}-modes", view, snap)
        chart(c3, charts.digit_histogram_figure(snap.meters), f"{prefix}-hist")
        return True
    if snap.status == "starting":
        st.info("Loading MNIST…")
    elif fid is not None and snap.active:
        classifier_caption(snap.views.get("classifier"))
    return False


def classifier_caption(job: dict | None) -> None:
    """Where the run's meters' classifier stands while the run trains without it: its state
    (ganlab.classifier.ClassifierJob.state) as the run's last probe saw it."""
    if not job:
        return
    where = plain(job["path"])
    if job["failed"]:
        st.caption(f"The quality meters' classifier could not be made ({plain(job['failed'])}); "
                   "the run trains on without them.")
    elif not job["ready"]:
        fraction, words = job["fraction"], job["words"]
        st.caption(f"The quality meters' classifier is not ready yet ({plain(words)}, {fraction:.0%} done): the "
                   f"meters appear here when it is. It trains once, beside the run, and is cached at {where} "
                   f"for every run after.")


@st.cache_resource(show_spinner="Measuring what the meters read on known answers…", max_entries=4)
def _calibration(root_text: str) -> tuple:
    """(the meters, their readings on known answers) for the MNIST under root: computed once per folder."""
    from ganlab.classifier import MnistMeters, calibrate
    meters = MnistMeters.for_data(root_text)   # the classifier is shared with the runs: already trained
    return meters, calibrate(meters)


def meter_calibration(root) -> None:
    """What the MNIST meters read on real digits, on a collapse and on junk, beside a run's meters."""
    from ganlab.classifier import CALIBRATION_CASES, CONFIDENCE
    meters, readings = _calibration(str(root))
    st.caption(f"The quality meters judge {meters.n:,} samples from a fixed z with a small CNN trained on "
               f"real digits and on junk (noise, blobs, shuffled pixels, blank). A sample counts as a digit "
               f"only when the CNN gives it p ≥ {CONFIDENCE:g}; it reads {meters.classifier.accuracy:.1%} of "
               f"held-out real digits so, correctly.")
    # A widget key keeps it open across the live refreshes (a plain expander shuts at each one).
    with st.expander("What the meters read on known answers (calibration)", key="mnist-calibration",
                     on_change="rerun"):
        import pandas as pd
        from ganlab.meters import meter
        columns = {meter(name).words_for("mnist"): name for name in (MODES_COVERED.name, CONFIDENT.name, FID.name)}
        rows = [{"images": CALIBRATION_CASES[case], **{column: r[name] for column, name in columns.items()}}
                for case, r in readings.items()]
        frame = pd.DataFrame(rows).set_index("images")
        st.dataframe(meters_table(frame, columns), placeholder=MISSING)
        st.caption(f"Each row is {meters.n:,} images. Real digits are held out from the CNN's training and "
                   "from the Fréchet reference, so their distance is the floor a perfect G would reach. "
                   "Moved by up to 2 px, the same digits read lower: the meters judge where a digit sits "
                   "as well as its strokes. Half-formed samples read higher than a person would: at step 400 "
                   "of mnist-dcgan (seed 101), 40% read as confident digits where a person could name about "
                   "1 in 8 of them, so trust the confident share once the grid shows digits.")
        # A share read on n samples is binomial: its standard error says which differences are real.
        spread = {p: 100 * math.sqrt(p * (1 - p) / meters.n) for p in (0.7, 0.8)}
        st.caption(f"A confident share is a count over {meters.n:,} samples, so one reading is uncertain by "
                   f"about ±{spread[0.7]:.1f} points at 70% and ±{spread[0.8]:.1f} at 80% (one standard "
                   "error): 20 batches of z through one trained mnist-dcgan G read with a standard "
                   "deviation of 1.1 and 1.4 points (two seeds). Two runs a point or two apart are not "
                   "told apart by one reading.")


# -- charts: the reader's view of the curves (as in TensorBoard), and every chart's data as CSV ----

def curve_view(prefix: str, wall: bool = True, narrow: bool = False):
    """Smoothing, log y, and step or wall time on x, for a page's curves: a chartview.CurveView.
    Without `wall` (a checkpoint's curves, which keep no clock), x is the step. `narrow`: drawn in
    a column about a third of the page wide or less, the smoothing slider takes a row of its own, so
    that the other two keep their words whole."""
    from ganlab.chartview import MAX_SMOOTHING, X_AXES, CurveView
    if narrow:
        c1, (c2, c3) = st.container(), st.columns([1, 1.4], vertical_alignment="bottom")
    else:
        c1, c2, c3 = st.columns([2, 1, 1.4], vertical_alignment="bottom")
    weight = c1.slider("Smoothing", 0.0, MAX_SMOOTHING, CurveView.smoothing, 0.01, key=f"{prefix}-smoothing",
                       help="TensorBoard's exponential moving average, over the per-step curves (losses, D's "
                            "outputs, gradient norms); the raw values stay faint behind. 0 draws them raw. "
                            "Meters are drawn as measured.")
    log_y = c2.toggle("Log y", key=f"{prefix}-log-y",
                      help="A log scale, so that one spike does not flatten the rest. Values at or below 0 "
                           "(a Wasserstein loss, say) are not drawn on it.")
    x = c3.segmented_control("x axis", list(X_AXES), format_func=X_AXES.get, default="step", required=True,
                             key=f"{prefix}-x", help="Wall time counts seconds from the run's first step, "
                                                     "pauses included.") if wall else "step"
    return CurveView(float(weight), bool(log_y), x or "step")


def chart(where, fig, key: str, view=None, snap: Snapshot | None = None) -> None:
    """Draw a chart in `where` (st, or a column) with a CSV of its data below it; with `view`, the
    reader's view of its curves (see curve_view), the run's clock from `snap` for wall time."""
    from ganlab.chartview import apply_view
    if view is not None:
        if view.x == "wall" and snap is not None:   # a shared step range (x_max) means nothing in seconds
            fig.for_each_xaxis(lambda axis: axis.update(range=None) if axis.title.text == "step" else None)
        apply_view(fig, view, snap.wall_seconds if snap is not None else None)
    where.plotly_chart(projected(fig), key=key)   # large chart text in teaching mode
    csv_download(where, fig, key)


def csv_download(where, fig, key: str) -> None:
    """A small button that downloads the figure's data as CSV (made only when it is pressed)."""
    from ganlab.chartview import figure_csv
    where.download_button("CSV", lambda: figure_csv(fig), file_name=f"{key}.csv", mime="text/csv",
                          key=f"{key}-csv", on_click="ignore", icon=":material/download:", type="tertiary",
                          help="This chart's data, one row per point")


def live(draw, run: Run | None) -> None:
    """Redraw `draw(snapshot)` every REFRESH_SECONDS while the run trains; once otherwise."""
    if run is None:
        st.info(("Press" if teaching() else "Pick settings and press") +   # teaching mode hides the settings
                " **Start**, or **Step** to go one update at a time.")
        return
    refresh_while(lambda: draw(run.snapshot()), lambda: run.snapshot().status in ACTIVE or waiting(run) is not None)
    if getattr(run, "stored", False):
        stored_run_panel(run)


def stored_run_panel(run) -> None:
    """A run read back from the run store: it trains on from its latest checkpoint, or from the state
    the store kept of its models when it ended (saved as a checkpoint first, so Saved runs lists it)."""
    if elsewhere(run):
        return   # the controls say that another process trains it
    from ganlab import checkpoints
    saves = [s for s in checkpoints.list_saved() if not s.error and f"-{run.id}-step" in s.folder.name]
    latest = max(saves, key=lambda s: s.step) if saves else None
    if latest is None and not run.has_model:
        st.caption("A record from the run store: its charts as they were last recorded. It cannot train on "
                   "(the store kept no weights of it, and it has no checkpoint); Start trains a new run.")
        return
    step = latest.step if latest is not None else run.step
    st.caption("A record from the run store. " + (f"Its checkpoint at step {step:,} can train on "
               if latest is not None else f"The store kept its models as they were at step {step:,}: they can "
               f"train on ") + "(the Saved runs page sets how far).")
    if st.button(f"Resume from step {step:,}", icon=":material/play_arrow:", key=f"stored-resume-{run.id}"):
        try:
            ckpt = checkpoints.load(latest.folder if latest is not None else checkpoints.save(run))
            steps = ckpt.cfg.train.steps if ckpt.cfg.train.steps > ckpt.step else 2 * ckpt.step   # as Saved runs
            new = registry().create(ckpt.cfg.replace(train={"steps": steps}), name=ckpt.name, page=ckpt.page,
                                    resume=ckpt, owner=browser_id())
        except (checkpoints.CheckpointError, RunError, ConfigError) as e:
            st.warning(plain(e))
        else:
            st.switch_page(f"pages/{ckpt.page}.py", query_params={"run": new.id})


# What a table shows where a value is missing (a FID for a 1D run, say), never "None". Pass it to
# st.dataframe as placeholder=MISSING as well: the browser draws a missing number as "None" whatever
# a Styler's na_rep says.
MISSING = "—"


def meters_table(frame, columns, formats: dict | None = None):
    """A table for st.dataframe(..., placeholder=MISSING) with each meter column in its meter's
    format (ganlab.meters), and a dash where a meter does not apply to a run.

    columns: meter names that head their own columns, or {column header: meter name}.
    All formats go in one Styler.format call: a second call resets the columns it does not name.
    """
    from ganlab.meters import meter
    named = columns if isinstance(columns, dict) else {name: name for name in columns}
    meter_formats = {column: meter(name).fmt for column, name in named.items() if column in frame}
    return frame.style.format({**meter_formats, **(formats or {})}, na_rep=MISSING)


def mnist_runs_table(run: Run | None, heading: str, caption: str, key: str) -> None:
    """Every MNIST run's latest meters, GANs, AEs and VAEs, kept fresh while `run` trains."""
    import pandas as pd

    from ganlab.families import family_table, table_columns

    def draw():
        rows = family_table(registry().list())
        if rows:
            st.subheader(heading)
            st.caption(caption)
            st.dataframe(meters_table(pd.DataFrame(rows), table_columns()), hide_index=True, key=key,
                         placeholder=MISSING)

    refresh_while(draw, lambda: run is not None and (run.snapshot().status in ACTIVE or waiting(run) is not None))


def checkpoint_panel(run: Run | None) -> None:
    """"Save & download": save the run as a checkpoint folder, download its files or a training script."""
    if run is None:
        return
    from pathlib import Path

    from ganlab import checkpoints, export
    key = f"ckpt-{run.id}"
    with st.expander("Save & download", icon=":material/save:"):
        if st.button("Save a checkpoint", icon=":material/save:", key=key + "-save", disabled=not run.has_model,
                     help=f"Weights, optimizers, config and curves, into {checkpoints.saves_root().resolve()}. "
                          f"Resume or explore it on the Saved runs page."):
            try:
                st.session_state[key] = str(checkpoints.save(run))
            except checkpoints.CheckpointError as e:
                st.error(f"Could not save: {plain(e)}")
        every = st.number_input("Save automatically every N steps (0: never)", min_value=0, step=100,
                                value=run.cfg.train.save_every, key=key + "-every",
                                help=f"Into {checkpoints.saves_root().resolve()}; the run keeps its latest "
                                     f"{checkpoints.KEEP_AUTOSAVES} automatic saves.")
        if every != run.cfg.train.save_every:
            run.set_save_every(int(every))
        folder = Path(st.session_state.get(key, ""))
        if folder.name and (folder / "config.json").is_file():
            st.caption(f"Saved at step {checkpoints.summary(folder).step:,} in `{folder}`.")
            files = [name for name in checkpoints.FILES if (folder / name).is_file()]
            cols = st.columns(len(files) + 1)
            for col, name in zip(cols, files):
                # Deferred (a callable): the bytes are read only when the button is pressed.
                col.download_button(name, lambda path=folder / name: path.read_bytes(), file_name=name,
                                    key=f"{key}-{name}", on_click="ignore")
            cols[-1].download_button("all (zip)", lambda: checkpoints.zip_folder(folder),
                                     file_name=f"{folder.name}.zip", mime="application/zip",
                                     key=key + "-zip", on_click="ignore", icon=":material/folder_zip:")
        try:
            export.check(run.cfg)
        except export.ExportError as e:
            st.caption(f"No training script for this run: {plain(e)}.")
        else:
            st.download_button("Training script (PyTorch, no ganlab needed)",
                               lambda: export.export_script(run.cfg, run.name), icon=":material/code:",
                               file_name=f"{checkpoints.safe_name(run.name)}.py", mime="text/x-python",
                               key=key + "-script", on_click="ignore")


# -- teaching: a mode for projecting in class, slow motion, and changes while training -----------

def teaching() -> bool:
    """Whether teaching mode (the sidebar toggle) is on."""
    return bool(st.session_state.get(TEACHING_KEY, False))


def teaching_from_url() -> None:
    """A new session (a link, a reload) starts in teaching mode when the URL says ?teach=1.

    Only before the toggle has a value: after that the toggle decides, and teaching_to_url()
    writes its value into the URL.
    """
    if TEACHING_KEY not in st.session_state and TEACHING_PARAM in st.query_params:
        st.session_state[TEACHING_KEY] = st.query_params[TEACHING_PARAM].strip().lower() in ("1", "true", "on", "yes")


def teaching_to_url() -> None:
    """Keep ?teach=1 in the URL while teaching mode is on (a page switch drops it), none while off."""
    if teaching():
        if st.query_params.get(TEACHING_PARAM) != "1":
            st.query_params[TEACHING_PARAM] = "1"
    elif TEACHING_PARAM in st.query_params:
        del st.query_params[TEACHING_PARAM]


def projected(fig):
    """The figure as a page shows it: in teaching mode, with text large enough for a projector."""
    from ganlab.charts import projector_fonts
    return projector_fonts(fig) if teaching() else fig


def hidden_when(hide: bool):
    """A container for widgets that must keep their values while hidden (teaching mode).

    Hidden, they are still drawn on this run, so Streamlit keeps their state,
    and then removed from the page.
    """
    from contextlib import contextmanager, nullcontext

    @contextmanager
    def _hidden():
        slot = st.empty()
        with slot.container():
            yield
        slot.empty()

    return _hidden() if hide else nullcontext()


def settings_panel(make, subject, *, loss: bool = True, optim: bool = True,
                   prefix: str = "") -> tuple[Experiment | None, str | None]:
    """The page's settings, drawn by make() -> Experiment (see build_config; `prefix` goes before
    their keys, on a page that shows two configs).

    In teaching mode they are hidden, keeping their values, and one line says what they
    are: `subject(cfg)` names what is learnt, or what learns ("**Target** N(4, 1.25²)");
    `loss`: whether to name the loss (not in the Loss lab, where each run has its own);
    `optim`: whether to name k and the learning rates (not where each loss brings its own).
    """
    hide = teaching()
    with hidden_when(hide):
        cfg, problem = build_config(make, prefix)
    if hide and cfg is not None:
        from ganlab.families import family_of
        from ganlab.losses import LOSSES
        parts = [subject(cfg), f"**{cfg.train.steps:,} steps**", f"seed {cfg.train.seed}"]
        if family_of(cfg) == "gan":
            if optim:
                parts.append(f"k = {cfg.train.d_steps}")
            if loss:
                parts.append(LOSSES[cfg.loss.name].label)
            if optim:
                parts.append(f"lr G {cfg.opt_g.lr:g}, D {cfg.opt_d.lr:g}")
        else:
            parts.append(f"lr {cfg.opt_g.lr:g}")
        st.markdown(" · ".join(parts) + " · *turn teaching mode off to change them*")
    return cfg, problem


def slow_motion_button(run: Run | None, cfg: Experiment | None, page: str) -> None:
    """Slow motion: each click shows one stage of an update (a first click starts a paused run)."""
    snap = run.snapshot() if run else None
    active = snap is not None and snap.status in ACTIVE
    st.button("Next stage (slow motion)", icon=":material/slow_motion_video:", key=f"{page}-stage",
              disabled=not (active or cfg is not None),
              on_click=lambda: st.session_state.__setitem__(f"{page}-intent", "stage"),
              help="Show one stage of the next update, then wait: sample, D's predictions, D's loss, D's update, "
                   "G's loss and gradients, G's update. Any other control finishes the update first.")


def stage_caption(stage: dict) -> None:
    """The slow-motion stage's title and caption; bigger in teaching mode."""
    import html
    head = f"Stage {stage['number']} of 6: {stage['title']}"
    if teaching():
        st.markdown(f"### {head}")
        st.markdown(f"<p style='font-size:1.45rem;line-height:1.4'>{html.escape(stage['caption'], quote=False)}</p>",
                    unsafe_allow_html=True)
    else:
        st.markdown(f"**{head}.** {stage['caption']}")


# The settings a run can change while it trains (ganlab.teach.CHANGEABLE): config field -> label.
CHANGE_LABELS = {"opt_g.lr": "G learning rate", "opt_d.lr": "D learning rate",
                 "train.d_steps": "k (D steps per G step)", "loss.name": "loss"}


def change_panel(run: Run | None, page: str) -> None:
    """Learning rates, k and the loss of the run in training, changed between two steps."""
    if run is None or run.status not in ACTIVE or not mine(run) or elsewhere(run):   # only watched here
        return
    from ganlab.losses import LOSSES
    cfg, key = run.cfg, f"{page}-change-{run.id}-"   # per run: a new run starts from its own values
    # Closed until asked, in teaching mode too: open, it would push the charts off a projector's
    # screen. Its key keeps it open across reruns once someone opens it.
    with st.expander("Change while training", icon=":material/tune:", key=f"{page}-change-open",
                     on_change="rerun"):
        c1, c2, c3, c4 = st.columns([1, 1, 1, 2])   # the loss's name is long: "BCE, non-saturating G loss"
        words = CHANGE_LABELS
        lr_g = c1.number_input(words["opt_g.lr"], value=cfg.opt_g.lr, format="%g", step=1e-4, key=key + "lr-g")
        lr_d = c2.number_input(words["opt_d.lr"], value=cfg.opt_d.lr, format="%g", step=1e-4, key=key + "lr-d")
        k = c3.number_input(words["train.d_steps"], value=cfg.train.d_steps, step=1, key=key + "k")
        names = list(LOSSES)
        loss = c4.selectbox(words["loss.name"], names, index=names.index(cfg.loss.name), key=key + "loss",
                            format_func=lambda n: LOSSES[n].label)
        if st.button("Apply", key=key + "apply", help="Takes effect before the next step; the run goes on"):
            try:
                lines = run.reconfigure(lr_g=float(lr_g), lr_d=float(lr_d), d_steps=int(k), loss=loss)
            except ConfigError as e:   # every bad value at once, each by its widget's label
                st.error(config_problems(e, CHANGE_LABELS, "apply the change"), icon=":material/error:")
            except RunError as e:
                st.warning(plain(e))
            else:
                st.success("From the next step: " + "; ".join(lines) if lines else "Nothing to change.")
        changes = [text for _, kind, text in run.snapshot().events if kind == "change"]
        if changes:
            st.caption("Changes so far: " + " · ".join(plain(c) for c in changes[-6:]))
