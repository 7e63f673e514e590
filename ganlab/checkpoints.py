"""Checkpoints: a run saved as one folder, loaded back to resume or explore.

A checkpoint folder holds
    config.json   the Experiment, the run's name, page and step, and the format version
    weights.pt    the networks and their optimizers (a GAN: G, D, opt_g, opt_d; an AE or
                  a VAE: model, opt), the step counters and the run's random stream
    metrics.csv   the per-step history (step + the loss columns)
    meters.csv    the per-probe history (step + the task's meters)
    samples.png   the last sample grid (image tasks only)
    points.csv    the 2D target's own points (a CSV target only)

It is written into a hidden temporary folder next to its final place and
renamed into place, so a crash or a full disk never leaves half a checkpoint,
and an older save of the same name survives until the new one is complete.

Loading never runs code from the files: weights.pt is read with
`torch.load(weights_only=True)`, which only rebuilds tensors and plain
containers, and everything is checked against the config before it is used.
A checkpoint may come from a stranger (the Saved runs page takes uploads), so
every file is bounded before it is read, every field of config.json is checked
as strictly as the page's settings, the config is priced (cost.py) before a
model is built, and nothing in it names a path on this server: a CSV target's
points travel inside the checkpoint, and the data folder is this server's own.
Anything wrong becomes a CheckpointError with one line a user can act on, and
that line never quotes a file's content.
"""
from __future__ import annotations

import csv
import ctypes
import ctypes.util
import errno
import io
import json
import os
import pickle
import re
import secrets
import shutil
import stat
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ganlab.config import ConfigError, Experiment

FORMAT = "ganlab-checkpoint"
VERSION = 1
FILES = ("config.json", "weights.pt", "metrics.csv", "meters.csv", "samples.png", "points.csv")
MAX_UPLOAD_BYTES = 1 << 30          # a zipped checkpoint may unpack to at most 1 GiB
# Each file's bound, checked before it is read or unpacked. A history holds at most 2 x
# train.history_cap rows (runs.History), about 25 bytes a value.
MAX_FILE_BYTES = {"config.json": 1 << 20, "weights.pt": MAX_UPLOAD_BYTES, "metrics.csv": 16 << 20,
                  "meters.csv": 16 << 20, "samples.png": 8 << 20, "points.csv": 5_000_000}
