"""Charts: pure functions from snapshot data to plotly figures.

Nothing here knows about Streamlit or threads, so every chart can be tested
by building it from plain arrays and reading the figure's traces.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

REAL = "#1f77b4"
FAKE = "#d62728"
DISC = "#2ca02c"
OPTIMAL = "#7f7f7f"


def smooth(values: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Exponential moving average that ignores NaNs (debiased, like TensorBoard's)."""
    out = np.empty(len(values), dtype=np.float64)
    avg, weight = 0.0, 0.0
    for i, v in enumerate(values):
        if np.isfinite(v):
            avg = (1 - alpha) * avg + alpha * v
            weight = (1 - alpha) * weight + alpha
        out[i] = avg / weight if weight > 0 else np.nan
    return out


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


def _layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(title={"text": title, **TITLE}, height=height, **LAYOUT)
    return fig


def guide_line(y: float, text: str = "") -> dict:
    """Layout settings for a dotted horizontal reference line at y, labelled at its right end."""
    line = dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y,
                line=dict(color=OPTIMAL, dash="dot"))
    label = dict(text=text, xref="paper", x=1, xanchor="right", yref="y", y=y, yanchor="bottom",
                 showarrow=False)
    return dict(shapes=[line], annotations=[label] if text else [])


def empty_figure(title: str, message: str) -> go.Figure:
    """A figure that says why it has no data, instead of an empty frame."""
    note = dict(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font=dict(size=14))
    return figure([], title, annotations=[note], xaxis=dict(visible=False), yaxis=dict(visible=False))


def density_figure(views: dict) -> go.Figure:
    """Real pdf and generated histogram; D(x) and D*(x) on a second axis."""
    if not views:
        return empty_figure("Densities", "Waiting for the first snapshot…")
    x = views["x"]
    wasserstein = views.get("wasserstein", False)
    traces = [
        dict(type="bar", x=x, y=views["p_g"], width=float(x[1] - x[0]), name="generated (histogram)",
             marker_color=FAKE, opacity=0.45),
        dict(type="scatter", x=x, y=views["p_data"], name="target pdf", mode="lines",
             line=dict(color=REAL, width=3)),
    ]
    if views.get("d_curve") is not None:
        traces.append(dict(type="scatter", x=x, y=views["d_curve"], mode="lines", yaxis="y2",
                           line=dict(color=DISC, width=2), name="critic f(x)" if wasserstein else "D(x)"))
    # Ticks of its own, and no grid: the density's grid lines would put D's ticks at odd values.
    d_axis = dict(overlaying="y", side="right", anchor="x", title=dict(text="f(x)"), tickmode="auto",
                  showgrid=False)
    if not wasserstein:
        traces.append(dict(type="scatter", x=x, y=views["d_star"], mode="lines", name="optimal D*(x)",
                           yaxis="y2", line=dict(color=OPTIMAL, dash="dot")))
        d_axis.update(title=dict(text="D(x)"), range=[0, 1.02])
    title = f"Real and generated densities (step {views.get('step', 0)})"
    if views.get("outside", 0) > 0.001:
        title += f" · {views['outside']:.0%} of samples off the chart"
    return figure(traces, title, height=380, xaxis=dict(title=dict(text="x"), domain=[0, 0.94]),
                  yaxis=dict(title=dict(text="density"), rangemode="tozero"), yaxis2=d_axis)


