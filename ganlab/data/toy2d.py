"""2D targets: a ring or a grid of Gaussians, a line, two moons, or your own points from a CSV.

Samples are drawn with torch on the training device from the run's own
torch.Generator, like the 1D targets. Each built-in target also knows its
parts (a Gaussian, a moon, the line) and, for any points, which part each is
nearest and how far from it in units of the noise std: the mode-coverage and
quality meters are built on that. Points from a CSV have no known parts, so
only the distance meter applies to them.

An uploaded CSV is checked, then saved under the hash of its points
(save_points), and a run's config names that file: the run can be repeated
from its config alone.
"""
from __future__ import annotations

import csv
import errno
import hashlib
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganlab import metrics
from ganlab.config import POINTS_NAME, Target2D

MAX_CSV_BYTES = 5_000_000    # about 200k rows of two numbers: more than a 2D toy needs
MIN_POINTS = 10              # fewer is not a distribution worth learning
MAX_POINTS = 200_000
MAX_ABS_VALUE = 1e6          # beyond this, float32 training loses all precision near the data


class PointsFileError(ValueError):
    """A CSV of 2D points that cannot be used; the message says why, in plain words."""


# -- reading and saving your own points --------------------------------------------------------

def read_points_csv(source: bytes | str | Path) -> np.ndarray:
    """Points [n, 2] (float64) from a CSV with two numeric columns and an optional header row.

    `source` is the file's bytes, or a path. Commas, semicolons, tabs or spaces
    separate the columns. Raises PointsFileError for an empty, oversized,
    non-text or malformed file, with the line that is wrong.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise PointsFileError(f"no file of points at {path}")
        if path.stat().st_size > MAX_CSV_BYTES:
            raise PointsFileError(f"the file is {path.stat().st_size:,} bytes; the limit is {MAX_CSV_BYTES:,}")
        source = path.read_bytes()
    if len(source) > MAX_CSV_BYTES:
        raise PointsFileError(f"the file is {len(source):,} bytes; the limit is {MAX_CSV_BYTES:,}")
    try:
        text = source.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PointsFileError("the file is not a text (UTF-8) CSV file") from None
    if text.count("\n") > MAX_POINTS + 1:   # refused before it is split and parsed
        raise PointsFileError(f"the file has more than {MAX_POINTS:,} lines; the limit is {MAX_POINTS:,} points")
    lines = [(i, line) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise PointsFileError("the file is empty: it needs two columns of numbers, x and y")
    delimiter = next((d for d in ",;\t" if d in lines[0][1]), None)
    rows = []
    for number, line in lines:
        fields = next(csv.reader([line], delimiter=delimiter)) if delimiter else line.split()
        rows.append((number, [f.strip() for f in fields]))
    if not any(_is_number(f) for f in rows[0][1]):
        rows = rows[1:]   # a header row: every field is text
    points = np.empty((len(rows), 2), dtype=np.float64)
    for row, (number, fields) in enumerate(rows):
        if len(fields) != 2:
            raise PointsFileError(f"line {number} has {len(fields)} column{'s' * (len(fields) != 1)}; "
                                  f"each row needs exactly two, x and y")
        for col, value in enumerate(fields):
            if not _is_number(value):
                # The value itself is not quoted: an error must never show a file's content.
                raise PointsFileError(f"line {number}, column {col + 1} is not a number")
            points[row, col] = float(value)
        if not np.all(np.isfinite(points[row])):
            raise PointsFileError(f"line {number}: NaN or infinite values cannot be learned")
        if np.any(np.abs(points[row]) > MAX_ABS_VALUE):
            raise PointsFileError(f"line {number}: values must lie within ±{MAX_ABS_VALUE:g}")
    if len(points) < MIN_POINTS:
        raise PointsFileError(f"the file has {len(points)} point{'s' * (len(points) != 1)}; "
                              f"give at least {MIN_POINTS}")
    if len(points) > MAX_POINTS:
        raise PointsFileError(f"the file has {len(points):,} points; the limit is {MAX_POINTS:,}")
    return points


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def default_points_dir() -> Path:
    """Where uploaded point sets are kept: the user's cache folder."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ganlab" / "points"


def points_name(data: bytes) -> str:
    """A kept point set's name: the hash of its file's bytes."""
    return f"points-{hashlib.sha256(data).hexdigest()[:16]}.csv"


def save_points(points: np.ndarray, folder: Path | str | None = None) -> Path:
    """Write points to FOLDER/points-<hash>.csv and return the path.

    The name is a hash of the points, so the same points always get the same
    file and a config that names it stays true to the data it was run on.
    """
    text = "x,y\n" + "".join(f"{x!r},{y!r}\n" for x, y in np.asarray(points, dtype=np.float64).tolist())
    data = text.encode()
    folder = Path(folder) if folder is not None else default_points_dir()
    path = folder / points_name(data)
    if not path.is_file():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            tmp.replace(path)   # atomic: a reader never sees half a file
        except OSError as e:
            tmp.unlink(missing_ok=True)
            full = " (the disk is full)" if e.errno == errno.ENOSPC else ""
            raise PointsFileError(f"the points could not be kept{full}: {e.strerror or type(e).__name__}") from None
    return path