MAX_ENTRIES = 64                    # a checkpoint is 6 files; a zip of more entries is something else
MAX_ROWS = 200_000                  # history rows, 2 x the largest history_cap
MAX_EVENTS = 10_000
MAX_NAME = 200                      # characters of a run's name
PLAIN_ID = re.compile(r"[0-9a-z_-]{1,40}")     # a run id or a page: no path, no markup
KEEP_AUTOSAVES = 3                  # a run keeps its latest automatic saves only
_rename_lock = threading.Lock()


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, foreign or tampered with, or cannot be written."""


# What weights.pt holds, by family (families.family_of): its networks and optimizers, and its
# step counters. One format for all: the config says which family, and so which keys to expect.
GAN_KEYS = {"nets": ("G", "D"), "opts": ("opt_g", "opt_d"), "counters": ("step", "d_updates", "g_updates")}
AE_KEYS = {"nets": ("model",), "opts": ("opt",), "counters": ("step",)}


def keys_for(cfg: Experiment) -> dict:
    from ganlab.families import family_of
    return GAN_KEYS if family_of(cfg) == "gan" else AE_KEYS


@dataclass(frozen=True)
class Checkpoint:
    folder: Path
    cfg: Experiment
    name: str
    page: str
    step: int
    saved_at: float
    state: dict                                    # weights.pt, tensors on the CPU
    metrics: dict = field(default_factory=dict)    # {'step': ..., column: ...}
    meters: dict = field(default_factory=dict)
    events: tuple = ()


@dataclass(frozen=True)
class Summary:
    """What a list of saves shows, read from config.json alone (weights stay on disk)."""
    folder: Path
    name: str = ""
    task: str = ""
    model: str = ""
    loss: str = ""                                 # in words (ganlab.labels.loss_words)
    step: int = 0
    saved_at: float = 0.0
    error: str = ""                                # why the folder is not a usable checkpoint


def saves_root() -> Path:
    """Where saves go: GANLAB_SAVES, or ./runs."""
    return Path(os.environ.get("GANLAB_SAVES", "runs")).expanduser()


def default_folder(run, step: int) -> Path:
    return saves_root() / f"{safe_name(run.name)}-{run.id}-step{step}"


def safe_name(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip(".-")
    return keep[:60] or "run"


# -- saving --------------------------------------------------------------------------------

def trainer_state(trainer) -> dict:
    """Everything needed to resume `trainer` exactly, copied to the CPU.

    Call it between two training steps (borrowed from a Run: `with run.borrow() as trainer`).
    Not included: PyTorch's global random stream (whatever does not draw from
    the run's generator uses it); every run in the process shares it, so
    restoring it would disturb the others.
    """
    keys = keys_for(trainer.cfg)
    names = keys["nets"] + keys["opts"] + keys["counters"] + ("gen",)
    if not all(hasattr(trainer, a) for a in names):
        raise CheckpointError(f"this run cannot be saved: its trainer has no {', '.join(names)}")
    probe_gen = getattr(getattr(trainer, "task", None), "probe_gen", None)
    state = {"format": FORMAT, "version": VERSION,
             "rng": trainer.gen.get_state(), "rng_device": trainer.gen.device.type}
    state.update({k: getattr(trainer, k) for k in keys["counters"]})
    state.update({k: getattr(trainer, k).state_dict() for k in keys["nets"] + keys["opts"]})
    if isinstance(probe_gen, torch.Generator):
        state["probe_rng"] = probe_gen.get_state()
    if isinstance(getattr(trainer, "model_gen", None), torch.Generator):
        state["model_rng"] = trainer.model_gen.get_state()
    return _to_cpu(state)


def _to_cpu(obj):
    # A fresh CPU copy of every tensor: the training thread may change the
    # originals as soon as the lock is released.
    if isinstance(obj, Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def save(run, folder: str | Path | None = None) -> Path:
    """Save a run as one checkpoint folder (default: under saves_root()). Returns the folder.

    The weights are copied between two training steps under the run's model
    lock; the files are written outside it, so training waits only for the copy.
    A save taken mid-run may miss the last few steps' metrics (they are read
    back from the device every snapshot_every steps), never weights or steps.
    """
    taken = run.state_copy()
    if taken is None:
        raise CheckpointError("the run has no model yet: start it first")
    state, snap, cfg = taken
    step = state["step"]
    folder = Path(folder) if folder is not None else default_folder(run, step)
    header = {
        "format": FORMAT, "version": VERSION, "name": plain_name(run.name), "page": run.page, "step": step,
        "saved_at": time.time(), "saved": time.strftime("%Y-%m-%d %H:%M:%S"), "run_id": run.id,
        "events": [[int(step), str(kind), str(text)] for step, kind, text in snap.events],
        # Not the data folder: a path on this server means nothing to another, and is not theirs to know.
        "experiment": cfg.replace(train={"data_dir": ""}).to_dict(),
    }
    grid = snap.images[-1][1] if snap.images else None
    points = _points_of(run.cfg)

    def write(tmp: Path) -> None:
        (tmp / "config.json").write_text(json.dumps(header, indent=2, allow_nan=False))
        torch.save(state, tmp / "weights.pt")
        _write_csv(tmp / "metrics.csv", snap.metrics)
        _write_csv(tmp / "meters.csv", snap.meters)
        if grid is not None:
            from ganlab.images import save_png
            save_png(grid, str(tmp / "samples.png"))
        if points is not None:
            shutil.copyfile(points, tmp / "points.csv")

    write_atomically(folder, write)
    return folder


def write_state(path: Path, state: dict) -> None:
    """Write a trainer_state() to `path` (weights.pt's format), replacing any file there only once complete."""
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    try:
        torch.save(state, tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_state(path: Path, cfg: Experiment) -> dict:
    """A state that write_state() wrote, checked as a checkpoint's weights.pt is (against the
    config's models, on the meta device) before anything uses it."""
    state = _load_weights(path, keys_for(cfg))
    _check_shapes(state, cfg)
    return state


def plain_name(text: str) -> str:
    """A run's name as a checkpoint keeps it: printable, no path separators, at most MAX_NAME characters
    (the rule _check_header holds a stranger's checkpoint to)."""
    kept = "".join(c if c.isprintable() and c not in "/\\" else "-" for c in str(text)).lstrip(".")
    return kept[:MAX_NAME]


def _points_of(cfg: Experiment) -> Path | None:
    """The kept points file of a CSV target, which a checkpoint carries with it."""
    if cfg.task != "toy2d" or cfg.toy2d.kind != "csv":
        return None
    from ganlab.data.toy2d import PointsFileError, points_file
    try:
        return points_file(cfg.toy2d.csv_path)
    except PointsFileError as e:
        raise CheckpointError(f"this run cannot be saved: {e}") from None


def _write_csv(path: Path, frame: dict) -> None:
    columns = list(frame) or ["step"]
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(columns)
        for row in zip(*(frame[c] for c in columns)):
            out.writerow([int(row[0])] + [repr(float(v)) for v in row[1:]])


def write_atomically(folder: Path, write) -> None:
    """Call write(tmp) on a fresh hidden folder beside `folder`, then rename it into place.

    An existing checkpoint of the same name is replaced only once the new one
    is complete (renamed aside, the new one renamed in, then deleted). Anything
    else already at `folder` is never touched.
    """
    folder = Path(folder)
    if folder.exists() and not is_checkpoint(folder):
        raise CheckpointError(f"{folder} exists and is not a ganlab checkpoint; choose another name")
    parent = folder.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = parent / f".{folder.name}.tmp-{secrets.token_hex(4)}"
        tmp.mkdir()
    except OSError as e:
        raise CheckpointError(f"cannot write to {parent}: {e.strerror or e}") from e
    try:
        write(tmp)
        for path in tmp.iterdir():
            _fsync(path)
        _fsync(tmp)
        with _rename_lock:     # two saves of one name (a click and an auto-save) take turns here
            if folder.exists() and _exchange(tmp, folder):
                pass               # one atomic swap: the visible name never lacks a checkpoint
            elif folder.exists():
                # No atomic swap on this system: for an instant the save sits under a hidden
                # name; list_saved() puts such a save back if the process dies right then.
                old = parent / f".{folder.name}.old-{secrets.token_hex(4)}"
                os.replace(folder, old)
                try:
                    os.replace(tmp, folder)
                except BaseException:
                    os.replace(old, folder)    # put the previous save back
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, folder)
        _fsync(parent)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, CheckpointError) or not isinstance(e, Exception):
            raise
        raise CheckpointError(f"could not save to {folder}: {_why_not_written(e)}") from e