def curves_figure(history: dict, series: dict[str, str], title: str, *, smooth_alpha: float | None = 0.05,
                  log_y: bool = False, y_title: str = "", **layout) -> go.Figure:
    """Lines over steps, one per column in `series` ({column: label}); raw faint, smoothed bold.
    `layout` adds layout settings, such as a guide_line()."""
    steps = history.get("step")
    if steps is None or len(steps) == 0:
        return empty_figure(title, "No data yet: start a run.")
    traces = []
    palette = [REAL, FAKE, DISC, "#9467bd", "#ff7f0e", "#8c564b"]
    for (column, label), color in zip(series.items(), palette):
        values = np.asarray(history.get(column, []), dtype=np.float64)
        if len(values) != len(steps):
            continue
        if smooth_alpha:
            traces.append(dict(type="scatter", x=steps, y=values, mode="lines", name=f"{label} (raw)",
                               line=dict(color=color, width=1), opacity=0.3, showlegend=False))
            traces.append(dict(type="scatter", x=steps, y=smooth(values, smooth_alpha), mode="lines",
                               name=label, line=dict(color=color, width=2)))
        else:
            traces.append(dict(type="scatter", x=steps, y=values, mode="lines+markers", name=label,
                               line=dict(color=color, width=2), marker=dict(size=4)))
    y_axis = dict(title=dict(text=y_title), type="log" if log_y else "linear",
                  exponentformat="power" if log_y else "B", **layout.pop("yaxis", {}))
    return figure(traces, title, xaxis=dict(title=dict(text="step")), yaxis=y_axis, **layout)


def loss_figure(metrics: dict) -> go.Figure:
    return curves_figure(metrics, {"loss_d": "D loss", "loss_g": "G loss"}, "Losses (raw and smoothed)")


def d_outputs_figure(metrics: dict, wasserstein: bool = False) -> go.Figure:
    if wasserstein:
        return curves_figure(metrics, {"d_real": "mean f(real)", "d_fake": "mean f(fake)"},
                             "Critic on real and fake")
    return curves_figure(metrics, {"d_real": "mean D(real)", "d_fake": "mean D(fake)"},
                         "D on real and fake (both head to 0.5 at equilibrium)", **guide_line(0.5))


def quality_figure(meters: dict) -> go.Figure:
    # Below 0.02, the meter cannot tell the samples from the target (10k samples).
    return curves_figure(meters, {"w1": "W1 to target", "ks": "KS statistic"},
                         "Distance to the target (lower is better)", smooth_alpha=None,
                         **guide_line(0.02, "noise floor (W1)"))


def modes_figure(meters: dict) -> go.Figure:
    """1D mixtures: the share of samples near each mode, and how many modes are covered."""
    shares = sorted(k for k in meters if k.startswith("mode_share_"))
    series = {k: f"mode {int(k.rsplit('_', 1)[1]) + 1}" for k in shares}
    covered = meters.get("modes_covered")
    title = "Share of samples near each mode"
    if covered is not None and len(covered):
        title += f" · {int(covered[-1])} of {len(shares)} modes covered"
    return curves_figure(meters, series, title, smooth_alpha=None, y_title="share of samples")


def grad_norm_figure(metrics: dict) -> go.Figure:
    return curves_figure(metrics, {"g_grad_norm": "‖∇G‖"}, "Norm of the gradient reaching G",
                         log_y=True)


