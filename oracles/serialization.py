"""Writing and reading torch files: one atomic save, one checked load.

``save_atomic`` writes to ``<path>.tmp`` and renames it over ``path`` (``os.replace`` is atomic on
POSIX), so a reader never sees a half-written file, even if the writer is killed mid-write.
``load_file`` reads with ``weights_only=True`` (tensors and plain containers only, no code runs),
and turns every problem into a :class:`SettingsError` that names the setting.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from oracles.settings import SettingsError


def save_atomic(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file, then rename over ``path`` (never a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 digest of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_file(path: str | Path, setting: str, missing_hint: str = "") -> dict:
    """The dict stored in ``path`` (on the CPU); a missing, unreadable or non-dict file is a
    SettingsError starting with ``setting`` (``missing_hint`` is appended when the file is missing)."""
    path = Path(path)
    if not path.is_file():
        raise SettingsError(f"{setting}: no such file {path}{missing_hint}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, corrupt, or not a torch file at all: torch raises many kinds
        raise SettingsError(f"{setting}: cannot read {path} (truncated or corrupt file, or not a torch "
                            f"file): {err.__class__.__name__}") from None
    if not isinstance(blob, dict):
        raise SettingsError(f"{setting}: {path} holds a {type(blob).__name__}, not a dict of weights")
    return blob