def _why_not_written(e: Exception) -> str:
    # A full disk reaches here as OSError, or as RuntimeError from inside torch.save, whose
    # words ("unexpected pos 49920 vs 49812") say nothing of disk space.
    text = (str(e).strip() or type(e).__name__).splitlines()[0]
    if (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)) or "unexpected pos" in text \
            or "No space left" in text or "file write failed" in text:
        return "the disk is full; free some space (or delete old saves) and save again"
    return e.strerror if isinstance(e, OSError) and e.strerror else text


_RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if os.name == "posix" else None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one atomic step (Linux renameat2). False where it is not available.

    The standard library has no atomic swap of two non-empty folders, hence ctypes.
    """
    fn = getattr(_libc, "renameat2", None)
    if fn is None:
        return False
    at_cwd = -100
    if fn(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        shutil.rmtree(a, ignore_errors=True)   # a now holds the previous save
        return True
    return False


def _fsync(path: Path) -> None:
    # Data first, then the directory entries, so a power cut after the rename
    # cannot leave a complete-looking folder of empty files.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass   # some filesystems refuse fsync on directories
    finally:
        os.close(fd)


# -- loading -------------------------------------------------------------------------------

def read_header(folder: str | Path) -> tuple[dict, Experiment]:
    """config.json, checked: (header, experiment)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"no checkpoint folder at {folder}")
    path = folder / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{folder.name} is not a ganlab checkpoint: it has no config.json")
    header = _read_json(path)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{folder.name} is not a ganlab checkpoint (config.json has no ganlab format mark)")
    _check_header(header)
    experiment = header["experiment"]
    # Paths name places on the server that saved it, and a stranger's checkpoint must not
    # choose what this server reads: the data folder is this server's own, and a CSV
    # target's points come from the checkpoint's points.csv (see load()).
    if isinstance(experiment.get("train"), dict):
        experiment["train"].pop("data_dir", None)
        threads = experiment["train"].get("cpu_threads")
        if type(threads) is int and threads > (os.cpu_count() or 1):
            experiment["train"]["cpu_threads"] = 0    # saved on a bigger machine: let the task choose here
    toy2d = experiment.get("toy2d")
    if isinstance(toy2d, dict) and "csv_path" in toy2d:
        toy2d["csv_path"] = _points_name(folder) if toy2d.get("kind") == "csv" else ""
    try:
        cfg = Experiment.from_dict(experiment)
    except ConfigError as e:
        raise CheckpointError(f"config.json: {e.field}: {str(e).split(': ', 1)[-1]}") from None
    except (TypeError, ValueError, AttributeError, RecursionError):
        raise CheckpointError("config.json holds a value of the wrong type") from None
    return header, cfg


def _read_json(path: Path):
    size = path.stat().st_size
    if size > MAX_FILE_BYTES["config.json"]:
        raise CheckpointError(f"config.json is {size:,} bytes; a checkpoint's is at most "
                              f"{MAX_FILE_BYTES['config.json']:,}")
    try:
        return json.loads(path.read_bytes().decode())
    except RecursionError:
        raise CheckpointError("config.json is nested too deeply to be a ganlab checkpoint") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        where = f" (line {e.lineno})" if isinstance(e, json.JSONDecodeError) else ""
        raise CheckpointError(f"config.json is corrupt{where}") from None


