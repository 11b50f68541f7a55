"""Case files, integrators, the run loop, trackers, NetCDF output, the Python API and the command line.

    from solvers import simulate
    ds = simulate("cases/landau_maxwell.yaml", oracle="blob", set=["particles=500"])
"""
__all__ = ["simulate"]


def __getattr__(name: str):
    """``solvers.simulate``, imported on first use: importing a submodule (``solvers.equations``)
    does not load the run machinery and every oracle with it."""
    if name == "simulate":
        from solvers.api import simulate
        return simulate
    raise AttributeError(f"module 'solvers' has no attribute {name!r}")
