"""Quality meters: the MNIST classifier and its cache, the MNIST meters, and 1D mixture modes.

The calibration tests use the real MNIST test split (../shared/data) and skip
without it; the classifier is trained on it once per test session.
"""
from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import scipy.linalg
import torch

from conftest import SHARED_DATA
from mnist_files import write_mnist_folder
from ganlab import classifier, metrics
from ganlab.data.mnist import available_splits, load_mnist, to_training_tensor

N = classifier.REFERENCE_N


# -- the pure meters ------------------------------------------------------------------------

def test_digit_histogram_modes_and_kl():
    balanced = metrics.digit_histogram(np.arange(1000) % 10)
    assert balanced == pytest.approx(np.full(10, 0.1))
    assert metrics.modes_covered(balanced) == 10
    assert metrics.kl_to_uniform(balanced) == pytest.approx(0.0, abs=1e-12)

    collapsed = metrics.digit_histogram(np.full(500, 7))
    assert collapsed[7] == 1.0
    assert metrics.modes_covered(collapsed) == 1
    assert metrics.kl_to_uniform(collapsed) == pytest.approx(math.log(10))

    # 3 digits at 30% and 10 strays (1%) spread over the rest: the strays do not count.
    pred = np.concatenate([np.repeat([0, 1, 2], 300), np.arange(3, 10).repeat(10)[:100]])
    assert metrics.modes_covered(metrics.digit_histogram(pred)) == 3


def test_samples_that_are_no_digit_count_in_no_bar():
    junk = metrics.digit_histogram(np.full(1000, classifier.JUNK))
    assert junk.sum() == 0 and metrics.modes_covered(junk) == 0
    assert math.isnan(metrics.kl_to_uniform(junk))
    half = metrics.digit_histogram(np.concatenate([np.arange(500) % 10, np.full(500, classifier.JUNK)]))
    assert half == pytest.approx(np.full(10, 0.05))
    assert metrics.modes_covered(half) == 10 and metrics.kl_to_uniform(half) == pytest.approx(0.0, abs=1e-12)


def test_label_accuracy():
    assert metrics.label_accuracy(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 0.75


def test_frechet_distance_matches_the_sqrtm_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 8)) @ rng.normal(size=(8, 8))
    b = rng.normal(loc=0.5, size=(400, 8)) @ rng.normal(size=(8, 8))
    mu1, c1 = a.mean(0), np.cov(a, rowvar=False)
    mu2, c2 = b.mean(0), np.cov(b, rowvar=False)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_survives_singular_covariances():
    # 20 samples in 64 dimensions: rank-deficient covariances, where sqrtm goes complex.
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(20, 64)), rng.normal(size=(20, 64)) + 3.0
    d = metrics.frechet_distance(a, b)
    assert np.isfinite(d) and d > 64 * 9 * 0.5   # the mean shift alone is 64 * 3^2


def test_mean_pairwise_distance():
    x = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    assert metrics.mean_pairwise_distance(x) == pytest.approx((5 + 5 + 0) / 3)
    assert metrics.mean_pairwise_distance(np.ones((10, 5))) == pytest.approx(0.0, abs=1e-6)


def test_mixture_modes():
    rng = np.random.default_rng(0)
    means, stds, weights = [-2.0, 2.0, 6.0], [0.5, 0.5, 0.5], [0.25, 0.25, 0.5]
    both = np.concatenate([rng.normal(-2, 0.5, 2500), rng.normal(2, 0.5, 2500), rng.normal(6, 0.5, 5000)])
    shares, covered = metrics.mixture_modes(both, means, stds, weights)
    assert shares == pytest.approx([0.25, 0.25, 0.5], abs=0.01)
    assert covered == 3

    # All the mass on the middle mode: the others are missed.
    shares, covered = metrics.mixture_modes(rng.normal(2, 0.5, 1000), means, stds, weights)
    assert shares[1] > 0.99 and covered == 1

    # The heavy mode holds only 20% (under half of its 50%): it does not count.
    light = np.concatenate([rng.normal(-2, 0.5, 400), rng.normal(2, 0.5, 400), rng.normal(6, 0.5, 200)])
    assert metrics.mixture_modes(light, means, stds, weights)[1] == 2

    # Samples between modes, more than 3 std from any, belong to none.
    shares, covered = metrics.mixture_modes(np.full(100, 4.0), means, stds, weights)
    assert shares.sum() == 0 and covered == 0