def image_figure(grid: np.ndarray | None, title: str, height: int = 420) -> go.Figure:
    """A uint8 picture (a sample grid), drawn pixel-exact."""
    if grid is None:
        return empty_figure(title, "No samples yet: start a run.")
    image = dict(type="image", z=np.repeat(grid[:, :, None], 3, axis=2), colormodel="rgb", hoverinfo="skip")
    return figure([image], title, height, margin=dict(l=10, r=10, t=40, b=10),
                  xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"))


def d_test_figure(meters: dict, wasserstein: bool = False) -> go.Figure:
    """Seed 003's p_real / p_fake traces, measured on held-out digits."""
    if wasserstein:
        return curves_figure(meters, {"d_real_test": "mean f(real), held out", "d_fake_test": "mean f(fake)"},
                             "Critic on held-out real and on fake digits", smooth_alpha=None)
    return curves_figure(meters, {"d_real_test": "D(real), held out", "d_fake_test": "D(fake)"},
                         "D on held-out real and on fake digits (both head to 0.5)", smooth_alpha=None,
                         **guide_line(0.5))


# -- Loss lab: runs that differ only in their loss, drawn side by side -----------------------
# The functions below take {loss name: history or views}, one entry per run, in the order
# the runs were made. Each loss keeps one colour on every chart.

LOSS_COLORS = {"bce-ns": "#ff7f0e", "bce-sat": "#e377c2", "wgan-clip": "#2ca02c", "wgan-gp": "#9467bd"}
LOSS_SHORT = {"bce-ns": "BCE non-saturating", "bce-sat": "BCE saturating", "wgan-clip": "WGAN clip",
              "wgan-gp": "WGAN-GP"}
_SPARE_COLORS = ["#8c564b", "#17becf", "#bcbd22", "#7f7f7f"]
# Four losses' names fill more than one row, and panels' own titles take the space above the
# plots, so these legends sit at the figure's bottom edge, under the x axis.
_LEGEND_BELOW = dict(margin=dict(l=50, r=50, t=80, b=110),
                     legend=dict(orientation="h", yref="container", yanchor="bottom", y=0.01, x=0))


def loss_color(loss: str) -> str:
    return LOSS_COLORS.get(loss) or _SPARE_COLORS[sum(map(ord, loss)) % len(_SPARE_COLORS)]


def loss_short(loss: str) -> str:
    return LOSS_SHORT.get(loss, loss)


def by_loss_figure(by_loss: dict[str, dict], column: str, title: str, *, smooth_alpha: float | None = None,
                   log_y: bool = False, y_title: str = "") -> go.Figure:
    """One line per loss for one column, on shared axes: for quantities comparable across losses."""
    fig = go.Figure()
    for loss, history in by_loss.items():
        steps, values = history.get("step"), history.get(column)
        if steps is None or values is None or len(steps) == 0 or len(values) != len(steps):
            continue
        values = np.asarray(values, dtype=np.float64)
        color = loss_color(loss)
        if smooth_alpha:
            fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=f"{loss_short(loss)} (raw)",
                                     line=dict(color=color, width=1), opacity=0.25, showlegend=False))
            fig.add_trace(go.Scatter(x=steps, y=smooth(values, smooth_alpha), mode="lines", name=loss_short(loss),
                                     line=dict(color=color, width=2)))
        else:
            fig.add_trace(go.Scatter(x=steps, y=values, mode="lines+markers", name=loss_short(loss),
                                     line=dict(color=color, width=2), marker=dict(size=4)))
    if not fig.data:
        return empty_figure(title, "No data yet: start the comparison.")
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text=y_title, type="log" if log_y else "linear",
                     exponentformat="power" if log_y else "B")
    _layout(fig, title, height=360)
    fig.update_layout(**_LEGEND_BELOW)
    return fig


def w1_by_loss_figure(meters_by_loss: dict[str, dict]) -> go.Figure:
    fig = by_loss_figure(meters_by_loss, "w1", "W1 distance to the target (lower is better; one scale for all)",
                         y_title="W1")
    if fig.data:
        fig.add_hline(y=0.02, line_dash="dot", line_color=OPTIMAL, annotation_text="noise floor")
    return fig


def grad_norm_by_loss_figure(metrics_by_loss: dict[str, dict]) -> go.Figure:
    return by_loss_figure(metrics_by_loss, "g_grad_norm", "Norm of the gradient reaching G (log scale)",
                          smooth_alpha=0.05, log_y=True, y_title="‖∇G‖")


