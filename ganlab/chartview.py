"""What a reader changes about a curve chart, as in TensorBoard: smoothing, log y, step or wall time
on x; and any chart's data as CSV.

The charts (ganlab.charts) tag each curve over steps with `meta` ("raw" and "smoothed" for a
smoothed pair, "curve" for a line drawn as measured); apply_view() reads those tags, so every
chart of every page takes the same reader's settings without a parameter of its own.
"""
from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from ganlab.charts import smooth

X_AXES = {"step": "step", "wall": "wall time (s)"}
MAX_SMOOTHING = 0.99


@dataclass(frozen=True)
class CurveView:
    smoothing: float = 0.95     # TensorBoard's smoothing weight: 0 draws the raw values, 0.99 a long average
    log_y: bool = False
    x: str = "step"             # "step", or "wall": seconds since the run's first step

    def __post_init__(self):
        if not 0.0 <= self.smoothing <= MAX_SMOOTHING:
            raise ValueError(f"smoothing must be between 0 and {MAX_SMOOTHING}, got {self.smoothing!r}")
        if self.x not in X_AXES:
            raise ValueError(f"x must be one of {', '.join(X_AXES)}, got {self.x!r}")


def ema(values, weight: float) -> np.ndarray:
    """TensorBoard's smoothing: each point is weight x the average so far + (1 - weight) x its value,
    debiased for the zero the average starts from. weight 0 returns the values; NaNs are skipped."""
    return smooth(values, 1.0 - weight)


def apply_view(fig: go.Figure, view: CurveView, wall=None) -> go.Figure:
    """The figure with the reader's view on its curves over steps; other charts come back as they are.

    `wall` maps steps to seconds (Snapshot.wall_seconds): with view.x == "wall" the curves' x become
    those seconds. Only curves the chart smooths are smoothed (per-step metrics); meters, each
    measured on thousands of samples, are drawn as measured. The figure is changed in place
    (each draw builds its figures afresh) and returned.
    """
    curves = [t for t in fig.data if t.meta in ("raw", "smoothed", "curve")]
    if not curves:
        return fig
    raw = None
    for trace in curves:
        if trace.meta == "raw":
            raw = trace.y
        elif trace.meta == "smoothed" and raw is not None:
            trace.y = ema(raw, view.smoothing)
    if view.x == "wall" and wall is not None:
        for trace in curves:
            trace.x = wall(trace.x)
        fig.for_each_xaxis(lambda axis: axis.update(title_text=X_AXES["wall"]) if axis.title.text == "step" else None)
    if view.log_y:
        fig.update_yaxes(type="log", exponentformat="power")
    return fig


_FORMULA = ("=", "+", "-", "@", "\t", "\r")   # a spreadsheet reads a cell starting so as a formula


def _cell(text) -> str:
    text = html.unescape(str(text or ""))   # legends escape names someone typed; the CSV holds them as typed
    return "'" + text if text.startswith(_FORMULA) else text


def figure_csv(fig: go.Figure) -> str:
    """The data behind a chart, one row per point: the series (trace) name, x, y and, for a surface,
    a 3D scatter or a picture, z. Column heads are the axes' titles where the chart has them."""
    x_title = fig.layout.xaxis.title.text or "x"
    y_title = fig.layout.yaxis.title.text or "y"
    rows = []
    for trace in fig.data:
        name = _cell(trace.name)
        z = getattr(trace, "z", None)
        if z is not None and np.ndim(z) >= 2:          # a surface (heatmap, contour) or a picture
            z = np.asarray(z)
            z = z[..., 0] if z.ndim == 3 else z          # the sample grids are grey: R = G = B
            xs = trace.x if getattr(trace, "x", None) is not None else np.arange(z.shape[1])
            ys = trace.y if getattr(trace, "y", None) is not None else np.arange(z.shape[0])
            rows += [(name, x, y, z[i, j]) for i, y in enumerate(ys) for j, x in enumerate(xs)]
        elif getattr(trace, "x", None) is not None and getattr(trace, "y", None) is not None:
            zs = z if z is not None else [None] * len(trace.x)
            rows += [(name, x, y, zz) for x, y, zz in zip(trace.x, trace.y, zs)]
    has_z = any(row[3] is not None for row in rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["series", _cell(x_title), _cell(y_title)] + (["z"] if has_z else []))
    for name, x, y, z in rows:
        writer.writerow([name, _number(x), _number(y)] + ([_number(z)] if has_z else []))
    return out.getvalue()


def table_csv(frame) -> str:
    """A table (a pandas DataFrame) as CSV, its text cells kept from being read as formulas by a
    spreadsheet, as figure_csv's are; missing values are empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([_cell(column) for column in frame.columns])
    for values in frame.itertuples(index=False):
        writer.writerow([_number(None if _missing(v) else v) for v in values])
    return out.getvalue()


def _missing(value) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and not np.isfinite(value))


def _number(value):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    if isinstance(value, (np.floating, float)):
        return repr(float(value)) if np.isfinite(value) else ""
    if isinstance(value, np.integer):
        return int(value)
    return _cell(value) if isinstance(value, str) else value
