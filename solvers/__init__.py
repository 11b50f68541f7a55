"""Case files, integrators, the run loop, trackers, NetCDF output, the Python API and the command line.

    from solvers import simulate
    ds = simulate("cases/landau_maxwell.yaml", oracle="blob", set=["particles=500"])
"""
from solvers.api import simulate

__all__ = ["simulate"]
