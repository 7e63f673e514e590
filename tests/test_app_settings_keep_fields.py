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
    # Picking the preset trains the deeper D its note was measured with, at its own batch size
    # and budget, and the page shows that depth.
    monkeypatch.setenv("GANLAB_DATA", str(SHARED_DATA))
    at = open_app("pages/mnist.py")
    at.selectbox(key="mn-preset").set_value("mnist-dcgan-long").run()
    assert not at.exception and not at.error
    assert "cfg" not in at.query_params, at.query_params
    assert at.number_input(key="train.batch_size").value == 256
    assert at.number_input(key="train.steps").value == 15000
    assert at.number_input(key="model.d_depth").value == 3


@needs_mnist
def test_the_mnist_page_changes_the_dcgan_shape_that_its_presets_tried(monkeypatch):
    # mnist-dcgan's note names D's third strided convolution and G's extra layers: both are
    # a widget away, and a depth the DCGAN cannot build is named under its widget.
    from ganlab.config import decode_config
    monkeypatch.setenv("GANLAB_DATA", str(SHARED_DATA))
    at = open_app("pages/mnist.py")
    at.selectbox(key="mn-preset").set_value("mnist-dcgan").run()
    assert at.number_input(key="model.d_depth").value == 2 and at.number_input(key="model.g_refine").value == 0
    at.number_input(key="model.d_depth").set_value(3)
    at.number_input(key="model.g_refine").set_value(1).run()
    assert not at.exception and not at.error
    model = decode_config(at.query_params["cfg"], PRESETS["mnist-dcgan"].config).model
    assert (model.name, model.d_depth, model.g_refine) == ("dcgan", 3, 1)
    at.number_input(key="model.d_depth").set_value(4).run()
    assert not at.exception and "2 or 3 strided convolutions" in " ".join(e.value for e in at.error)
    assert at.button(key="mnist-start").disabled
    # Another model brings the widgets for its own shape: the MLP's widths and depths.
    at.selectbox(key="model.name").set_value("mlp").run()
    assert not at.exception and not at.error
    assert at.number_input(key="model.d_depth").value == PRESETS["mnist-mlp-seed003"].config.model.d_depth
    assert at.text_input(key="model.g_activation").value == PRESETS["mnist-mlp-seed003"].config.model.g_activation
    assert not [w for w in at.number_input if w.key == "model.g_refine"]