# -- the classifier's cache (synthetic digits: trains in a second) ---------------------------

@pytest.fixture
def synthetic_root(tmp_path, monkeypatch):
    monkeypatch.setattr(classifier, "EPOCHS", 1)   # these tests are about the cache, not accuracy
    write_mnist_folder(tmp_path / "data" / "MNIST" / "raw", n=400)
    return tmp_path / "data"


def test_cache_is_written_then_reused(synthetic_root, tmp_path):
    cache = tmp_path / "cache"
    first = classifier.load_or_train(synthetic_root, cache_dir=cache)
    path = cache / classifier.CACHE_NAME
    assert first.source == "trained" and path.is_file()
    mtime = path.stat().st_mtime_ns

    second = classifier.load_or_train(synthetic_root, cache_dir=cache)
    assert second.source == "cache"
    assert path.stat().st_mtime_ns == mtime
    assert second.accuracy == first.accuracy
    images = to_training_tensor(load_mnist(synthetic_root)[0][:50], "cpu")
    assert torch.equal(first.predict(images), second.predict(images))
    assert not list(cache.glob("*.tmp"))   # the atomic write left no temp file behind


def test_default_cache_lives_in_the_data_folder(synthetic_root):
    classifier.load_or_train(synthetic_root)
    assert (synthetic_root / "ganlab" / classifier.CACHE_NAME).is_file()


@pytest.mark.parametrize("content", [b"not a checkpoint at all", b""], ids=["garbage", "empty"])
def test_corrupt_cache_is_replaced(synthetic_root, tmp_path, content):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / classifier.CACHE_NAME).write_bytes(content)
    model = classifier.load_or_train(synthetic_root, cache_dir=cache)
    assert model.source == "trained" and "unreadable" in model.note
    assert classifier.load_or_train(synthetic_root, cache_dir=cache).source == "cache"


