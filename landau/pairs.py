"""Tiled pair reductions: the one place where O(n^2) sums over particle pairs are evaluated.

A pair sum R_p = sum_q phi(X_p, X_q) over n columns is computed one block of rows at a time, so
the largest temporary is (tile, n, d) and memory stays O(n * tile), never (n, n, d) or
(n, n, d, d). The Landau field and the blob and KDE scores all go through :func:`map_rows`, so a
faster or distributed evaluation differs in this file only.
"""
from __future__ import annotations

from typing import Callable

import torch

#: bytes one (tile, n, d) temporary may take; several such live at once inside a block
BLOCK_BYTES = {"cpu": 4 * 2**20, "cuda": 512 * 2**20}


def auto_tile(n_cols: int, width: int, dtype: torch.dtype, device: torch.device,
              tile: int | None = None) -> int:
    """Rows per block so that one (tile, n_cols, width) temporary fits the device's budget."""
    if tile is not None:
        if tile < 1:
            raise ValueError(f"tile must be positive, got {tile}")
        return tile
    itemsize = torch.empty((), dtype=dtype).element_size()
    budget = BLOCK_BYTES.get(torch.device(device).type, BLOCK_BYTES["cpu"])
    return max(1, budget // max(1, n_cols * width * itemsize))


def map_rows(block_fn: Callable[[slice], torch.Tensor], n_rows: int, tile: int) -> torch.Tensor:
    """Concatenate ``block_fn(rows)`` over consecutive row blocks of size ``tile``."""
    return torch.cat([block_fn(slice(i, min(i + tile, n_rows))) for i in range(0, n_rows, tile)])