def panels_figure(by_loss: dict[str, dict], series: dict[str, str], title: str, *,
                  smooth_alpha: float | None = 0.05, height: int = 340) -> go.Figure:
    """One panel per loss, each with its own y axis, for quantities whose scales differ by loss."""
    runs = [(loss, h) for loss, h in by_loss.items() if h.get("step") is not None and len(h["step"])]
    if not runs:
        return empty_figure(title, "No data yet: start the comparison.")
    fig = make_subplots(rows=1, cols=len(runs), subplot_titles=[loss_short(loss) for loss, _ in runs],
                        horizontal_spacing=0.06)
    palette = [REAL, FAKE, DISC, "#9467bd"]
    for col, (loss, history) in enumerate(runs, start=1):
        steps = history["step"]
        for (column, label), color in zip(series.items(), palette):
            values = np.asarray(history.get(column, []), dtype=np.float64)
            if len(values) != len(steps):
                continue
            first = col == 1   # one legend entry per series, not one per panel
            if smooth_alpha:
                fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=f"{label} (raw)", opacity=0.3,
                                         line=dict(color=color, width=1), showlegend=False), row=1, col=col)
                values = smooth(values, smooth_alpha)
            fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=label, legendgroup=column,
                                     line=dict(color=color, width=2), showlegend=first), row=1, col=col)
    fig.update_xaxes(title_text="step")
    _layout(fig, title, height=height)
    fig.update_layout(**_LEGEND_BELOW)
    return fig


def loss_panels_figure(metrics_by_loss: dict[str, dict]) -> go.Figure:
    return panels_figure(metrics_by_loss, {"loss_d": "D loss", "loss_g": "G loss"},
                         "Each run's losses, raw and smoothed. Their scales differ: do not compare them "
                         "across losses")


def d_test_panels_figure(meters_by_loss: dict[str, dict]) -> go.Figure:
    return panels_figure(meters_by_loss, {"d_real_test": "on held-out real", "d_fake_test": "on fake"},
                         "D's mean output per run: a probability for BCE, a raw critic value for WGAN "
                         "(not comparable across the two)", smooth_alpha=None)


def densities_by_loss_figure(views_by_loss: dict[str, dict]) -> go.Figure:
    """Each run's generated histogram over the target pdf, one panel per loss, shared axes."""
    runs = [(loss, v) for loss, v in views_by_loss.items() if v]
    title = "Real and generated densities"
    if not runs:
        return empty_figure(title, "Waiting for the first snapshot…")
    titles = [loss_short(loss) + (f" · {v['outside']:.0%} off the chart" if v.get("outside", 0) >= 0.005 else "")
              for loss, v in runs]
    fig = make_subplots(rows=1, cols=len(runs), shared_xaxes=True, shared_yaxes=True,
                        subplot_titles=titles, horizontal_spacing=0.03)
    for col, (loss, views) in enumerate(runs, start=1):
        x = views["x"]
        first = col == 1
        fig.add_trace(go.Bar(x=x, y=views["p_g"], width=float(x[1] - x[0]), name="generated (histogram)",
                             marker_color=FAKE, opacity=0.45, showlegend=first, legendgroup="fake"),
                      row=1, col=col)
        fig.add_trace(go.Scatter(x=x, y=views["p_data"], mode="lines", name="target pdf",
                                 line=dict(color=REAL, width=2), showlegend=first, legendgroup="real"),
                      row=1, col=col)
    steps = sorted({int(v.get("step", 0)) for _, v in runs})
    when = f"step {steps[0]}" if len(steps) == 1 else f"steps {steps[0]} to {steps[-1]}"
    fig.update_yaxes(rangemode="tozero")
    fig.update_yaxes(title_text="density", row=1, col=1)
    _layout(fig, f"{title} ({when})", height=340)
    fig.update_layout(**_LEGEND_BELOW)
    return fig


