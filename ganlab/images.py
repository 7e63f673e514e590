"""Image batches as pictures a page can show."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def make_grid_image(images: Tensor, nrow: int = 8, padding: int = 2, pad_value: int = 128) -> np.ndarray:
    """[N, 1, H, W] images in [-1, 1] -> one uint8 picture (rows, cols), nrow images per row.

    The grey border (pad_value) keeps the cells apart: MNIST's background is
    black, so a black border would melt into it. Unfilled cells at the end stay
    grey, and NaNs (a diverged G) show as black rather than as garbage.
    """
    n, _, h, w = images.shape
    rows = math.ceil(n / nrow)
    pixels = ((torch.nan_to_num(images.detach().float(), nan=-1.0).clamp(-1, 1) + 1) * 127.5).round()
    pixels = pixels.to(torch.uint8).cpu()[:, 0]                              # (N, H, W)
    cells = torch.full((rows * nrow, h + padding, w + padding), pad_value, dtype=torch.uint8)
    cells[:n, :h, :w] = pixels                                               # border on the right and bottom
    grid = cells.view(rows, nrow, h + padding, w + padding).permute(0, 2, 1, 3)
    grid = grid.reshape(rows * (h + padding), nrow * (w + padding))
    out = np.full((grid.shape[0] + padding, grid.shape[1] + padding), pad_value, dtype=np.uint8)
    out[padding:, padding:] = grid.numpy()                                   # and on the top and left
    return out


def save_png(grid: np.ndarray, path: str) -> None:
    """Write a uint8 grid (from make_grid_image) as a greyscale PNG."""
    from PIL import Image
    Image.fromarray(grid, mode="L").save(path)
