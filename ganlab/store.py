"""The run store: every run recorded as it trains, in one folder on disk, opened again after a restart.

    <store>/runs.sqlite          the runs, their curves, meters, views, events and sample grids (sqlite3, WAL)
    <store>/<name>-<id>/         each run's TensorBoard event files: `tensorboard --logdir <store>`

The folder is GANLAB_STORE, or ./store. A Recorder thread per process copies each watched run's
latest Snapshot into the database about once a second (FLUSH_SECONDS): the training thread never
waits on the disk, and a snapshot is immutable, so reading it needs no lock. The history written
is the snapshot's own, which ganlab.snapshots.History bounds (train.history_cap rows, the sample
grids' ring train.image_history), so a run of a million steps is as small as one of a few thousand.

Several processes (a server and CLI runs) share one store: sqlite's locking, a busy timeout and
one short transaction per run per flush. Each running row carries its process's pid, the pid's
start time and a heartbeat; a row whose process is gone (killed with -9, a crash) reads as
"interrupted" at the last step recorded.

Retention (GANLAB_STORE_KEEP_RUNS, GANLAB_STORE_KEEP_DAYS) deletes the oldest ended runs when a store
is opened and whenever a run ends, so a store that CLI runs filled is trimmed at the next start too.

A store that cannot be opened (not a database, another program's database, a newer schema) is
refused with a StoreError naming the file: the caller goes on without one, and nothing is deleted.
A write that fails while recording (a full disk) ends that run's recording, never its training:
the run gets an event, and problem(run_id) says why for the page.
"""
from __future__ import annotations

import atexit
import collections
import collections.abc
import io
import json
import logging
import math
import os
import shutil
import socket
import sqlite3
import threading
import time
import weakref
from pathlib import Path

import numpy as np

from ganlab.snapshots import ACTIVE, CREATED, ENDED, Snapshot

log = logging.getLogger(__name__)

STORE_ENV = "GANLAB_STORE"
KEEP_RUNS_ENV = "GANLAB_STORE_KEEP_RUNS"   # keep the newest N ended runs (0: no limit)
KEEP_DAYS_ENV = "GANLAB_STORE_KEEP_DAYS"   # keep ended runs younger than D days (0: no limit)
KEEP_RUNS_DEFAULT = 1000
DB_NAME = "runs.sqlite"
APPLICATION_ID = 0x67616E6C                # "ganl": marks the file as a ganlab store
SCHEMA_VERSION = 2        # 2: the sweep tables (ganlab.sweeps)
FLUSH_SECONDS = 1.0       # how often a watched run's latest snapshot is written
BEAT_SECONDS = 5.0        # how often a process says its running rows are still alive
STALE_SECONDS = 60.0      # a heartbeat this old, from a process we cannot check, means it is gone
BUSY_MS = 10_000          # wait this long for another process's transaction
TB_ROWS_PER_FLUSH = 10    # TensorBoard rows per flush, evenly spread: a fast 1D run makes thousands a second
TB_IMAGES = 100           # sample grids per run in TensorBoard, evenly over the budget
TB_FLUSH_SECONDS = 10
STATE_FILE = "weights.pt"   # an ended run's trainer state, in its folder: a checkpoint's weights.pt
INTERRUPTED = "interrupted"
STORE_EVENT = "store"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, page TEXT NOT NULL, preset TEXT NOT NULL, grp TEXT NOT NULL,
    task TEXT NOT NULL, model TEXT NOT NULL, loss TEXT NOT NULL, device TEXT NOT NULL, config TEXT NOT NULL,
    status TEXT NOT NULL, message TEXT NOT NULL, step INTEGER NOT NULL, budget INTEGER NOT NULL,
    created REAL NOT NULL, started REAL, ended REAL, updated REAL NOT NULL, elapsed REAL NOT NULL,
    steps_per_s REAL NOT NULL, latest TEXT NOT NULL,
    pid INTEGER NOT NULL, pid_start TEXT NOT NULL, host TEXT NOT NULL, beat REAL NOT NULL, problem TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created);
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    metrics BLOB, meters BLOB, views BLOB, events TEXT NOT NULL, alarms TEXT NOT NULL, statuses TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS grids (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, step INTEGER NOT NULL, png BLOB NOT NULL,
    PRIMARY KEY (run_id, step)
);
"""

# Version 2: sweeps (ganlab.sweeps). A sweep's row says how it stands; each trial's row holds its settings,
# its status, its final meters and the curve it reported. A running sweep's row carries its process's
# pid and heartbeat as a run's does, and `stop` lets another process (a restarted server) ask it to stop.
SWEEP_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY, created REAL NOT NULL, preset TEXT NOT NULL, spec TEXT NOT NULL,
    status TEXT NOT NULL, message TEXT NOT NULL, done INTEGER NOT NULL, total INTEGER NOT NULL,
    ended REAL, updated REAL NOT NULL, stop INTEGER NOT NULL DEFAULT 0,
    pid INTEGER NOT NULL, pid_start TEXT NOT NULL, host TEXT NOT NULL, beat REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sweeps_created ON sweeps(created);
CREATE TABLE IF NOT EXISTS sweep_trials (
    sweep_id TEXT NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE, trial INTEGER NOT NULL,
    row TEXT NOT NULL, curves BLOB, PRIMARY KEY (sweep_id, trial)
);
"""
MIGRATIONS = {2: SWEEP_SCHEMA}   # version -> the statements that bring a store of the version before up to it


