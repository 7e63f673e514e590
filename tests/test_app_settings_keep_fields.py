"""A lab page's settings start from its preset and change only what their widgets change.

Each page builds its config with the preset's `replace`, so a field it shows no widget for
(D's dropout, the leaky slope, lr decay, autosave, the device...) keeps the preset's value.
The page writes into the URL only the fields that differ from its preset, so a preset whose
config survives the page untouched leaves no `cfg` in the URL.
"""
import pytest
from conftest import SHARED_DATA, open_app

from ganlab.data.mnist import available_splits
from ganlab.presets import PRESETS, Preset

needs_mnist = pytest.mark.skipif(not available_splits(SHARED_DATA),
                                 reason=f"the real MNIST test split is not in {SHARED_DATA}")


def odd_preset(base_slug: str, **changes) -> Preset:
    base = PRESETS[base_slug]
    return Preset("odd-" + base_slug, "A preset with fields no widget shows", base.config.replace(**changes),
                  about="test")


CASES = {
    "gauss1d": ("pages/gauss1d.py", "g1d-preset",
                odd_preset("gauss1d", model={"dropout": 0.3, "leaky_slope": 0.1, "minibatch_group": 50},
                           train={"history_cap": 500, "save_every": 300})),
    "toy2d": ("pages/toy2d.py", "t2d-preset",
              odd_preset("toy2d-ring", model={"dropout": 0.2, "g_dropout": 0.1}, train={"image_history": 5})),
    "mnist": ("pages/mnist.py", "mn-preset",
              odd_preset("mnist-dcgan", model={"dropout": 0.25}, noise={"kind": "uniform"}, loss={"real_label": 0.9},
                         train={"lr_decay": True, "save_every": 500, "history_cap": 400})),
    "autoencoders": ("pages/autoencoders.py", "ae-preset",
                     odd_preset("mnist-vae-seed002", train={"device": "cpu", "snapshot_every": 300,
                                                            "lr_decay": True})),
}


@pytest.mark.parametrize("page", list(CASES))
def test_the_page_keeps_every_field_of_its_preset(monkeypatch, page):
    path, picker, preset = CASES[page]
    if page in ("mnist", "autoencoders"):
        if not available_splits(SHARED_DATA):
            pytest.skip(f"the real MNIST test split is not in {SHARED_DATA}")
        monkeypatch.setenv("GANLAB_DATA", str(SHARED_DATA))
    monkeypatch.setitem(PRESETS, preset.slug, preset)
    at = open_app(path)
    at.selectbox(key=picker).set_value(preset.slug).run()
    assert not at.exception and not at.error
    assert at.query_params.get("preset") in (preset.slug, [preset.slug])
    # No cfg in the URL: the page's config is the preset's, field for field.
    assert "cfg" not in at.query_params, at.query_params


@needs_mnist
def test_the_long_dcgan_runs_with_its_deeper_d_and_big_batches(monkeypatch):
    # The page shows no widget for D's depth: picking the preset must still train the deeper D
    # its note was measured with, at its own batch size and budget.
    monkeypatch.setenv("GANLAB_DATA", str(SHARED_DATA))
    at = open_app("pages/mnist.py")
    at.selectbox(key="mn-preset").set_value("mnist-dcgan-long").run()
    assert not at.exception and not at.error
    assert "cfg" not in at.query_params, at.query_params
    assert at.number_input(key="train.batch_size").value == 256
    assert at.number_input(key="train.steps").value == 15000
