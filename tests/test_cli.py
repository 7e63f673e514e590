"""The command line: presets, headless training with --json, and clear errors."""
import json
import subprocess
import sys
from pathlib import Path

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
