"""The sweep's charts are pure functions: build them from trial rows and read what a user sees."""
import math

import numpy as np
import pytest

from ganlab import charts, charts_sweep
from ganlab.charts_sweep import sweep_curves, sweep_heatmap, trial_label

NAN = float("nan")


def row(trial, d_lr, g_lr, seed, status, w1=None):
    return {"trial": trial, "seed": seed, "opt_d.lr": d_lr, "opt_g.lr": g_lr, "status": status, "w1": w1,
            "reason": "", "step": 100}


# A 2x2 grid of D and G learning rates, 3 seeds each: every way a cell can go.
ROWS = [
    row(0, 1e-4, 1e-4, 100, "finished", 0.10), row(1, 1e-4, 1e-4, 101, "finished", 0.30),
    row(2, 1e-4, 1e-4, 102, "collapsed", 0.50),     # a collapsed G still has a W1: it counts
    row(3, 1e-2, 1e-4, 100, "diverged", NAN), row(4, 1e-2, 1e-4, 101, "diverged", 1e6),
    row(5, 1e-2, 1e-4, 102, "diverged", NAN),       # nothing to score: grey, and says so
    row(6, 1e-4, 1e-2, 100, "pending"), row(7, 1e-4, 1e-2, 101, "pending"), row(8, 1e-4, 1e-2, 102, "pending"),
    row(9, 1e-2, 1e-2, 100, "finished", 0.20), row(10, 1e-2, 1e-2, 101, "diverged", 50.0),
    row(11, 1e-2, 1e-2, 102, "running"),
]


def grid(fig):
    """{(x, y): (value, words)} of the heatmap's cells, as the browser draws them."""
    (heat,) = [t for t in fig.data if t.showscale is not False]
    (back,) = [t for t in fig.data if t.showscale is False]     # the grey layer: cells with no value
    return {(x, y): (heat.z[i][j], heat.text[i][j] + back.text[i][j])
            for i, y in enumerate(heat.y) for j, x in enumerate(heat.x)}


def test_a_sweep_stopped_before_any_result_names_every_cell_on_grey():
    # Plotly draws no text on a heatmap whose cells are all empty: the words must be on the grey layer.
    rows = [row(0, 1e-4, 1e-4, 100, "stopped", NAN), row(1, 1e-2, 1e-4, 100, "stopped", 0.3)]
    fig = sweep_heatmap(rows, "opt_d.lr", None, "w1", log_x=True)
    (back,) = [t for t in fig.data if t.showscale is False]
    assert [list(line) for line in back.text] == [["stopped", "stopped"]]
    assert [list(line) for line in back.z] == [[0, 0]]


def test_each_cell_shows_the_median_over_seeds_and_names_what_went_wrong_in_words():
    fig = sweep_heatmap(ROWS, "opt_d.lr", "opt_g.lr", "w1", log_x=True, log_y=True)
    cells = grid(fig)
    # Median of 0.1, 0.3 and the collapsed seed's 0.5; the collapse named with how many seeds.
    assert cells[(1e-4, 1e-4)] == (pytest.approx(0.3), "0.3<br>collapsed 1/3")
    # Every seed diverged: no value (a diverged trial's last W1 is no result), the words say why.
    assert cells[(1e-2, 1e-4)] == (None, "diverged 3/3")
    # A pending cell is blank: no value, no words.
    assert cells[(1e-4, 1e-2)] == (None, "")
    # One seed scored, one diverged (its W1 of 50 is left out of the median), one still running.
    assert cells[(1e-2, 1e-2)] == (pytest.approx(0.2), "0.2<br>diverged 1/3")
    # The all-diverged cell, and only it, is painted grey behind its words, not left a hole.
    (back,) = [t for t in fig.data if t.showscale is False]
    assert [[v for v in line] for line in back.z] == [[None, 0], [None, None]]


def test_learning_rate_axes_are_logarithmic_and_titled_in_words():
    fig = sweep_heatmap(ROWS, "opt_d.lr", "opt_g.lr", "w1", x_title="D learning rate", y_title="G learning rate",
                        log_x=True, log_y=True)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert fig.layout.xaxis.title.text == "D learning rate" and fig.layout.yaxis.title.text == "G learning rate"
    # Each column and row is labelled with its setting, not with the decades of the log axis.
    assert list(fig.layout.xaxis.ticktext) == ["0.0001", "0.01"] and list(fig.layout.xaxis.tickvals) == [1e-4, 1e-2]
    linear = sweep_heatmap(ROWS, "opt_d.lr", "opt_g.lr", "w1")
    assert linear.layout.xaxis.type == "linear"


def test_the_colour_bar_names_the_meter_and_which_way_is_better():
    fig = sweep_heatmap(ROWS, "opt_d.lr", "opt_g.lr", "w1")
    (heat,) = [t for t in fig.data if t.showscale is not False]
    assert heat.colorbar.title.text == "W1 to the target<br>(lower is better)"
    assert heat.reversescale is True        # the good end is the bright one, whichever way is better
    assert "median over seeds" in fig.layout.title.text
    modes = [dict(r, modes_covered=3) for r in ROWS]
    (heat,) = [t for t in sweep_heatmap(modes, "opt_d.lr", "opt_g.lr", "modes_covered").data
               if t.showscale is not False]
    assert heat.colorbar.title.text == "modes covered<br>(higher is better)" and not heat.reversescale