def points_file(name: str, folder: Path | str | None = None) -> Path:
    """The kept point set a config names. A config holds the file's name, never a path: a link
    or a checkpoint could otherwise make the server read any file it can open."""
    if not POINTS_NAME.fullmatch(name or ""):
        raise PointsFileError("the CSV target names no uploaded point set: upload the CSV on the 2D page")
    path = (Path(folder) if folder is not None else default_points_dir()) / name
    if not path.is_file():
        raise PointsFileError("the point set this run was trained on is no longer on this server: "
                              "upload its CSV again")
    return path


# -- the targets -------------------------------------------------------------------------------

class Target:
    def __init__(self, cfg: Target2D):
        self.cfg = cfg
        self.std = cfg.std
        self.centers = None   # the Gaussians' means [K, 2], for the ring and the grid
        self.points = None    # the CSV's points [n, 2]
        self._tensors: dict[tuple[str, str], Tensor] = {}
        if cfg.kind == "ring":
            angles = 2 * np.pi * np.arange(cfg.modes) / cfg.modes
            self.centers = cfg.radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        elif cfg.kind == "grid":
            ticks = (np.arange(cfg.grid_size) - (cfg.grid_size - 1) / 2) * cfg.spacing
            xs, ys = np.meshgrid(ticks, ticks)
            self.centers = np.stack([xs.ravel(), ys.ravel()], axis=1)
        elif cfg.kind == "line":
            a = math.radians(cfg.angle)
            self.direction = np.array([math.cos(a), math.sin(a)])
        elif cfg.kind == "csv":
            self.points = read_points_csv(points_file(cfg.csv_path))
        # moons: sklearn's make_moons, scaled by the radius and centred on the origin
        self._moon_shift = np.array([0.5, 0.25]) * cfg.radius

    @property
    def num_parts(self) -> int:
        """How many parts (modes) the meters can tell apart: 0 for a CSV."""
        return {"ring": self.cfg.modes, "grid": self.cfg.grid_size ** 2, "line": 1, "moons": 2,
                "csv": 0}[self.cfg.kind]

    def sample(self, n: int, gen: torch.Generator, device) -> Tensor:
        c = self.cfg
        if c.kind == "csv":
            points = self._on(device, "points")
            return points[torch.randint(len(points), (n,), generator=gen, device=device)]
        noise = c.std * torch.randn(n, 2, generator=gen, device=device)
        if self.centers is not None:
            centers = self._on(device, "centers")
            return centers[torch.randint(len(centers), (n,), generator=gen, device=device)] + noise
        t = torch.rand(n, 1, generator=gen, device=device)
        if c.kind == "line":
            return (t - 0.5) * c.length * self._on(device, "direction") + noise
        # moons: the upper half circle, or the lower one shifted right and down
        angle = math.pi * t
        upper = torch.cat([torch.cos(angle), torch.sin(angle)], dim=1)
        lower = torch.cat([1 - torch.cos(angle), 0.5 - torch.sin(angle)], dim=1)
        which = torch.randint(2, (n, 1), generator=gen, device=device).bool()
        return c.radius * torch.where(which, lower, upper) - self._on(device, "_moon_shift") + noise

    def _on(self, device, name: str) -> Tensor:
        """An array attribute as a tensor on `device`, copied there once: a copy per batch
        would cost a host-to-device transfer every step (and cannot go in a CUDA graph)."""
        key = (name, str(device))
        if key not in self._tensors:
            self._tensors[key] = torch.as_tensor(getattr(self, name), dtype=torch.float32, device=device)
        return self._tensors[key]

    def assign(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """For each point, its nearest part and its distance from it in stds; None for a CSV."""
        points = np.asarray(points, dtype=np.float64)
        c = self.cfg
        if self.centers is not None:
            return metrics.nearest_mode(points, self.centers, c.std)
        if c.kind == "line":
            half = c.length / 2
            along = np.clip(points @ self.direction, -half, half)
            dist = np.linalg.norm(points - along[:, None] * self.direction, axis=1)
            return np.zeros(len(points), dtype=np.int64), dist / c.std
        if c.kind == "moons":
            r = c.radius
            upper = _arc_distance(points + self._moon_shift, np.zeros(2), r, 0.0)
            lower = _arc_distance(points + self._moon_shift, np.array([r, 0.5 * r]), r, np.pi)
            return (lower < upper).astype(np.int64), np.minimum(upper, lower) / c.std
        return None

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The corners (low, high) of a box holding nearly all of the target."""
        c = self.cfg
        if c.kind == "csv":
            return self.points.min(axis=0), self.points.max(axis=0)
        if self.centers is not None:
            core = self.centers
        elif c.kind == "line":
            core = np.stack([-self.direction, self.direction]) * c.length / 2
        else:
            core = np.array([[-1.5, -0.75], [1.5, 0.75]]) * c.radius
        return core.min(axis=0) - 3 * c.std, core.max(axis=0) + 3 * c.std


def _arc_distance(points: np.ndarray, center: np.ndarray, radius: float, start: float) -> np.ndarray:
    """Distance from each point to the half circle from angle `start` to `start` + pi."""
    v = points - center
    rel = np.mod(np.arctan2(v[:, 1], v[:, 0]) - start, 2 * np.pi)
    to_circle = np.abs(np.linalg.norm(v, axis=1) - radius)
    ends = center + radius * np.array([[math.cos(start), math.sin(start)],
                                       [math.cos(start + math.pi), math.sin(start + math.pi)]])
    to_ends = np.linalg.norm(points[:, None, :] - ends[None], axis=2).min(axis=1)
    return np.where(rel <= np.pi, to_circle, to_ends)

