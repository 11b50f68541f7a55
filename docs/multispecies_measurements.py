"""Reproduce the measured numbers of docs/multispecies.md (float64, CPU).

    python docs/multispecies_measurements.py maxwell --n 4000 --stepper rk4 --steps 25 [--score gaussian|stein] [--seed 0]
    python docs/multispecies_measurements.py rates [--seed 5]
    python docs/multispecies_measurements.py coulomb --n 20000 --seeds 0 [--drift 1.0]
    python docs/multispecies_measurements.py electron-ion --n 1000 --mu 25 --dt 0.05 --end 25 [--score gaussian|blob]
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from landau.densities import gaussian
from landau.species import (Species, SpeciesLandauEquation, energy, moment_rates, momentum, species_mean,
                            temperature, temperature_tensor)
from landau.species_laws import (MaxwellianRelaxationModel, MaxwellSpeciesLaw, maxwell_moment_rates,
                                 maxwellian_exchange_rates, stein_polynomial_score)
from oracles.blob import blob_epsilon, blob_score
from oracles.gaussian import GaussianOracle
from solvers.steppers import STEPPERS

F64 = dict(dtype=torch.float64)


def gaussian_score(v: torch.Tensor) -> torch.Tensor:
    return GaussianOracle().score(v, 0.0)


def maxwell(args) -> None:
    """Two species, gamma = 0: particle run against MaxwellSpeciesLaw over one relaxation time."""
    n = args.n
    sp = [Species("a", n, mass=1.0, density=1.0), Species("b", n, mass=4.0, density=2.0)]
    eq = SpeciesLandauEquation(sp, 0.0, 1 / 24)
    g = torch.Generator().manual_seed(args.seed)
    x = torch.cat([gaussian(torch.tensor(m, **F64), torch.diag(torch.tensor(c, **F64))).sample(n, g)
                   for m, c in (([0.5, 0, 0], [1.8, 0.2, 1.0]), ([-0.2, 0.3, 0], [0.1, 0.15, 0.05]))])
    score = stein_polynomial_score if args.score == "stein" else gaussian_score

    def rhs(x, t):
        s = torch.cat([score(x[sl]) for sl in eq.slices])
        return eq.velocity(x, s, t), s

    law = MaxwellSpeciesLaw.from_particles(x, eq)
    t_end = args.periods / (2 * 2 * eq.c[0][1] * (sp[0].density + sp[1].density) / (sp[0].mass * sp[1].mass))
    dt, t, err_T, err_th, err_u = t_end / args.steps, 0.0, 0.0, 0.0, 0.0
    wall = time.time()
    for _ in range(args.steps):
        x = STEPPERS[args.stepper](x, t, dt, rhs(x, t)[0], rhs)
        t += dt
        T, th = temperature(x, sp), temperature_tensor(x, sp)
        err_T = max(err_T, float(((T - law.temperature(t)) / law.temperature(t)).abs().max()))
        err_th = max(err_th, max(float((th[a] - law.temperature_tensor(t)[a]).norm() / law.temperature_tensor(t)[a].norm())
                                 for a in range(2)))
        err_u = max(err_u, float((species_mean(x, sp) - law.mean(t)).abs().max()))
    print(f"maxwell n={n} score={args.score} {args.stepper} steps={args.steps} t_end={t_end:g} seed={args.seed}: "
          f"max rel err T {err_T:.2e}, Theta (Frobenius) {err_th:.2e}, max abs err u {err_u:.2e}; "
          f"T(end) {[round(v, 4) for v in T.tolist()]} law {[round(v, 4) for v in law.temperature(t).tolist()]} "
          f"({time.time() - wall:.1f} s)")


def rates(args) -> None:
    """gamma = 0, three species: particle moment rates vs the closed system, per score."""
    sp = [Species("e", 300, mass=1.0, charge=-1.0, density=2.0), Species("i", 250, mass=7.0, charge=2.0, density=0.7),
          Species("h", 200, mass=2.5, charge=1.0, density=1.3)]
    eq = SpeciesLandauEquation(sp, 0.0, 1 / 24, [[1.0, 1.7, 0.4], [1.7, 2.0, 0.9], [0.4, 0.9, 1.2]])
    g = torch.Generator().manual_seed(args.seed)
    mix = torch.eye(3, **F64) + 0.3 * torch.diag(torch.ones(2, **F64), 1)
    x = torch.cat([torch.exp(0.5 * torch.randn(s.particles, 3, generator=g, **F64)) @ mix / s.mass ** 0.5 + 0.5 * a
                   for a, s in enumerate(sp)])
    sym = torch.cat([torch.cat([x[sl][: len(x[sl]) // 2], 2 * x[sl].mean(0) - x[sl][: len(x[sl]) // 2]]) for sl in eq.slices])
    for label, conf in (("skewed", x), ("point-symmetric", sym)):
        for name, score in (("stein", stein_polynomial_score), ("gaussian", gaussian_score)):
            s = torch.cat([score(conf[sl]) for sl in eq.slices])
            du, dth = moment_rates(conf, eq.velocity(conf, s, 0.0), sp)
            du_l, dth_l = maxwell_moment_rates(species_mean(conf, sp), temperature_tensor(conf, sp), sp, eq.c)
            tr = lambda a: torch.diagonal(a, dim1=-2, dim2=-1).sum(-1)  # noqa: E731
            rel = lambda a, b: float((a - b).abs().max() / b.abs().max())  # noqa: E731
            print(f"{label:16s} {name:8s}: rel err du {rel(du, du_l):.2e}, dT {rel(tr(dth), tr(dth_l)):.2e}, "
                  f"dTheta {rel(dth, dth_l):.2e}")


TWO = [Species("a", 1, mass=1.0, charge=1.0, density=1.0), Species("b", 1, mass=4.0, charge=1.0, density=2.0)]


def coulomb(args) -> None:
    """gamma = -3, two Maxwellians T = (2, 1), exact scores: initial rates vs maxwellian_exchange_rates."""
    sp = [Species(s.name, args.n, s.mass, s.charge, s.density) for s in TWO]
    eq = SpeciesLandauEquation(sp, -3.0, 1 / 24)
    T0 = torch.tensor([2.0, 1.0], **F64)
    u0 = torch.tensor([[args.drift, 0, 0], [0, 0, 0]], **F64)
    du_ex, dT_ex = maxwellian_exchange_rates(u0, T0, sp, eq.c, -3.0)
    print(f"formula: dT/dt {dT_ex.tolist()}, du_x/dt {du_ex[:, 0].tolist()}")
    errs = []
    for seed in args.seeds:
        g = torch.Generator().manual_seed(seed)
        xs, ss = [], []
        for a, s in enumerate(sp):
            v = u0[a] + torch.randn(args.n, 3, generator=g, **F64) * math.sqrt(float(T0[a]) / s.mass)
            xs.append(v)
            ss.append(-s.mass * (v - u0[a]) / T0[a])
        x, s = torch.cat(xs), torch.cat(ss)
        wall = time.time()
        du, dth = moment_rates(x, eq.velocity(x, s, 0.0), sp)
        dT = torch.diagonal(dth, dim1=-2, dim2=-1).sum(-1) / 3
        rel = ((dT - dT_ex) / dT_ex).tolist()
        errs.append(rel[0])
        print(f"n={args.n} seed={seed}: dT/dt {dT.tolist()} (rel err {rel[0]:+.4f}, {rel[1]:+.4f}), "
              f"du_x/dt {du[:, 0].tolist()} ({time.time() - wall:.1f} s)")
    if len(errs) > 1:
        print(f"dT_a/dt rel err over {len(errs)} seeds: mean {statistics.mean(errs):+.4f}, sd {statistics.stdev(errs):.4f}")


def electron_ion(args) -> None:
    """gamma = -3, electrons and ions: particle run against MaxwellianRelaxationModel."""
    sp = [Species("e", args.n, mass=1.0, charge=-1.0), Species("i", args.n, mass=args.mu, charge=1.0)]
    eq = SpeciesLandauEquation(sp, -3.0, 1.0)
    g = torch.Generator().manual_seed(args.seed)
    x = torch.cat([gaussian(torch.tensor([0.5, 0, 0], **F64), torch.eye(3, **F64)).sample(args.n, g),
                   gaussian(torch.zeros(3, **F64), 0.5 / args.mu * torch.eye(3, **F64)).sample(args.n, g)])
    eps = [blob_epsilon(x[sl]) for sl in eq.slices]

    def rhs(x, t):
        s = torch.cat([blob_score(x[sl], eps[a]) if args.score == "blob" else gaussian_score(x[sl])
                       for a, sl in enumerate(eq.slices)])
        return eq.velocity(x, s, t), s

    model = MaxwellianRelaxationModel.from_particles(x, eq)
    p0, e0 = momentum(x, sp), energy(x, sp)
    steps, t, wall = round(args.end / args.dt), 0.0, time.time()
    for k in range(steps):
        x = STEPPERS[args.stepper](x, t, args.dt, rhs(x, t)[0], rhs)
        t += args.dt
        if (k + 1) % max(1, steps // 5) == 0:
            um, Tm = model.state(t)
            print(f"t={t:.2f} T {[round(v, 4) for v in temperature(x, sp).tolist()]} model {[round(v, 4) for v in Tm.tolist()]} "
                  f"u_x {[round(v, 4) for v in species_mean(x, sp)[:, 0].tolist()]} model {[round(v, 4) for v in um[:, 0].tolist()]} "
                  f"({time.time() - wall:.0f} s)", flush=True)
    print(f"momentum drift {float((momentum(x, sp) - p0).norm()):.1e}, relative energy drift {float((energy(x, sp) - e0) / e0):.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("maxwell")
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--stepper", default="rk4", choices=sorted(STEPPERS))
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--periods", type=float, default=1.0)
    p.add_argument("--score", default="gaussian", choices=["gaussian", "stein"])
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("rates")
    p.add_argument("--seed", type=int, default=5)
    p = sub.add_parser("coulomb")
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--drift", type=float, default=0.0)
    p = sub.add_parser("electron-ion")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--mu", type=float, default=25.0)
    p.add_argument("--dt", type=float, default=0.05)
    p.add_argument("--end", type=float, default=25.0)
    p.add_argument("--stepper", default="euler", choices=sorted(STEPPERS))
    p.add_argument("--score", default="gaussian", choices=["gaussian", "blob"])
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    {"maxwell": maxwell, "rates": rates, "coulomb": coulomb, "electron-ion": electron_ion}[args.what](args)


if __name__ == "__main__":
    main()