class StoreError(RuntimeError):
    """The store cannot be used: one line naming the file and what is wrong with it."""


def store_root() -> Path:
    """Where the store is: GANLAB_STORE, or ./store (beside ./runs, the saves)."""
    return Path(os.environ.get(STORE_ENV, "store")).expanduser()


def retention() -> tuple[int, float]:
    """(keep the newest N ended runs, keep ended runs younger than D days); 0 is no limit."""
    def number(name, default, kind):
        try:
            return max(kind(os.environ.get(name, default)), 0)
        except ValueError:
            log.warning("%s=%r is not a number; using %s", name, os.environ.get(name), default)
            return kind(default)
    return number(KEEP_RUNS_ENV, KEEP_RUNS_DEFAULT, int), number(KEEP_DAYS_ENV, 0, float)


# -- this process, as other processes see it --------------------------------------------------------

HOST = socket.gethostname()


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" where /proc cannot say): a pid reused
    by a new process has another."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return ""


PID, PID_START = os.getpid(), _process_start(os.getpid())


def _process_gone(pid: int, pid_start: str, host: str, beat: float) -> bool:
    """Whether the process that wrote a running row has ended."""
    if host == HOST:
        if pid == PID and pid_start == PID_START:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass                        # alive, another user's
        if pid_start and _process_start(pid):
            return _process_start(pid) != pid_start
    return time.time() - beat > STALE_SECONDS


# -- encoding: arrays and plain values, never pickle (a store file may come from anywhere) -------------

def _pack_arrays(arrays: dict, extra: dict | None = None) -> bytes:
    buf = io.BytesIO()
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    if extra:
        payload["__json__"] = np.frombuffer(json.dumps(extra).encode(), dtype=np.uint8)
    np.savez(buf, **payload)   # compressing float64 curves saved little and cost the recorder time
    return buf.getvalue()


def _unpack_arrays(blob: bytes | None) -> tuple[dict, dict]:
    if not blob:
        return {}, {}
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "__json__"}
        extra = json.loads(z["__json__"].tobytes()) if "__json__" in z.files else {}
    return arrays, extra


def _pack_views(views: dict) -> bytes:
    """A probe's views: numpy arrays as arrays, everything JSON can hold as JSON; the rest is left out
    (the slow-motion stage, which belongs to a live run)."""
    arrays, plain = {}, {}
    for key, value in views.items():
        if key == "stage":
            continue
        if isinstance(value, np.ndarray) and value.dtype != object:
            arrays[key] = value
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        plain[key] = value
    return _pack_arrays(arrays, plain)


