"""Checkpoints: a run saved as one folder, loaded back to resume or explore.

A checkpoint folder holds
    config.json   the Experiment, the run's name, page and step, and the format version
    weights.pt    the networks and their optimizers (a GAN: G, D, opt_g, opt_d; an AE or
                  a VAE: model, opt), the step counters and the run's random stream
    metrics.csv   the per-step history (step + the loss columns)
    meters.csv    the per-probe history (step + the task's meters)
    samples.png   the last sample grid (image tasks only)

It is written into a hidden temporary folder next to its final place and
renamed into place, so a crash or a full disk never leaves half a checkpoint,
and an older save of the same name survives until the new one is complete.

Loading never runs code from the files: weights.pt is read with
`torch.load(weights_only=True)`, which only rebuilds tensors and plain
containers, and everything is checked against the config before it is used.
Anything wrong becomes a CheckpointError with one line a user can act on.
"""
from __future__ import annotations

import csv
import io
import json
import os
import pickle
import secrets
import shutil
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
FILES = ("config.json", "weights.pt", "metrics.csv", "meters.csv", "samples.png")
MAX_UPLOAD_BYTES = 1 << 30          # a zipped checkpoint may unpack to at most 1 GiB
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
    loss: str = ""
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
    with run.borrow() as trainer:
        if trainer is None:
            raise CheckpointError("the run has no model yet: start it first")
        state = trainer_state(trainer)
        snap = run.snapshot()      # published at or before this step, never after
        cfg = run.cfg
    step = state["step"]
    folder = Path(folder) if folder is not None else default_folder(run, step)
    header = {
        "format": FORMAT, "version": VERSION, "name": run.name, "page": run.page, "step": step,
        "saved_at": time.time(), "saved": time.strftime("%Y-%m-%d %H:%M:%S"), "run_id": run.id,
        "events": [[int(step), str(kind), str(text)] for step, kind, text in snap.events],
        "experiment": cfg.to_dict(),
    }
    grid = snap.images[-1][1] if snap.images else None

    def write(tmp: Path) -> None:
        (tmp / "config.json").write_text(json.dumps(header, indent=2, allow_nan=False))
        torch.save(state, tmp / "weights.pt")
        _write_csv(tmp / "metrics.csv", snap.metrics)
        _write_csv(tmp / "meters.csv", snap.meters)
        if grid is not None:
            from ganlab.images import save_png
            save_png(grid, str(tmp / "samples.png"))

    write_atomically(folder, write)
    return folder


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
            if folder.exists():
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
        # A full disk reaches here as OSError, or as RuntimeError from inside torch.save.
        reason = e.strerror if isinstance(e, OSError) and e.strerror else (str(e).strip() or type(e).__name__).splitlines()[0]
        raise CheckpointError(f"could not save to {folder}: {reason}") from e


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
    try:
        header = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"config.json is corrupt: {e}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{folder.name} is not a ganlab checkpoint (config.json has no ganlab format mark)")
    if not isinstance(header.get("version"), int) or header["version"] > VERSION:
        raise CheckpointError(f"config.json has format version {header.get('version')!r}; this ganlab "
                              f"reads version {VERSION} and older")
    if not isinstance(header.get("step"), int) or header["step"] < 0:
        raise CheckpointError(f"config.json: step must be a whole number >= 0, got {header.get('step')!r}")
    if not isinstance(header.get("saved_at", 0.0), (int, float)):
        raise CheckpointError("config.json: saved_at must be a time in seconds")
    events = header.get("events", [])
    if not isinstance(events, list) or not all(
            isinstance(e, list) and len(e) == 3 and isinstance(e[0], int) and all(isinstance(t, str) for t in e[1:])
            for e in events):
        raise CheckpointError("config.json: events must be a list of [step, kind, text]")
    experiment = header.get("experiment")
    if not isinstance(experiment, dict):
        raise CheckpointError("config.json has no experiment settings")
    try:
        cfg = Experiment.from_dict(experiment)
    except ConfigError as e:
        raise CheckpointError(f"config.json: {e.field}: {str(e).split(': ', 1)[-1]}") from None
    except (TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"config.json holds a value of the wrong type ({e})") from None
    return header, cfg


def summary(folder: str | Path) -> Summary:
    folder = Path(folder)
    try:
        header, cfg = read_header(folder)
    except CheckpointError as e:
        return Summary(folder, name=folder.name, error=str(e))
    return Summary(folder, name=str(header.get("name", folder.name)), task=cfg.task, model=cfg.model.name,
                   loss=cfg.loss.name, step=header["step"], saved_at=float(header.get("saved_at", 0.0)))


