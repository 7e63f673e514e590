"""The command line: presets, headless training with --json, and clear errors."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def ganlab(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "ganlab", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_presets_lists_the_1d_slugs():
    out = ganlab("presets")
    assert out.returncode == 0
    slugs = [line.split()[0] for line in out.stdout.splitlines()]
    assert "gauss1d" in slugs and "gauss1d-seed000" in slugs


def test_train_json_prints_final_metrics_as_its_last_line():
    out = ganlab("train", "--preset", "gauss1d", "--steps", "300", "--seed", "1", "--device", "cpu", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["steps"] == 300
    for key in ("seconds", "loss_d", "loss_g", "w1", "ks"):
        assert isinstance(result[key], float), key
    assert result["seconds"] > 0 and 0 < result["ks"] <= 1
    assert "step 300/300" in out.stderr            # progress was shown


def test_train_is_reproducible_from_the_command_line():
    runs = [json.loads(ganlab("train", "--preset", "gauss1d", "--steps", "100", "--seed", "5", "--json")
                       .stdout.splitlines()[-1]) for _ in range(2)]
    assert runs[0]["loss_d"] == runs[1]["loss_d"] and runs[0]["w1"] == runs[1]["w1"]


def test_bad_input_gets_a_clear_message_and_exit_code_2():
    out = ganlab("train", "--preset", "no-such-preset")
    assert out.returncode == 2 and "unknown preset 'no-such-preset'" in out.stderr
    out = ganlab("train", "--preset", "gauss1d", "--steps", "0")
    assert out.returncode == 2 and "train.steps" in out.stderr
    assert "Traceback" not in out.stderr


SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason=f"no MNIST at {SHARED_DATA}")
@pytest.mark.parametrize("preset", ["mnist-mlp-seed003", "mnist-maxout-seed004", "mnist-dcgan", "mnist-cgan"])
def test_each_mnist_preset_trains_from_the_command_line_and_writes_its_grid(preset, tmp_path):
    out = ganlab("train", "--preset", preset, "--steps", "4", "--data", str(SHARED_DATA), "--out", str(tmp_path),
                 "--json", timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["steps"] == 4
    assert result["fid"] > 0
    # Four steps make blobs, not digits: the confident meters say so instead of finding some digits.
    assert result["modes_covered"] == 0 and result["confident"] < 0.05
    assert ("label_accuracy" in result) == (preset == "mnist-cgan")
    pngs = list(tmp_path.glob("*.png"))
    assert len(pngs) == 1
    from PIL import Image
    with Image.open(pngs[0]) as image:
        width, height = image.size
    assert width > 200 and height > 200     # an 8 x 8 grid of 28 x 28 digits


def test_set_overrides_change_the_config():
    import argparse
    from ganlab.__main__ import build_config
    args = argparse.Namespace(preset="gauss1d", steps=None, seed=None, device=None,
                              set=["loss.name=hinge", "opt_d.lr=4e-4", "train.lr_decay=false", "loss.r1_gamma=2"])
    cfg = build_config(args)
    assert cfg.loss.name == "hinge" and cfg.opt_d.lr == 4e-4 and cfg.train.lr_decay is False
    assert cfg.loss.r1_gamma == 2


def test_set_trains_a_new_loss_from_the_command_line():
    out = ganlab("train", "--preset", "gauss1d", "--steps", "20", "--device", "cpu", "--json",
                 "--set", "loss.name=lsgan", "--set", "opt_d.lr=4e-4")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1])["status"] == "finished"


@pytest.mark.parametrize("override, field", [("loss.nme=hinge", "loss.nme"), ("opt_d.lr=-1", "opt_d.lr"),
                                             ("opt_d.lr=fast", "opt_d.lr"), ("loss.name=bogus", "loss.name"),
                                             ("nope.lr=1", "nope")])
def test_a_bad_set_exits_2_naming_the_field(override, field):
    out = ganlab("train", "--preset", "gauss1d", "--steps", "5", "--set", override, timeout=120)
    assert out.returncode == 2
    assert f"error: {field}:" in out.stderr and "Traceback" not in out.stderr


def test_every_bad_set_is_named_on_a_line_of_its_own(capsys):
    from ganlab.__main__ import main
    assert main(["train", "--preset", "gauss1d", "--steps", "5", "--set", "opt_d.lr=-1",
                 "--set", "train.seed=-2", "--set", "loss.nme=hinge"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert all(line.startswith("error: ") for line in lines)
    assert sorted(line.split(":")[1].strip() for line in lines) == ["loss.nme", "opt_d.lr", "train.seed"]