def d_and_critic_figure(views_by_loss: dict[str, dict]) -> go.Figure:
    """BCE's D(x), a sigmoid, beside the Wasserstein critic f(x), unbounded, across x.

    The real and each run's generated densities sit behind, so one sees where
    D is flat (saturated) over the fakes and where f still has a slope.
    """
    title = "Why the gradients differ: D(x) saturates, the critic f(x) keeps a slope"
    runs = [(loss, v) for loss, v in views_by_loss.items() if v]
    if not runs:
        return empty_figure(title, "Waiting for the first snapshot…")
    fig = make_subplots(rows=1, cols=2, specs=[[{"secondary_y": True}, {"secondary_y": True}]],
                        subplot_titles=["BCE: D(x) = sigmoid(score), between 0 and 1",
                                        "Wasserstein: critic f(x), unbounded"], horizontal_spacing=0.16)
    x = runs[0][1]["x"]
    for col in (1, 2):
        fig.add_trace(go.Scatter(x=x, y=runs[0][1]["p_data"], mode="lines", fill="tozeroy", name="target pdf",
                                 line=dict(color=REAL, width=1), opacity=0.3, showlegend=col == 1,
                                 legendgroup="real"), row=1, col=col, secondary_y=False)
    drawn = {1: False, 2: False}
    for loss, views in runs:
        col = 2 if views.get("wasserstein") else 1
        color = loss_color(loss)
        fig.add_trace(go.Scatter(x=views["x"], y=views["p_g"], mode="lines", name=f"{loss_short(loss)}: fakes",
                                 line=dict(color=color, width=1, dash="dot"), legendgroup=loss),
                      row=1, col=col, secondary_y=False)
        if views.get("d_curve") is not None:
            fig.add_trace(go.Scatter(x=views["x"], y=views["d_curve"], mode="lines",
                                     name=f"{loss_short(loss)}: {'f(x)' if col == 2 else 'D(x)'}",
                                     line=dict(color=color, width=3), legendgroup=loss),
                          row=1, col=col, secondary_y=True)
            drawn[col] = True
    for col, (family, why) in enumerate((("BCE", "D(x)"), ("Wasserstein", "f(x)")), start=1):
        if not drawn[col]:
            fig.add_annotation(text=f"no {family} run with a per-sample {why} here", showarrow=False,
                               x=0.5, y=0.5, xref="x domain", yref="y domain", row=1, col=col)
    fig.update_yaxes(title_text="density", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="D(x)", range=[0, 1.02], secondary_y=True, row=1, col=1)
    fig.update_yaxes(title_text="f(x)", secondary_y=True, row=1, col=2)
    fig.update_xaxes(title_text="x")
    _layout(fig, title, height=380)
    fig.update_layout(**_LEGEND_BELOW)
    return fig


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
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=["G's loss against D(G(z))", "G's loss against D's raw score s"])
    fig.add_trace(go.Scatter(x=p, y=np.log1p(-p), mode="lines", name="saturating: log(1 − D)",
                             line=dict(color=sat, width=3), legendgroup="sat"), row=1, col=1)
    fig.add_trace(go.Scatter(x=p, y=-np.log(p), mode="lines", name="non-saturating: −log D",
                             line=dict(color=ns, width=3), legendgroup="ns"), row=1, col=1)
    # log(1 - sigmoid(s)) = -softplus(s); -log sigmoid(s) = softplus(-s)
    fig.add_trace(go.Scatter(x=s, y=-np.logaddexp(0, s), mode="lines", name="saturating", showlegend=False,
                             line=dict(color=sat, width=3), legendgroup="sat"), row=1, col=2)
    fig.add_trace(go.Scatter(x=s, y=np.logaddexp(0, -s), mode="lines", name="non-saturating", showlegend=False,
                             line=dict(color=ns, width=3), legendgroup="ns"), row=1, col=2)
    fig.add_trace(go.Scatter(x=s, y=-s, mode="lines", name="Wasserstein: −f (s = f)",
                             line=dict(color=wgan, width=3, dash="dash")), row=1, col=2)
    fig.add_annotation(x=0.05, y=np.log1p(-0.05), text="flat where D rejects the fakes", ax=70, ay=50,
                       row=1, col=1)
    fig.add_annotation(x=-5, y=-np.logaddexp(0, -5), text="slope ≈ 0: no gradient for G", ax=50, ay=50,
                       row=1, col=2)
    fig.update_xaxes(title_text="D(G(z)): 0 = D sure it is fake", row=1, col=1)
    fig.update_xaxes(title_text="s: logit (BCE) or critic value f (WGAN)", row=1, col=2)
    fig.update_yaxes(title_text="loss G minimises", range=[-6, 6])
    _layout(fig, "The generator's loss, and its slope, for each loss", height=360)
    fig.update_layout(**_LEGEND_BELOW)
    return fig


