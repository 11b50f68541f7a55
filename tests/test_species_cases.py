"""Multi-species cases end to end: the ``species:`` format, the velocity the run uses against an
independent implementation of the operator, conservation, the Maxwell-molecule law, resume."""
from __future__ import annotations


import numpy as np
import pytest
import xarray as xr
import yaml

from conftest import case_path, load_case, run_main
from oracles import SettingsError
from solvers import simulate


def two_species(n: int = 300, gamma: float = 0.0, oracle: str = "gaussian", **time) -> dict:
    raw = load_case("landau_two_species_maxwell")
    raw["equation"]["gamma"] = gamma
    for sp in raw["species"]:
        sp["particles"], sp["oracle"] = n, {"kind": oracle}
    raw["time"].update(time)
    return raw


def independent_velocity(x: np.ndarray, s: np.ndarray, sid: np.ndarray, m, e, dens, B: float, gamma: float) -> np.ndarray:
    """U_p^a = -sum_b (c_ab/m_a)(n_b/N_b) sum_q Phi(v_p - v_q)(s_p/m_a - s_q/m_b), dense (numpy),
    Phi(z) = |z|^gamma (|z|^2 I - z z^T), c_ab = B e_a^2 e_b^2, coincident pairs dropped."""
    counts = np.bincount(sid)
    ma, ea, na = np.asarray(m)[sid], np.asarray(e)[sid], np.asarray(dens)[sid]
    z = x[:, None, :] - x[None, :, :]
    r2 = (z * z).sum(-1)
    w = np.where(r2 > 0, np.where(r2 > 0, r2, 1.0) ** (gamma / 2), 0.0)
    ds = s[:, None, :] / ma[:, None, None] - s[None, :, :] / ma[None, :, None]
    phi_ds = w[..., None] * (r2[..., None] * ds - (z * ds).sum(-1)[..., None] * z)
    coef = B * ea[:, None] ** 2 * ea[None, :] ** 2 / ma[:, None] * (na / counts[sid])[None, :]
    return -(coef[..., None] * phi_ds).sum(1)


@pytest.mark.parametrize("gamma", [0.0, -3.0])
def test_first_step_equals_an_independent_operator(gamma):
    """Euler, one-step output: X_1 - X_0 = dt U(X_0, s_0), U from the formula, s_0 the fitted
    Gaussian of each species recomputed here (float64, 1e-8 relative)."""
    raw = two_species(n=120, gamma=gamma, end=0.02, dt=0.01, integrator="euler")
    raw["species"][1]["charge"], raw["species"][1]["density"] = -2.0, 0.5
    raw["species"][0]["particles"] = 90
    ds = simulate(raw, set=["output.every=1"])
    x0, x1, sid = ds.x.isel(time=0).values, ds.x.isel(time=1).values, ds.species_id.values
    s0 = np.zeros_like(x0)
    for a in range(2):
        xa = x0[sid == a]
        c = np.cov(xa.T, bias=True)
        s0[sid == a] = -np.linalg.solve(c, (xa - xa.mean(0)).T).T
    np.testing.assert_allclose(ds.score.isel(time=0).values, s0, rtol=1e-10, atol=1e-12)
    u = independent_velocity(x0, s0, sid, ds.mass.values, ds.charge.values, ds.density.values,
                             raw["equation"]["B"], gamma)
    disp = x1 - x0
    assert np.abs(disp - 0.01 * u).max() <= 1e-8 * np.abs(0.01 * u).max()


def test_momentum_exact_and_energy_drift_decreases_with_order():
    drifts = {}
    for integrator in ("euler", "heun", "rk4"):
        ds = simulate(two_species(n=200, end=2.0, dt=0.1, integrator=integrator))
        p, e = ds.momentum.values, ds.energy.values
        assert np.abs(p - p[0]).max() <= 1e-12 * np.abs(p[0]).max()
        drifts[integrator] = abs(e[-1] - e[0]) / e[0]
    assert drifts["euler"] > drifts["heun"] > drifts["rk4"], drifts


def test_maxwell_temperatures_follow_the_closed_law_at_n4000():
    """One relaxation time (the slowest rate of the temperature law, measured from its output)."""
    ds = simulate(case_path("landau_two_species_maxwell"), set=["species.0.particles=4000",
                                                                "species.1.particles=4000", "time.end=4.0"])
    T, law = ds.temperature.values, ds.temperature_exact.values
    gap = np.abs(law[:, 0] - law[:, 1])
    assert gap[-1] < np.exp(-1) * gap[0]                 # at least one e-folding of T_a - T_b
    assert np.abs(T - law).max() <= 0.02 * np.abs(law).min()
    u, ulaw = ds.species_mean.values, ds.species_mean_exact.values
    assert np.abs(u - ulaw).max() <= 0.02 * np.abs(ulaw[0]).max()


