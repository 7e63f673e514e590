"""MNIST-format files for tests: IDX writing and synthetic digits."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ganlab.data.mnist import SPLITS


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