def digit_histogram_figure(meters: dict) -> go.Figure:
    """Which digits G draws now, by the classifier: ten bars against the uniform 10%."""
    columns = [f"hist_{d}" for d in range(10)]
    if not all(c in meters and len(meters[c]) for c in columns):
        return empty_figure("Digits drawn", "No classifier meters yet.")
    shares = [float(meters[c][-1]) for c in columns]
    bars = dict(type="bar", x=[str(d) for d in range(10)], y=shares, marker_color=FAKE, name="share")
    covered = meters.get("modes_covered")
    title = f"Digits drawn at step {int(meters['step'][-1])}"
    if covered is not None:
        title += f" · {int(covered[-1])} of 10 covered"
    return figure([bars], title, xaxis=dict(title=dict(text="digit (by the classifier)"), type="category"),
                  yaxis=dict(title=dict(text="share of samples"), range=[0, max(0.3, max(shares) * 1.1)]),
                  **guide_line(0.1, "uniform"))


def mnist_quality_figure(meters: dict) -> go.Figure:
    """The Fréchet distance in the classifier's features (lower is better)."""
    return curves_figure(meters, {"fid": "Fréchet distance"},
                         "Fréchet distance to real digits (classifier features, lower is better)",
                         smooth_alpha=None)


def mnist_modes_figure(meters: dict) -> go.Figure:
    series = {"modes_covered": "digits covered (of 10)", "kl_uniform": "KL to uniform (nats)"}
    if "label_accuracy" in meters:
        series["label_accuracy"] = "CGAN: asked-for digit drawn"
    return curves_figure(meters, series, "Mode coverage", smooth_alpha=None)


# -- Runs page: any runs, one metric ----------------------------------------------------------

_RUN_COLORS = [REAL, FAKE, DISC, "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]


def overlay_figure(series: dict[str, tuple[np.ndarray, np.ndarray]], metric: str, *,
                   smooth_alpha: float | None = None, log_y: bool = False) -> go.Figure:
    """One line per run ({run label: (steps, values)}) for one metric, on shared axes."""
    title = f"{metric} by run"
    fig = go.Figure()
    for i, (label, (steps, values)) in enumerate(series.items()):
        values = np.asarray(values, dtype=np.float64)
        if len(steps) == 0 or len(values) != len(steps):
            continue
        color = _RUN_COLORS[i % len(_RUN_COLORS)]
        if smooth_alpha:
            fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=f"{label} (raw)", opacity=0.25,
                                     line=dict(color=color, width=1), showlegend=False))
            values = smooth(values, smooth_alpha)
        fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=label, line=dict(color=color, width=2)))
    if not fig.data:
        return empty_figure(title, f"None of these runs has {metric} yet.")
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text=metric, type="log" if log_y else "linear",
                     exponentformat="power" if log_y else "B")
    return _layout(fig, title, height=380)



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


def autoencoder_quality_figure(meters: dict) -> go.Figure:
    """The GANs' Fréchet distance, on decodes of random codes and on reconstructions of held-out digits."""
    return curves_figure(meters, {"fid": "samples (random codes)", "fid_recon": "reconstructions"},
                         "Fréchet distance (lower is better)", smooth_alpha=None)


