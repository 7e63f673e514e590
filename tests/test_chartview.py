"""The reader's view of curve charts (smoothing, log y, wall time on x), charts' data as CSV, run
labels and the clock a run's history keeps: pure functions, tested on plain arrays."""
import csv
import io
import re
import time
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import tiny
from ganlab import charts
from ganlab.chartview import CurveView, apply_view, ema, figure_csv
from ganlab.labels import changed_settings, loss_words, run_label, run_labels
from ganlab.presets import get_preset


def tensorboard_smoothing(values, weight):
    """TensorBoard's scalar smoothing, as its dashboard writes it (a loop, debiased, NaN passed over)."""
    last, count, out = 0.0, 0, []
    for value in values:
        if np.isfinite(value):
            last = last * weight + (1 - weight) * value
            count += 1
            out.append(last / (1 - weight ** count))
        else:
            out.append(out[-1] if out else np.nan)
    return np.array(out)


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.6, 0.95, 0.99])
def test_smoothing_is_tensorboards_moving_average(weight):
    values = np.random.default_rng(0).normal(size=300).cumsum()
    values[[5, 40, 41]] = np.nan
    assert ema(values, weight) == pytest.approx(tensorboard_smoothing(values, weight), nan_ok=True)


def test_no_smoothing_draws_the_raw_values_and_a_constant_stays_put():
    values = np.array([3.0, -1.0, 7.0, 2.5])
    assert ema(values, 0.0) == pytest.approx(values)
    assert ema(np.full(50, 4.2), 0.9) == pytest.approx(np.full(50, 4.2))   # debiased: no ramp up from 0
    with pytest.raises(ValueError):
        CurveView(smoothing=1.0)                      # a weight of 1 never moves off its start


def loss_fig(steps=np.arange(0, 500, 10)):
    rng = np.random.default_rng(1)
    metrics = {"step": steps, "loss_d": 1 + rng.random(len(steps)), "loss_g": 2 + rng.random(len(steps))}
    return charts.loss_figure(metrics), metrics


def test_the_view_resmooths_the_curves_and_sets_log_y():
    fig, metrics = loss_fig()
    apply_view(fig, CurveView(smoothing=0.5, log_y=True))
    raw, smoothed = fig.data[0], fig.data[1]
    assert (raw.meta, smoothed.meta) == ("raw", "smoothed")
    assert np.asarray(raw.y) == pytest.approx(metrics["loss_d"])               # the raw values stay as they are
    assert np.asarray(smoothed.y) == pytest.approx(ema(metrics["loss_d"], 0.5))
    assert fig.layout.yaxis.type == "log"
    density = charts.density_figure({"x": np.linspace(0, 1, 5), "p_data": np.ones(5), "p_g": np.ones(5),
                                     "d_curve": None, "d_star": None, "step": 0})
    before = density.to_plotly_json()
    assert apply_view(density, CurveView(log_y=True)).to_plotly_json() == before   # not a curve over steps


def test_wall_time_on_x_maps_each_step_through_the_runs_clock():
    fig, metrics = loss_fig()
    apply_view(fig, CurveView(x="wall"), lambda steps: np.asarray(steps) * 0.5)
    assert np.asarray(fig.data[1].x) == pytest.approx(metrics["step"] * 0.5)
    assert fig.layout.xaxis.title.text == "wall time (s)"


def test_a_runs_history_records_when_each_step_was_recorded():
    from ganlab.runs import RunRegistry
    run = RunRegistry().create(tiny(steps=200))
    assert run.join(60)
    snap = run.snapshot()
    assert sorted(set(snap.clock["step"])) == [0, 50, 100, 150, 200]   # every record (the end's again)
    assert np.all(np.diff(snap.clock["wall"]) >= 0) and snap.clock["wall"][0] >= run.started
    seconds = snap.wall_seconds(snap.metrics["step"])
    assert snap.wall_seconds([0])[0] == 0                                   # counted from the first step
    assert np.all(np.diff(seconds) >= 0) and 0 < seconds[-1] <= run.wall_seconds
    assert np.isnan(snap.wall_seconds([-10])[0])       # before the first record (a resumed run's past)


def test_a_charts_csv_holds_its_data():
    fig, metrics = loss_fig()
    rows = list(csv.DictReader(io.StringIO(figure_csv(fig))))
    assert set(rows[0]) == {"series", "step", "loss"}      # the axes' titles head the columns
    d_loss = [r for r in rows if r["series"] == "D loss (raw)"]
    assert [int(r["step"]) for r in d_loss] == list(metrics["step"])
    assert [float(r["loss"]) for r in d_loss] == pytest.approx(metrics["loss_d"])
    surface = {"type": "heatmap", "x": [0.0, 1.0], "y": [5.0, 6.0, 7.0], "z": np.arange(6.0).reshape(3, 2)}
    rows = list(csv.reader(io.StringIO(figure_csv(charts.figure([surface], "plane")))))
    assert rows[0] == ["series", "x", "y", "z"] and len(rows) == 7
    assert rows[1:3] == [["", "0.0", "5.0", "0.0"], ["", "1.0", "5.0", "1.0"]]


def test_a_typed_name_in_a_csv_is_text_not_a_formula():
    fig = charts.overlay_figure({"=HYPERLINK(\"http://x\")": (np.arange(3), np.ones(3))}, "loss_d")
    rows = list(csv.reader(io.StringIO(figure_csv(fig))))
    assert {r[0] for r in rows[1:]} == {"'=HYPERLINK(\"http://x\")"}


# -- labels ---------------------------------------------------------------------------------------

def test_a_label_names_the_start_and_the_settings_changed_from_the_preset():
    base = get_preset("gauss1d").config
    tuned = base.replace(opt_d={"lr": 0.01}, train={"d_steps": 5, "snapshot_every": 7})
    assert changed_settings(base, base) == []
    assert changed_settings(tuned, base) == ["lr_d 0.01", "k 5"]       # how it is run is no setting
    started = time.mktime((2026, 1, 2, 10, 42, 7, 0, 0, -1))
    assert run_label("gauss1d", started, tuned, base) == "gauss1d · 10:42 · lr_d 0.01, k 5"
    many = base.replace(opt_g={"lr": 0.123, "beta1": 0.1}, opt_d={"lr": 0.01}, train={"d_steps": 5, "seed": 3})
    assert run_label("gauss1d", started, many, base) == "gauss1d · 10:42 · lr_g 0.123, lr_d 0.01, k 5 +2 more"


def test_runs_with_the_same_settings_in_one_minute_still_get_different_labels():
    cfg = get_preset("gauss1d").config
    now = time.mktime((2026, 1, 2, 10, 42, 7, 0, 0, -1))
    runs = [SimpleNamespace(id=str(i), name="gauss1d", cfg=cfg, created=t) for i, t in
            enumerate([now, now + 20, now + 20])]
    labels = run_labels(runs)
    assert labels == {"0": "gauss1d · 10:42:07", "1": "gauss1d · 10:42:27", "2": "gauss1d · 10:42:27 #2"}
    other = SimpleNamespace(id="x", name="not a preset", cfg=cfg.replace(train={"seed": 9}), created=now)
    assert re.fullmatch(r"not a preset · 10:42", run_labels([other])["x"])   # no preset: nothing to compare


def test_an_autoencoders_loss_is_its_reconstruction():
    assert loss_words(get_preset("mnist-ae-seed002").config) == "MSE reconstruction"
    assert loss_words(get_preset("mnist-vae-seed002").config).endswith("reconstruction + KL")
    assert loss_words(get_preset("gauss1d-wgan-gp").config) == "WGAN-GP"
