"""Physics of the homogeneous Landau and Fokker-Planck equations: velocity fields, exact
solutions and diagnostics, as plain tensor maths (no knowledge of oracles, cases or files)."""
from landau.bkw import BKW
from landau.collision import LandauEquation, landau_field_direct, maxwell_field
from landau.covariance_law import equilibrium_covariance, maxwell_covariance
from landau.densities import GaussianMixture, gaussian
from landau.fokker_planck import DoubleWellDrift, FokkerPlanckEquation, LinearDrift
from landau.gaussian_fp import GaussianFPSolution, linear_fp_moments

__all__ = ["BKW", "LandauEquation", "landau_field_direct", "maxwell_field", "equilibrium_covariance",
           "maxwell_covariance", "GaussianMixture", "gaussian", "DoubleWellDrift",
           "FokkerPlanckEquation", "LinearDrift", "GaussianFPSolution", "linear_fp_moments"]
