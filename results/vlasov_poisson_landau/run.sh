#!/usr/bin/env bash
# Regenerate results/vlasov_poisson_landau/: collisional Landau damping (k = 0.5, alpha = 0.1,
# d = 2, gamma = -2, local Maxwellian scores) at B = 0, 0.05, 0.1; the rates table.
# Usage: bash results/vlasov_poisson_landau/run.sh [OUTDIR]   (~10-20 min on 2 cores)
set -euo pipefail
out=${1:-out/vlasov_poisson_landau}
py=${PYTHON:-.venv/bin/python}
mkdir -p "$out"
for B in 0.0 0.05 0.1; do
    $py -m solvers.run cases/vpl_landau_damping.yaml --quiet --set equation.collisions.B=$B --out "$out/B$B.nc"
done
$py -m solvers.compare "$out"/B0.0.nc "$out"/B0.05.nc "$out"/B0.1.nc
