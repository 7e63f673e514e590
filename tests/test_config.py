"""Config validation: a bad value names its field and the allowed range."""
import pytest

from ganlab.config import ConfigError, Experiment, Loss, Model, Noise, Optim, Target1D, Train
from ganlab.presets import PRESETS


@pytest.mark.parametrize("make, field, words", [
    (lambda: Optim(lr=-1e-3).validate("opt_g"), "opt_g.lr", "(0, 10]"),
    (lambda: Optim(lr=0.0).validate("opt_d"), "opt_d.lr", "(0, 10]"),
    (lambda: Optim(beta1=1.0).validate("opt_g"), "opt_g.beta1", "[0.0, 1.0)"),
    (lambda: Optim(weight_decay=-1e-5).validate("opt_g"), "opt_g.weight_decay", "[0.0, 1.0)"),
    (lambda: Train(batch_size=0), "train.batch_size", "[1, 1000000]"),
    (lambda: Train(steps=0), "train.steps", "[1,"),
    (lambda: Train(d_steps=0), "train.d_steps", "[1,"),
    (lambda: Target1D(std=0.0), "target.std", "> 0"),
    (lambda: Target1D(std=-1.0), "target.std", "> 0"),
    (lambda: Target1D(kind="mixture", means=(0, 1), stds=(1, 1), weights=(0.5, 0.6)), "target.weights", "sum to 1"),
    (lambda: Target1D(kind="mixture", means=(0, 1), stds=(1, -1), weights=(0.5, 0.5)), "target.stds[1]", "> 0"),
    (lambda: Target1D(kind="uniform", low=3, high=1), "target.high", "> target.low"),
    (lambda: Noise(dim=0), "noise.dim", "[1, 4096]"),
    (lambda: Noise(kind="cauchy"), "noise.kind", "uniform, normal"),
    (lambda: Model(g_activation="swishy"), "model.g_activation", "relu"),
    (lambda: Model(d_depth=2, d_activation="elu,elu,elu"), "model.d_activation", "one per hidden layer"),
    (lambda: Loss(name="hinge-ish"), "loss.name", "bce-ns"),
    (lambda: Loss(clip=0), "loss.clip", "> 0"),
    (lambda: Experiment(opt_g=Optim(lr=float("nan"))), "opt_g.lr", "(0, 10]"),
    (lambda: Experiment(model=Model(minibatch_d=True, minibatch_group=100), train=Train(batch_size=150)),
     "train.batch_size", "multiple"),
])
def test_bad_values_name_field_and_range(make, field, words):
    with pytest.raises(ConfigError) as info:
        make()
    assert info.value.field == field
    assert words in str(info.value)


def test_defaults_are_valid_and_round_trip_through_dict():
    cfg = Experiment()
    assert Experiment.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("slug", sorted(PRESETS))
def test_every_preset_is_valid_and_round_trips(slug):
    cfg = PRESETS[slug].config
    assert Experiment.from_dict(cfg.to_dict()) == cfg


def test_from_dict_rejects_unknown_fields():
    data = Experiment().to_dict()
    data["train"]["stepz"] = 10
    with pytest.raises(ConfigError, match="train.stepz"):
        Experiment.from_dict(data)


def test_replace_updates_one_section_and_revalidates():
    cfg = Experiment().replace(train={"steps": 7})
    assert cfg.train.steps == 7 and cfg.train.batch_size == Train().batch_size
    with pytest.raises(ConfigError, match="train.batch_size"):
        Experiment().replace(train={"batch_size": -5})


def test_cpu_threads_never_exceed_the_machines_cores(monkeypatch):
    import os
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert Train(cpu_threads=4).cpu_threads == 4 and Train(cpu_threads=0).cpu_threads == 0
    with pytest.raises(ConfigError, match=r"train\.cpu_threads.*4 cores.*got 5"):
        Train(cpu_threads=5)
    with pytest.raises(ConfigError, match=r"train\.cpu_threads"):
        Experiment.from_dict({"train": {"cpu_threads": 64}})


def test_every_bad_field_of_every_section_is_named_at_once():
    from ganlab.config import ConfigErrors
    with pytest.raises(ConfigErrors) as info:
        Experiment().replace(train={"batch_size": 0, "seed": -1}, opt_g={"lr": -1.0}, loss={"clip": 0.0},
                             noise={"dim": 0})
    assert {e.field for e in info.value.errors} == {"train.batch_size", "train.seed", "opt_g.lr", "loss.clip",
                                                    "noise.dim"}
    assert isinstance(info.value, ConfigError) and info.value.field == info.value.errors[0].field
    # One bad field is one ConfigError, as before.
    with pytest.raises(ConfigError) as one:
        Experiment().replace(train={"seed": -1})
    assert one.value.errors == [one.value] and one.value.message.startswith("must be in [0,")


def test_a_link_and_the_command_line_check_settings_the_same_way():
    import base64
    import json

    from ganlab.__main__ import apply_overrides
    from ganlab.config import decode_config
    base = PRESETS["gauss1d"].config
    text = json.dumps({"task": "gauss1d", "train": {"stepz": 1, "seed": -1}, "nope": {"x": 1},
                       "opt_d": {"lr": "fast"}})
    link = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    expected = {"train.stepz", "train.seed", "nope", "opt_d.lr"}
    with pytest.raises(ConfigError) as from_link:
        decode_config(link, base)
    with pytest.raises(ConfigError) as from_cli:
        apply_overrides(base, ["train.stepz=1", "train.seed=-1", "nope.x=1", "opt_d.lr=fast"])
    for error in (from_link.value, from_cli.value):
        assert {e.field for e in error.errors} == expected
    assert [str(e) for e in from_link.value.errors] == [str(e) for e in from_cli.value.errors]
    assert apply_overrides(base, ["opt_d.lr=4e-4", "opt_d.lr=5e-4"]).opt_d.lr == 5e-4   # the last one wins
