"""Charts of a sweep (ganlab.sweeps): pure functions from its trials' rows to plotly figures.

A row is one trial: its settings by field name ("opt_d.lr"), "seed", "status", and its final
meters by meter name. The map of a sweep is the teaching picture: where in the settings a GAN
trains, and where it diverges or collapses. Those trials are marked in words on their cells,
since a colour alone cannot say "diverged" (and a diverged trial has no final meter to colour by).
"""
from __future__ import annotations

import math
from collections import Counter
from statistics import median

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ganlab.charts import figure, metric_words, overlay_figure
from ganlab.meters import METERS, meter

# A trial's status, as the engine records it, in the words its cell shows. Only these are marked:
# a pending or running trial leaves its cell blank, and a finished one shows its value.
MARKED = {"diverged": "diverged", "collapsed": "collapsed", "failed": "failed", "stopped": "stopped",
          "interrupted": "interrupted"}
# Statuses whose final meters are a result: a collapsed G still ended its budget, and its W1 says
# how far from the target it got. A diverged or failed trial's last reading is not a result.
SCORED = ("finished", "collapsed")
# ColorBrewer-like diverging scales read as good/bad; one sequential scale, with the good end bright
# (reversed for a meter where lower is better), reads the same way for every meter.
SCALE = "Viridis"
NO_VALUE = "#e8e8e8"   # a cell whose trials ended with no result (all diverged, say): grey behind its words


def _finite(value) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(float(value))


def cells(rows: list[dict], x_field: str, y_field: str | None, meter_name: str) -> list[dict]:
    """The sweep's rows grouped by their (x, y) settings, one dict per cell: "x", "y" (None for one
    axis), "value" (the median of the scored trials' final meter, over seeds; None without one),
    "trials" (how many), "counts" (status -> how many), "done" (how many have ended)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row[x_field], row[y_field] if y_field else None), []).append(row)
    out = []
    for (x, y), members in groups.items():
        scores = [float(r[meter_name]) for r in members
                  if r.get("status") in SCORED and _finite(r.get(meter_name))]
        counts = Counter(r.get("status", "pending") for r in members)
        done = sum(n for status, n in counts.items() if status not in ("pending", "running"))
        out.append({"x": x, "y": y, "value": median(scores) if scores else None, "trials": len(members),
                    "counts": dict(counts), "done": done, "scored": len(scores)})
    return out


def cell_words(cell: dict, fmt: str) -> str:
    """What a cell says: its value, then each way its trials went wrong, with how many of its
    seeds did ("collapsed 2/3"; alone, "diverged"). Blank while none of its trials has ended."""
    lines = [fmt.format(cell["value"])] if cell["value"] is not None else []
    for status, word in MARKED.items():
        n = cell["counts"].get(status, 0)
        if n:
            lines.append(word if n == cell["trials"] == 1 else f"{word} {n}/{cell['trials']}")
    return "<br>".join(lines)


def colorbar_title(meter_name: str) -> str:
    """The colour bar's title: the meter in words, and which way is better."""
    spec = meter(meter_name)
    return f"{spec.words}<br>({spec.better})" if spec.better else spec.words