def test_foreign_cache_is_replaced(synthetic_root, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    torch.save({"weights": torch.zeros(3)}, cache / classifier.CACHE_NAME)   # a valid file, not ours
    model = classifier.load_or_train(synthetic_root, cache_dir=cache)
    assert model.source == "trained" and "not a" in model.note


def test_other_data_retrains(synthetic_root, tmp_path):
    cache = tmp_path / "cache"
    classifier.load_or_train(synthetic_root, cache_dir=cache)
    other = tmp_path / "other"
    write_mnist_folder(other / "MNIST" / "raw", n=400, seed=1)
    model = classifier.load_or_train(other, cache_dir=cache)
    assert model.source == "trained" and "other data" in model.note


def test_get_classifier_trains_once_for_many_threads(synthetic_root, tmp_path, monkeypatch):
    calls = []
    train = classifier.train_classifier
    monkeypatch.setattr(classifier, "train_classifier", lambda *a, **k: calls.append(1) or train(*a, **k))
    monkeypatch.setattr(classifier, "_jobs", {})
    got = []
    threads = [threading.Thread(target=lambda: got.append(
        classifier.get_classifier(synthetic_root, cache_dir=tmp_path / "cache"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(got) == 4 and all(m is got[0] for m in got)


# -- calibration on real MNIST -------------------------------------------------------------

@pytest.fixture(scope="session")
def real(tmp_path_factory):
    """The classifier trained on the real test split (once per session), and that data."""
    if not available_splits(SHARED_DATA):
        pytest.skip(f"the real MNIST test split is not in {SHARED_DATA} (see the README's Start section)")
    model = classifier.load_or_train(SHARED_DATA, cache_dir=tmp_path_factory.mktemp("classifier"))
    images, labels = load_mnist(SHARED_DATA)
    return model, to_training_tensor(images, "cpu"), labels


@pytest.fixture(scope="session")
def meters(real):
    model, _, _ = real
    return classifier.MnistMeters(model, classifier.reference_images(SHARED_DATA, N))


def other_real(real):
    """N held-out real digits that are not the meters' reference images, with their labels."""
    _, images, labels = real
    _, held = classifier.split_indices(len(images))
    idx = held[N:2 * N]
    return images[idx], labels[idx]


def test_classifier_is_accurate_on_held_out_digits(real):
    model, images, labels = real
    assert model.accuracy >= 0.94   # read correctly and with p >= CONFIDENCE; unsure counts as wrong
    _, held = classifier.split_indices(len(images))
    assert (model.predict(images[held]) == labels[held]).float().mean() == pytest.approx(model.accuracy)
    assert model.features(images[:5]).shape == (5, model.num_features)


def test_real_digits_score_like_real_digits(meters, real):
    images, _ = other_real(real)
    v = meters(images)
    noise = meters(torch.rand(N, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    assert v["fid"] < 0.05 * noise["fid"]           # the floor is far below the ceiling
    assert v["modes_covered"] == 10
    assert v["kl_uniform"] < 0.05
    assert v["diversity"] == pytest.approx(1.0, abs=0.1)
    assert v["confident"] >= 0.93
    assert sum(v[f"hist_{d}"] for d in range(10)) == pytest.approx(v["confident"])


def junk(kind: str, seed: int, real_images: torch.Tensor) -> torch.Tensor:
    """N images of one kind of junk, from a seed the classifier's own junk never used."""
    gen = torch.Generator().manual_seed(seed)
    if kind == "uniform noise":
        return torch.rand(N, 1, 28, 28, generator=gen) * 2 - 1
    if kind == "gaussian noise":
        return (torch.randn(N, 1, 28, 28, generator=gen) * 0.5).clamp(-1, 1)
    if kind in ("black", "white", "grey"):
        return torch.full((N, 1, 28, 28), {"black": -1.0, "white": 1.0, "grey": 0.0}[kind])
    if kind == "shuffled pixels":
        flat = real_images[:N].flatten(1)
        return flat.gather(1, torch.argsort(torch.rand(N, 784, generator=gen), dim=1)).view(N, 1, 28, 28)
    if kind == "blobs":
        coarse = torch.rand(N, 1, 6, 6, generator=gen)
        return (torch.nn.functional.interpolate(coarse, size=(28, 28), mode="bicubic") * 2 - 1).clamp(-1, 1)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["uniform noise", "gaussian noise", "black", "white", "grey",
                                  "shuffled pixels", "blobs"])
def test_junk_reads_as_junk(meters, real, kind):
    # Held-out digits' pixels, and blobs and noise from seeds and shapes unlike the training junk's.
    images = junk(kind, seed=12345, real_images=other_real(real)[0])
    v = meters(images)
    assert v["modes_covered"] == 0
    assert v["confident"] < 0.02
    assert math.isnan(v["kl_uniform"]) or v["confident"] > 0


def test_calibration_reads_real_collapse_and_junk_apart(meters):
    meters.root = SHARED_DATA
    readings = classifier.calibrate(meters)
    assert set(readings) == set(classifier.CALIBRATION_CASES)
    assert readings["real"]["modes_covered"] == 10 and readings["real"]["confident"] > 0.93
    # Placement counts: the same digits moved a little read lower, though still as every digit.
    assert readings["shifted"]["modes_covered"] == 10
    assert 0.5 < readings["shifted"]["confident"] < readings["real"]["confident"] - 0.03
    assert readings["one_digit"]["modes_covered"] == 1
    assert readings["noise"]["modes_covered"] == 0 and readings["noise"]["confident"] == 0
    assert readings["blank"]["modes_covered"] == 0 and readings["blank"]["confident"] == 0
    assert readings["real"]["fid"] < readings["one_digit"]["fid"] < readings["noise"]["fid"]


def test_one_digit_looks_collapsed(meters, real):
    _, images, labels = real
    sevens = images[labels == 7][:N]
    balanced = meters(other_real(real)[0])
    v = meters(sevens)
    assert v["modes_covered"] == 1
    assert v["kl_uniform"] == pytest.approx(math.log(10), abs=0.15)
    assert v["fid"] > 20 * balanced["fid"]


def test_identical_images_have_no_diversity(meters, real):
    images, _ = other_real(real)
    assert meters(images[:1].repeat(N, 1, 1, 1))["diversity"] < 0.01


def test_label_accuracy_tells_right_labels_from_shuffled(meters, real):
    images, labels = other_real(real)
    assert meters(images, labels)["label_accuracy"] > 0.95
    shuffled = labels[torch.randperm(N, generator=torch.Generator().manual_seed(0))]
    assert meters(images, shuffled)["label_accuracy"] == pytest.approx(0.1, abs=0.04)


def test_meters_demand_the_reference_size_and_survive_nan(meters, real):
    images, _ = other_real(real)
    with pytest.raises(ValueError, match="exactly"):
        meters(images[:10])
    bad = images.clone()
    bad[0, 0, 0, 0] = float("nan")
    assert all(math.isnan(x) for x in meters(bad).values())