def _png(grid: np.ndarray) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(grid, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def _from_png(data: bytes) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def _finite_or_none(value):
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def preset_of(name: str) -> str:
    """The preset a run was started from: pages and the CLI name a run after its preset's slug
    (the Loss lab as "slug · loss")."""
    from ganlab.presets import PRESETS
    slug = name.split(" · ")[0].strip()
    return slug if slug in PRESETS else ""


# -- the store --------------------------------------------------------------------------------------

class Store:
    """One folder's run store. Safe to use from any thread; its connections are per thread."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else store_root()
        self.path = self.root / DB_NAME
        self._local = threading.local()
        self._lock = threading.Lock()
        self._watched: dict[str, _Tracked] = {}
        self._problems: dict[str, str] = {}          # run id -> why its recording stopped
        self._cache: collections.OrderedDict = collections.OrderedDict()   # (id, updated) -> StoredRun
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._open()
        _STORES.add(self)
        self._apply_retention()   # runs that ended in other processes (the CLI) since the store was last trimmed

    # -- opening ---------------------------------------------------------------------------------
    def _open(self) -> None:
        """Create the store, or check that the file is one: StoreError (naming the file) if not."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            db = self._db()
            # One transaction: another process may be making the same new store at this moment.
            with db:
                db.execute("BEGIN IMMEDIATE")
                app = db.execute("PRAGMA application_id").fetchone()[0]
                version = db.execute("PRAGMA user_version").fetchone()[0]
                tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if app == 0 and version == 0 and tables == 0:       # new: make it ours
                    for statement in filter(str.strip, (SCHEMA + SWEEP_SCHEMA).split(";")):
                        db.execute(statement)
                    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                elif app != APPLICATION_ID:
                    raise StoreError(f"{self.path} is another program's SQLite database, not a ganlab store")
                elif version > SCHEMA_VERSION:
                    raise StoreError(f"{self.path} was written by a newer ganlab (store version {version})")
                else:   # an older store: add what each later version brought, in the same transaction
                    for step in range(version + 1, SCHEMA_VERSION + 1):
                        for statement in filter(str.strip, MIGRATIONS[step].split(";")):
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("SELECT count(*) FROM runs").fetchone()
        except StoreError:
            self._forget_connection()
            raise
        except (sqlite3.Error, OSError) as e:
            self._forget_connection()
            raise StoreError(f"{self.path} cannot be used as the run store: {e}") from e

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None,
                                 check_same_thread=True)
            db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA synchronous = NORMAL")    # WAL: a power cut may lose the last flush, never the file
            self._local.db = db
        return db

    def _forget_connection(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- recording ------------------------------------------------------------------------------
    def watch(self, run) -> None:
        """Record `run` from now until it ends (a ganlab.runs.Run; the Recorder thread does the writing)."""
        run.store = self     # it keeps the run's state once the run ends (Run.state_copy)
        with self._lock:
            self._watched[run.id] = _Tracked(run)
            if self._thread is None:
                self._thread = threading.Thread(target=self._record_loop, name="ganlab-store", daemon=True)
                self._thread.start()
        self._wake.set()

    def problem(self, run_id: str) -> str | None:
        """Why recording this run stopped (a full disk), or None while it records."""
        return self._problems.get(run_id)

    def flush(self, timeout: float = 10.0) -> None:
        """Write every watched run's latest snapshot now, from this thread (tests, exit)."""
        self._write_round(time.monotonic() + timeout)

    def close(self) -> None:
        """Write what is left and stop recording (at exit)."""
        self.flush()
        with self._lock:
            self._watched.clear()
        self._wake.set()

    def _record_loop(self) -> None:
        while True:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            self._write_round()
            with self._lock:
                if not self._watched:
                    self._thread = None
                    return

    def _write_round(self, deadline: float | None = None) -> None:
        with self._lock:
            tracked = list(self._watched.values())
        now = time.time()
        for t in tracked:
            with t.lock:   # one writer per run at a time: the Recorder, or flush() from another thread
                if t.done:
                    continue
                alive = t.run.alive
                snap = t.run.snapshot()
                ended = snap.status in ENDED and not alive
                try:
                    if snap is not t.written:
                        self._write(t, snap, now)
                        t.written, t.beat = snap, now
                    elif now - t.beat > BEAT_SECONDS:   # paused, or between two slow snapshots: still here
                        with self._db() as db:
                            db.execute("UPDATE runs SET beat=? WHERE id=?", (now, t.run.id))
                        t.beat = now
                except Exception as e:  # noqa: BLE001 - a full disk, or any fault of ours: recording stops, training never
                    self._stop_recording(t, snap, e)
                    continue
                if ended:
                    t.done = True
                    t.close_tensorboard()
            if ended:
                with self._lock:
                    self._watched.pop(t.run.id, None)
                self._apply_retention()
            if deadline is not None and time.monotonic() > deadline:
                return

    def _write(self, t: "_Tracked", snap: Snapshot, now: float) -> None:
        """One run's latest snapshot: its row, its record and its new grids, in one short transaction."""
        run = t.run
        new_grids = [(s, g) for s, g in snap.images if s > t.last_grid]
        pngs = [(run.id, s, _png(g)) for s, g in new_grids]          # encoded before the transaction
        if snap.status != (t.statuses[-1][2] if t.statuses else None):
            t.statuses.append((now, snap.step, snap.status))
        latest = {name: _finite_or_none(snap.latest(name)) for name in _summary_meters()}
        metrics = _pack_arrays(snap.metrics) if snap.metrics else None
        meters = _pack_arrays(snap.meters) if snap.meters else None
        views = _pack_views(snap.views) if snap.views else None
        events = json.dumps([list(e) for e in snap.events])
        sounding = json.dumps([[a.kind, a.step, a.text] for a in snap.alarms])
        cfg = run.cfg
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO runs VALUES (:id,:name,:page,:preset,:grp,:task,:model,:loss,:device,:config,:status,"
                ":message,:step,:budget,:created,:started,:ended,:updated,:elapsed,:sps,:latest,:pid,:pid_start,"
                ":host,:beat,'') ON CONFLICT(id) DO UPDATE SET name=:name, device=:device, config=:config, "
                "status=:status, message=:message, step=:step, budget=:budget, started=:started, ended=:ended, "
                "updated=:updated, elapsed=:elapsed, steps_per_s=:sps, latest=:latest, beat=:beat",
                {"id": run.id, "name": run.name, "page": run.page, "preset": t.preset,
                 "grp": run.lockstep.group if getattr(run.lockstep, "group", None) else "",
                 "task": cfg.task, "model": cfg.model.name, "loss": cfg.loss.name, "device": run.device,
                 "config": json.dumps(cfg.to_dict()), "status": snap.status, "message": snap.message,
                 "step": snap.step, "budget": snap.total_steps, "created": run.created, "started": run.started,
                 "ended": run.ended, "updated": now, "elapsed": snap.elapsed, "sps": snap.steps_per_s,
                 "latest": json.dumps(latest), "pid": PID, "pid_start": PID_START, "host": HOST, "beat": now})
            db.execute("INSERT OR REPLACE INTO records VALUES (?,?,?,?,?,?,?)",
                       (run.id, metrics, meters, views, events, sounding, json.dumps(t.statuses[-200:])))
            if pngs:
                db.executemany("INSERT OR REPLACE INTO grids VALUES (?,?,?)", pngs)
                # The ring the run keeps in memory, and no more.
                db.execute("DELETE FROM grids WHERE run_id=? AND step < ?", (run.id, snap.images[0][0]))
        if new_grids:
            t.last_grid = new_grids[-1][0]
        t.tensorboard(self.root, snap, new_grids)

    def _stop_recording(self, t: "_Tracked", snap: Snapshot, error: Exception) -> None:
        text = f"recording stopped at step {snap.step:,}: {error}"
        log.warning("run %s: %s", t.run.id, text)
        self._problems[t.run.id] = text
        t.done = True
        t.close_tensorboard()
        # The run's thread owns its events; a deque's append is atomic, and the next snapshot shows it.
        t.run._publisher.events.append((snap.step, STORE_EVENT, text))
        with self._lock:
            self._watched.pop(t.run.id, None)
        try:
            with self._db() as db:   # say so in the store too, when it still takes a small write
                db.execute("UPDATE runs SET problem=? WHERE id=?", (text, t.run.id))
        except sqlite3.Error:
            pass

    # -- reading --------------------------------------------------------------------------------
    def rows(self, run_id: str | None = None) -> list[dict]:
        """Every stored run's row (or run_id's), newest first; a running row whose process is gone reads
        as interrupted."""
        db = self._db()
        cur = db.execute("SELECT * FROM runs ORDER BY created DESC") if run_id is None else \
            db.execute("SELECT * FROM runs WHERE id=?", (run_id,))
        names = [c[0] for c in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        with self._lock:
            mine = set(self._watched)
        for row in rows:
            if row["status"] in ACTIVE + (CREATED,) and row["id"] not in mine and \
                    _process_gone(row["pid"], row["pid_start"], row["host"], row["beat"]):
                row["status"] = INTERRUPTED
                row["message"] = (f"the process recording it ended without a word (killed, or a crash) at step "
                                  f"{row['step']:,} or soon after; the record ends there")
        return rows

    def stored_runs(self, exclude=()) -> list["StoredRun"]:
        """A StoredRun for each stored run not in `exclude` (the ids this process holds live), newest first."""
        out = []
        for row in self.rows():
            if row["id"] in exclude:
                continue
            key = (row["id"], row["updated"], row["status"])
            stored = self._cache.get(key)
            if stored is None:
                stored = StoredRun(self, row)
                self._cache[key] = stored
                while len(self._cache) > 4096:
                    self._cache.popitem(last=False)
            out.append(stored)
        return out

    def stored_run(self, run_id: str) -> "StoredRun | None":
        return next((r for r in self.stored_runs() if r.id == run_id), None)

    def record(self, run_id: str) -> dict:
        """A run's curves, meters, views, events, alarms and status changes (the grids: grids())."""
        row = self._db().execute("SELECT metrics, meters, views, events, alarms, statuses FROM records "
                                 "WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            return {"metrics": {}, "meters": {}, "views": {}, "events": [], "alarms": [], "statuses": []}
        metrics, _ = _unpack_arrays(row[0])
        meters, _ = _unpack_arrays(row[1])
        arrays, plain = _unpack_arrays(row[2])
        return {"metrics": metrics, "meters": meters, "views": {**plain, **arrays},
                "events": json.loads(row[3]), "alarms": json.loads(row[4]), "statuses": json.loads(row[5])}

    def statuses(self, run_id: str) -> list[tuple[float, int, str]]:
        """The run's status changes, oldest first: (time, step, status). The Recorder notes the status of
        each snapshot it writes, about once a FLUSH_SECONDS, so a status held for less may be missing."""
        row = self._db().execute("SELECT statuses FROM records WHERE run_id=?", (run_id,)).fetchone()
        return [tuple(change) for change in json.loads(row[0])] if row is not None else []

    def grids(self, run_id: str) -> list[tuple[int, np.ndarray]]:
        rows = self._db().execute("SELECT step, png FROM grids WHERE run_id=? ORDER BY step", (run_id,))
        return [(step, _from_png(png)) for step, png in rows.fetchall()]

    def tensorboard_dir(self, run_id: str, name: str) -> Path:
        """The run's own folder: its TensorBoard event files, and the state it keeps once it has ended."""
        from ganlab.checkpoints import safe_name
        return self.root / f"{safe_name(name)}-{run_id}"

    def keep_state(self, run_id: str, name: str, state: dict) -> Path:
        """Keep an ended run's trainer state (its models, optimizers and random streams) in its folder,
        so that its memory can go back while Save, Explore and Resume still work."""
        from ganlab.checkpoints import write_state
        folder = self.tensorboard_dir(run_id, name)
        folder.mkdir(parents=True, exist_ok=True)
        write_state(folder / STATE_FILE, state)
        return folder / STATE_FILE

    def kept_state(self, run_id: str, name: str) -> Path | None:
        """The file keep_state() wrote for this run, or None."""
        path = self.tensorboard_dir(run_id, name) / STATE_FILE
        return path if path.is_file() else None

    # -- sweeps (ganlab.sweeps writes and reads them; these keep the SQL in one place) ----------------
    def save_sweep(self, row: dict, trials: dict[int, tuple[dict, dict | None]]) -> bool:
        """Write a sweep's row ({id, created, preset, spec, status, message, done, total, ended}) and the
        given trials' rows ({trial: (row, curves or None)}) in one transaction, with this process's
        heartbeat. Returns whether another process asked the sweep to stop."""
        now = time.time()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO sweeps (id, created, preset, spec, status, message, done, total, ended, updated, "
                "pid, pid_start, host, beat) VALUES (:id,:created,:preset,:spec,:status,:message,:done,:total,"
                ":ended,:now,:pid,:pid_start,:host,:now) ON CONFLICT(id) DO UPDATE SET status=:status, "
                "message=:message, done=:done, ended=:ended, updated=:now, beat=:now",
                {**row, "now": now, "pid": PID, "pid_start": PID_START, "host": HOST})
            for trial, (values, curves) in trials.items():
                if curves is None:
                    db.execute("INSERT INTO sweep_trials (sweep_id, trial, row) VALUES (?,?,?) "
                               "ON CONFLICT(sweep_id, trial) DO UPDATE SET row=excluded.row",
                               (row["id"], trial, json.dumps(values)))
                else:
                    db.execute("INSERT OR REPLACE INTO sweep_trials VALUES (?,?,?,?)",
                               (row["id"], trial, json.dumps(values), _pack_arrays(curves)))
            stop = db.execute("SELECT stop FROM sweeps WHERE id=?", (row["id"],)).fetchone()
        return bool(stop and stop[0])

    def sweeps(self, sweep_id: str | None = None) -> list[dict]:
        """Every sweep's row (or sweep_id's), newest first: id, created, preset, spec (JSON), status,
        message, done, total, ended, updated. A running sweep whose process is gone reads as interrupted."""
        db = self._db()
        cur = db.execute("SELECT * FROM sweeps ORDER BY created DESC") if sweep_id is None else \
            db.execute("SELECT * FROM sweeps WHERE id=?", (sweep_id,))
        names = [c[0] for c in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        for row in rows:
            if row["status"] == "running" and _process_gone(row["pid"], row["pid_start"], row["host"], row["beat"]):
                row["status"] = INTERRUPTED
                row["message"] = (f"the process running it ended without a word (killed, or a crash) after "
                                  f"{row['done']} of {row['total']} trials; the record ends there")
        return rows

    def sweep_trials(self, sweep_id: str, curves: bool = False) -> dict[int, tuple[dict, dict]]:
        """{trial: (its row, its curves ({} unless asked for))} of one sweep."""
        cur = self._db().execute(f"SELECT trial, row, {'curves' if curves else 'NULL'} FROM sweep_trials "
                                 f"WHERE sweep_id=? ORDER BY trial", (sweep_id,))
        return {trial: (json.loads(row), _unpack_arrays(blob)[0]) for trial, row, blob in cur.fetchall()}

    def sweep_curves(self, sweep_id: str, trial: int) -> dict:
        row = self._db().execute("SELECT curves FROM sweep_trials WHERE sweep_id=? AND trial=?",
                                 (sweep_id, trial)).fetchone()
        return _unpack_arrays(row[0])[0] if row is not None else {}

    def ask_sweep_stop(self, sweep_id: str) -> None:
        """Ask the process running the sweep to stop it (it reads this at its next write)."""
        with self._db() as db:
            db.execute("UPDATE sweeps SET stop=1 WHERE id=?", (sweep_id,))

    def delete_sweep(self, sweep_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM sweeps WHERE id=?", (sweep_id,))   # its trials go with it (CASCADE)

    # -- deleting -------------------------------------------------------------------------------
    def delete(self, run_id: str) -> None:
        """Forget a run: its rows, its grids and its TensorBoard folder."""
        with self._lock:
            tracked = self._watched.pop(run_id, None)
        if tracked is not None:
            with tracked.lock:
                tracked.done = True
                tracked.close_tensorboard()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT name FROM runs WHERE id=?", (run_id,)).fetchone()
            db.execute("DELETE FROM runs WHERE id=?", (run_id,))    # records and grids go with it (CASCADE)
        if row is not None:
            shutil.rmtree(self.tensorboard_dir(run_id, row[0]), ignore_errors=True)

    def _apply_retention(self) -> None:
        """Delete the ended runs past the retention setting (never a run that may still be recording)."""
        keep, days = retention()
        if not keep and not days:
            return
        try:
            rows = [r for r in self.rows() if r["status"] in ENDED + (INTERRUPTED,)]
            old = rows[keep:] if keep else []
            if days:
                cutoff = time.time() - days * 86400
                old += [r for r in rows[:keep or None] if r["created"] < cutoff]
            for row in old:
                self.delete(row["id"])
        except sqlite3.Error as e:
            log.warning("store retention skipped: %s", e)


def _summary_meters() -> list[str]:
    from ganlab.meters import summary_meters
    return summary_meters()


class _Tracked:
    """What the Recorder knows of one watched run: what it wrote last, and its TensorBoard writer."""

    def __init__(self, run):
        self.run = run
        self.lock = threading.Lock()
        self.preset = preset_of(run.name)
        self.written: Snapshot | None = None
        self.last_grid = -1
        self.beat = 0.0
        self.statuses: list = []
        self.done = False
        self._tb = None
        self._tb_metric_step = -1
        self._tb_meter_step = -1
        self._tb_grid_step = -1

    def tensorboard(self, root: Path, snap: Snapshot, new_grids) -> None:
        """The new scalars (evenly thinned to TB_ROWS_PER_FLUSH a flush), the new grids, and the settings once."""
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter
            from torch.utils.tensorboard.summary import hparams

            from ganlab.checkpoints import safe_name
            # A queue long enough that a flush never waits for TensorBoard's own writer thread,
            # which writes the files every TB_FLUSH_SECONDS (and when the run ends).
            self._tb = SummaryWriter(log_dir=str(root / f"{safe_name(self.run.name)}-{self.run.id}"),
                                     max_queue=10_000, flush_secs=TB_FLUSH_SECONDS)
            settings = {f"{section}.{k}" if isinstance(v, dict) else section: v
                        for section, value in self.run.cfg.to_dict().items()
                        for k, v in (value.items() if isinstance(value, dict) else [(None, value)])}
            settings = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in settings.items()}
            for summary in hparams(settings, {}):
                self._tb.file_writer.add_summary(summary)
        # Event files only grow, so each is bounded by the budget: at most history_cap rows of each
        # scalar and TB_IMAGES grids, one per stretch of the budget, however long the run takes.
        budget, cap = max(snap.total_steps, 1), self.run.cfg.train.history_cap
        self._tb_metric_step = self._scalars("metrics", snap.metrics, self._tb_metric_step, max(1, budget // cap))
        self._tb_meter_step = self._scalars("meters", snap.meters, self._tb_meter_step, max(1, budget // cap))
        every = max(1, budget // TB_IMAGES)
        for step, grid in new_grids:
            if step // every > self._tb_grid_step // every:
                self._tb.add_image("samples", grid, step, dataformats="HW")
                self._tb_grid_step = step

    def _scalars(self, prefix: str, frame: dict, after: int, every: int) -> int:
        """Write the first new row of each stretch of `every` steps (thinned to TB_ROWS_PER_FLUSH);
        the last step written."""
        steps = frame.get("step")
        if steps is None or not len(steps):
            return after
        buckets = steps // every
        new = np.flatnonzero((steps > after) & (buckets > after // every))
        new = new[np.unique(buckets[new], return_index=True)[1]]
        if not len(new):
            return after
        if len(new) > TB_ROWS_PER_FLUSH:
            new = new[np.linspace(0, len(new) - 1, TB_ROWS_PER_FLUSH).round().astype(int)]
        for i in new:
            for name, col in frame.items():
                if name != "step" and not name.startswith(("hist_", "mode_share_")):
                    self._tb.add_scalar(f"{prefix}/{name}", float(col[i]), int(steps[i]))
        return int(steps[new[-1]])

    def close_tensorboard(self) -> None:
        if self._tb is not None:
            try:
                self._tb.close()
            except OSError:
                pass
            self._tb = None


def listing(store: Store) -> list[dict]:
    """Every stored run, newest first, as plain values: what `python -m ganlab runs` prints."""
    out = []
    for row in store.rows():
        out.append({
            "id": row["id"], "name": row["name"], "preset": row["preset"], "page": row["page"],
            "status": row["status"], "message": row["message"], "step": row["step"], "budget": row["budget"],
            "started": row["started"] or row["created"],
            "started_at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["started"] or row["created"])),
            "ended": row["ended"], "meters": {k: v for k, v in json.loads(row["latest"]).items() if v is not None},
            "recording": row["problem"] or None})
    return out


# -- a run read back from the store -------------------------------------------------------------------

class StoredGroup:
    """A recorded Loss-lab run's comparison: its name only (the runs no longer train together)."""

    def __init__(self, group: str):
        self.group = group

    def resume(self, runs) -> None:
        pass

    def wake(self) -> None:
        pass


class StoredRun:
    """A run as the store recorded it: what a page reads of a Run, with nothing to train.

    It cannot be paused, resumed or stepped from here: its controls do nothing, as on a run that ended
    (while another process trains it, pages grey them out: pages.ui.elsewhere). Its record (curves,
    views, grids) is read from the store the first time a page asks for it.
    """
    stored = True
    owner = ""
    trainer = None
    alive = False
    paused = False
    stop_requested = False

    def __init__(self, store: Store, row: dict):
        self.store, self.row = store, row
        self.id, self.name, self.page = row["id"], row["name"], row["page"]
        self.created, self.started, self.ended = row["created"], row["started"], row["ended"]
        self.lockstep = StoredGroup(row["grp"]) if row["grp"] else None
        self.preset = row["preset"]
        self._cfg = None
        self._snapshot: Snapshot | None = None
        self._read_at = time.monotonic()

    def _fresh(self) -> None:
        """A run another process is training: read its row again, at most once a FLUSH_SECONDS."""
        if self.row["status"] not in ACTIVE + (CREATED,) or time.monotonic() - self._read_at < FLUSH_SECONDS:
            return
        self._read_at = time.monotonic()
        rows = self.store.rows(self.id)
        if rows and (rows[0]["updated"], rows[0]["status"]) != (self.row["updated"], self.row["status"]):
            self.row, self._snapshot = rows[0], None

    @property
    def status(self) -> str:
        self._fresh()
        return self.row["status"]

    @property
    def step(self) -> int:
        self._fresh()
        return self.row["step"]

    @property
    def device(self) -> str:
        return self.row["device"]

    @property
    def problem(self) -> str:
        return self.row["problem"]

    @property
    def cfg(self):
        """The config it trained with (StoreError if this ganlab cannot read it)."""
        if self._cfg is None:
            from ganlab.config import ConfigError, Experiment
            try:
                self._cfg = Experiment.from_dict(json.loads(self.row["config"]))
            except (ConfigError, ValueError, TypeError) as e:
                raise StoreError(f"run {self.id}'s settings in {self.store.path} cannot be read: {e}") from e
        return self._cfg

    def snapshot(self) -> Snapshot:
        self._fresh()
        if self._snapshot is None:
            from ganlab.alarms import Alarm
            row, rec = self.row, self.store.record(self.id)
            self._snapshot = Snapshot(
                run_id=self.id, name=self.name, status=row["status"], message=row["message"], step=row["step"],
                total_steps=row["budget"], elapsed=row["elapsed"], steps_per_s=0.0, samples_per_s=0.0,
                metrics=rec["metrics"], meters=rec["meters"], views=rec["views"],
                images=_LazyGrids(self.store, self.id), events=tuple(tuple(e) for e in rec["events"]),
                alarms=tuple(Alarm(kind, step, text) for kind, step, text in rec["alarms"])
                if row["status"] in ACTIVE else ())
        return self._snapshot

    @property
    def wall_seconds(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended or self.row["updated"]) - self.started

    def summary(self) -> dict:
        row = {"id": self.id, "name": self.name, "page": self.page, "model": self.row["model"],
               "loss": self.row["loss"], "status": self.status, "step": self.step, "budget": self.row["budget"],
               "steps_per_s": self.row["steps_per_s"], "device": self.device, "gpu_memory": None,
               "wall_s": self.wall_seconds, "preset": self.preset, "created": self.created}
        row.update({k: v for k, v in json.loads(self.row["latest"]).items() if v is not None})
        return row

    # -- the controls of a run that has ended ---------------------------------------------------------
    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def stop(self, wait: float = 0.0) -> bool:
        return True

    def join(self, timeout=None) -> bool:
        return True

    def set_save_every(self, steps: int) -> None:
        pass

    @property
    def has_model(self) -> bool:
        """Whether the store keeps the state its models had when it ended (Save and Explore use it)."""
        return self._kept_path() is not None

    def _kept_path(self) -> Path | None:
        """The file of the state its models had when it ended; None while it trains, or when none was kept."""
        return self.store.kept_state(self.id, self.name) if self.row["status"] not in ACTIVE + (CREATED,) else None

    def _kept(self) -> dict | None:
        """The state its models had when it ended, read and checked (checkpoints.read_state); None
        when the store kept none."""
        path = self._kept_path()
        if path is None:
            return None
        from ganlab.checkpoints import read_state
        return read_state(path, self.cfg)

    def state_copy(self):
        """(the state its models had when it ended, its snapshot, its config), or None (ganlab.runs.Run)."""
        state = self._kept()
        return (state, self.snapshot(), self.cfg) if state is not None else None

    def generator_copy(self):
        # Not through state_copy(): Explore needs the weights alone, not the run's whole record.
        state = self._kept()
        if state is None:
            return None
        from ganlab.checkpoints import generator_of
        return generator_of(self.cfg, state)

    def _refuse(self, *args, **kwargs):
        from ganlab.runs import RunError
        raise RunError(f"run {self.id} is a record in the store ({self.status}); start a new one")

    step_once = step_stage = reconfigure = start = _refuse


class _LazyGrids(collections.abc.Sequence):
    """A stored run's sample grids, (step, grid) oldest first, read from the store when first used."""

    def __init__(self, store: Store, run_id: str):
        self._store, self._run_id, self._grids = store, run_id, None

    def _load(self) -> list:
        if self._grids is None:
            self._grids = self._store.grids(self._run_id)
        return self._grids

    def __getitem__(self, i):
        return self._load()[i]

    def __len__(self) -> int:
        return len(self._load())


# -- one store per folder and process ------------------------------------------------------------------

_STORES: "weakref.WeakSet[Store]" = weakref.WeakSet()
_OPENED: dict[Path, Store] = {}
_open_lock = threading.Lock()


def open_store(root: Path | str | None = None) -> Store:
    """The store in `root` (default: store_root()), shared by everything in this process; StoreError if unusable."""
    path = (Path(root) if root is not None else store_root()).expanduser().resolve()
    with _open_lock:
        store = _OPENED.get(path)
        if store is None:
            store = _OPENED[path] = Store(path)
        return store


def open_default() -> tuple[Store | None, str]:
    """(the store, "") or (None, one line saying which file is wrong and that runs stay in memory)."""
    try:
        return open_store(), ""
    except StoreError as e:
        log.warning("run store off: %s", e)
        return None, f"Run store off: {e}. Runs are kept in memory only; nothing was deleted."


@atexit.register
def _close_stores() -> None:
    # Registered after ganlab.runs' own exit hook, so it runs first: stop the runs, then write their ends.
    from ganlab import runs
    runs._stop_live_runs()
    for store in list(_STORES):
        try:
            store.close()
        except Exception:  # noqa: BLE001 - exit must go on
            log.exception("closing the run store")