def latent_figure(latent: dict | None, title: str = "Latent space") -> go.Figure:
    """Held-out digits' codes, one colour per digit, and the random codes the samples decode.

    latent: {"points": [N, 2 or 3], "digits": [N], "prior": [M, same], "axes": names,
    "explained": share of variance shown}, as ganlab.autoencoders.latent_view makes it.
    """
    if not latent:
        return empty_figure(title, "Waiting for the first snapshot…")
    points, digits, prior = latent["points"], np.asarray(latent["digits"]), latent["prior"]
    three_d = points.shape[1] == 3
    fig = go.Figure()

    def add(xyz, name, marker):
        if three_d:
            fig.add_trace(go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="markers", name=name,
                                       marker=dict(size=3, **marker)))
        else:
            fig.add_trace(go.Scatter(x=xyz[:, 0], y=xyz[:, 1], mode="markers", name=name,
                                     marker=dict(size=5, **marker)))

    for d in range(10):
        mask = digits == d
        if mask.any():
            add(points[mask], str(d), dict(color=DIGIT_COLORS[d], opacity=0.7))
    add(prior, "random z (samples)", dict(color="black", symbol="x", opacity=0.8))
    axes = latent["axes"]
    if three_d:
        fig.update_layout(scene=dict(xaxis_title=axes[0], yaxis_title=axes[1], zaxis_title=axes[2]))
    else:
        fig.update_xaxes(title_text=axes[0])
        fig.update_yaxes(title_text=axes[1])
    if latent.get("explained", 1.0) < 1.0:
        title += f" · PCA, {latent['explained']:.0%} of the variance"
    _layout(fig, title, height=460)
    fig.update_layout(legend=dict(orientation="v", yanchor="top", y=1.0, x=1.02, title_text="digit"))
    return fig


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
    critic = bool(stage.get("wasserstein"))
    d_name = "critic f(x)" if critic else "D(x)"
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    views = views or {}
    if views.get("x") is not None:
        fig.add_trace(go.Scatter(x=views["x"], y=views["p_data"], name="target pdf", mode="lines",
                                 line=dict(color=REAL, width=2), opacity=0.5), secondary_y=False)
    grid = np.asarray(stage["grid"]).ravel() if stage.get("grid") is not None else None
    curve = stage.get("d_curve")
    if grid is not None and curve is not None:
        if name == "d_update":
            fig.add_trace(go.Scatter(x=grid, y=curve, mode="lines", name=f"{d_name} before",
                                     line=dict(color=DISC, width=2, dash="dot")), secondary_y=True)
            curve = stage["d_curve_after"]
            fig.add_trace(go.Scatter(x=grid, y=curve, mode="lines", name=f"{d_name} after",
                                     line=dict(color=DISC, width=3)), secondary_y=True)
        else:
            fig.add_trace(go.Scatter(x=grid, y=curve, mode="lines", name=d_name,
                                     line=dict(color=DISC, width=2)), secondary_y=True)

    def on_curve(x):
        # Where a point sits: on D's curve when there is one, else on the rug.
        return np.interp(x, grid, curve) if grid is not None and curve is not None else np.zeros_like(x)

    rug = dict(symbol="line-ns-open", size=14, line=dict(width=2))
    if name in ("sample", "d_predict", "d_loss", "d_update"):
        real = np.asarray(stage["real"]).ravel()[:max_points]
        fake = np.asarray(stage["fake"]).ravel()[:max_points]
        scored = "d_real" in stage and len(stage["d_real"]) == len(stage["real"])
        for x, color, label, key in ((real, REAL, "real", "d_real"), (fake, FAKE, "fake", "d_fake")):
            fig.add_trace(go.Scatter(x=x, y=np.zeros_like(x), mode="markers", name=f"{label} points",
                                     marker=dict(color=color, **rug), opacity=0.6), secondary_y=False)
            if scored:
                fig.add_trace(go.Scatter(x=x, y=np.asarray(stage[key]).ravel()[:max_points], mode="markers",
                                         name=f"{d_name} on {label}", marker=dict(color=color, size=7,
                                                                                  line=dict(width=1, color="white"))),
                              secondary_y=True)
    else:
        before = np.asarray(stage["fake"]).ravel()[:max_points]
        y = on_curve(before)
        if name == "g_loss":
            push = np.asarray(stage["push"]).ravel()[:max_points]
            x_range = float(grid.max() - grid.min()) if grid is not None else float(np.ptp(before)) or 1.0
            longest = float(np.abs(push).max()) or 1.0
            ends = before + push / longest * 0.08 * x_range
            fig.add_trace(go.Scatter(x=_segments(before, ends), y=_segments(y, y), mode="lines",
                                     name="G's push on each fake", line=dict(color=FAKE, width=2)),
                          secondary_y=True)
            fig.add_trace(go.Scatter(x=ends, y=y, mode="markers", showlegend=False, hoverinfo="skip",
                                     marker=dict(color=FAKE, size=8, symbol="arrow", angleref="previous")),
                          secondary_y=True)
            fig.add_trace(go.Scatter(x=before, y=y, mode="markers", name="fake points",
                                     marker=dict(color=FAKE, size=6)), secondary_y=True)
        else:
            after = np.asarray(stage["fake_after"]).ravel()[:max_points]
            y_after = on_curve(after)
            fig.add_trace(go.Scatter(x=_segments(before, after), y=_segments(y, y_after), mode="lines",
                                     showlegend=False, line=dict(color=OPTIMAL, width=1), hoverinfo="skip"),
                          secondary_y=True)
            fig.add_trace(go.Scatter(x=before, y=y, mode="markers", name="fakes before",
                                     marker=dict(color=FAKE, size=6), opacity=0.3), secondary_y=True)
            fig.add_trace(go.Scatter(x=after, y=y_after, mode="markers", name="fakes after",
                                     marker=dict(color=FAKE, size=7)), secondary_y=True)
    fig.update_yaxes(title_text="density", rangemode="tozero", secondary_y=False)
    if critic:
        fig.update_yaxes(title_text="f(x)", secondary_y=True)
    else:
        fig.update_yaxes(title_text="D(x)", range=[-0.02, 1.02], dtick=0.25, secondary_y=True)
    fig.update_xaxes(title_text="x")
    _layout(fig, title, height=440)
    fig.update_layout(margin=dict(t=100))   # room for a two-row legend under the title
    return fig


