#!/usr/bin/env bash
# Regenerate results/vlasov_poisson/: the four phase-space cases, linear Landau damping at two
# more wavenumbers, the rates against linear theory (rates.md) and the figures.
# Usage: bash results/vlasov_poisson/run.sh [OUTDIR]   (from the repository root; ~10-15 min on 2 cores)
set -euo pipefail
out=${1:-out/vlasov_poisson}
py=${PYTHON:-.venv/bin/python}
here=results/vlasov_poisson
mkdir -p "$out"
for c in vp_landau_linear vp_landau_nonlinear vp_two_stream vp_bump_on_tail; do
    $py -m solvers.run cases/$c.yaml --quiet --out "$out/$c.nc"
done
# hidden-k style checks: same case, k = 0.4 (L = 5 pi) and k = 0.3 (L = 20 pi / 3)
$py -m solvers.run cases/vp_landau_linear.yaml --quiet --set space.length=15.707963267948966 \
    --set initial.k=0.4 --out "$out/vp_landau_linear_k0.4.nc"
$py -m solvers.run cases/vp_landau_linear.yaml --quiet --set space.length=20.943951023931955 \
    --set initial.k=0.3 --out "$out/vp_landau_linear_k0.3.nc"
$py -m solvers.compare "$out"/vp_landau_linear.nc "$out"/vp_landau_linear_k0.4.nc "$out"/vp_landau_linear_k0.3.nc \
    "$out"/vp_two_stream.nc "$out"/vp_bump_on_tail.nc > "$out/rates_table.md"
$py -m solvers.compare "$out"/vp_landau_linear.nc "$out"/vp_landau_linear_k0.4.nc "$out"/vp_landau_linear_k0.3.nc \
    --plot $here/field_energy_linear.png > /dev/null
$py -m solvers.compare "$out"/vp_two_stream.nc "$out"/vp_bump_on_tail.nc --plot $here/field_energy_unstable.png > /dev/null
$py - "$out" <<'PY'
import sys
import xarray as xr
from solvers.field_figures import phase_space_figure
from solvers.rates import fit_phases
out = sys.argv[1]
phase_space_figure(f"{out}/vp_two_stream.nc", "results/vlasov_poisson/phase_space_two_stream.png", [0, 15, 20, 30, 50])
phase_space_figure(f"{out}/vp_bump_on_tail.nc", "results/vlasov_poisson/phase_space_bump_on_tail.png", [0, 20, 30, 50])
phase_space_figure(f"{out}/vp_landau_nonlinear.nc", "results/vlasov_poisson/phase_space_landau_nonlinear.png", [0, 10, 20, 40])
with xr.open_dataset(f"{out}/vp_landau_nonlinear.nc") as ds:
    early, late = fit_phases(ds.time.values, ds.field_energy.values)
print(f"nonlinear Landau damping: early {early.rate:.4f} over t = {early.window[0]:.3g}-{early.window[1]:.3g} "
      f"({early.points} maxima); later growth {late.rate:.4f} over t = {late.window[0]:.3g}-{late.window[1]:.3g} "
      f"({late.points} maxima)")
PY
cat "$out/rates_table.md"