def list_saved(root: str | Path | None = None) -> list[Summary]:
    """Every checkpoint folder in the saves root, newest first (hidden temporaries skipped)."""
    root = Path(root) if root is not None else saves_root()
    if not root.is_dir():
        return []
    found = [summary(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(found, key=lambda s: (s.error == "", s.saved_at), reverse=True)


def load(folder: str | Path) -> Checkpoint:
    """Read and check a checkpoint folder. Never runs code from it."""
    folder = Path(folder)
    header, cfg = read_header(folder)
    state = _load_weights(folder / "weights.pt", keys_for(cfg))
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


def _load_weights(path: Path, keys: dict) -> dict:
    if not path.is_file():
        raise CheckpointError(f"the checkpoint has no {path.name}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
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
    if not isinstance(state.get("rng"), Tensor) or state["rng"].dtype != torch.uint8:
        raise CheckpointError(f"{path.name} has no random-stream state")
    return state


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
        try:
            load_optimizer(opt, state[name])
        except (RuntimeError, ValueError, TypeError, KeyError) as e:
            raise CheckpointError(f"weights.pt: {name} does not match config.json ({e})") from None


def _build_nets(cfg: Experiment) -> dict[str, nn.Module]:
    """Fresh networks for the config, on the CPU, by the names weights.pt uses."""
    from ganlab.models import AUTOENCODERS, build_models
    if keys_for(cfg) is AE_KEYS:
        return {"model": AUTOENCODERS[cfg.model.name](cfg)}
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


def _read_csv(path: Path, expected: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """A history frame; a missing file is an empty history, a malformed one an error."""
    if not path.is_file():
        return {}
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise CheckpointError(f"{path.name} could not be read: {e}") from None
    if not rows or not rows[0] or rows[0][0] != "step":
        raise CheckpointError(f"{path.name} is not a ganlab history (its first column must be step)")
    header, body = rows[0], rows[1:]
    try:
        values = np.array([[float(v) for v in row] for row in body if row], dtype=np.float64)
    except ValueError as e:
        raise CheckpointError(f"{path.name} holds a value that is not a number ({e})") from None
    values = values.reshape(-1, len(header))
    if any(len(row) != len(header) for row in body if row):
        raise CheckpointError(f"{path.name} has rows of the wrong length")
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
    nets = _build_nets(ckpt.cfg)
    if "model" in nets:
        from ganlab.models.autoencoder import Decoder
        nets["model"].load_state_dict(ckpt.state["model"])
        G = Decoder(nets["model"])
    else:
        G = nets["G"]
        G.load_state_dict(ckpt.state["G"])
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
        from ganlab.models import CONDITIONAL
        from ganlab.noise import sample_noise
        G = generator(ckpt)
        gen = torch.Generator().manual_seed(ckpt.cfg.train.seed + 1)   # the MNIST task's grid_z, on a CPU
        if ckpt.cfg.model.name in CONDITIONAL:   # one row per digit, as on the MNIST page
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
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in z.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError):
        raise CheckpointError("the upload is not a zip file") from None
    configs = [i for i in infos if Path(i.filename).name == "config.json" and len(Path(i.filename).parts) <= 2]
    if len(configs) != 1:
        raise CheckpointError("the zip holds no ganlab checkpoint (one config.json, at its top or one folder down)")
    prefix = str(Path(configs[0].filename).parent)
    chosen = {Path(i.filename).name: i for i in infos
              if str(Path(i.filename).parent) == prefix and Path(i.filename).name in FILES}
    if sum(i.file_size for i in chosen.values()) > MAX_UPLOAD_BYTES:
        raise CheckpointError("the zip unpacks to more than 1 GiB; that is no ganlab checkpoint")
    stem = safe_name(Path(prefix).name if prefix != "." else "upload")

    def write(tmp: Path) -> None:
        try:
            for name, info in chosen.items():
                with z.open(info) as src, open(tmp / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError) as e:
            raise CheckpointError(f"the zip is corrupt or encrypted ({e})") from None
        load(tmp)   # raises CheckpointError, and the temporary folder goes

    folder = root / stem
    if folder.exists():
        folder = root / f"{stem}-{secrets.token_hex(3)}"
    write_atomically(folder, write)
    return folder


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