def test_one_species_equals_the_single_species_case_bit_for_bit():
    base = {"name": "one", "dim": 3, "seed": 3, "equation": {"kind": "landau", "gamma": -3, "delta": 0.1},
            "time": {"end": 0.3, "dt": 0.1}}
    init = {"kind": "gaussian", "cov": [1.8, 0.2, 1.0]}
    single = simulate({**base, "particles": 150, "initial": init, "oracle": "blob"})
    multi = simulate({**base, "species": [{"name": "e", "mass": 1.0, "charge": 1.0, "density": 1.0,
                                           "particles": 150, "initial": init, "oracle": "blob"}]})
    np.testing.assert_array_equal(single.x.values, multi.x.values)
    np.testing.assert_array_equal(single.score.values, multi.score.values)


@pytest.mark.parametrize("edit,key", [
    ({"mass": -1.0}, "species.1.mass"),
    ({"density": 0.0}, "species.1.density"),
    ({"particles": 1}, "species.1.particles"),
    ({"colour": "red"}, "species.1.colour"),
    ({"name": "heavy"}, "species.1.name"),
    ({"oracle": {"kind": "magic"}}, "species.1.oracle.kind"),
    ({"initial": {"kind": "gaussian", "cov": [1, -1, 1]}}, "species.1.initial.cov"),
])
def test_bad_species_input_exits_2_naming_the_key(tmp_path, capsys, edit, key):
    raw = two_species()
    raw["species"][1].update(edit)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    code, _, err = run_main([path, "--out", tmp_path / "o.nc"], capsys)
    assert code == 2 and key in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.nc").exists()


def test_species_format_rejects_top_level_particle_keys_and_missing_fields():
    raw = two_species()
    with pytest.raises(SettingsError, match=r"^particles: .*species\.<i>\.particles"):
        simulate({**raw, "particles": 10})
    del raw["species"][0]["mass"]
    with pytest.raises(SettingsError, match=r"species\.0\.mass: required"):
        simulate(raw)
    with pytest.raises(SettingsError, match="coulomb_log"):
        simulate({**two_species(), "equation": {"kind": "landau", "coulomb_log": [[1, 2], [3, 1]]}})
    with pytest.raises(SettingsError, match="--oracle"):
        simulate(two_species(), oracle="blob")


def test_species_run_resumes_bit_for_bit(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(two_species(n=100, end=0.5, dt=0.01, integrator="euler")))
    full, cut = tmp_path / "full.nc", tmp_path / "cut.nc"
    common = ["--set", "output.every=5", "--set", "output.checkpoint_every=20", "--quiet"]
    assert run_main([path, *common, "--out", full], capsys)[0] == 0
    assert run_main([path, *common, "--out", cut, "--set", "time.end=0.3"], capsys)[0] == 0
    assert run_main([path, *common, "--out", cut, "--resume"], capsys)[0] == 0
    with xr.open_dataset(full) as a, xr.open_dataset(cut) as b:
        for name in ("x", "temperature", "temperature_exact", "species_mean_exact"):
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_coulomb_initial_exchange_rate_matches_nrl_at_n20000():
    """Electron-ion case, Maxwellian species, 20 000 particles each, fitted-Gaussian scores: the
    written dT_a/dt at t = 0 and the Euler difference (T(dt) - T(0))/dt agree with the NRL/Spitzer
    rate within 5 % (sampling noise of the rate at this n is ~1 %)."""
    ds = simulate(case_path("landau_electron_ion"),
                  set=["species.0.particles=20000", "species.1.particles=20000", "species.0.oracle=gaussian",
                       "species.1.oracle=gaussian", "time.end=0.05", "time.dt=0.05", "time.integrator=euler",
                       "output.every=1", "output.particles=none"])
    nrl = ds.temperature_rate_maxwellian.values[0]
    rate = ds.temperature_rate.values[0]
    euler = (ds.temperature.values[1] - ds.temperature.values[0]) / 0.05
    np.testing.assert_allclose(rate, nrl, rtol=0.05)
    np.testing.assert_allclose(euler, nrl, rtol=0.05)
