"""Charts: pure functions from snapshot data to plotly figures.

Nothing here knows about Streamlit or threads, so every chart can be tested
by building it from plain arrays and reading the figure's traces.
"""
from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
from scipy.signal import lfilter

from ganlab.meters import (CONFIDENT, D_FAKE_TEST, D_REAL_TEST, FID, FID_RECON, KL_UNIFORM, KS, LABEL_ACCURACY,
                           MODES_COVERED, W1, meter)
from ganlab.losses import LOSSES

REAL = "#1f77b4"
FAKE = "#d62728"
DISC = "#2ca02c"
OPTIMAL = "#7f7f7f"


def smooth(values: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Exponential moving average that skips NaNs (debiased, like TensorBoard's).

    The average runs over the finite values only (one IIR filter pass, not a
    Python loop: pages smooth every curve on every redraw), and each point
    shows the average as of the last finite value at or before it.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    kept = values[finite]
    avg = lfilter([alpha], [1.0, alpha - 1.0], kept)
    debiased = avg / (1.0 - (1.0 - alpha) ** np.arange(1, len(kept) + 1))   # divide out the zero start
    last = np.cumsum(finite) - 1
    return np.where(last >= 0, debiased[np.maximum(last, 0)] if len(kept) else np.nan, np.nan)


LAYOUT = dict(margin=dict(l=50, r=20, t=30, b=40), uirevision="keep",
              legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
# The title sits at the top and reserves its own room, so a legend that wraps onto a second
# row (a narrow column) pushes the plot down instead of running over the title.
TITLE = dict(automargin=True, yref="container", y=1, yanchor="top", pad=dict(t=10))


def figure(traces: list[dict], title: str, height: int = 320, **layout) -> go.Figure:
    """A figure from trace dicts and layout settings, in one constructor call.

    Why one call: each of plotly's update_*/add_* methods walks its property
    tree, and a live page redraws its charts every second in the process that
    trains. Built at once, a curve chart costs about 2 ms instead of 12-18 ms.
    """
    return go.Figure(data=traces, layout={**LAYOUT, "title": {"text": title, **TITLE}, "height": height, **layout})


# Text size for a projector: a class reads the charts from the back of a room.
PROJECTOR_FONT = 16


def projector_fonts(fig: go.Figure, size: int = PROJECTOR_FONT) -> go.Figure:
    """A copy of `fig` whose text (ticks, legend, axis and chart titles, notes, colour bars) is at
    least `size` px; text already larger keeps its size. Axes grow their margins to fit.

    Every size is written out: a page's theme (Streamlit's sets 12 px ticks and legends in the
    figure's template) outranks what the text would inherit from the figure's font.
    """
    layout = fig.layout.to_plotly_json()
    # The default template comes back by itself; passed in, it would be checked again (5 ms a chart).
    layout.pop("template", None)
    _raise_fonts(layout, size)
    _at_least(layout, "font", size)
    _at_least(layout.setdefault("title", {}), "font", size + 2)
    legend = layout.setdefault("legend", {})
    _at_least(legend, "font", size)
    for name, axis in layout.items():
        if name.startswith(("xaxis", "yaxis")) and isinstance(axis, dict):
            _at_least(axis, "tickfont", size)
            _at_least(axis.setdefault("title", {}), "font", size)
            axis["automargin"] = True
    for note in layout.get("annotations", []):
        _at_least(note, "font", size)
    traces = [trace.to_plotly_json() for trace in fig.data]
    for trace in traces:
        _raise_fonts({k: v for k, v in trace.items() if isinstance(v, dict)}, size)
        if "colorbar" in trace:
            _at_least(trace["colorbar"], "tickfont", size)
            _at_least(trace["colorbar"].setdefault("title", {}), "font", size)
    return go.Figure(data=traces, layout=layout)


def _at_least(parent: dict, key: str, size: int) -> None:
    """parent[key] (a font) at `size` px or more."""
    font = parent.setdefault(key, {})
    font["size"] = max(size, font.get("size") or 0)


def _raise_fonts(node, size: int) -> None:
    """Raise every font size set in a plotly JSON tree (dicts and lists of dicts) to at least `size`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("font") and isinstance(value, dict) and value.get("size") is not None:
                value["size"] = max(size, value["size"])
            _raise_fonts(value, size)
    elif isinstance(node, (list, tuple)) and node and isinstance(node[0], dict):
        for item in node:
            _raise_fonts(item, size)


def guide_line(y: float, text: str = "") -> dict:
    """Layout settings for a dotted horizontal reference line at y, labelled at its right end."""
    line = dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y,
                line=dict(color=OPTIMAL, dash="dot"))
    label = dict(text=text, xref="paper", x=1, xanchor="right", yref="y", y=y, yanchor="bottom",
                 showarrow=False)
    return dict(shapes=[line], annotations=[label] if text else [])


# A right-hand axis for D's values over a density: ticks of its own and no grid. Synced to the
# density's grid lines, D's ticks would fall at odd values (0.318, 0.636, ...).
D_AXIS = dict(tickmode="auto", showgrid=False)


NO_STEPS_YET = "No data yet: the curves begin at the first step."


# -- what D's output is: a probe's views carry the loss's display (GANLoss.display) -----------

def shows_probability(views: dict) -> bool:
    """D's output is a probability (a sigmoid, in [0, 1]), not a raw score."""
    return views.get("output", "probability") == "probability"


def d_symbol(views: dict) -> str:
    """ "D(x)" or, for a critic, "f(x)"."""
    return views.get("symbol") or "D(x)"


def d_letter(views: dict) -> str:
    return d_symbol(views).split("(")[0]


def d_name(views: dict) -> str:
    """D's output as a legend names it: "D(x)", or "critic f(x)"."""
    return f"critic {d_symbol(views)}" if views.get("critic") else d_symbol(views)


def empty_figure(title: str, message: str) -> go.Figure:
    """A figure that says why it has no data, instead of an empty frame."""
    note = dict(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font=dict(size=14))
    return figure([], title, annotations=[note], xaxis=dict(visible=False), yaxis=dict(visible=False))


def density_figure(views: dict) -> go.Figure:
    """Real pdf and generated histogram; D(x) and D*(x) on a second axis."""
    if not views:
        return empty_figure("Densities", "Waiting for the first snapshot…")
    x = views["x"]
    symbol, probability = d_symbol(views), shows_probability(views)
    traces = [
        dict(type="bar", x=x, y=views["p_g"], width=float(x[1] - x[0]), name="generated (histogram)",
             marker_color=FAKE, opacity=0.45),
        dict(type="scatter", x=x, y=views["p_data"], name="target pdf", mode="lines",
             line=dict(color=REAL, width=3)),
    ]
    if views.get("d_curve") is not None:
        traces.append(dict(type="scatter", x=x, y=views["d_curve"], mode="lines", yaxis="y2",
                           line=dict(color=DISC, width=2), name=d_name(views)))
    d_axis = dict(overlaying="y", side="right", anchor="x", title=dict(text=symbol), **D_AXIS)
    if views.get("equilibrium") is not None and views.get("d_star") is not None:
        # BCE's best D and LSGAN's (targets 0 and 1) are the same: p_data / (p_data + p_g), times
        # the real label under one-sided label smoothing (the task scales d_star).
        d_star = d_star_where_defined(views["p_data"], views["p_g"], views["d_star"])
        traces.append(dict(type="scatter", x=x, y=d_star, mode="lines", name="optimal D*(x)",
                           yaxis="y2", line=dict(color=OPTIMAL, dash="dot")))
    if probability:
        d_axis.update(range=[0, 1.02])
    title = f"Real and generated densities (step {views.get('step', 0)})"
    if views.get("outside", 0) > 0.001:
        title += f" · {views['outside']:.0%} of samples off the chart"
    return figure(traces, title, height=380, xaxis=dict(title=dict(text="x"), domain=[0, 0.94]),
                  yaxis=dict(title=dict(text="density"), rangemode="tozero"), yaxis2=d_axis)


# D* = p_data / (p_data + p_g) is drawn only where p_data + p_g is at least this share of its peak.
# In the tails both densities are nearly 0 and p_g is a histogram's few counts, so their ratio
# there jumps between 0 and 1 and says nothing about what D should do.
D_STAR_FLOOR = 0.05


def d_star_where_defined(p_data, p_g, d_star, floor: float = D_STAR_FLOOR) -> np.ndarray:
    """D*(x), NaN (a gap in the line) where p_data + p_g is below `floor` of its peak."""
    total = np.asarray(p_data, dtype=np.float64) + np.asarray(p_g, dtype=np.float64)
    peak = np.nanmax(total) if total.size and np.isfinite(total).any() else 0.0
    d_star = np.asarray(d_star, dtype=np.float64)
    return np.where(total >= floor * peak, d_star, np.nan) if peak > 0 else np.full_like(d_star, np.nan)


def line_traces(steps, values, name: str, color: str, smooth_alpha: float | None = None, *,
                markers: bool = True, **common) -> list[dict]:
    """One curve as trace dicts. Smoothed: the raw values faint, behind a bold smoothed line.
    Not smoothed: a line, with markers for sparse meters. `common` goes on every trace
    (axes, legend group)."""
    values = np.asarray(values, dtype=np.float64)
    # `meta` tells ganlab.chartview which traces are curves over steps, and which smoothed line
    # belongs to which raw one, so that a reader's smoothing, log y and wall-time x apply to them.
    if smooth_alpha:
        return [{**common, "type": "scatter", "x": steps, "y": values, "mode": "lines", "name": f"{name} (raw)",
                 "line": dict(color=color, width=1), "opacity": 0.3, "showlegend": False, "meta": "raw"},
                {"showlegend": True, **common, "type": "scatter", "x": steps, "y": smooth(values, smooth_alpha),
                 "mode": "lines", "name": name, "line": dict(color=color, width=2), "meta": "smoothed"}]
    return [{**common, "type": "scatter", "x": steps, "y": values, "mode": "lines+markers" if markers else "lines",
             "name": name, "line": dict(color=color, width=2), "marker": dict(size=4), "meta": "curve"}]


def _has(steps, values) -> bool:
    return steps is not None and values is not None and len(steps) > 0 and len(values) == len(steps)


def lines_figure(curves: list[tuple], title: str, *, smooth_alpha: float | None = None, log_y: bool = False,
                 y_title: str = "", markers: bool = True, empty: str = NO_STEPS_YET,
                 height: int = 320, x_max: float | None = None, **layout) -> go.Figure:
    """Curves over steps on one pair of axes; `curves` holds (steps, values, name, colour).
    A curve whose values don't line up with its steps is left out; with none left, the
    figure says `empty`. `x_max` fixes the step axis at [0, x_max], so that a page's charts,
    whose histories end at different steps, share one range. `layout` adds layout settings,
    such as a guide_line()."""
    traces = [trace for steps, values, name, color in curves if _has(steps, values)
              for trace in line_traces(steps, values, name, color, smooth_alpha, markers=markers)]
    if not traces:
        return empty_figure(title, empty)
    y_axis = dict(title=dict(text=y_title), type="log" if log_y else "linear",
                  exponentformat="power" if log_y else "B", **layout.pop("yaxis", {}))
    return figure(traces, title, height, xaxis=step_axis(x_max), yaxis=y_axis, **layout)


def step_axis(x_max: float | None = None) -> dict:
    """A step axis: [0, x_max] when given (a page's shared range), else fitted to the data."""
    return dict(title=dict(text="step"), **({"range": [0, x_max]} if x_max else {}))


PALETTE = [REAL, FAKE, DISC, "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]


def curves_figure(history: dict, series: dict[str, str], title: str, *, smooth_alpha: float | None = 0.05,
                  **options) -> go.Figure:
    """One history's columns over steps, one line per column in `series` ({column: label});
    raw faint and smoothed bold. `options` are lines_figure's."""
    steps = history.get("step")
    curves = [(steps, history.get(column), label, color) for (column, label), color in zip(series.items(), PALETTE)]
    return lines_figure(curves, title, smooth_alpha=smooth_alpha, **options)


def loss_figure(metrics: dict, x_max: float | None = None) -> go.Figure:
    return curves_figure(metrics, {"loss_d": "D loss", "loss_g": "G loss"}, "Losses (raw and smoothed)",
                         y_title="loss", x_max=x_max)


def _d_means_figure(history: dict, columns: tuple[str, str], where: tuple[str, str], title: str,
                    tail: str, views: dict | None, **more) -> go.Figure:
    """D's mean output on real and on fake (history columns), named as the loss shows D's output."""
    views = views if views is not None else {}
    f, who = d_letter(views), ("Critic" if views.get("critic") else "D")
    names = {columns[0]: f"mean {f}(real){where[0]}", columns[1]: f"mean {f}(fake){where[1]}"}
    more.setdefault("y_title", f"mean {d_symbol(views)}")
    eq = views.get("equilibrium", 0.5)
    if eq is None:
        return curves_figure(history, names, f"{who} {title}", **more)
    return curves_figure(history, names, f"{who} {title} (both head to {eq:g}{tail})", **more, **guide_line(eq))


def d_outputs_figure(metrics: dict, views: dict | None = None, x_max: float | None = None) -> go.Figure:
    """D's mean output on real and fake per step; `views` (a probe's) says what D's output is."""
    return _d_means_figure(metrics, ("d_real", "d_fake"), ("", ""), "on real and fake", " at equilibrium", views,
                           x_max=x_max)


def quality_figure(meters: dict, x_max: float | None = None) -> go.Figure:
    # Below 0.02, the meter cannot tell the samples from the target (10k samples).
    return curves_figure(meters, {W1.name: "W1 to target", KS.name: "KS statistic"},
                         better_title(W1.name, "Distance to the target"), smooth_alpha=None, y_title="distance",
                         x_max=x_max, **guide_line(0.02, "noise floor (W1)"))


def modes_figure(meters: dict, x_max: float | None = None) -> go.Figure:
    """1D mixtures: the share of samples near each mode, and how many modes are covered."""
    shares = sorted(k for k in meters if k.startswith("mode_share_"))
    series = {k: f"mode {int(k.rsplit('_', 1)[1]) + 1}" for k in shares}
    covered = meters.get(MODES_COVERED.name)
    title = "Share of samples near each mode"
    if covered is not None and len(covered):
        title += f" · {int(covered[-1])} of {len(shares)} modes covered"
    return curves_figure(meters, series, title, smooth_alpha=None, y_title="share of samples", x_max=x_max)


def grad_norm_figure(metrics: dict, x_max: float | None = None) -> go.Figure:
    return curves_figure(metrics, {"g_grad_norm": "‖∇G‖"}, "Norm of the gradient reaching G",
                         log_y=True, y_title="‖∇G‖", x_max=x_max)


def image_figure(grid: np.ndarray | None, title: str, height: int = 420) -> go.Figure:
    """A uint8 picture (a sample grid), drawn pixel-exact."""
    if grid is None:
        return empty_figure(title, "No samples yet: the first grid comes with the first snapshot.")
    image = dict(type="image", z=np.repeat(grid[:, :, None], 3, axis=2), colormodel="rgb", hoverinfo="skip")
    return figure([image], title, height, margin=dict(l=10, r=10, t=40, b=10),
                  xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"))


def d_test_figure(meters: dict, views: dict | None = None, x_max: float | None = None) -> go.Figure:
    """Seed 003's p_real / p_fake traces, measured on held-out digits; `views` says what D's output is."""
    return _d_means_figure(meters, (D_REAL_TEST.name, D_FAKE_TEST.name), (", held out", ""),
                           "on held-out real and on fake digits", "", views, smooth_alpha=None, x_max=x_max)


# -- Loss lab: runs that differ only in their loss, drawn side by side -----------------------
# The functions below take {loss name: history or views}, one entry per run, in the order
# the runs were made. Each loss keeps one colour on every chart.

SPARE_COLOR = "#7f7f7f"   # a loss the registry does not know (a run saved by another version)
# Four losses' names fill more than one row, and panels' own titles take the space above the
# plots, so these legends sit at the figure's bottom edge, under the x axis.
_LEGEND_BELOW = dict(margin=dict(l=50, r=50, t=80, b=110),
                     legend=dict(orientation="h", yref="container", yanchor="bottom", y=0.01, x=0))


def loss_color(loss: str) -> str:
    """The loss's own colour (ganlab.losses), the same on every chart."""
    return LOSSES[loss].color if loss in LOSSES else SPARE_COLOR


def loss_short(loss: str) -> str:
    return LOSSES[loss].short if loss in LOSSES else loss


def by_loss_figure(by_loss: dict[str, dict], column: str, title: str, *, smooth_alpha: float | None = None,
                   **options) -> go.Figure:
    """One line per loss for one column, on shared axes: for quantities comparable across losses."""
    curves = [(history.get("step"), history.get(column), loss_short(loss), loss_color(loss))
              for loss, history in by_loss.items()]
    return lines_figure(curves, title, smooth_alpha=smooth_alpha, height=360, **{**_LEGEND_BELOW, **options})


def w1_by_loss_figure(meters_by_loss: dict[str, dict], x_max: float | None = None) -> go.Figure:
    guide = guide_line(0.02, "noise floor") if any(_has(m.get("step"), m.get(W1.name))
                                                   for m in meters_by_loss.values()) else {}
    return by_loss_figure(meters_by_loss, W1.name, "W1 distance to the target (lower is better; one scale for all)",
                          y_title="W1", x_max=x_max, **guide)


def grad_norm_by_loss_figure(metrics_by_loss: dict[str, dict], x_max: float | None = None) -> go.Figure:
    return by_loss_figure(metrics_by_loss, "g_grad_norm", "Norm of the gradient reaching G (log scale)",
                          smooth_alpha=0.05, log_y=True, y_title="‖∇G‖", x_max=x_max)


def _axis(letter: str, i: int) -> str:
    """A trace's name for panel i's axis: "x", "x2", ..."""
    return letter if i == 1 else f"{letter}{i}"


def panel_axes(i: int, n: int = 0, *, right: bool = False) -> dict:
    """Trace settings that put a trace on panel i of n (from 1); `right`, on its right-hand y axis."""
    return dict(xaxis=_axis("x", i), yaxis=_axis("y", n + i if right else i))


def panels_layout(titles: list[str], spacing: float, *, x: dict | None = None, y: dict | None = None,
                  right: dict | None = None, share_y: bool = False) -> dict:
    """Layout for side-by-side panels, each titled above, as make_subplots(rows=1) would set them up.

    Built as plain dicts for the reason figure() gives. Panel i (from 1) of n plots on
    x{i}/y{i}; with `right` settings it also gets a right-hand y axis, y{n+i}. `x`, `y` and
    `right` are applied to every panel's axes of that kind; callers adjust one panel's axis
    by its key ("yaxis3", ...). With share_y, every panel's y axis follows the first's.
    """
    n = len(titles)
    width = (1 - spacing * (n - 1)) / n
    layout: dict = {"annotations": []}
    for i, text in enumerate(titles, start=1):
        left = (i - 1) * (width + spacing)
        layout[f"xaxis{i}" if i > 1 else "xaxis"] = dict(domain=[left, left + width], anchor=_axis("y", i), **(x or {}))
        y_axis = dict(anchor=_axis("x", i), **(y or {}))
        if share_y and i > 1:
            y_axis.update(matches="y", showticklabels=False)
        layout[f"yaxis{i}" if i > 1 else "yaxis"] = y_axis
        if right is not None:
            layout[f"yaxis{n + i}"] = dict(anchor=_axis("x", i), overlaying=_axis("y", i), side="right", **right)
        layout["annotations"].append(dict(text=text, x=left + width / 2, y=1, xref="paper", yref="paper",
                                          xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=16)))
    return layout


def panels_figure(by_loss: dict[str, dict], series: dict[str, str], title: str, *,
                  smooth_alpha: float | None = 0.05, height: int = 340, y_title: str = "",
                  x_max: float | None = None) -> go.Figure:
    """One panel per loss, each with its own y axis, for quantities whose scales differ by loss.
    `y_title` names the first panel's y axis (the others share its meaning, not its scale)."""
    runs = [(loss, h) for loss, h in by_loss.items() if h.get("step") is not None and len(h["step"])]
    if not runs:
        return empty_figure(title, NO_STEPS_YET)
    traces = []
    for i, (loss, history) in enumerate(runs, start=1):
        for (column, label), color in zip(series.items(), PALETTE):
            if _has(history["step"], history.get(column)):
                # one legend entry per series, not one per panel
                traces += line_traces(history["step"], history[column], label, color, smooth_alpha, markers=False,
                                      legendgroup=column, showlegend=i == 1, **panel_axes(i))
    layout = panels_layout([loss_short(loss) for loss, _ in runs], 0.06, x=step_axis(x_max))
    layout["yaxis"]["title"] = dict(text=y_title)
    return figure(traces, title, height, **layout, **_LEGEND_BELOW)


def loss_panels_figure(metrics_by_loss: dict[str, dict], x_max: float | None = None) -> go.Figure:
    return panels_figure(metrics_by_loss, {"loss_d": "D loss", "loss_g": "G loss"},
                         "Each run's losses, raw and smoothed. Their scales differ: do not compare them "
                         "across losses", y_title="loss", x_max=x_max)


def d_test_panels_figure(meters_by_loss: dict[str, dict], x_max: float | None = None) -> go.Figure:
    return panels_figure(meters_by_loss, {D_REAL_TEST.name: "on held-out real", D_FAKE_TEST.name: "on fake"},
                         "D's mean output per run: a probability for BCE, a raw score for the others "
                         "(not comparable across the two)", smooth_alpha=None, y_title="mean D output",
                         x_max=x_max)


def _off_chart(views: dict) -> str:
    """" · 95% off the chart" when that share of a run's fakes falls outside the grid drawn."""
    return f" · {views['outside']:.0%} off the chart" if views.get("outside", 0) >= 0.005 else ""


def densities_by_loss_figure(views_by_loss: dict[str, dict]) -> go.Figure:
    """Each run's generated histogram over the target pdf, one panel per loss, shared axes."""
    runs = [(loss, v) for loss, v in views_by_loss.items() if v]
    title = "Real and generated densities"
    if not runs:
        return empty_figure(title, "Waiting for the first snapshot…")
    titles = [loss_short(loss) + _off_chart(v) for loss, v in runs]
    traces = []
    for i, (loss, views) in enumerate(runs, start=1):
        x, first = views["x"], i == 1
        traces += [dict(type="bar", x=x, y=views["p_g"], width=float(x[1] - x[0]), name="generated (histogram)",
                        marker_color=FAKE, opacity=0.45, showlegend=first, legendgroup="fake", **panel_axes(i)),
                   dict(type="scatter", x=x, y=views["p_data"], mode="lines", name="target pdf",
                        line=dict(color=REAL, width=2), showlegend=first, legendgroup="real", **panel_axes(i))]
    layout = panels_layout(titles, 0.03, y=dict(rangemode="tozero"), share_y=True)
    layout["yaxis"]["title"] = dict(text="density")
    steps = sorted({int(v.get("step", 0)) for _, v in runs})
    when = f"step {steps[0]}" if len(steps) == 1 else f"steps {steps[0]} to {steps[-1]}"
    return figure(traces, f"{title} ({when})", 340, **layout, **_LEGEND_BELOW)


def d_and_critic_figure(views_by_loss: dict[str, dict]) -> go.Figure:
    """BCE's D(x), a sigmoid, beside the raw scores (critics' f(x), LSGAN's D(x)), across x.

    The real and each run's generated densities sit behind, so one sees where
    D is flat (saturated) over the fakes and where a raw score still has a slope.
    """
    title = "Why the gradients differ: a sigmoid's D(x) saturates, a raw score keeps a slope"
    runs = [(loss, v) for loss, v in views_by_loss.items() if v]
    if not runs:
        return empty_figure(title, "Waiting for the first snapshot…")
    layout = panels_layout(["BCE: D(x) = sigmoid(score), between 0 and 1", "Raw scores: no sigmoid, unbounded"],
                           0.16, x=dict(title=dict(text="x")), y=dict(title=dict(text="density"), rangemode="tozero"),
                           right=D_AXIS)
    layout["yaxis3"].update(title=dict(text="D(x)"), range=[0, 1.02])
    layout["yaxis4"].update(title=dict(text="score"))
    x = runs[0][1]["x"]
    traces = [dict(type="scatter", x=x, y=runs[0][1]["p_data"], mode="lines", fill="tozeroy", name="target pdf",
                   line=dict(color=REAL, width=1), opacity=0.3, showlegend=panel == 1, legendgroup="real",
                   **panel_axes(panel)) for panel in (1, 2)]
    drawn = {1: False, 2: False}
    for loss, views in runs:
        panel = 1 if shows_probability(views) else 2
        color = loss_color(loss)
        traces.append(dict(type="scatter", x=views["x"], y=views["p_g"], mode="lines",
                           name=f"{loss_short(loss)}: fakes{_off_chart(views)}",
                           line=dict(color=color, width=1, dash="dot"), legendgroup=loss, **panel_axes(panel)))
        if views.get("d_curve") is not None:
            traces.append(dict(type="scatter", x=views["x"], y=views["d_curve"], mode="lines",
                               name=f"{loss_short(loss)}: {d_symbol(views)}",
                               line=dict(color=color, width=3), legendgroup=loss, **panel_axes(panel, 2, right=True)))
            drawn[panel] = True
    for panel, why in enumerate(("no run with a per-sample D(x) = sigmoid(score) here",
                                 "no run with a per-sample raw score here"), start=1):
        if not drawn[panel]:
            layout["annotations"].append(dict(text=why, showarrow=False,
                                              x=0.5, y=0.5, xref=f"{_axis('x', panel)} domain",
                                              yref=f"{_axis('y', panel)} domain"))
    return figure(traces, title, 380, **layout, **_LEGEND_BELOW)


def g_loss_explainer_figure() -> go.Figure:
    """The generator's loss for each G loss, as a function of what D says about a fake.

    Left, against D(G(z)) as in the 2014 paper: log(1 - D) is flat near 0, the
    steep -log D is not. Right, against the raw score D computes (the logit,
    or the critic value f): the saturating loss flattens (slope -D(G(z)),
    which is near 0 when D rejects the fakes), the non-saturating one tends
    to slope -1, and the Wasserstein loss -f has slope -1 everywhere.
    """
    p = np.linspace(0.001, 0.999, 400)
    s = np.linspace(-6, 6, 400)
    sat, ns, wgan = loss_color("bce-sat"), loss_color("bce-ns"), loss_color("wgan-clip")

    def curve(x, y, name, color, panel, **more):
        return dict(type="scatter", x=x, y=y, mode="lines", name=name, line=dict(color=color, width=3),
                    **panel_axes(panel), **more)

    traces = [
        curve(p, np.log1p(-p), "saturating: log(1 − D)", sat, 1, legendgroup="sat"),
        curve(p, -np.log(p), "non-saturating: −log D", ns, 1, legendgroup="ns"),
        # log(1 - sigmoid(s)) = -softplus(s); -log sigmoid(s) = softplus(-s)
        curve(s, -np.logaddexp(0, s), "saturating", sat, 2, legendgroup="sat", showlegend=False),
        curve(s, np.logaddexp(0, -s), "non-saturating", ns, 2, legendgroup="ns", showlegend=False),
        {**curve(s, -s, "Wasserstein: −f (s = f)", wgan, 2), "line": dict(color=wgan, width=3, dash="dash")},
    ]
    layout = panels_layout(["G's loss against D(G(z))", "G's loss against D's raw score s"], 0.1,
                           y=dict(title=dict(text="loss G minimises"), range=[-6, 6]))
    layout["xaxis"]["title"] = dict(text="D(G(z)): 0 = D sure it is fake")
    layout["xaxis2"]["title"] = dict(text="s: logit (BCE) or critic value f (WGAN)")
    layout["annotations"] += [
        dict(x=0.05, y=np.log1p(-0.05), text="flat where D rejects the fakes", ax=70, ay=50, xref="x", yref="y"),
        dict(x=-5, y=-np.logaddexp(0, -5), text="slope ≈ 0: no gradient for G", ax=50, ay=50, xref="x2", yref="y2"),
    ]
    return figure(traces, "The generator's loss, and its slope, for each loss", 360, **layout, **_LEGEND_BELOW)


def digit_histogram_figure(meters: dict) -> go.Figure:
    """Which digits G draws now, by the classifier: ten bars against the uniform 10%, and a bar
    for the samples it reads as no digit (junk, or no digit with confidence)."""
    columns = [f"hist_{d}" for d in range(10)]
    if not all(c in meters and len(meters[c]) for c in columns):
        return empty_figure("Digits drawn", "No classifier meters yet.")
    shares = [float(meters[c][-1]) for c in columns]
    junk = max(0.0, 1.0 - sum(shares))
    bars = dict(type="bar", x=[str(d) for d in range(10)] + ["not a digit"], y=shares + [junk],
                marker_color=[FAKE] * 10 + [OPTIMAL], name="share")
    covered = meters.get(MODES_COVERED.name)
    title = f"Digits drawn at step {int(meters['step'][-1])}"
    if covered is not None:
        title += f" · {int(covered[-1])} of 10 covered"
    return figure([bars], title, xaxis=dict(title=dict(text="digit, when the classifier is sure (p ≥ 0.9)"),
                                            type="category"),
                  yaxis=dict(title=dict(text="share of samples"), range=[0, max(0.3, max(shares + [junk]) * 1.1)]),
                  **guide_line(0.1, "uniform"))


def mnist_quality_figure(meters: dict, x_max: float | None = None) -> go.Figure:
    """The Fréchet distance in the classifier's features (lower is better)."""
    words = meter(FID.name).words
    return curves_figure(meters, {FID.name: words}, better_title(FID.name, words), smooth_alpha=None,
                         y_title="in the classifier's features", x_max=x_max)


def mnist_modes_figure(meters: dict, x_max: float | None = None) -> go.Figure:
    series = {name: meter(name).words_for("mnist") for name in (MODES_COVERED.name, CONFIDENT.name)}
    series[KL_UNIFORM.name] = "KL to uniform (nats)"   # shorter than its words: a legend, beside two others
    if LABEL_ACCURACY.name in meters:
        series[LABEL_ACCURACY.name] = meter(LABEL_ACCURACY.name).words
    return curves_figure(meters, series, "Mode coverage", smooth_alpha=None, x_max=x_max)


# -- Runs page: any runs, one metric ----------------------------------------------------------

def better_title(meter_name: str, text: str) -> str:
    """A chart title that says which way is better for the meter: "W1 … (lower is better)"."""
    better = meter(meter_name).better
    return f"{text} ({better})" if better else text


def metric_words(metric: str) -> str:
    """Any metric or meter a run records, in words (ganlab.meters), for pickers and titles."""
    return meter(metric).words


def overlay_figure(series: dict[str, tuple[np.ndarray, np.ndarray]], metric: str, *,
                   smooth_alpha: float | None = None, log_y: bool = False) -> go.Figure:
    """One line per run ({run label: (steps, values)}) for one metric, on shared axes.

    A label holds a name someone typed: it is escaped, since plotly renders tags such as <a href> in legends.
    """
    curves = [(steps, values, html.escape(label), PALETTE[i % len(PALETTE)])
              for i, (label, (steps, values)) in enumerate(series.items())]
    words = metric_words(metric)
    return lines_figure(curves, f"{words[0].upper()}{words[1:]} by run", smooth_alpha=smooth_alpha, log_y=log_y,
                        y_title=metric, markers=False, empty=f"None of these runs has {words} yet.", height=380)


# -- The AE & VAE lab (seed 002) ------------------------------------------------------------

DIGIT_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def reconstruction_figure(metrics: dict, family: str) -> go.Figure:
    """The reconstruction term alone: per pixel for the AE (the seed's MSE), per image for the VAE."""
    unit = "MSE per pixel" if family == "ae" else "summed over pixels, per image"
    return curves_figure(metrics, {"recon": "reconstruction"}, f"Reconstruction loss ({unit})",
                         y_title="loss")


def kl_figure(metrics: dict) -> go.Figure:
    """The VAE's KL term, which keeps the codes near the prior N(0, I)."""
    return curves_figure(metrics, {"kl": "KL(q(z|x) ‖ N(0, I))"}, "KL term (nats per image)", y_title="nats")


def autoencoder_quality_figure(meters: dict, x_max: float | None = None) -> go.Figure:
    """The GANs' Fréchet distance, on decodes of random codes and on reconstructions of held-out digits."""
    return curves_figure(meters, {FID.name: "samples (random codes)", FID_RECON.name: "reconstructions"},
                         "Fréchet distance (lower is better)", smooth_alpha=None, x_max=x_max)


def latent_figure(latent: dict | None, title: str = "Latent space") -> go.Figure:
    """Held-out digits' codes, one colour per digit, and the random codes the samples decode.

    latent: {"points": [N, 2 or 3], "digits": [N], "prior": [M, same], "axes": names,
    "explained": share of variance shown}, as ganlab.autoencoders.latent_view makes it.
    """
    if not latent:
        return empty_figure(title, "Waiting for the first snapshot…")
    points, digits, prior = latent["points"], np.asarray(latent["digits"]), latent["prior"]
    three_d = points.shape[1] == 3

    def cloud(xyz, name, marker):
        if three_d:
            return dict(type="scatter3d", x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="markers", name=name,
                        marker=dict(size=3, **marker))
        return dict(type="scatter", x=xyz[:, 0], y=xyz[:, 1], mode="markers", name=name, marker=dict(size=5, **marker))

    traces = [cloud(points[digits == d], str(d), dict(color=DIGIT_COLORS[d], opacity=0.7))
              for d in range(10) if (digits == d).any()]
    traces.append(cloud(prior, "random z (samples)", dict(color="black", symbol="x", opacity=0.8)))
    axes = [dict(title=dict(text=name)) for name in latent["axes"]]
    if three_d:
        layout = dict(scene=dict(xaxis=axes[0], yaxis=axes[1], zaxis=axes[2]))
    else:
        layout = dict(xaxis=axes[0], yaxis=axes[1])
    if latent.get("explained", 1.0) < 1.0:
        title += f" · PCA, {latent['explained']:.0%} of the variance"
    return figure(traces, title, 460, legend=dict(orientation="v", yanchor="top", y=1.0, x=1.02,
                                                  title=dict(text="digit")), **layout)


# -- slow motion (ganlab.teach): one stage of an update --------------------------------------------

def stage_figure_1d(stage: dict, views: dict | None = None, max_points: int = 200) -> go.Figure:
    """One slow-motion stage on the line: the batch, D's values on it, D's curve and G's push.

    `stage` is a Snapshot's views["stage"]; `views` (the latest probe's) adds the target pdf.
    Points sit on the rug at the bottom until D has scored them, then at their D(x).
    """
    name = stage["stage"]
    title = f"Step {stage['iteration']} · {stage['number']}. {stage['title']}"
    if stage.get("d_steps", 1) > 1 and stage["number"] <= 4:
        title += f" (D step {stage['d_step']} of {stage['d_steps']})"
    probability, d_label = shows_probability(stage), d_name(stage)
    views = views or {}
    traces = []

    def add(x, y, name, *, d_axis=True, **more):
        # D's values go on the right-hand axis, the densities and the rug on the left
        traces.append(dict(type="scatter", x=x, y=y, name=name, yaxis="y2" if d_axis else "y", **more))

    if views.get("x") is not None:
        add(views["x"], views["p_data"], "target pdf", d_axis=False, mode="lines",
            line=dict(color=REAL, width=2), opacity=0.5)
    grid = np.asarray(stage["grid"]).ravel() if stage.get("grid") is not None else None
    curve = stage.get("d_curve")
    if grid is not None and curve is not None:
        if name == "d_update":
            add(grid, curve, f"{d_label} before", mode="lines", line=dict(color=DISC, width=2, dash="dot"))
            curve = stage["d_curve_after"]
            add(grid, curve, f"{d_label} after", mode="lines", line=dict(color=DISC, width=3))
        else:
            add(grid, curve, d_label, mode="lines", line=dict(color=DISC, width=2))

    def on_curve(x):
        # Where a point sits: on D's curve when there is one, else on the rug.
        return np.interp(x, grid, curve) if grid is not None and curve is not None else np.zeros_like(x)

    rug = dict(symbol="line-ns-open", size=14, line=dict(width=2))
    if name in ("sample", "d_predict", "d_loss", "d_update"):
        real = np.asarray(stage["real"]).ravel()[:max_points]
        fake = np.asarray(stage["fake"]).ravel()[:max_points]
        scored = "d_real" in stage and len(stage["d_real"]) == len(stage["real"])
        for x, color, label, key in ((real, REAL, "real", "d_real"), (fake, FAKE, "fake", "d_fake")):
            add(x, np.zeros_like(x), f"{label} points", d_axis=False, mode="markers",
                marker=dict(color=color, **rug), opacity=0.6)
            if scored:
                add(x, np.asarray(stage[key]).ravel()[:max_points], f"{d_label} on {label}", mode="markers",
                    marker=dict(color=color, size=7, line=dict(width=1, color="white")))
    else:
        before = np.asarray(stage["fake"]).ravel()[:max_points]
        y = on_curve(before)
        if name == "g_loss":
            push = np.asarray(stage["push"]).ravel()[:max_points]
            x_range = float(grid.max() - grid.min()) if grid is not None else float(np.ptp(before)) or 1.0
            longest = float(np.abs(push).max()) or 1.0
            ends = before + push / longest * 0.08 * x_range
            add(_segments(before, ends), _segments(y, y), "G's push on each fake", mode="lines",
                line=dict(color=FAKE, width=2))
            add(ends, y, "", mode="markers", showlegend=False, hoverinfo="skip",
                marker=dict(color=FAKE, size=8, symbol="arrow", angleref="previous"))
            add(before, y, "fake points", mode="markers", marker=dict(color=FAKE, size=6))
        else:
            after = np.asarray(stage["fake_after"]).ravel()[:max_points]
            y_after = on_curve(after)
            add(_segments(before, after), _segments(y, y_after), "", mode="lines", showlegend=False,
                line=dict(color=OPTIMAL, width=1), hoverinfo="skip")
            add(before, y, "fakes before", mode="markers", marker=dict(color=FAKE, size=6), opacity=0.3)
            add(after, y_after, "fakes after", mode="markers", marker=dict(color=FAKE, size=7))
    d_axis = dict(title=dict(text=d_symbol(stage)))
    if probability:
        d_axis.update(range=[-0.02, 1.02], tickmode="linear", tick0=0, dtick=0.25)
    return figure(traces, title, 440, margin=dict(LAYOUT["margin"], t=100),   # room for a two-row legend
                  xaxis=dict(title=dict(text="x")), yaxis=dict(title=dict(text="density"), rangemode="tozero"),
                  yaxis2={**D_AXIS, "overlaying": "y", "side": "right", "anchor": "x", **d_axis})


def _segments(starts: np.ndarray, ends: np.ndarray) -> list:
    """Line segments start→end in one trace, separated by None."""
    out: list = []
    for a, b in zip(starts.tolist(), ends.tolist()):
        out += [a, b, None]
    return out
