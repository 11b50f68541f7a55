"""Shape checks for case-file numbers: vectors and matrices given as scalars, lists or nested lists.

Each raises :class:`oracles.SettingsError` naming the key, so a bad entry reads
``initial.cov: matrix must be positive definite (eigenvalues [...])``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from landau.settings import SettingsError


def vector(value: Any, d: int, key: str) -> np.ndarray:
    """A scalar (broadcast) or a length-d list of numbers."""
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise SettingsError(f"{key}: expected a number or a list of {d} numbers, got {value!r}") from None
    if a.ndim == 0:
        a = np.full(d, float(a))
    if a.shape != (d,) or not np.all(np.isfinite(a)):
        raise SettingsError(f"{key}: expected {d} finite numbers, got {value!r}")
    return a


def matrix(value: Any, d: int, key: str, spd: bool) -> np.ndarray:
    """A scalar (times I), a length-d diagonal or a d x d matrix; ``spd`` demands symmetric PD."""
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise SettingsError(f"{key}: expected a number, {d} numbers or a {d}x{d} matrix, got {value!r}") from None
    if a.ndim == 0:
        a = float(a) * np.eye(d)
    elif a.ndim == 1 and a.shape == (d,):
        a = np.diag(a)
    if a.shape != (d, d) or not np.all(np.isfinite(a)):
        raise SettingsError(f"{key}: expected a number, {d} numbers or a {d}x{d} matrix, got {value!r}")
    if spd:
        if not np.allclose(a, a.T, rtol=1e-12, atol=1e-12):
            raise SettingsError(f"{key}: matrix must be symmetric")
        if np.linalg.eigvalsh(a).min() <= 0:
            raise SettingsError(f"{key}: matrix must be positive definite (eigenvalues {np.linalg.eigvalsh(a).round(6).tolist()})")
    return a
