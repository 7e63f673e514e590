"""Presets' promises, and `check-presets`, which measures them on fresh seeds."""
import json
import math

import pytest

from ganlab.__main__ import main
from ganlab.checks import FIRST_SEED, SeedResult, judge
from ganlab.presets import PRESETS, Promise


def results(meter, values):
    return [SeedResult(seed, "finished", 1.0, {meter: v}) for seed, v in enumerate(values)]


def test_a_promise_is_kept_on_the_right_side_of_its_bound():
    below = Promise("w1", 0.1)
    assert below.kept(0.05) and not below.kept(0.1) and not below.kept(0.3)
    at_least = Promise("modes_covered", 9, higher_is_better=True, words="digits covered")
    assert at_least.kept(9) and at_least.kept(10) and not at_least.kept(8)
    assert not below.kept(None) and not below.kept(float("nan")) and not at_least.kept(float("nan"))
    assert str(at_least) == "digits covered at least 9" and str(below) == "W1 to the target below 0.1"
    # Its direction and words come from the meter's spec (ganlab.meters) unless given; its step from
    # the preset's budget.
    assert Promise("high_quality", 0.9).higher_is_better and not Promise("fid", 50).higher_is_better
    assert str(PRESETS["gauss1d"].promises[0]) == "W1 to the target below 0.1 by step 6,000"


def test_judge_counts_seeds_and_reports_the_median_and_the_worst():
    verdict = judge(Promise("w1", 0.1), results("w1", [0.05, 0.02, 0.3, 0.08]))
    assert (verdict.kept, verdict.runs, verdict.worst) == (3, 4, 0.3)
    assert verdict.median == pytest.approx(0.065)
    higher = judge(Promise("confident", 0.8, True), results("confident", [0.9, 0.7, 0.85]))
    assert (higher.kept, higher.worst, higher.median) == (2, 0.7, 0.85)
    # A run that failed has no meter: it is the worst case, whichever way the meter points.
    failed = judge(Promise("w1", 0.1), results("w1", [0.05, float("nan")]))
    assert failed.kept == 1 and failed.worst == math.inf
    failed = judge(Promise("confident", 0.8, True), results("confident", [0.9, float("nan")]))
    assert failed.kept == 1 and failed.worst == -math.inf


def test_every_promise_names_a_meter_its_task_records():
    recorded = {"gauss1d": {"w1", "ks"}, "toy2d": {"energy", "high_quality", "modes_covered", "modes_captured"},
                "mnist": {"fid", "modes_covered", "confident", "kl_uniform", "diversity"}}
    promising = [p for p in PRESETS.values() if p.promises]
    assert {p.slug for p in promising} >= {"gauss1d", "toy2d-ring", "mnist-dcgan", "mnist-mlp-seed003"}
    for preset in promising:
        for promise in preset.promises:
            assert promise.meter in recorded[preset.config.task], (preset.slug, promise.meter)


def test_check_presets_trains_fresh_seeds_and_reports_each_promise(capsys):
    assert main(["check-presets", "--preset", "gauss1d", "--seeds", "2", "--steps", "40", "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert report["preset"] == "gauss1d" and report["steps"] == 40
    assert report["seeds"] == [FIRST_SEED, FIRST_SEED + 1]          # never the seeds presets are tuned on
    runs = report["runs"]
    assert [r["seed"] for r in runs] == report["seeds"] and all(r["status"] == "finished" for r in runs)
    (promise,) = report["promises"]
    assert promise["promise"].endswith("by step 40")   # judged where the runs stopped, not at the budget
    w1 = [r["w1"] for r in runs]
    assert promise["kept"] == sum(v < 0.1 for v in w1) and promise["worst"] == max(w1)
    assert all(v > 0.5 for v in w1)        # 40 steps is far too few: the report says so, it does not round up


def test_check_presets_checks_a_promise_on_changed_settings_and_names_a_bad_one(capsys):
    args = ["check-presets", "--preset", "gauss1d", "--seeds", "1", "--steps", "40", "--json"]
    assert main(args) == 0
    (plain,) = json.loads(capsys.readouterr().out)
    assert main(args + ["--set", "opt_g.lr=0.05", "--set", "model.g_hidden=8"]) == 0
    (changed,) = json.loads(capsys.readouterr().out)
    assert changed["set"] == ["opt_g.lr=0.05", "model.g_hidden=8"] and plain["set"] == []
    assert changed["runs"][0]["w1"] != plain["runs"][0]["w1"]       # the same seed, trained otherwise

    assert main(args + ["--set", "opt_g.lr=-1"]) == 2
    assert "opt_g.lr" in capsys.readouterr().err
