"""Shared fixtures: MNIST-shaped data the tests write themselves, and the real test split."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ganlab.data.mnist import available_splits
from mnist_files import write_mnist_folder

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
_SESSION_FOLDERS: list[str] = []   # made in pytest_configure, removed in pytest_unconfigure


def pytest_configure(config):
    """Runs recorded by the tests (the app's, the CLI's) go to a run store of the session's own, and
    the checkpoints they save (a resumed run saves one) to a saves folder of its own: never to a
    user's ./store or ./runs (ganlab.store, ganlab.checkpoints), where the Saved runs page lists them."""
    import os
    import tempfile
    for name, prefix in (("GANLAB_STORE", "ganlab-test-store-"), ("GANLAB_SAVES", "ganlab-test-saves-")):
        os.environ[name] = tempfile.mkdtemp(prefix=prefix)
        _SESSION_FOLDERS.append(os.environ[name])


def pytest_unconfigure(config):
    """Both folders go with the session, so test runs do not pile up in /tmp."""
    import shutil
    for folder in _SESSION_FOLDERS:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def mnist_dir(tmp_path) -> Path:
    """A data folder in torchvision's layout (DATA/MNIST/raw) holding 300 synthetic digits."""
    write_mnist_folder(tmp_path / "MNIST" / "raw")
    return tmp_path


@pytest.fixture
def shared_data() -> Path:
    """The real MNIST test split next to the project (../shared/data); skips when absent."""
    if not available_splits(SHARED_DATA):
        pytest.skip(f"the real MNIST test split is not in {SHARED_DATA} (see the README's Start section)")
    return SHARED_DATA


def tiny(steps=200, **train):
    """A 1D experiment small enough to train in a test in a second or two."""
    from ganlab.config import Experiment, Model, Train
    return Experiment(model=Model(g_hidden=16, d_hidden=16),
                      train=Train(steps=steps, batch_size=64, snapshot_every=50, **train))


def shown(elements) -> str:
    """The text of AppTest elements as a reader sees it: Markdown escapes (pages/ui.plain) removed."""
    return re.sub(r"\\(.)", r"\1", " ".join(e.value for e in elements))


def wait_for(predicate, timeout=30.0) -> bool:
    """Poll until predicate() is true; False after timeout seconds."""
    import time
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def run_until_ended(at, timeout=120):
    """Re-run an AppTest until the page's status badge says the run ended; the page's text then.

    Then one more run, to settle: when the run ends during a script run, the page reruns itself
    (ui.refresh_while), and AppTest's element tree can then hold widgets of both runs, so that
    a click on the next run may land on the stale copy and be lost.
    """
    import time
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        at.run()
        text = " ".join(m.value for m in at.markdown)
        if any(word in text for word in ("[Finished]", "[Failed]", "[Diverged]", "[Stopped]")):
            at.run()
            return " ".join(m.value for m in at.markdown)
        time.sleep(0.5)
    raise AssertionError("the run did not end in time")


APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_app(page: str, timeout: float = 60):
    """app.py in AppTest, switched to `page` (e.g. "pages/mnist.py") and run once, without an exception."""
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def chart_specs(at) -> list[dict]:
    """Every plotly chart on the page, as its figure's JSON."""
    import json
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def plotly_array(value):
    """A trace's data from a figure's JSON: a list, or plotly's typed-array encoding of a numpy array."""
    import base64
    import numpy as np
    if isinstance(value, dict) and "bdata" in value:
        shape = [int(n) for n in str(value.get("shape", -1)).split(",")]
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(shape)
    return np.asarray(value)


@pytest.fixture
def app_registry(tmp_path_factory, monkeypatch):
    """The app's run registry (pages.ui.registry), emptied for this test, over a run store of its
    own (so no run from an earlier test is listed); every run it made is stopped afterwards."""
    from pages import ui
    ui.registry().stop_all()
    ui.registry.clear()
    ui.run_store.clear()
    monkeypatch.setenv("GANLAB_STORE", str(tmp_path_factory.mktemp("store")))
    reg = ui.registry()
    yield reg
    reg.stop_all()


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the test session: ganlab.sweeps starts it at the first sweep (every CPU, an
    80 MB object store, no dashboard) and every later sweep reuses it; shut down at the end."""
    import os
    os.environ.pop("RAY_ADDRESS", None)
    yield
    from ganlab.sweeps import shutdown_ray
    shutdown_ray()
