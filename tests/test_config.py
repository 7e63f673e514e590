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
