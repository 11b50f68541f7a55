"""Case files, integrators, the run loop, NetCDF output and the command line."""
