"""Charts for the 2D lab: pure functions from a probe's views (and meters) to plotly figures.

The plane figure stacks GAN Lab's layers, each switchable: D's value as a
heatmap, the real and fake points, the arrows of G's push and G's manifold.
The slow-motion stage in the plane is drawn here too: it is a plane figure.
This module builds on ganlab.charts; charts never imports it back.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ganlab.charts import (DISC, FAKE, LAYOUT, REAL, better_title, by_loss_figure, curves_figure, d_name, empty_figure, figure,
                           guide_line, shows_probability)
from ganlab.meters import ENERGY, HIGH_QUALITY, MODES_CAPTURED, MODES_COVERED

ARROW_SHARE = 0.08    # the longest arrow is this share of the box's width
MANIFOLD = "#555555"
# D's surface in pale red-white-blue (the middle of ColorBrewer's RdBu), opaque, so the red and
# blue points stand out on it and the colour bar shows the colours the plane has.
SURFACE_SCALE = [[0.0, "#e08a78"], [0.2, "#f4b59a"], [0.4, "#fbe3d6"], [0.5, "#f7f7f7"],
                 [0.6, "#dceaf3"], [0.8, "#a9cfe5"], [1.0, "#74acd4"]]
POINT_OUTLINE = dict(color="white", width=1)


def plane_figure(views: dict, *, surface: bool = True, real: bool = True, fake: bool = True,
                 arrows: bool = True, manifold: bool = True, title: str | None = None,
                 height: int = 560) -> go.Figure:
    """The plane: D (or the critic) as a heatmap, real and fake points, G's push, G's manifold."""
    title = title or f"Real and generated points (step {views.get('step', 0)})"
    if not views:
        return empty_figure(title, "Waiting for the first snapshot…")
    probability = shows_probability(views)
    (x0, y0), (x1, y1) = views["box"]
    traces = []
    if surface:
        name = d_name(views)
        traces.append(dict(
            type="heatmap", x=views["surface_x"], y=views["surface_y"], z=views["surface"], name=name,
            colorscale=SURFACE_SCALE, zsmooth="best",
            # D = 0.5 is D's "can't tell": white. A raw score has no fixed range, so its colours span it.
            zmin=0.0 if probability else None, zmax=1.0 if probability else None,
            # Under the plane, not at the figure's right edge: the plane keeps its aspect ratio in
            # the middle of a wide figure, and the edge can be a third of the page away from it.
            colorbar=dict(title=dict(text=name, side="right"), orientation="h", thickness=12, len=0.5,
                          x=0.5, xanchor="center", y=0.01, yref="container", yanchor="bottom"),
            hoverinfo="skip"))
    if manifold and views.get("manifold") is not None:
        xs, ys = _polylines(np.asarray(views["manifold"]))
        traces.append(dict(type="scatter", x=xs, y=ys, mode="lines", name="G's manifold (a z grid, mapped)",
                           line=dict(color=MANIFOLD, width=1), opacity=0.6, hoverinfo="skip"))
    if real:
        pts = np.asarray(views["real"])
        traces.append(dict(type="scatter", x=pts[:, 0], y=pts[:, 1], mode="markers", name="real",
                           marker=dict(color=REAL, size=6, opacity=0.8, line=POINT_OUTLINE)))
    if fake:
        pts = np.asarray(views["fake"])
        traces.append(dict(type="scatter", x=pts[:, 0], y=pts[:, 1], mode="markers", name="generated",
                           marker=dict(color=FAKE, size=6, opacity=0.8, line=POINT_OUTLINE)))
    if arrows and views.get("arrow_at") is not None:
        xs, ys = arrow_segments(np.asarray(views["arrow_at"]), -np.asarray(views["arrow_grad"]),
                                ARROW_SHARE * (x1 - x0))
        traces.append(dict(type="scatter", x=xs, y=ys, mode="lines", name="G's push (−∇ of G's loss)",
                           line=dict(color=DISC, width=1.5), hoverinfo="skip"))
    if views.get("outside", 0) > 0.001:
        title += f" · {views['outside']:.0%} of samples off the chart"
    return figure(traces, title, height, margin=dict(LAYOUT["margin"], b=95 if surface else 40),   # room for the bar
                  xaxis=dict(range=[x0, x1], title=dict(text="x₁"), constrain="domain"),
                  yaxis=dict(range=[y0, y1], title=dict(text="x₂"), scaleanchor="x", scaleratio=1,
                             constrain="domain"))


def _polylines(lines: np.ndarray) -> tuple[list, list]:
    """Lines [L, P, 2] as one trace's x and y, with None between lines (one trace draws all)."""
    xs, ys = [], []
    for line in lines:
        xs += line[:, 0].tolist() + [None]
        ys += line[:, 1].tolist() + [None]
    return xs, ys


def arrow_segments(at: np.ndarray, push: np.ndarray, longest: float) -> tuple[list, list]:
    """Arrows from each point along `push`, scaled so the longest is `longest` long.

    Only directions and relative sizes are shown: the gradient's own scale
    depends on the loss and changes by orders of magnitude over a run. Each
    arrow is a shaft and a two-stroke head, as one trace's segments.
    """
    norms = np.linalg.norm(push, axis=1)
    top = np.nanmax(norms) if len(norms) and np.isfinite(norms).any() else 0.0
    xs, ys = [], []
    if not top > 0:
        return xs, ys
    for (px, py), (dx, dy) in zip(at, push * (longest / top)):
        if not np.isfinite([dx, dy]).all():
            continue
        tip = np.array([px + dx, py + dy])
        back = -np.array([dx, dy]) * 0.3
        left = tip + [back[0] * 0.87 - back[1] * 0.5, back[0] * 0.5 + back[1] * 0.87]
        right = tip + [back[0] * 0.87 + back[1] * 0.5, -back[0] * 0.5 + back[1] * 0.87]
        xs += [px, tip[0], None, left[0], tip[0], right[0], None]
        ys += [py, tip[1], None, left[1], tip[1], right[1], None]
    return xs, ys


