#!/usr/bin/env bash
# Regenerate results/vlasov_poisson_landau/ (hours on 2 cores; every step resumes: finished runs are kept):
#   the damping rate against B per oracle (2e4 particles, 2 seeds), the binary-collision reference
#   (1e6 particles), the collisional two-stream growth against B, and the figures.
# Usage: bash results/vlasov_poisson_landau/run.sh [OUTDIR]
set -euo pipefail
out=${1:-out}
py=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 MKL_NUM_THREADS=1
$py results/vlasov_poisson_landau/oracle_table.py --out "$out/vpl_oracle_table"
$py results/vlasov_poisson_landau/oracle_table.py --oracles binary --particles 1000000 --out "$out/vpl_binary_1e6"
mkdir -p "$out/vpl_ts"
for B in 0.0 0.08 0.24 0.32; do
    [ -f "$out/vpl_ts/B$B.nc" ] || $py -m solvers.run cases/vpl_two_stream.yaml --quiet --set equation.collisions.B=$B --out "$out/vpl_ts/B$B.nc"
done
$py -m solvers.compare "$out"/vpl_ts/B*.nc
$py - "$out" <<'PY'
import sys
from solvers.field_figures import field_energy_figure, phase_space_figure, profiles_figure
o, R = sys.argv[1], "results/vlasov_poisson_landau/"
ts = [f"{o}/vpl_ts/B{b}.nc" for b in ("0.0", "0.08", "0.24", "0.32")]
field_energy_figure(ts, R + "two_stream_field_energy.png")
phase_space_figure(f"{o}/vpl_ts/B0.32.nc", R + "two_stream_phase_space_B0.32.png", [0, 20, 30, 40])
phase_space_figure(f"{o}/vpl_ts/B0.0.nc", R + "two_stream_phase_space_B0.png", [0, 20, 30, 40])
profiles_figure([ts[0], ts[-1]], R + "two_stream_profiles.png", [0, 25, 40])
t = f"{o}/vpl_oracle_table/"
field_energy_figure([t + "none_B0_s0.nc", t + "gaussian_B0.05_s0.nc", t + "gaussian_B0.1_s0.nc"],
                    R + "landau_damping_field_energy.png")
PY
