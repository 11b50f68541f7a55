"""NetCDF output, written frame by frame so an interrupted run keeps every completed frame.

A new file is first written as ``<path>.tmp`` and renamed over ``<path>`` once its first frame is
on disk, so a run that fails before that leaves an existing file untouched and no file ever mixes
two runs. Each frame is flushed (``sync``) before the run continues.

Variables (the public interface, see README): time, x, score, mean, covariance, energy,
entropy_production (Landau), covariance_exact (where the case has a covariance law),
covariance_equilibrium (Landau), oracle_loss.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import torch

FLOAT = {torch.float32: "f4", torch.float64: "f8"}


class NetCDFWriter:
    """Create the file's structure; :meth:`write` appends one frame."""

    def __init__(self, path: str | Path, n: int, d: int, dtype: torch.dtype, attrs: dict[str, Any],
                 landau: bool, exact_covariance: bool) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ds = netCDF4.Dataset(self.tmp, "w", format="NETCDF4")
        self.ds, self.frames = ds, 0
        ds.createDimension("time", None)
        ds.createDimension("particle", n)
        ds.createDimension("dim", d)
        ds.createDimension("dim2", d)
        ds.setncatts({"Conventions": "CF-1.8", **{k: _attr(v) for k, v in attrs.items()}})
        f = FLOAT[dtype]
        self._var("time", "f8", ("time",), "time", "time t")
        self._var("x", f, ("time", "particle", "dim"), "1", "particle position (velocity for Landau)")
        self._var("score", f, ("time", "particle", "dim"), "1", "score grad log f used at the particles")
        self._var("mean", "f8", ("time", "dim"), "1", "mean of the particles (momentum)")
        self._var("covariance", "f8", ("time", "dim", "dim2"), "1", "covariance of the empirical measure")
        self._var("energy", "f8", ("time",), "1", "energy (1/2n) sum |x|^2")
        self._var("oracle_loss", "f8", ("time",), "1", "training loss of the score oracle (NaN if none)")
        if landau:
            self._var("entropy_production", "f8", ("time",), "1", "estimated entropy production (1/n) sum U.s")
            self._var("covariance_equilibrium", "f8", ("dim", "dim2"), "1",
                      "equilibrium covariance tr(C0)/d I of the initial particles")
        if exact_covariance:
            self._var("covariance_exact", "f8", ("time", "dim", "dim2"), "1",
                      "exact covariance law started from the particles' own initial covariance")

    @classmethod
    def append(cls, path: str | Path) -> "NetCDFWriter":
        """Reopen an existing output to append frames after its last one."""
        self = cls.__new__(cls)
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.ds = netCDF4.Dataset(self.path, "a")
        self.frames = len(self.ds.dimensions["time"])
        return self

    def add_variables(self, specs: dict[str, tuple[tuple[str, ...], str, str]]) -> None:
        """Declare float64 variables {name: (dims, units, long_name)} (e.g. solvers.metrics)."""
        for name, (dims, units, long_name) in specs.items():
            self._var(name, "f8", dims, units, long_name)

    def _var(self, name: str, fmt: str, dims: tuple[str, ...], units: str, long_name: str) -> None:
        v = self.ds.createVariable(name, fmt, dims, zlib=name in ("x", "score"), complevel=1)
        v.units, v.long_name = units, long_name

    def write(self, frame: dict[str, Any]) -> None:
        i = self.frames
        for name, value in frame.items():
            var = self.ds.variables[name]
            value = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
            if "time" in var.dimensions:
                var[i] = value
            else:
                var[:] = value
        self.ds.sync()
        self.frames += 1
        if i == 0 and self.tmp.exists():
            os.replace(self.tmp, self.path)  # the open handle follows the file (same inode)

    def close(self) -> None:
        if self.ds.isopen():
            self.ds.close()
        if self.frames == 0 and self.tmp.exists():
            self.tmp.unlink()


def _attr(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if value is None:
        return "none"
    return value if isinstance(value, (int, float, str)) else str(value)
