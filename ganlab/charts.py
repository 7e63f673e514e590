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


def _layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=50, r=20, t=50, b=40),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0), uirevision="keep")
    return fig


def empty_figure(title: str, message: str) -> go.Figure:
    """A figure that says why it has no data, instead of an empty frame."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=14))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title)


def density_figure(views: dict) -> go.Figure:
    """Real pdf and generated histogram; D(x) and D*(x) on a second axis."""
    if not views:
        return empty_figure("Densities", "Waiting for the first snapshot…")
    x = views["x"]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    width = float(x[1] - x[0])
    fig.add_trace(go.Bar(x=x, y=views["p_g"], width=width, name="generated (histogram)",
                         marker_color=FAKE, opacity=0.45), secondary_y=False)
    fig.add_trace(go.Scatter(x=x, y=views["p_data"], name="target pdf", mode="lines",
                             line=dict(color=REAL, width=3)), secondary_y=False)
    wasserstein = views.get("wasserstein", False)
    if views.get("d_curve") is not None:
        fig.add_trace(go.Scatter(x=x, y=views["d_curve"], mode="lines", line=dict(color=DISC, width=2),
                                 name="critic f(x)" if wasserstein else "D(x)"), secondary_y=True)
    if not wasserstein:
        fig.add_trace(go.Scatter(x=x, y=views["d_star"], mode="lines", name="optimal D*(x)",
                                 line=dict(color=OPTIMAL, dash="dot")), secondary_y=True)
        fig.update_yaxes(title_text="D(x)", range=[0, 1.02], secondary_y=True)
    else:
        fig.update_yaxes(title_text="f(x)", secondary_y=True)
    fig.update_yaxes(title_text="density", rangemode="tozero", secondary_y=False)
    fig.update_xaxes(title_text="x")
    title = f"Real and generated densities (step {views.get('step', 0)})"
    if views.get("outside", 0) > 0.001:
        title += f" · {views['outside']:.0%} of samples off the chart"
    return _layout(fig, title, height=380)


def curves_figure(history: dict, series: dict[str, str], title: str, *, smooth_alpha: float | None = 0.05,
                  log_y: bool = False, y_title: str = "") -> go.Figure:
    """Lines over steps, one per column in `series` ({column: label}); raw faint, smoothed bold."""
    steps = history.get("step")
    if steps is None or len(steps) == 0:
        return empty_figure(title, "No data yet: start a run.")
    fig = go.Figure()
    palette = [REAL, FAKE, DISC, "#9467bd", "#ff7f0e", "#8c564b"]
    for (column, label), color in zip(series.items(), palette):
        values = np.asarray(history.get(column, []), dtype=np.float64)
        if len(values) != len(steps):
            continue
        if smooth_alpha:
            fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=f"{label} (raw)",
                                     line=dict(color=color, width=1), opacity=0.3, showlegend=False))
            fig.add_trace(go.Scatter(x=steps, y=smooth(values, smooth_alpha), mode="lines", name=label,
                                     line=dict(color=color, width=2)))
        else:
            fig.add_trace(go.Scatter(x=steps, y=values, mode="lines+markers", name=label,
                                     line=dict(color=color, width=2), marker=dict(size=4)))
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text=y_title, type="log" if log_y else "linear",
                     exponentformat="power" if log_y else "B")
    return _layout(fig, title)


def loss_figure(metrics: dict) -> go.Figure:
    return curves_figure(metrics, {"loss_d": "D loss", "loss_g": "G loss"}, "Losses (raw and smoothed)")


def d_outputs_figure(metrics: dict, wasserstein: bool = False) -> go.Figure:
    if wasserstein:
        return curves_figure(metrics, {"d_real": "mean f(real)", "d_fake": "mean f(fake)"},
                             "Critic on real and fake")
    fig = curves_figure(metrics, {"d_real": "mean D(real)", "d_fake": "mean D(fake)"},
                        "D on real and fake (both head to 0.5 at equilibrium)")
    fig.add_hline(y=0.5, line_dash="dot", line_color=OPTIMAL)
    return fig


def quality_figure(meters: dict) -> go.Figure:
    fig = curves_figure(meters, {"w1": "W1 to target", "ks": "KS statistic"},
                        "Distance to the target (lower is better)", smooth_alpha=None)
    # Below this, the meter cannot tell the samples from the target (10k samples).
    fig.add_hline(y=0.02, line_dash="dot", line_color=OPTIMAL, annotation_text="noise floor (W1)")
    return fig


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
    fig = go.Figure(go.Image(z=np.repeat(grid[:, :, None], 3, axis=2), colormodel="rgb",
                             hoverinfo="skip"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10), uirevision="keep")
    return fig


def d_test_figure(meters: dict, wasserstein: bool = False) -> go.Figure:
    """Seed 003's p_real / p_fake traces, measured on held-out digits."""
    if wasserstein:
        return curves_figure(meters, {"d_real_test": "mean f(real), held out", "d_fake_test": "mean f(fake)"},
                             "Critic on held-out real and on fake digits", smooth_alpha=None)
    fig = curves_figure(meters, {"d_real_test": "D(real), held out", "d_fake_test": "D(fake)"},
                        "D on held-out real and on fake digits (both head to 0.5)", smooth_alpha=None)
    fig.add_hline(y=0.5, line_dash="dot", line_color=OPTIMAL)
    return fig