def sweep_heatmap(rows: list[dict], x_field: str, y_field: str | None, meter_name: str, *,
                  x_title: str = "", y_title: str = "", log_x: bool = False, log_y: bool = False,
                  height: int | None = None) -> go.Figure:
    """The sweep's final meter over its one or two settings.

    Each cell is one setting (or pair): the median of its seeds' final meter, in the colour and in
    figures, with the seeds that diverged, collapsed, failed or were stopped named on it in words.
    A cell none of whose trials has ended is blank. A grid sweep draws a heatmap; settings drawn at
    random share no grid, so each trial's setting is then a coloured marker with its words beside.
    `log_x`/`log_y`: a log axis, for settings spaced on a log scale (learning rates).
    """
    spec = meter(meter_name)
    title = f"Final {metric_words(meter_name)} over the sweep" + (" (median over seeds)" if _seeded(rows) else "")
    table = cells(rows, x_field, y_field, meter_name)
    xs = sorted({c["x"] for c in table})
    ys = sorted({c["y"] for c in table}) if y_field else [None]
    colour = dict(colorscale=SCALE, reversescale=spec.higher_is_better is False,
                  colorbar=dict(title=dict(text=colorbar_title(meter_name)), thickness=14))
    words = {(c["x"], c["y"]): cell_words(c, spec.fmt) for c in table}
    hover = {(c["x"], c["y"]): _hover(c, spec.fmt) for c in table}
    values = [c["value"] for c in table if c["value"] is not None]
    if values:
        colour.update(zmin=min(values), zmax=max(values) if max(values) > min(values) else min(values) + 1e-9)
    layout = dict(xaxis=dict(title=dict(text=x_title or x_field), type="log" if log_x else "linear",
                             exponentformat="power" if log_x else "B", range=_span(xs, log_x)),
                  plot_bgcolor="white")
    if y_field:
        layout["yaxis"] = dict(title=dict(text=y_title or y_field), type="log" if log_y else "linear",
                               exponentformat="power" if log_y else "B", range=_span(ys, log_y))
    else:
        layout["yaxis"] = dict(visible=False)
    height = height or (220 if not y_field else 460)
    if len(xs) * len(ys) == len(table):
        # A grid's ticks are its settings, each under its own column (or beside its row), as typed:
        # the reader wants the value of each cell, not the decades of a log axis.
        layout["xaxis"].update(tickvals=xs, ticktext=[_tick(v) for v in xs])
        if y_field:
            layout["yaxis"].update(tickvals=ys, ticktext=[_tick(v) for v in ys])
        by_cell = {(c["x"], c["y"]): c["value"] for c in table}
        z = [[by_cell.get((x, y)) for x in xs] for y in ys]
        text = [[words.get((x, y), "") if by_cell.get((x, y)) is not None else "" for x in xs] for y in ys]
        hovertext = [[hover.get((x, y), "") for x in xs] for y in ys]
        trace = dict(type="heatmap", x=xs, y=ys if y_field else [0], z=z, text=text, texttemplate="%{text}",
                     textfont=dict(size=12), hovertext=hovertext, hoverinfo="text", xgap=2, ygap=2, **colour)
        # A cell with trials but no value (all diverged) is grey, so its words sit on a cell, not a hole.
        blank = [[0 if (x, y) in by_cell and by_cell[(x, y)] is None and words.get((x, y)) else None
                  for x in xs] for y in ys]
        # Its words are on that grey layer: plotly draws no text on a heatmap's empty cells, and a
        # sweep stopped before any result has nothing else.
        back = dict(type="heatmap", x=xs, y=ys if y_field else [0], z=blank, showscale=False, hoverinfo="skip",
                    colorscale=[[0, NO_VALUE], [1, NO_VALUE]], xgap=2, ygap=2, textfont=dict(size=12),
                    text=[[words.get((x, y), "") if by_cell.get((x, y)) is None else "" for x in xs] for y in ys],
                    texttemplate="%{text}")
        return figure([back, trace], title, height, **layout)
    # Random settings: one marker per cell, coloured by its value (grey without one), its words beside.
    # Plotly fits the axes to the markers: no cells to keep whole.
    for axis in ("xaxis", "yaxis"):
        layout[axis].pop("range", None)
    marker_values = [c["value"] if c["value"] is not None else np.nan for c in table]
    trace = dict(type="scatter", mode="markers+text", x=[c["x"] for c in table],
                 y=[c["y"] if y_field else 0 for c in table], text=[words[(c["x"], c["y"])] for c in table],
                 textposition="top center", textfont=dict(size=12), hoverinfo="text",
                 hovertext=[hover[(c["x"], c["y"])] for c in table],
                 marker=dict(size=16, color=marker_values, line=dict(color="#555555", width=1), showscale=True,
                             **{{"zmin": "cmin", "zmax": "cmax"}.get(k, k): v for k, v in colour.items()}),
                 showlegend=False)
    return figure([trace], title, height, **layout)


def _tick(value) -> str:
    return f"{value:.3g}" if _finite(value) else str(value)


