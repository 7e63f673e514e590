"""An MNIST run starts at once: the meters' classifier trains beside it, and snapshots come every few seconds."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import chart_specs, open_app, shown, wait_for

from ganlab import classifier, stopping
from ganlab.config import Experiment, Model, Train
from ganlab.runs import Run
from mnist_files import write_mnist_folder


@pytest.fixture
def big_enough(tmp_path_factory):
    """A writable data folder with enough digits for the meters (REFERENCE_N held out) and no cached classifier."""
    root = tmp_path_factory.mktemp("data")
    write_mnist_folder(root / "MNIST" / "raw", n=5200)
    assert not classifier.cache_path(root).exists()
    return root


@pytest.fixture
def held_classifier(monkeypatch):
    """The classifier's training waits until the test opens the returned gate (no job is shared with other tests)."""
    gate, over = threading.Event(), threading.Event()
    train = classifier.train_classifier

    def held(*args, **kwargs):
        gate.wait(120)
        if over.is_set():      # the test ended first: train nothing behind the next tests' backs
            raise stopping.Stopped("the test is over")
        return train(*args, **kwargs)

    monkeypatch.setattr(classifier, "train_classifier", held)
    monkeypatch.setattr(classifier, "EPOCHS", 1)        # about the timing, not the accuracy
    monkeypatch.setattr(classifier, "_jobs", {})
    yield gate
    over.set()
    gate.set()


def small_dcgan(root, **train) -> Experiment:
    return Experiment(task="mnist", model=Model(name="dcgan", g_hidden=8, d_hidden=8),
                      train=Train(device="cpu", batch_size=16, data_dir=str(root), **train))


def test_the_first_snapshot_does_not_wait_for_the_classifier(big_enough, held_classifier):
    run = Run(small_dcgan(big_enough, steps=1_000_000, snapshot_every=20)).start()
    try:
        # The grid comes while the classifier has not even begun to train (its cache is empty).
        assert wait_for(lambda: run.snapshot().images, timeout=60), run.snapshot().message
        snap = run.snapshot()
        assert snap.status == "running"
        assert not classifier.cache_path(big_enough).exists()
        fid = snap.meters["fid"]                   # the meters' columns exist, unmeasured for now
        assert len(fid) and np.isnan(fid).all()
        job = snap.views["classifier"]             # what the page's caption says
        assert not job["ready"] and job["path"] == str(classifier.cache_path(big_enough))

        held_classifier.set()                      # now it trains, beside the run
        assert wait_for(lambda: np.isfinite(run.snapshot().meters["fid"]).any(), timeout=120)
        assert classifier.cache_path(big_enough).is_file()
        assert np.isfinite(run.snapshot().meters["modes_covered"][-1])
    finally:
        run.stop()


def test_a_run_that_ends_before_the_classifier_is_ready_ends_with_its_meters(big_enough, held_classifier):
    run = Run(small_dcgan(big_enough, steps=3, snapshot_every=1)).start()
    try:
        assert wait_for(lambda: run.step == 3, timeout=60)
        assert not run.join(1.0) and run.snapshot().step < 3   # the last probe waits for the classifier
        held_classifier.set()
        assert run.join(120)
        snap = run.snapshot()
        assert snap.status == "finished"
        assert np.isfinite(snap.latest("fid")) and snap.meters["step"][-1] == 3
    finally:
        run.stop()


def test_mnist_snapshots_come_every_few_seconds_whatever_the_steps(big_enough, held_classifier):
    # snapshot_every so large that no step reaches it: only the clock publishes.
    run = Run(small_dcgan(big_enough, steps=10_000_000, snapshot_every=1_000_000)).start()
    try:
        steps = set()

        def two_later_snapshots():
            snap = run.snapshot()
            if snap.images:
                steps.add(snap.images[-1][0])
            return len(steps - {0}) >= 2

        assert wait_for(two_later_snapshots, timeout=90), steps
        assert all(step % 1_000_000 for step in steps - {0})
    finally:
        run.stop()


def test_the_page_says_the_meters_classifier_is_training_and_where_it_is_cached(big_enough, held_classifier,
                                                                                  monkeypatch, app_registry):
    monkeypatch.setenv("GANLAB_DATA", str(big_enough))
    at = open_app("pages/mnist.py", timeout=120)
    at.number_input(key="train.steps").set_value(100_000)
    at.number_input(key="train.batch_size").set_value(16)
    at.button(key="mnist-start").click().run()
    cache = str(classifier.cache_path(big_enough))

    def caption_shown():
        at.run()
        return any("classifier is not ready yet" in c.value and cache in shown([c]) for c in at.caption)

    assert wait_for(caption_shown, timeout=90), [c.value for c in at.caption]
    assert at.get("plotly_chart") and not at.exception      # the grid and curves, without the meters
    held_classifier.set()

    def meters_shown():
        at.run()
        names = {t.get("name") for spec in chart_specs(at) for t in spec["data"]}
        return "Fréchet distance" in names

    assert wait_for(meters_shown, timeout=120)
    assert not any("classifier is not ready yet" in c.value for c in at.caption)