def _segments(starts: np.ndarray, ends: np.ndarray) -> list:
    """Line segments start→end in one trace, separated by None."""
    out: list = []
    for a, b in zip(starts.tolist(), ends.tolist()):
        out += [a, b, None]
    return out


def stage_figure_2d(stage: dict, views: dict) -> go.Figure:
    """One slow-motion stage in the plane, drawn by charts2d.plane_figure.

    D's surface is the stage's own (after the update at stage 4); the arrows are
    G's push at stage 5, and each fake's move, before → after, at stage 6.
    `views` (the latest probe's) gives the box and the surface's grid.
    """
    from ganlab.charts2d import plane_figure   # charts2d builds on this module
    name = stage["stage"]
    title = f"Step {stage['iteration']} · {stage['number']}. {stage['title']}"
    if stage.get("d_steps", 1) > 1 and stage["number"] <= 4:
        title += f" (D step {stage['d_step']} of {stage['d_steps']})"
    if not views or "box" not in views:
        return empty_figure(title, "Waiting for the first snapshot…")
    plane = {k: views[k] for k in ("box", "surface_x", "surface_y")}
    plane.update(wasserstein=stage.get("wasserstein"), real=stage.get("real"), fake=stage["fake"])
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
        title += f" ({'the critic' if stage.get('wasserstein') else 'D'} after its update)"
    return plane_figure(plane, surface=curve is not None, real=stage.get("real") is not None, fake=True,
                        arrows="arrow_at" in plane, manifold=False, title=title)