def test_one_setting_draws_a_strip_and_one_seed_says_diverged_alone():
    rows = [row(0, 1e-4, 2e-4, 100, "finished", 0.05), row(1, 1e-3, 2e-4, 100, "diverged", NAN),
            row(2, 1e-2, 2e-4, 100, "failed")]
    fig = sweep_heatmap(rows, "opt_d.lr", None, "w1", log_x=True)
    cells = grid(fig)
    assert list(cells) == [(1e-4, 0), (1e-3, 0), (1e-2, 0)]     # one row
    assert [words for _, words in cells.values()] == ["0.05", "diverged", "failed"]
    assert fig.layout.yaxis.visible is False
    assert "median" not in fig.layout.title.text                # one seed: nothing to take a median of


def test_random_settings_share_no_grid_and_draw_a_marker_per_trial():
    rows = [row(0, 1.3e-4, 2.1e-3, 100, "finished", 0.4), row(1, 4.2e-3, 1.7e-4, 100, "collapsed", 0.9),
            row(2, 7.5e-4, 6.6e-4, 100, "diverged", NAN)]
    fig = sweep_heatmap(rows, "opt_d.lr", "opt_g.lr", "w1", log_x=True, log_y=True)
    (trace,) = fig.data
    assert trace.type == "scatter"
    assert list(trace.text) == ["0.4", "0.9<br>collapsed", "diverged"]
    assert math.isnan(trace.marker.color[2])
    assert trace.marker.colorbar.title.text == "W1 to the target<br>(lower is better)"


def test_the_heatmap_keeps_its_words_in_teaching_mode_at_a_projectors_size():
    fig = charts.projector_fonts(sweep_heatmap(ROWS, "opt_d.lr", "opt_g.lr", "w1"))
    heat = fig.data[1]
    assert heat.textfont.size >= charts.PROJECTOR_FONT and heat.colorbar.title.font.size >= charts.PROJECTOR_FONT


def test_picked_trials_curves_are_overlaid_one_line_per_trial():
    steps = np.arange(0, 300, 100)
    curves = {"#0 · lr=1e-4": {"step": steps, "w1": np.array([1.0, 0.5, 0.2]), "loss_d": np.ones(3)},
              "#1 · <b>x</b>": {"step": steps, "w1": np.array([1.0, 2.0, 9.0])}}
    fig = sweep_curves(curves, "w1")
    assert [t.name for t in fig.data] == ["#0 · lr=1e-4", "#1 · &lt;b&gt;x&lt;/b&gt;"]   # typed names as text
    assert list(fig.data[1].y) == [1.0, 2.0, 9.0]                   # a meter: as measured
    assert fig.layout.title.text == "W1 to the target by trial"
    losses = sweep_curves(curves, "loss_d")
    assert [t.name for t in losses.data] == ["#0 · lr=1e-4 (raw)", "#0 · lr=1e-4"]   # only the trial that has it


def test_a_trial_label_names_its_number_settings_and_seed():
    assert trial_label(ROWS[4], ["opt_d.lr", "opt_g.lr"]) == "#4 · opt_d.lr=0.01 · opt_g.lr=0.0001 · seed 101"


def test_cells_count_ended_trials():
    by = {(c["x"], c["y"]): c for c in charts_sweep.cells(ROWS, "opt_d.lr", "opt_g.lr", "w1")}
    assert by[(1e-2, 1e-2)]["done"] == 2 and by[(1e-4, 1e-2)]["done"] == 0


def test_the_table_of_trials_is_headed_in_words_and_its_csv_keeps_an_error_from_being_a_formula():
    from ganlab.chartview import table_csv
    rows = [row(0, 1e-4, 2e-4, 100, "finished", 0.25), dict(row(1, 1e-3, 2e-4, 100, "failed"), reason="=cmd|x")]
    frame = charts_sweep.trials_frame(rows, ["opt_d.lr"], {"opt_d.lr": "D learning rate"})
    assert list(frame.columns) == ["trial", "D learning rate", "seed", "status", "why", "step", "seconds", "W1"]
    assert list(frame["status"]) == ["finished", "failed"] and frame["W1"][0] == 0.25
    lines = table_csv(frame).splitlines()
    assert lines[0] == "trial,D learning rate,seed,status,why,step,seconds,W1"
    assert lines[1] == "0,0.0001,100,finished,,100,,0.25"
    assert lines[2] == "1,0.001,100,failed,'=cmd|x,100,,"        # no W1: empty, not nan


def test_the_table_shown_keeps_the_summary_meters_and_the_mapped_one():
    rows = [dict(row(0, 1e-4, 2e-4, 100, "finished", 0.25), ks=0.1, fake_mean=3.9, fake_std=1.2)]
    frame = charts_sweep.trials_frame(rows, ["opt_d.lr"])
    assert list(charts_sweep.table_shown(frame, "w1").columns) == ["trial", "opt_d.lr", "seed", "status", "step",
                                                                    "seconds", "W1", "KS"]   # no reason: no "why"
    assert "std of the fakes" in charts_sweep.table_shown(frame, "fake_std").columns


def test_before_any_result_the_axes_already_span_the_sweeps_settings():
    pending = [dict(r, status="pending", w1=None) for r in ROWS]
    fig = sweep_heatmap(pending, "opt_d.lr", "opt_g.lr", "w1", log_x=True, log_y=True)
    assert all(v is None for line in grid(fig).values() for v in line[:1])
    assert fig.layout.xaxis.range == pytest.approx((-5.0, -1.0))     # 1e-4 and 1e-2, half a decade either side
    assert sweep_heatmap(pending, "opt_d.lr", None, "w1").layout.xaxis.range == pytest.approx((-0.00485, 0.01495))