def _check_header(header: dict) -> None:
    """Every field of config.json besides the experiment, as strictly as the page checks its own."""
    version, step = header.get("version"), header.get("step")
    if type(version) is not int or not 1 <= version <= VERSION:
        said = f"version {version}" if type(version) is int else "a version that is not a whole number"
        raise CheckpointError(f"config.json has format {said}; this ganlab reads versions 1 to {VERSION}")
    if type(step) is not int or step < 0:
        raise CheckpointError("config.json: step must be a whole number >= 0")
    saved_at = header.get("saved_at", 0.0)
    if type(saved_at) not in (int, float) or not 0 <= saved_at < 1e11:
        raise CheckpointError("config.json: saved_at must be a time in seconds")
    name = header.get("name", "")
    if not isinstance(name, str) or len(name) > MAX_NAME or not name.isprintable() or "/" in name \
            or "\\" in name or name.startswith("."):
        raise CheckpointError(f"config.json: the name must be plain printable text of at most {MAX_NAME} "
                              f"characters, without / or \\")
    for key in ("page", "run_id"):
        if key in header and not (isinstance(header[key], str) and PLAIN_ID.fullmatch(header[key])):
            raise CheckpointError(f"config.json: {key} must be a short plain id (letters, digits, - and _)")
    events = header.get("events", [])
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise CheckpointError(f"config.json: events must be a list of at most {MAX_EVENTS:,}")
    for e in events:
        if not (isinstance(e, list) and len(e) == 3 and type(e[0]) is int and 0 <= e[0] <= step
                and all(isinstance(t, str) and len(t) <= 500 and t.isprintable() for t in e[1:])):
            raise CheckpointError("config.json: each event must be [step, kind, text], with a step up to the "
                                  "checkpoint's and a printable text of at most 500 characters")
    if not isinstance(header.get("experiment"), dict):
        raise CheckpointError("config.json has no experiment settings")


def _points_name(folder: Path) -> str:
    """A CSV target's points are carried as points.csv: the name it has in the points store."""
    from ganlab.data.toy2d import points_name
    path = folder / "points.csv"
    if not path.is_file():
        raise CheckpointError("the checkpoint trains on its own points but holds no points.csv")
    if path.stat().st_size > MAX_FILE_BYTES["points.csv"]:
        raise CheckpointError(f"points.csv is over {MAX_FILE_BYTES['points.csv']:,} bytes")
    return points_name(path.read_bytes())


def summary(folder: str | Path) -> Summary:
    folder = Path(folder)
    try:
        header, cfg = read_header(folder)
    except CheckpointError as e:
        return Summary(folder, name=folder.name, error=str(e))
    except Exception as e:  # noqa: BLE001 - one bad folder must never break the list of saves
        return Summary(folder, name=folder.name, error=f"cannot be read ({type(e).__name__})")
    from ganlab.labels import loss_words
    return Summary(folder, name=str(header.get("name", folder.name)), task=cfg.task, model=cfg.model.name,
                   loss=loss_words(cfg), step=header["step"], saved_at=float(header.get("saved_at", 0.0)))