def _span(values: list, log: bool) -> list[float] | None:
    """An axis range holding every cell whole, half a step beyond the first and last values (in log10
    units on a log axis, as plotly takes them). Set, not left to plotly: before any trial has a result
    every cell is empty, and plotly would then pick a range of its own (10^-1 to 10^4)."""
    points = [math.log10(v) if log else float(v) for v in values if _finite(v) and (v > 0 or not log)]
    if not points:
        return None
    if len(points) == 1:
        half = 0.5 if log else max(abs(points[0]) * 0.5, 0.5)
    else:
        half = min(b - a for a, b in zip(points, points[1:])) / 2
    return [points[0] - half, points[-1] + half]


def _seeded(rows: list[dict]) -> bool:
    return len({r.get("seed") for r in rows}) > 1


def _hover(cell: dict, fmt: str) -> str:
    value = fmt.format(cell["value"]) if cell["value"] is not None else "no result"
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(cell["counts"].items()))
    return f"{value} ({cell['scored']} of {cell['trials']} seeds scored; {statuses})"


# The per-step curves of a GAN's training step: noisy, so drawn raw and smoothed; meters as measured.
PER_STEP = ("loss_d", "loss_g", "d_real", "d_fake", "g_grad_norm", "gp_grad_norm")


def sweep_curves(curves_by_label: dict[str, dict], metric: str, *, log_y: bool = False) -> go.Figure:
    """The picked trials' curves of one metric, overlaid ({trial label: its curves, as
    Sweep.curves gives them: "step" and a column per metric}). A label may hold a name someone
    typed: charts.overlay_figure escapes it."""
    series = {label: (np.asarray(c["step"]), np.asarray(c[metric]))
              for label, c in curves_by_label.items() if "step" in c and metric in c}
    fig = overlay_figure(series, metric, smooth_alpha=0.05 if metric in PER_STEP else None, log_y=log_y)
    words = metric_words(metric)
    if series:
        fig.update_layout(title_text=f"{words[0].upper()}{words[1:]} by trial")
    return fig


def meters_in(rows: list[dict]) -> list[str]:
    """The meters some row has a value of, in the meter registry's order."""
    return [name for name in METERS if any(_finite(r.get(name)) for r in rows)]


STATUS_WORDS = {"pending": "waiting", "running": "training", "finished": "finished", "diverged": "diverged",
                "collapsed": "collapsed", "failed": "failed", "stopped": "stopped",
                "interrupted": "interrupted"}


def trials_frame(rows: list[dict], fields: list[str], words: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per trial, headed in words: its number, settings, seed, how it ended and why, its last
    step, how long it trained, and its final meters under their short headings (ganlab.meters). Cells are data, never
    markup: a reason quotes an error, which st.dataframe shows as text."""
    words = words or {}
    shown = meters_in(rows)
    table = []
    for r in rows:
        status = r.get("status", "pending")
        table.append({"trial": r["trial"], **{words.get(f, f): r.get(f) for f in fields}, "seed": r.get("seed"),
                      "status": STATUS_WORDS.get(status, str(status)), "why": r.get("reason") or None,
                      "step": r.get("step"), "seconds": r.get("seconds"),
                      **{meter(m).heading: (float(r[m]) if _finite(r.get(m)) else None) for m in shown}})
    return pd.DataFrame(table)


def table_shown(frame: pd.DataFrame, meter_name: str) -> pd.DataFrame:
    """The columns of the table a page shows (the CSV keeps them all): the summary meters (those the
    table of runs shows) and the mapped one, and "why" only where some trial has a reason."""
    keep = {meter(m).heading for m in METERS if METERS[m].summary or m == meter_name}
    meter_headings = {meter(m).heading for m in METERS}
    columns = [c for c in frame.columns if (c not in meter_headings or c in keep)
               and not (c == "why" and frame[c].isna().all())]
    return frame[columns]


def trial_label(row: dict, fields: list[str]) -> str:
    """A trial in a picker or legend: its number, settings and seed ("#3 · opt_d.lr=0.001 · seed 101")."""
    parts = [f"#{row['trial']}"] + [f"{f}={row[f]:.3g}" if _finite(row.get(f)) else f"{f}={row.get(f)}"
                                    for f in fields]
    return " · ".join(parts + [f"seed {row['seed']}"])