def energy_figure(meters: dict, floor: float | None = None, x_max: float | None = None) -> go.Figure:
    # Two samples of the real points apart: G cannot be told from the data below the floor.
    has_data = meters.get("step") is not None and len(meters["step"])
    guide = guide_line(floor, "noise floor") if floor is not None and has_data else {}
    return curves_figure(meters, {ENERGY.name: "energy distance"},
                         better_title(ENERGY.name, "Energy distance to the real points"), smooth_alpha=None,
                         y_title="energy distance", x_max=x_max, **guide)


# The two mode counts, in words: PacGAN's rule (the papers' figure) and the stricter one.
MODE_RULES = {MODES_CAPTURED.name: "captured (PacGAN: ≥ 1 high-quality sample)",
              MODES_COVERED.name: "covered (≥ 10% of a fair share of high-quality samples)"}


def coverage_figure(meters: dict, num_modes: int, x_max: float | None = None) -> go.Figure:
    """Modes captured (PacGAN's rule) and covered (the stricter rule), k of K, over steps."""
    covered, captured = meters.get(MODES_COVERED.name), meters.get(MODES_CAPTURED.name)
    title = better_title(MODES_COVERED.name, "Modes")
    guide = {}
    if covered is not None and len(covered):
        now = f"{int(covered[-1])} of {num_modes} covered"
        if captured is not None and len(captured):
            now = f"{int(captured[-1])} of {num_modes} captured, " + now
        title += f" · {now}"
        guide = dict(**guide_line(num_modes, f"all {num_modes}"), yaxis=dict(range=[0, num_modes + 0.5]))
    series = {name: words for name, words in MODE_RULES.items() if name in meters}
    return curves_figure(meters, series, title, smooth_alpha=None, y_title="modes", x_max=x_max, **guide)


def quality_figure(meters: dict, x_max: float | None = None) -> go.Figure:
    """The share of samples within 3σ of a mode (of the curve, for a line or the moons)."""
    has_data = meters.get("step") is not None and len(meters["step"])
    return curves_figure(meters, {HIGH_QUALITY.name: "high-quality share"},
                         better_title(HIGH_QUALITY.name, "High-quality samples: within 3σ of the data"),
                         smooth_alpha=None, y_title="share of samples", x_max=x_max,
                         **(dict(yaxis=dict(range=[0, 1.02])) if has_data else {}))


# -- Loss lab: one plane per loss, and the 2D meters by loss -------------------------------

def meters_by_loss_figures(meters_by_loss: dict[str, dict], x_max: float | None = None) -> list[go.Figure]:
    """The 2D meters, one line per loss: energy always; quality and modes where the target has them."""
    figures = [by_loss_figure(meters_by_loss, ENERGY.name, better_title(ENERGY.name, "Energy distance to the real points"),
                              y_title="energy distance", x_max=x_max)]
    if any(MODES_COVERED.name in m for m in meters_by_loss.values()):
        figures.append(by_loss_figure(meters_by_loss, MODES_COVERED.name,
                                      better_title(MODES_COVERED.name, "Modes covered, ≥ 10% of a fair share"),
                                      y_title="modes", x_max=x_max))
    if any(HIGH_QUALITY.name in m for m in meters_by_loss.values()):
        figures.append(by_loss_figure(meters_by_loss, HIGH_QUALITY.name,
                                      better_title(HIGH_QUALITY.name, "High-quality samples, within 3σ"),
                                      y_title="share of samples", x_max=x_max))
    return figures


# -- slow motion (ganlab.teach): one stage of an update in the plane ---------------------------

def stage_figure_2d(stage: dict, views: dict, height: int = 560) -> go.Figure:
    """One slow-motion stage in the plane, drawn by plane_figure.

    D's surface is the stage's own (after the update at stage 4); the arrows are
    G's push at stage 5, and each fake's move, before → after, at stage 6.
    `views` (the latest probe's) gives the box and the surface's grid.
    """
    name = stage["stage"]
    title = f"Step {stage['iteration']} · {stage['number']}. {stage['title']}"
    if stage.get("d_steps", 1) > 1 and stage["number"] <= 4:
        title += f" (D step {stage['d_step']} of {stage['d_steps']})"
    if not views or "box" not in views:
        return empty_figure(title, "Waiting for the first snapshot…")
    plane = {k: views[k] for k in ("box", "surface_x", "surface_y")}
    plane.update({k: stage.get(k) for k in ("output", "symbol", "critic")})
    plane.update(real=stage.get("real"), fake=stage["fake"])
    curve = stage.get("d_curve_after", stage.get("d_curve"))
    if curve is not None:
        plane["surface"] = np.asarray(curve).reshape(len(views["surface_y"]), len(views["surface_x"]))
    if name == "g_loss":
        plane.update(arrow_at=stage["fake"], arrow_grad=-np.asarray(stage["push"]))
    elif name == "g_update":
        before, after = np.asarray(stage["fake"]), np.asarray(stage["fake_after"])
        plane.update(fake=after, arrow_at=before, arrow_grad=before - after)
        title += " (arrows: each fake's move)"
    elif name == "d_update":
        title += f" ({'the critic' if stage.get('critic') else 'D'} after its update)"
    return plane_figure(plane, surface=curve is not None, real=stage.get("real") is not None, fake=True,
                        arrows="arrow_at" in plane, manifold=False, title=title, height=height)