def list_saved(root: str | Path | None = None) -> list[Summary]:
    """Every checkpoint folder in the saves root, newest first (hidden temporaries skipped)."""
    root = Path(root) if root is not None else saves_root()
    if not root.is_dir():
        return []
    tidy(root)
    found = [summary(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(found, key=lambda s: (s.error == "", s.saved_at), reverse=True)


LEFTOVER = re.compile(r"\.(?P<name>.+)\.(?P<kind>tmp|old)-[0-9a-f]{8}")
LEFTOVER_AGE = 60.0    # seconds: younger hidden folders may belong to a save still being written


def tidy(root: Path) -> None:
    """Clean what interrupted saves left behind: a half-written copy is deleted; a previous save
    set aside when the process died mid-swap is put back under its name."""
    now = time.time()
    for path in root.iterdir():
        match = LEFTOVER.fullmatch(path.name)
        try:
            if match is None or not path.is_dir():
                continue
            # Its newest touch: a save still writing its weights keeps touching weights.pt.
            touched = max([path.lstat().st_ctime] + [f.lstat().st_mtime for f in path.iterdir()])
            if now - touched < LEFTOVER_AGE:
                continue
            visible = root / match["name"]
            with _rename_lock:
                if match["kind"] == "old" and not visible.exists() and is_checkpoint(path):
                    os.replace(path, visible)
                else:
                    shutil.rmtree(path)
        except OSError:
            continue   # another process is tidying it, or it is not ours to remove


def load(folder: str | Path) -> Checkpoint:
    """Read and check a checkpoint folder. Never runs code from it."""
    folder = Path(folder)
    header, cfg = read_header(folder)
    from ganlab import cost
    try:
        cost.check(cfg)    # before any model is built: a tiny file may name a huge model
    except ConfigError as e:
        raise CheckpointError(f"config.json: {e}") from None
    if cfg.task == "toy2d" and cfg.toy2d.kind == "csv":
        cfg = cfg.replace(toy2d={"csv_path": _keep_points(folder)})
    state = _load_weights(folder / "weights.pt", keys_for(cfg))
    _check_shapes(state, cfg)
    _check_against_config(state, cfg)
    if state["step"] != header["step"]:
        raise CheckpointError(f"weights.pt is at step {state['step']} but config.json says {header['step']}")
    from ganlab.families import metric_names, page_of
    metrics = _read_csv(folder / "metrics.csv", expected=("step",) + tuple(metric_names(cfg)))
    meters = _read_csv(folder / "meters.csv")
    events = tuple(tuple(e) for e in header.get("events", []))
    return Checkpoint(folder, cfg, name=str(header.get("name") or folder.name), page=page_of(cfg),
                      step=header["step"], saved_at=float(header.get("saved_at", 0.0)), state=state,
                      metrics=metrics, meters=meters, events=events)


def _keep_points(folder: Path) -> str:
    """Check the checkpoint's points.csv and keep it in this server's points store: its name there."""
    from ganlab.data.toy2d import PointsFileError, read_points_csv, save_points
    _points_name(folder)      # there, and bounded
    try:
        return save_points(read_points_csv(folder / "points.csv")).name
    except PointsFileError as e:
        raise CheckpointError(f"points.csv: {e}") from None


WEIGHT_KEYS = {"format", "version", "rng", "rng_device", "probe_rng", "model_rng"}


def _load_weights(path: Path, keys: dict) -> dict:
    if not path.is_file():
        raise CheckpointError(f"the checkpoint has no {path.name}")
    if path.stat().st_size > MAX_FILE_BYTES["weights.pt"]:
        raise CheckpointError(f"{path.name} is over {MAX_FILE_BYTES['weights.pt']:,} bytes")
    try:
        # mmap: tensors stay on disk until used, so a large one under a stray key costs no memory.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as e:
        if "global" in str(e).lower():   # it names a function or class to call while unpickling
            raise CheckpointError(f"{path.name} holds Python objects other than weights (it could run "
                                  f"code), so it was not loaded") from None
        raise CheckpointError(f"{path.name} is corrupt or truncated") from None
    except Exception:  # noqa: BLE001 - torch raises RuntimeError, EOFError, zip errors...
        raise CheckpointError(f"{path.name} is corrupt or truncated") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not a ganlab checkpoint (a foreign PyTorch file?)")
    for key in keys["nets"] + keys["opts"]:
        if not isinstance(state.get(key), dict):
            raise CheckpointError(f"{path.name} has no {key} state (the checkpoint of another kind of "
                                  f"model than config.json names?)")
    for key in keys["counters"]:
        if not isinstance(state.get(key), int) or state[key] < 0:
            raise CheckpointError(f"{path.name}: {key} must be a whole number >= 0")
    extra = set(state) - WEIGHT_KEYS - set(keys["nets"] + keys["opts"] + keys["counters"])
    if extra:
        raise CheckpointError(f"{path.name} holds entries a ganlab checkpoint has not ({len(extra)} of them)")
    if state.get("rng_device", "cpu") not in ("cpu", "cuda"):
        raise CheckpointError(f"{path.name}: the random stream's device must be cpu or cuda")
    for key in ("rng", "probe_rng", "model_rng"):
        if key == "rng" or key in state:
            _check_random_state(path.name, key, state[key] if key in state else None, state.get("rng_device", "cpu"))
    return state


def _check_random_state(file: str, key: str, value, device: str) -> None:
    # A truncated state would fail only on resume, deep in the training thread: try it now.
    if not isinstance(value, Tensor) or value.dtype != torch.uint8 or value.dim() != 1:
        raise CheckpointError(f"{file} has no {key.replace('_', ' ')} (random-stream) state")
    expected = torch.Generator().get_state().numel() if device == "cpu" else 16   # CUDA: seed and offset
    if value.numel() != expected:
        raise CheckpointError(f"{file}: the {key.replace('_', ' ')} state is truncated or foreign "
                              f"({value.numel()} bytes, expected {expected})")
    if device == "cpu":
        try:
            torch.Generator().set_state(value.clone())
        except RuntimeError:
            raise CheckpointError(f"{file}: the {key.replace('_', ' ')} state is corrupt") from None


def _check_shapes(state: dict, cfg: Experiment) -> None:
    """The saved tensors against the shapes the config's models have, built on the meta device
    (no memory), and every weight finite: before anything real is built or loaded."""
    with torch.device("meta"):
        nets = _build_nets(cfg)
    for name, model in nets.items():
        saved, wanted = state[name], model.state_dict()
        if set(saved) != set(wanted):
            missing, unknown = sorted(set(wanted) - set(saved)), sorted(set(saved) - set(wanted))
            which = f"it lacks {missing[0]}" if missing else f"it has {len(unknown)} unknown entries"
            raise CheckpointError(f"weights.pt: {name} does not match config.json ({which})")
        for key, tensor in saved.items():
            if not isinstance(tensor, Tensor) or tensor.shape != wanted[key].shape:
                shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
                raise CheckpointError(f"weights.pt: {name} does not match config.json ({key} has shape {shape}, "
                                      f"the config's model {tuple(wanted[key].shape)})")
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise CheckpointError(f"weights.pt: {name}.{key} holds NaN or infinite values")


def _check_against_config(state: dict, cfg: Experiment) -> None:
    """Fresh models and optimizers built from the config must accept the saved state."""
    from ganlab.train import make_optimizer
    nets = _build_nets(cfg)
    for name, model in nets.items():
        try:
            model.load_state_dict(state[name])
        except (RuntimeError, TypeError, KeyError, AttributeError) as e:
            first = str(e).strip().splitlines()
            detail = next((line.strip() for line in first[1:] if line.strip()), first[0] if first else "")
            raise CheckpointError(f"weights.pt: {name} does not match config.json ({detail})") from None
    keys = keys_for(cfg)
    for name, net in zip(keys["opts"], keys["nets"]):
        model = nets[net]
        _check_optimizer(name, state[name], list(model.parameters()))
        settings = cfg.opt_g if name == "opt" else getattr(cfg, name)   # an AE's one optimizer uses opt_g
        opt = make_optimizer(model.parameters(), settings, torch.device("cpu"))
        _check_optimizer_kind(name, state[name], opt, settings.name)
        try:
            load_optimizer(opt, state[name])
        except (RuntimeError, ValueError, TypeError, KeyError) as e:
            raise CheckpointError(f"weights.pt: {name} does not match config.json ({e})") from None


def _build_nets(cfg: Experiment) -> dict[str, nn.Module]:
    """Fresh networks for the config, on the CPU, by the names weights.pt uses."""
    from ganlab.models import AUTOENCODERS, build_models
    if keys_for(cfg) is AE_KEYS:
        return {"model": AUTOENCODERS[cfg.model.name].build(cfg)}
    G, D = build_models(cfg)
    return {"G": G, "D": D}


def _check_optimizer(name: str, opt_state: dict, params: list[nn.Parameter]) -> None:
    # load_state_dict checks the number of parameters, not the shapes of their state.
    per_param = opt_state.get("state")
    if not isinstance(per_param, dict) or not isinstance(opt_state.get("param_groups"), list):
        raise CheckpointError(f"weights.pt: {name} is not an optimizer state")
    for index, values in per_param.items():
        if not isinstance(index, int) or not 0 <= index < len(params) or not isinstance(values, dict):
            raise CheckpointError(f"weights.pt: {name} has state for a parameter the model lacks")
        for key, value in values.items():
            if isinstance(value, Tensor) and key != "step" and value.shape != params[index].shape:
                raise CheckpointError(f"weights.pt: {name}'s {key} for parameter {index} has shape "
                                      f"{tuple(value.shape)}, the model's is {tuple(params[index].shape)}")


def _check_optimizer_kind(name: str, saved: dict, opt: torch.optim.Optimizer, kind: str) -> None:
    # load_state_dict takes the saved settings and moments as they are: a group without a
    # setting this optimizer reads (SGD's momentum, say), or Adam's moments under RMSprop,
    # would fail only at the next step, deep in the training thread.
    wrong = CheckpointError(f"weights.pt: {name} is the state of another optimizer than config.json's {kind}")
    needed = set(opt.defaults) - {"differentiable", "fused", "capturable", "foreach"}
    if not all(isinstance(g, dict) and not needed - set(g) for g in saved["param_groups"]):
        raise wrong
    probe = nn.Parameter(torch.zeros(1))
    one = type(opt)([probe], **{k: v for k, v in opt.defaults.items() if k in needed})
    probe.grad = torch.ones(1)
    one.step()
    expected = set(one.state[probe])       # what one step of this optimizer keeps per parameter
    if any(values and set(values) != expected for values in saved["state"].values()):
        raise wrong


def _read_csv(path: Path, expected: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """A history frame; a missing file is an empty history, a malformed one an error."""
    if not path.is_file():
        return {}
    limit = MAX_FILE_BYTES.get(path.name, MAX_FILE_BYTES["metrics.csv"])
    if path.stat().st_size > limit:
        raise CheckpointError(f"{path.name} is over {limit:,} bytes; a ganlab history is smaller")
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            if not header or header[0] != "step" or len(header) > 64:
                raise CheckpointError(f"{path.name} is not a ganlab history (its first column must be step)")
            rows = []
            for number, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise CheckpointError(f"{path.name}: line {number} has {len(row)} values, the header "
                                          f"{len(header)}")
                if len(rows) == MAX_ROWS:
                    raise CheckpointError(f"{path.name} has more than {MAX_ROWS:,} rows")
                rows.append([float(v) for v in row])
    except CheckpointError:
        raise
    except ValueError:
        raise CheckpointError(f"{path.name} holds a value that is not a number") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise CheckpointError(f"{path.name} could not be read ({type(e).__name__})") from None
    values = np.array(rows, dtype=np.float64).reshape(-1, len(header))
    frame = {"step": values[:, 0].astype(np.int64)}
    frame.update({name: values[:, i] for i, name in enumerate(header) if i})
    if expected is not None:
        # Columns this ganlab records but the file lacks (an older save) read as NaN.
        frame = {name: frame.get(name, np.full(len(values), np.nan)) for name in expected}
    return frame


# -- resuming and exploring ----------------------------------------------------------------

def restore(trainer, state: dict) -> list[str]:
    """Put a saved state into a freshly built Trainer of the same config.

    Returns notes worth telling the user (a random stream that could not be
    carried over to another kind of device).
    """
    notes = []
    keys = keys_for(trainer.cfg)
    for name in keys["nets"]:
        getattr(trainer, name).load_state_dict(state[name])
    for name in keys["opts"]:
        load_optimizer(getattr(trainer, name), state[name])
    for name in keys["counters"]:
        setattr(trainer, name, state[name])
    if state.get("rng_device") == trainer.gen.device.type:
        trainer.gen.set_state(state["rng"])
        if "model_rng" in state and hasattr(trainer, "model_gen"):
            trainer.model_gen.set_state(state["model_rng"])
    else:
        # A CPU generator's state means nothing to a CUDA one: start a new stream, still seeded.
        trainer.gen.manual_seed(trainer.cfg.train.seed + state["step"])
        notes.append(f"saved on {state.get('rng_device')}, resumed on {trainer.gen.device.type}: "
                     f"the random stream was reseeded")
    probe_gen = getattr(getattr(trainer, "task", None), "probe_gen", None)
    if isinstance(probe_gen, torch.Generator) and "probe_rng" in state \
            and state.get("rng_device") == probe_gen.device.type:
        probe_gen.set_state(state["probe_rng"])
    if getattr(trainer, "_capture_at", None) is not None:
        # The fast path captures its CUDA graph a few steps into a run; count from here.
        from ganlab.fast import CAPTURE_AT_STEP
        trainer._capture_at = trainer.step + CAPTURE_AT_STEP
    return notes


def load_optimizer(opt: torch.optim.Optimizer, saved: dict) -> None:
    """load_state_dict, keeping how this optimizer runs (fused, capturable, a tensor lr).

    The saved param_groups would otherwise switch those to what the saving run
    used, which may not suit this device (a CPU save resumed on a GPU).
    """
    kept = [{k: g[k] for k in ("lr", "fused", "capturable", "foreach", "differentiable") if k in g}
            for g in opt.param_groups]
    opt.load_state_dict(saved)
    for group, mine in zip(opt.param_groups, kept):
        lr = float(group["lr"])
        group.update({k: v for k, v in mine.items() if k != "lr"})
        if isinstance(mine.get("lr"), Tensor):
            mine["lr"].fill_(lr)
            group["lr"] = mine["lr"]
        else:
            group["lr"] = lr
        on_device = bool(group.get("fused") or group.get("capturable"))
        for p in group["params"]:
            step = opt.state.get(p, {}).get("step")
            if isinstance(step, Tensor):
                opt.state[p]["step"] = step.to(p.device if on_device else "cpu", torch.float32)


def generator(ckpt: Checkpoint, device: str = "cpu") -> nn.Module:
    """The saved G alone (an AE's or a VAE's decoder), in eval mode, for sampling."""
    return generator_of(ckpt.cfg, ckpt.state, device)


def generator_of(cfg: Experiment, state: dict, device: str = "cpu") -> nn.Module:
    """G (an AE's or a VAE's decoder) built from `cfg` with the weights in `state`, in eval mode."""
    nets = _build_nets(cfg)
    if "model" in nets:
        from ganlab.models.autoencoder import Decoder
        nets["model"].load_state_dict(state["model"])
        G = Decoder(nets["model"])
    else:
        G = nets["G"]
        G.load_state_dict(state["G"])
    return G.to(device).eval().requires_grad_(False)


def explore(ckpt: Checkpoint) -> tuple[dict, dict]:
    """What a page shows of a saved G without training: (views, meters).

    1D: the density of G's samples against the target, with D(x), and the W1
    and KS meters (the task's own probe, on the CPU). MNIST: a grid of samples
    under views["grid"]; no meters (they need the data and the classifier).
    An AE or a VAE is on the MNIST task: its decoder's answer to the 64 codes
    from N(0, I) the live page shows (the VAE's prior samples, the AE's random codes).
    """
    if ckpt.cfg.task == "mnist":
        from ganlab.images import make_grid_image
        from ganlab.models import is_conditional
        from ganlab.noise import sample_noise
        G = generator(ckpt)
        gen = torch.Generator().manual_seed(ckpt.cfg.train.seed + 1)   # the MNIST task's grid_z, on a CPU
        if is_conditional(ckpt.cfg.model.name):   # one row per digit, as on the MNIST page
            z = sample_noise(ckpt.cfg.noise, 8, gen, "cpu").repeat(10, 1)
            labels = torch.arange(10).repeat_interleave(8)
        else:
            z, labels = sample_noise(ckpt.cfg.noise, 64, gen, "cpu"), None
        with torch.no_grad():
            return {"grid": make_grid_image(G(z, labels), nrow=8), "step": ckpt.step}, {}
    from ganlab.train import Trainer
    trainer = Trainer(ckpt.cfg.replace(train={"device": "cpu"}))
    restore(trainer, ckpt.state)
    views, meters = trainer.probe()
    return {**views, "step": ckpt.step}, meters


# -- moving checkpoints around -------------------------------------------------------------

def zip_folder(folder: str | Path) -> bytes:
    """The checkpoint's files in one zip, inside a folder of the checkpoint's name."""
    folder = Path(folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name in FILES:
            if (folder / name).is_file():
                z.write(folder / name, f"{folder.name}/{name}")
    return buffer.getvalue()


def import_zip(data: bytes, root: str | Path | None = None) -> Path:
    """Unpack an uploaded zipped checkpoint into the saves root, checked. Returns its folder.

    Only the known files are taken, from the zip's top level or one folder
    down; nothing is written outside a hidden temporary folder until the
    whole checkpoint has loaded cleanly.
    """
    root = Path(root) if root is not None else saves_root()
    if len(data) > MAX_UPLOAD_BYTES:
        raise CheckpointError("the upload is over 1 GiB; that is no ganlab checkpoint")
    entries = _entry_count(data)
    if entries > MAX_ENTRIES:
        raise CheckpointError(f"the zip holds {entries:,} entries; a ganlab checkpoint holds {len(FILES)} files")
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in z.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError):
        raise CheckpointError("the upload is not a zip file") from None
    for info in z.infolist():
        _check_entry(info)
    configs = [i for i in infos if Path(i.filename).name == "config.json" and len(Path(i.filename).parts) <= 2]
    if len(configs) != 1:
        raise CheckpointError("the zip holds no ganlab checkpoint (one config.json, at its top or one folder down)")
    prefix = str(Path(configs[0].filename).parent)
    chosen = {Path(i.filename).name: i for i in infos
              if str(Path(i.filename).parent) == prefix and Path(i.filename).name in FILES}
    for name, info in chosen.items():
        if info.file_size > MAX_FILE_BYTES[name]:
            raise CheckpointError(f"{name} unpacks to {info.file_size:,} bytes; a checkpoint's is at most "
                                  f"{MAX_FILE_BYTES[name]:,}")
    stem = safe_name(Path(prefix).name if prefix != "." else "upload")

    def write(tmp: Path) -> None:
        try:
            for name, info in chosen.items():
                with z.open(info) as src, open(tmp / name, "wb") as dst:
                    _copy_at_most(src, dst, MAX_FILE_BYTES[name], name)
        except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError):
            raise CheckpointError("the zip is corrupt or encrypted") from None
        load(tmp)   # raises CheckpointError, and the temporary folder goes

    folder = root / stem
    if folder.exists():
        folder = root / f"{stem}-{secrets.token_hex(3)}"
    write_atomically(folder, write)
    return folder


def _entry_count(data: bytes) -> int:
    """The number of entries a zip declares, read from its last record alone: zipfile would parse
    the whole directory first (a million empty entries: 23 s and 500 MB)."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    if end < 0 or end + 22 > len(data):
        raise CheckpointError("the upload is not a zip file")
    count = int.from_bytes(data[end + 10:end + 12], "little")
    return 1 << 20 if count == 0xFFFF else count    # ZIP64: more than a checkpoint could hold


def _check_entry(info: zipfile.ZipInfo) -> None:
    """Refuse the whole archive for one entry that points outside it: such a zip was made to attack."""
    name = info.filename.replace("\\", "/")
    parts = name.split("/")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name) or ".." in parts:
        raise CheckpointError("the zip has an entry whose path leaves its folder (absolute, or with ..); "
                              "it was refused whole")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise CheckpointError("the zip has a symbolic link; it was refused whole")


def _copy_at_most(src, dst, limit: int, name: str) -> None:
    # The sizes in a zip's directory are the sender's word; count what actually comes out.
    copied = 0
    while chunk := src.read(1 << 20):
        copied += len(chunk)
        if copied > limit:
            raise CheckpointError(f"{name} unpacks to more than {limit:,} bytes")
        dst.write(chunk)


def delete(folder: str | Path) -> None:
    """Remove a checkpoint folder (only one that is a checkpoint)."""
    folder = Path(folder)
    if not is_checkpoint(folder):
        raise CheckpointError(f"{folder} is not a ganlab checkpoint")
    shutil.rmtree(folder)


def is_checkpoint(folder: Path) -> bool:
    """Does config.json carry ganlab's format mark? (Nothing else is ever replaced or deleted.)"""
    try:
        return json.loads((Path(folder) / "config.json").read_text()).get("format") == FORMAT
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return False
