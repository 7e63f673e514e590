"""Shared fixtures: MNIST-shaped data the tests write themselves, and the real test split."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from ganlab.data.mnist import SPLITS, available_splits

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def synthetic_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 "digits": class k is a bright cross whose bars sit at a k-dependent place.

    Not handwriting, but like MNIST where it matters here: mostly black, thin
    bright strokes, and a shape that depends on the label.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    for i, k in enumerate(labels):
        row, col = 4 + 2 * k + rng.integers(-1, 2), 22 - 2 * k + rng.integers(-1, 2)
        images[i, row:row + 2, 4:24] = 255
        images[i, 4:24, col:col + 2] = 200
    return images, labels


def write_mnist_folder(folder: Path, n: int = 300, gz: bool = True, split: str = "test",
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = synthetic_digits(n, seed)
    suffix = ".gz" if gz else ""
    image_stem, label_stem = SPLITS[split]
    write_idx(folder / (image_stem + suffix), images)
    write_idx(folder / (label_stem + suffix), labels)
    return images, labels


@pytest.fixture
def mnist_dir(tmp_path) -> Path:
    """A data folder in torchvision's layout (DATA/MNIST/raw) holding 300 synthetic digits."""
    write_mnist_folder(tmp_path / "MNIST" / "raw")
    return tmp_path


@pytest.fixture
def shared_data() -> Path:
    """The real MNIST test split next to the project (../shared/data); skips when absent."""
    if not available_splits(SHARED_DATA):
        pytest.skip(f"the real MNIST test split is not in {SHARED_DATA} (see DESIGN.md, Data)")
    return SHARED_DATA
