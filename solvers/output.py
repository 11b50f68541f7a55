"""NetCDF output (CF-1.8), written frame by frame so an interrupted run keeps every completed frame.

A new file is first written as ``<path>.tmp`` and renamed over ``<path>`` once its first frame is
on disk, so a run that fails before that leaves an existing file untouched and no file ever mixes
two runs. Each frame is flushed (``sync``) before the run continues. With ``path=None`` the same
structure is built in memory (netCDF4's diskless mode) and handed to xarray at the end, so a
Python run returns exactly what the file would hold.

Which variables a file has is declared by the diagnostics (:class:`Variable`); the particle
states ``x`` and ``score`` are stored for the first ``stored`` particles only (``output.particles``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import torch
import xarray as xr

FLOAT = {torch.float32: "f4", torch.float64: "f8"}
#: text labels (species names) are CF character arrays over this dimension
LABEL_DIM, LABEL_LENGTH = "name_strlen", 64


@dataclass(frozen=True)
class Variable:
    """One output variable: its dimensions (time, particle, dim, dim2, species), long name, units
    and NetCDF type (``"state"``: the run's float precision, used for particle states)."""

    dims: tuple[str, ...]
    long_name: str
    units: str | None = "1"             # None: no units (labels)
    fmt: Any = "f8"                     # "S1": text labels, stored as CF character arrays


class NetCDFWriter:
    """Create the file's structure from ``variables``; :meth:`write` appends one frame."""

    def __init__(self, path: str | Path | None, sizes: dict[str, int], dtype: torch.dtype,
                 attrs: dict[str, Any], variables: dict[str, Variable],
                 grids: dict[str, tuple[np.ndarray, Variable]] | None = None) -> None:
        """``sizes``: the length of every fixed dimension (particle, dim, dim2, ...); a variable
        over a dimension of length 0 (``output.particles: none``) is left out. ``grids``: dimensions
        with coordinate values (phase space: ``x_grid``, the cell centres), as (values, Variable)."""
        grids = grids or {}
        sizes = {**sizes, **{name: len(values) for name, (values, _) in grids.items()}}
        self.path = Path(path) if path is not None else None
        if self.path is None:
            ds = netCDF4.Dataset("in-memory.nc", "w", format="NETCDF4", diskless=True, persist=False)
            self.tmp = None
        else:
            self.tmp = self.path.with_name(self.path.name + ".tmp")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            ds = netCDF4.Dataset(self.tmp, "w", format="NETCDF4")
        self.ds, self.frames = ds, 0
        ds.createDimension("time", None)
        for name, size in sizes.items():
            if size:
                ds.createDimension(name, size)
        ds.setncatts({"Conventions": "CF-1.8", **{k: _attr(v) for k, v in attrs.items()}})
        index = {"dim": "velocity (position) component index", "dim2": "second component index of d x d tensors",
                 "species": "species index"}
        coords = {"time": Variable(("time",), "time t in the case's normalised units (the equation's own time scale)"),
                  **{k: Variable((k,), v, fmt="i4") for k, v in index.items() if sizes.get(k)},
                  **{k: var for k, (_, var) in grids.items()}}
        for name, var in {**coords, **variables}.items():
            if any(dim != "time" and not sizes.get(dim) for dim in var.dims):
                continue
            fmt = FLOAT[dtype] if var.fmt == "state" else var.fmt
            dims = var.dims + ((LABEL_DIM,) if fmt == "S1" else ())
            if fmt == "S1" and LABEL_DIM not in ds.dimensions:
                ds.createDimension(LABEL_DIM, LABEL_LENGTH)
            v = ds.createVariable(name, fmt, dims, zlib=var.fmt == "state", complevel=1)
            v.long_name = var.long_name
            if var.units is not None:
                v.units = var.units
            if fmt == "S1":
                v._Encoding = "utf-8"      # netCDF4 and xarray read it back as strings
        for name in index:
            if sizes.get(name):
                ds[name][:] = np.arange(sizes[name])
        for name, (values, _) in grids.items():
            ds[name][:] = values

    @classmethod
    def append(cls, path: str | Path) -> "NetCDFWriter":
        """Reopen an existing output to append frames after its last one."""
        self = cls.__new__(cls)
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.ds = netCDF4.Dataset(self.path, "a")
        self.frames = len(self.ds.dimensions["time"])
        return self

    def write(self, frame: dict[str, Any]) -> None:
        i = self.frames
        for name, value in frame.items():
            if name not in self.ds.variables:        # x and score with output.particles: none
                continue
            var = self.ds.variables[name]
            value = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
            if "time" in var.dimensions:
                var[i] = value
            else:
                var[:] = value
        self.ds.sync()
        self.frames += 1
        if i == 0 and self.tmp is not None and self.tmp.exists():
            os.replace(self.tmp, self.path)  # the open handle follows the file (same inode)

    def set_attributes(self, attrs: dict[str, Any]) -> None:
        self.ds.setncatts({k: _attr(v) for k, v in attrs.items()})

    def attribute(self, name: str, default: Any = None) -> Any:
        return self.ds.getncattr(name) if name in self.ds.ncattrs() else default

    def to_xarray(self) -> xr.Dataset:
        """The frames written so far as an in-memory ``xarray.Dataset`` (what ``open_dataset`` of
        the file would give)."""
        with xr.open_dataset(xr.backends.NetCDF4DataStore(self.ds)) as out:
            return out.load()

    def close(self) -> None:
        if self.ds.isopen():
            self.ds.close()
        if self.frames == 0 and self.tmp is not None and self.tmp.exists():
            self.tmp.unlink()


def _attr(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if value is None:
        return "none"
    return value if isinstance(value, (int, float, str)) else str(value)
