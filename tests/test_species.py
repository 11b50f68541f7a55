"""The multi-species Landau operator (landau/species.py) against an independent dense implementation
of its formula, the single-species operator bit for bit, and the structural properties of the
semi-discrete system for ANY scores: total momentum and energy rates 0, entropy production <= 0.

All float64 on non-gradient "scores" with nonzero means, unequal N_a, masses, charges, densities
and a non-trivial Coulomb-logarithm matrix, so that a slip in an index, a mass or a weight shows.
"""
from __future__ import annotations

import pytest
import torch

from landau import LandauEquation, maxwell_field
from landau.species import (Species, SpeciesLandauEquation, collision_coefficients, energy,
                            entropy_production, maxwell_cross_sum, momentum, species_id,
                            species_landau_field, species_mean, temperature, temperature_tensor)

B = 1.0 / 24
SPECIES = [Species("e", 23, mass=1.0, charge=-1.0, density=2.0),
           Species("i", 31, mass=7.0, charge=2.0, density=0.7),
           Species("h", 17, mass=2.5, charge=1.0, density=1.3)]
L = [[1.0, 1.7, 0.4], [1.7, 2.0, 0.9], [0.4, 0.9, 1.2]]


def ensemble(species, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each species drifted and anisotropic (thermal speed ~ 1/sqrt(m)); arbitrary off-centre scores."""
    g = torch.Generator().manual_seed(seed)
    xs, ss = [], []
    for a, sp in enumerate(species):
        scale = torch.linspace(0.5, 2.0, d, dtype=torch.float64) / sp.mass ** 0.5
        x = torch.randn(sp.particles, d, generator=g, dtype=torch.float64) * scale + 0.6 * (a - 1)
        s = (torch.randn(sp.particles, d, generator=g, dtype=torch.float64) - 0.3 * x
             + 0.5 * torch.roll(x, 1, 1) ** 2 + 0.2 * a)
        xs.append(x)
        ss.append(s)
    return torch.cat(xs), torch.cat(ss)


def dense_field(x, s, species, gamma, c, delta=0.0):
    """U_p^a = -sum_b (c_ab/m_a)(n_b/N_b) sum_q Phi(v_p - v_q)(s_p/m_a - s_q/m_b) with the d x d
    matrix Phi(z) = |z|^gamma (|z|^2 I - z z^T) built for all n_total^2 pairs (small n only)."""
    d = x.shape[1]
    sid = torch.cat([torch.full((sp.particles,), a) for a, sp in enumerate(species)])
    m = torch.tensor([sp.mass for sp in species], dtype=x.dtype)[sid]
    wq = torch.tensor([sp.density / sp.particles for sp in species], dtype=x.dtype)[sid]
    cc = torch.tensor(c, dtype=x.dtype)[sid[:, None], sid[None, :]]
    z = x[:, None, :] - x[None, :, :]
    r2 = (z * z).sum(-1)
    phi = r2[..., None, None] * torch.eye(d, dtype=x.dtype) - z[..., :, None] * z[..., None, :]
    if delta > 0:
        w = (r2 + delta ** 2) ** (gamma / 2)
    else:
        w = torch.where(r2 > 0, r2.clamp_min(1e-300) ** (gamma / 2), torch.zeros_like(r2))
    sig = s / m[:, None]
    diff = sig[:, None, :] - sig[None, :, :]
    coef = cc * wq[None, :] / m[:, None] * w
    return -torch.einsum("pq,pqij,pqj->pi", coef, phi, diff)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


# ------------------------------------------------------------------ operator == formula
@pytest.mark.parametrize("gamma,delta", [(0.0, 0.0), (-3.0, 0.0), (-3.0, 0.2), (-1.5, 0.0), (0.7, 0.0)])
@pytest.mark.parametrize("d", [2, 3])
def test_operator_equals_dense_formula(gamma, delta, d):
    x, s = ensemble(SPECIES, d, seed=d)
    c = collision_coefficients(SPECIES, B, L)
    ref = dense_field(x, s, SPECIES, gamma, c, delta)
    for method in (["auto", "direct"] if gamma == 0 else ["auto"]):
        for tile in (None, 5):
            u = SpeciesLandauEquation(SPECIES, gamma, B, L, delta, method, tile).velocity(x, s, 0.0)
            # Both are float64 sums of the same O(n) terms; the direct path centres on the columns'
            # means, so rounding is ~1e-15 relative to max|U|; 1e-12 leaves three decades.
            assert rel(u, ref) < 1e-12, (method, tile)


@pytest.mark.parametrize("offset", [0.0, 50.0])
def test_maxwell_moment_form_equals_direct_sum(offset):
    """gamma = 0 across species: the O(n d^2) moment form against the tiled pair sums, also with
    all velocities and scores shifted far away (the column-mean centring keeps full accuracy)."""
    x, s = ensemble(SPECIES, 3, seed=11)
    eq_m = SpeciesLandauEquation(SPECIES, 0.0, B, L, method="moments")
    eq_d = SpeciesLandauEquation(SPECIES, 0.0, B, L, method="direct", tile=7)
    assert rel(eq_m.velocity(x + offset, s - offset, 0.0), eq_d.velocity(x + offset, s - offset, 0.0)) < 1e-13


def test_cross_sum_with_itself_is_the_single_species_moment_sum():
    x, s = ensemble(SPECIES[:1], 3, seed=4)
    assert rel(maxwell_cross_sum(x, s, x, s), maxwell_field(x, s, B) * (-len(x) / B)) < 1e-13


@pytest.mark.parametrize("gamma,delta,tile", [(0.0, 0.0, None), (-3.0, 0.0, None), (-3.0, 0.1, 7),
                                              (-1.5, 0.0, 5), (0.0, 0.0, 3)])
def test_one_species_is_the_single_species_operator_bit_for_bit(gamma, delta, tile):
    x, s = ensemble([Species("a", 60)], 3, seed=2)
    method = "direct" if tile == 3 else "auto"
    u = SpeciesLandauEquation([Species("a", 60)], gamma, B, delta=delta, method=method, tile=tile).velocity(x, s, 0.0)
    assert torch.equal(u, LandauEquation(gamma, B, delta, method, tile).velocity(x, s, 0.0))


def test_uncharged_species_does_not_collide():
    sp = [Species("a", 20, mass=2.0), Species("n", 15, charge=0.0), Species("b", 25, mass=0.5, density=3.0)]
    x, s = ensemble(sp, 3, seed=6)
    u = SpeciesLandauEquation(sp, -3.0, B).velocity(x, s, 0.0)
    assert torch.equal(u[20:35], torch.zeros_like(u[20:35]))
    keep = torch.cat([torch.arange(20), torch.arange(35, 60)])
    u2 = SpeciesLandauEquation([sp[0], sp[2]], -3.0, B).velocity(x[keep], s[keep], 0.0)
    torch.testing.assert_close(u[keep], u2, rtol=1e-14, atol=0)


def test_species_id_and_input_checks():
    assert species_id(SPECIES).tolist() == [0] * 23 + [1] * 31 + [2] * 17
    with pytest.raises(ValueError, match="mass"):
        Species("a", 10, mass=-1.0)
    with pytest.raises(ValueError, match="density"):
        Species("a", 10, density=0.0)
    with pytest.raises(ValueError, match="particles"):
        Species("a", 0)
    with pytest.raises(ValueError, match="symmetric"):
        collision_coefficients(SPECIES[:2], B, [[1.0, 2.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="2 x 2"):
        collision_coefficients(SPECIES[:2], B, [[1.0]])
    with pytest.raises(ValueError, match="unique"):
        SpeciesLandauEquation([Species("a", 3), Species("a", 4)], 0.0, B)
    with pytest.raises(ValueError, match="gamma = 0"):
        SpeciesLandauEquation(SPECIES, -3.0, B, method="moments")
    x, s = ensemble(SPECIES, 3, seed=0)
    with pytest.raises(ValueError, match="particles"):
        species_landau_field(x[:-1], s[:-1], SPECIES, collision_coefficients(SPECIES, B), 0.0)


# ------------------------------------------------------------------ conservation and dissipation
def weighted_terms(x, u, species):
    """Per-particle terms of the total momentum and energy rates, weight m_a n_a / N_a."""
    w = torch.cat([torch.full((sp.particles,), sp.mass * sp.density / sp.particles, dtype=x.dtype)
                   for sp in species])
    return w[:, None] * u, w * (x * u).sum(1)


@pytest.mark.parametrize("gamma,method", [(0.0, "moments"), (0.0, "direct"), (-3.0, "direct"), (-1.5, "direct")])
def test_total_momentum_and_energy_rates_vanish(gamma, method):
    x, s = ensemble(SPECIES, 3, seed=9)
    eq = SpeciesLandauEquation(SPECIES, gamma, B, L, method=method)
    u = eq.velocity(x, s, 0.0)
    p_terms, e_terms = weighted_terms(x, u, SPECIES)
    # sum_a m_a n_a <U>_a is an antisymmetric pair sum and sum_a m_a n_a <v.U>_a = -(1/2) sum z^T Phi D
    # with Phi(z) z = 0: both 0 in exact arithmetic; rounding is ~sqrt(n) eps of the summed magnitudes.
    assert float(p_terms.sum(0).norm() / p_terms.norm(dim=1).sum()) < 1e-13
    assert float(e_terms.sum().abs() / e_terms.abs().sum()) < 1e-13


@pytest.mark.parametrize("gamma,delta", [(0.0, 0.0), (-3.0, 0.0), (-3.0, 0.2), (-1.5, 0.0)])
def test_entropy_production_is_the_negative_symmetric_form(gamma, delta):
    """sum_a n_a <U . s_a>_a = -(1/2) sum_ab c_ab (n_a n_b/(N_a N_b)) sum_pq D^T Phi(z) D <= 0,
    D = s_p/m_a - s_q/m_b, evaluated densely here."""
    x, s = ensemble(SPECIES, 3, seed=13)
    c = collision_coefficients(SPECIES, B, L)
    u = SpeciesLandauEquation(SPECIES, gamma, B, L, delta).velocity(x, s, 0.0)
    ep = entropy_production(u, s, SPECIES)
    sid = species_id(SPECIES)
    m = torch.tensor([sp.mass for sp in SPECIES], dtype=x.dtype)[sid]
    wq = torch.tensor([sp.density / sp.particles for sp in SPECIES], dtype=x.dtype)[sid]
    cc = torch.tensor(c, dtype=x.dtype)[sid[:, None], sid[None, :]]
    z = x[:, None] - x[None]
    D = (s / m[:, None])[:, None] - (s / m[:, None])[None]
    r2 = (z * z).sum(-1)
    w = (r2 + delta ** 2) ** (gamma / 2) if delta > 0 else torch.where(r2 > 0, r2.clamp_min(1e-300) ** (gamma / 2), 0 * r2)
    quad = w * (r2 * (D * D).sum(-1) - (z * D).sum(-1) ** 2)      # D^T Phi(z) D >= 0 (Cauchy-Schwarz)
    sym = -0.5 * (cc * wq[:, None] * wq[None, :] * quad).sum()
    assert float(ep) < 0
    assert abs(float(ep - sym)) < 1e-12 * abs(float(sym))


def test_diagnostics_against_per_species_loops():
    x, _ = ensemble(SPECIES, 3, seed=21)
    p, e = torch.zeros(3, dtype=x.dtype), 0.0
    for a, sp in enumerate(SPECIES):
        v = x[species_id(SPECIES) == a]
        u = v.sum(0) / len(v)
        theta = sp.mass * sum(torch.outer(w - u, w - u) for w in v) / len(v)
        torch.testing.assert_close(species_mean(x, SPECIES)[a], u, rtol=1e-14, atol=0)
        torch.testing.assert_close(temperature_tensor(x, SPECIES)[a], theta, rtol=1e-13, atol=0)
        torch.testing.assert_close(temperature(x, SPECIES)[a], torch.trace(theta) / 3, rtol=1e-13, atol=0)
        p += sp.mass * sp.density * u
        e += 0.5 * sp.mass * sp.density * float((v * v).sum()) / len(v)
    torch.testing.assert_close(momentum(x, SPECIES), p, rtol=1e-13, atol=0)
    assert abs(float(energy(x, SPECIES)) - e) < 1e-13 * e
