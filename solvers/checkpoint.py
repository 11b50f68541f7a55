"""Checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint is taken at a step boundary before the frame of that step is written: particles X_k,
the first-stage velocity and score at X_k (so the oracle is not asked again, which would train a
learning oracle twice), the oracle's state, every random-number generator's state, the trackers'
states (among them the number of frames already in the output file) and the resolved case. It is
written to ``<output>.ckpt`` atomically (temporary file, then rename), so a crash while writing
leaves the previous checkpoint intact. It is read with ``torch.load(weights_only=True)``: tensors,
numbers, strings and containers only, so opening a checkpoint cannot run code.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import netCDF4
import torch
import yaml

from oracles import SettingsError
from oracles.serialization import save_atomic

FORMAT = 2
#: case keys that may change between a checkpoint and its resumption
RESUMABLE_CHANGES = {("time", "end"), ("output", "checkpoint_every"), ("output", "checkpoint_every_time"),
                     ("device",)}


def default_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".ckpt")


@dataclass
class Checkpoint:
    step: int
    t: float
    x: torch.Tensor
    u: torch.Tensor
    s: torch.Tensor
    oracle: dict[str, Any]
    rng: dict[str, Any]
    trackers: dict[str, dict[str, Any]]     # each tracker's state_dict, by tracker name
    case: dict

    @property
    def frames(self) -> int:
        """Frames in the output file before this checkpoint's step."""
        return self.trackers["frames"]["frames"] if "frames" in self.trackers else 0

    def save(self, path: str | Path) -> None:
        save_atomic({"format": FORMAT, **self.__dict__}, path)

    @classmethod
    def load(cls, path: str | Path) -> "Checkpoint":
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise SettingsError(f"--resume: checkpoint not found: {path}") from None
        except Exception as exc:  # truncated or foreign file: torch raises many kinds
            raise SettingsError(f"--resume: {path} is not a readable checkpoint ({exc.__class__.__name__})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SettingsError(f"--resume: {path} is not a checkpoint of format {FORMAT}")
        data.pop("format")
        return cls(**data)


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    state = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(generator: torch.Generator, state: dict[str, Any]) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def case_differences(saved: dict, current: dict, prefix: tuple[str, ...] = ()) -> list[str]:
    """Keys whose values differ between two resolved cases, except the resumable ones."""
    out = []
    for key in sorted(set(saved) | set(current)):
        path = prefix + (key,)
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += case_differences(a, b, path)
        elif a != b and path not in RESUMABLE_CHANGES:
            out.append(".".join(path))
    return out


def output_state(path: str | Path) -> tuple[dict | None, int, str | None]:
    """(resolved case, number of frames, status) recorded in an output file; (None, 0, None) if
    it is not a readable solver output."""
    try:
        with netCDF4.Dataset(path) as ds:
            attrs = ds.__dict__
            case = yaml.safe_load(attrs["case"]) if "case" in attrs else None
            return case, len(ds.dimensions["time"]), attrs.get("status")
    except (OSError, KeyError, yaml.YAMLError):
        return None, 0, None


def check_resumable(path: Path, checkpoint: "Checkpoint", where: str) -> None:
    """Refuse to continue ``path`` from ``checkpoint`` unless the file holds the checkpoint's
    frames of the same run (a later fresh run to the same path may have replaced it)."""
    case, frames, _ = output_state(path)
    if case is None:
        raise SettingsError(f"--resume: {path} is missing or not a solver output")
    changed = case_differences(checkpoint.case, case)
    if changed:
        raise SettingsError(f"--resume: {path} was written by another run than the checkpoint {where} "
                            f"(they differ in {', '.join(changed)})")
    if frames < checkpoint.frames:
        raise SettingsError(f"--resume: {path} has {frames} frames, the checkpoint {where} expects {checkpoint.frames}")


def truncate_frames(path: str | Path, frames: int) -> None:
    """Keep the first ``frames`` records of a NetCDF output (copy, then atomic rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with netCDF4.Dataset(path) as src, netCDF4.Dataset(tmp, "w", format="NETCDF4") as dst:
        dst.setncatts(src.__dict__)
        for name, dim in src.dimensions.items():
            dst.createDimension(name, None if dim.isunlimited() else len(dim))
        for name, var in src.variables.items():
            filters = var.filters() or {}
            out = dst.createVariable(name, var.datatype, var.dimensions, zlib=bool(filters.get("zlib")),
                                     complevel=filters.get("complevel") or 4)
            out.setncatts(var.__dict__)
            out[:] = var[:frames] if "time" in var.dimensions else var[:]
    os.replace(tmp, path)
