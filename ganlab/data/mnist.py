"""MNIST: found in a local folder of IDX files, or downloaded through torchvision.

The data folder is GANLAB_DATA (default ./data). Files may sit in
DATA/MNIST/raw (torchvision's layout), DATA/raw or DATA itself, gzipped or
not. Whichever splits are present are used: an offline machine may have only
the 10,000-image test split.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


class MnistNotFoundError(FileNotFoundError):
    """No MNIST split could be found in the data folder."""


class MnistCorruptError(ValueError):
    """An MNIST file exists but is not a valid IDX file."""


def data_root() -> Path:
    return Path(os.environ.get("GANLAB_DATA", "data")).expanduser()


def _candidates(root: Path) -> list[Path]:
    return [root / "MNIST" / "raw", root / "raw", root]


def _find_file(root: Path, stem: str) -> Path | None:
    for folder in _candidates(root):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def available_splits(root: Path | str | None = None) -> list[str]:
    root = Path(root) if root is not None else data_root()
    return [split for split, stems in SPLITS.items() if all(_find_file(root, s) for s in stems)]


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (optionally gzipped) into a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise MnistCorruptError(f"{path} could not be read: {e}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise MnistCorruptError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) != header + int(np.prod(shape)):
        raise MnistCorruptError(f"{path} is truncated or has extra bytes (header says {shape})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_split(root: Path | str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One split as (images uint8 [N, 28, 28], labels int64 [N])."""
    root = Path(root)
    paths = [_find_file(root, stem) for stem in SPLITS[split]]
    if not all(paths):
        raise MnistNotFoundError(f"MNIST {split} split not found under {root}")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1 or len(labels) != len(images):
        raise MnistCorruptError(f"MNIST {split} files under {root} have shapes {images.shape} and {labels.shape}")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def load_mnist(root: Path | str | None = None, splits: tuple[str, ...] | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Every available split (or those named), concatenated: uint8 images and int64 labels."""
    root = Path(root) if root is not None else data_root()
    found = available_splits(root)
    wanted = [s for s in (splits or ("train", "test")) if s in found]
    if not wanted:
        raise MnistNotFoundError(missing_message(root))
    parts = [load_split(root, s) for s in wanted]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def missing_message(root: Path) -> str:
    return (f"No MNIST data in {root.resolve()}. Put the IDX files (t10k-images-idx3-ubyte.gz and "
            f"t10k-labels-idx1-ubyte.gz, and the train-* pair if you have them) in "
            f"{(root / 'MNIST' / 'raw').resolve()}, set GANLAB_DATA to a folder that holds them, "
            f"or download MNIST (needs internet).")


def download_mnist(root: Path | str | None = None,
                   progress: Callable[[float, str], None] | None = None) -> Path:
    """Download all four MNIST files into ROOT/MNIST/raw with torchvision, checking md5s."""
    from torchvision.datasets.utils import download_url
    root = Path(root) if root is not None else data_root()
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    names = list(_MD5)
    for i, name in enumerate(names):
        if progress:
            progress(i / len(names), f"downloading {name}")
        errors = []
        for mirror in _MIRRORS:
            try:
                download_url(mirror + name, str(raw), filename=name, md5=_MD5[name])
                break
            except Exception as e:  # noqa: BLE001 - try the next mirror, report all
                errors.append(f"{mirror}: {e}")
        else:
            raise ConnectionError(f"could not download {name}: " + "; ".join(errors))
    if progress:
        progress(1.0, "done")
    return raw


def to_training_tensor(images: torch.Tensor, device) -> torch.Tensor:
    """uint8 [N, 28, 28] -> float [N, 1, 28, 28] in [-1, 1] on the device, resident for training."""
    return (images.to(device).unsqueeze(1).float() / 127.5 - 1.0).contiguous()
