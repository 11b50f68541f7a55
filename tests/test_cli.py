"""The command line ``python -m solvers.run``: every class of bad input exits 2 with one clear line
on stderr, no traceback and no file written; case resolution fills the defaults; repeated
``--oracle`` writes one file per oracle and prints the comparison table; float32 runs.

Validation cases run in-process through ``solvers.run.main`` (milliseconds each); a few go through
a real subprocess to check the executable itself (exit status, stderr, no traceback).
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from conftest import case_path, load_case, run_cli, run_main, write_case
from oracles import SettingsError
from solvers.case import read_case, resolve_case


def small(name: str, out: Path) -> dict:
    """A case file shrunk to a few steps, writing into ``out``."""
    raw = load_case(name)
    raw["particles"] = 40
    start = raw["time"].get("start", 0.0)
    if name == "landau_bkw":
        raw["time"]["end"] = 5.6
    else:
        raw["time"]["end"] = start + 10 * raw["time"]["dt"]
    raw["output"] = {"path": str(out), "every": 5}
    return raw


def mutate(raw: dict, path: str, value, delete: bool = False) -> dict:
    raw = copy.deepcopy(raw)
    node = raw
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[k]
    if delete:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return raw


# (id, base case, mutation path, value, extra CLI args, words the message must contain)
BAD = [
    ("unknown-top-level-key", "landau_maxwell", "partcles", 10, [], ["partcles", "unknown"]),
    ("unknown-equation-key", "landau_maxwell", "equation.gama", 0, [], ["equation.gama", "unknown"]),
    ("unknown-time-key", "landau_maxwell", "time.stop", 1.0, [], ["time.stop", "unknown"]),
    ("unknown-initial-key", "landau_maxwell", "initial.sigma", 1.0, [], ["initial.sigma", "unknown"]),
    ("unknown-output-key", "landau_maxwell", "output.evry", 1, [], ["output.evry", "unknown"]),
    ("unknown-drift-key", "fp_anisotropic", "equation.drift.B", 1.0, [], ["equation.drift.B", "unknown"]),
    ("unknown-oracle-setting", "landau_maxwell", "oracle", {"kind": "blob", "bandwith": 0.1}, [],
     ["oracle.bandwith", "unknown"]),
    ("oracle-setting-wrong-type", "landau_maxwell", "oracle", {"kind": "kde", "bandwidth": "wide"}, [],
     ["oracle.bandwidth"]),
    ("mean-wrong-length", "landau_maxwell", "initial.mean", [0, 0], [], ["initial.mean", "3"]),
    ("cov-wrong-dims", "landau_maxwell", "initial.cov", [[1, 0], [0, 1]], [], ["initial.cov", "3x3"]),
    ("cov-ragged", "landau_maxwell", "initial.cov", [[1, 0, 0], [0, 1]], [], ["initial.cov"]),
    ("cov-wrong-diag-length", "landau_maxwell", "initial.cov", [1, 1, 1, 1], [], ["initial.cov"]),
    ("drift-matrix-wrong-dims", "fp_anisotropic", "equation.drift.A", [[1, 0, 0], [0, 1, 0], [0, 0, 1]], [],
     ["equation.drift.A", "2x2"]),
    ("drift-offset-wrong-length", "fp_anisotropic", "equation.drift.c", [1, 2, 3], [], ["equation.drift.c"]),
    ("diffusion-wrong-dims", "fp_anisotropic", "equation.diffusion", [[1, 0, 0]], [], ["equation.diffusion"]),
    ("mixture-length-mismatch", "landau_maxwell_mixture", "initial.weights", [0.3, 0.3, 0.4], [],
     ["initial", "same length"]),
    ("mixture-mean-wrong-length", "landau_maxwell_mixture", "initial.means", [[1, 0], [-1, 0]], [],
     ["initial.means[0]"]),
    ("cov-not-positive-definite", "landau_maxwell", "initial.cov", [[1, 2, 0], [2, 1, 0], [0, 0, 1]], [],
     ["initial.cov", "positive definite"]),
    ("cov-negative-diagonal", "landau_maxwell", "initial.cov", [1.8, -0.2, 1.0], [],
     ["initial.cov", "positive definite"]),
    ("cov-not-symmetric", "landau_maxwell", "initial.cov", [[1, 0.5, 0], [0, 1, 0], [0, 0, 1]], [],
     ["initial.cov", "symmetric"]),
    ("mixture-cov-not-pd", "landau_maxwell_mixture", "initial.covs", [[0.8, 0.2, 1.0], [0.8, 0.0, 1.0]], [],
     ["initial.covs[1]", "positive definite"]),
    ("diffusion-not-pd", "fp_anisotropic", "equation.diffusion", [[0.1, 0.5], [0.5, 0.1]], [],
     ["equation.diffusion", "positive definite"]),
    ("dt-zero", "landau_maxwell", "time.dt", 0.0, [], ["time.dt", "positive"]),
    ("dt-negative", "landau_maxwell", "time.dt", -0.05, [], ["time.dt", "positive"]),
    ("end-equals-start", "landau_maxwell", "time.end", 0.0, [], ["time.end"]),
    ("end-before-start", "fp_heat", "time.end", 0.5, [], ["time.end"]),
    ("dt-does-not-divide", "landau_maxwell", "time.dt", 0.03, [], ["time.dt", "divide"]),
    ("unknown-oracle-in-case", "landau_maxwell", "oracle", {"kind": "magic"}, [], ["magic", "oracle"]),
    ("unknown-oracle-flag", "landau_maxwell", None, None, ["--oracle", "magic"], ["magic"]),
    ("same-oracle-twice", "landau_maxwell", None, None, ["--oracle", "blob", "--oracle", "blob"], ["--oracle"]),
    ("unknown-equation", "landau_maxwell", "equation.kind", "boltzmann", [], ["equation.kind", "boltzmann"]),
    ("unknown-drift", "fp_anisotropic", "equation.drift.kind", "triple_well", [], ["equation.drift.kind"]),
    ("unknown-initial", "landau_maxwell", "initial.kind", "uniform", [], ["initial.kind", "uniform"]),
    ("unknown-integrator", "landau_maxwell", "time.integrator", "leapfrog", [], ["time.integrator", "leapfrog"]),
    ("unknown-dtype", "landau_maxwell", "dtype", "float16", [], ["dtype", "float16"]),
    ("missing-required", "landau_maxwell", "particles", None, [], ["particles"]),
    ("set-wrong-type", "landau_maxwell", None, None, ["--set", "particles=abc"], ["particles", "abc"]),
    ("set-wrong-type-nested", "landau_maxwell", None, None, ["--set", "time.dt=fast"], ["time.dt", "fast"]),
    ("set-not-a-mapping", "landau_maxwell", None, None, ["--set", "dim.x=1"], ["dim"]),
    ("set-no-equals", "landau_maxwell", None, None, ["--set", "particles"], ["--set"]),
    ("exact-without-solution", "landau_maxwell", None, None, ["--oracle", "exact"], ["exact", "analytic"]),
    ("exact-on-double-well", "fp_double_well", "oracle", {"kind": "exact"}, [], ["exact", "analytic"]),
    ("exact-on-mixture", "landau_maxwell_mixture", None, None, ["--oracle", "exact"], ["exact"]),
    ("bkw-with-coulomb", "landau_bkw", "equation.gamma", -3.0, [], ["bkw", "gamma"]),
    ("bkw-before-t0", "landau_bkw", "time.start", 1.0, [], ["time.start", "bkw"]),
    ("bkw-with-fokker-planck", "fp_heat", "initial", {"kind": "bkw"}, [], ["bkw"]),
    ("particles-too-few", "landau_maxwell", "particles", 1, [], ["particles"]),
    ("top-level-not-mapping", None, None, None, [], ["mapping"]),
]


def check_rejected(code: int, out: str, err: str, words: list[str], tmp_path: Path, written_before: set) -> None:
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err                        # exactly one line ...
    assert lines[0].startswith("error: ") and len(lines[0]) < 400
    assert "Traceback" not in err and "Traceback" not in out
    for w in words:                                     # ... naming the problem
        assert w.lower() in lines[0].lower(), (w, lines[0])
    # nothing written: no output, no temporary file, no checkpoint
    assert {p.name for p in tmp_path.rglob("*")} == written_before, sorted(p.name for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("ident,base,path,value,args,words", BAD, ids=[b[0] for b in BAD])
def test_bad_input_exit_2_one_line_nothing_written(ident, base, path, value, args, words, tmp_path, capsys):
    out = tmp_path / "out.nc"
    if base is None:
        case = tmp_path / "case.yaml"
        case.write_text("- just\n- a list\n")
    else:
        raw = small(base, out)
        if path is not None:
            raw = mutate(raw, path, value, delete=value is None)
        case = write_case(tmp_path, raw)
    before = {p.name for p in tmp_path.rglob("*")}
    code, o, e = run_main([case, "--quiet", *args], capsys)
    check_rejected(code, o, e, words, tmp_path, before)
    assert not out.exists()


def test_missing_case_file(tmp_path, capsys):
    code, o, e = run_main([tmp_path / "nope.yaml", "--quiet"], capsys)
    check_rejected(code, o, e, ["nope.yaml", "not found"], tmp_path, set())


@pytest.mark.parametrize("text", ["name: x\ndim: [1, 2\n", "a: b: c\n", "\tname: x\n"])
def test_invalid_yaml(text, tmp_path, capsys):
    case = tmp_path / "bad.yaml"
    case.write_text(text)
    code, o, e = run_main([case, "--quiet"], capsys)
    check_rejected(code, o, e, ["bad.yaml", "yaml"], tmp_path, {"bad.yaml"})


def test_existing_output_left_byte_identical(tmp_path, capsys):
    out = tmp_path / "out.nc"
    out.write_bytes(b"previous results \x00\x01\x02")
    raw = mutate(small("landau_maxwell", out), "time.dt", -1.0)
    case = write_case(tmp_path, raw)
    code, o, e = run_main([case, "--quiet"], capsys)
    check_rejected(code, o, e, ["time.dt"], tmp_path, {"out.nc", "case.yaml"})
    assert out.read_bytes() == b"previous results \x00\x01\x02"
    # the same with a real earlier output and a failing --oracle
    good = write_case(tmp_path, small("landau_maxwell", out), "good.yaml")
    assert run_main([good, "--quiet"], capsys)[0] == 0
    before = out.read_bytes()
    code, o, e = run_main([good, "--quiet", "--oracle", "exact"], capsys)
    assert code == 2 and out.read_bytes() == before


def test_subprocess_bad_inputs_give_one_line_and_no_traceback(tmp_path):
    """The real executable: --set with a wrong type and invalid YAML (one subprocess each, 3-6 s of
    interpreter and torch start-up apiece, so only a sample: every class is covered in-process above,
    through the same ``main``)."""
    out = tmp_path / "out.nc"
    out.write_bytes(b"keep me")
    good = write_case(tmp_path, small("landau_maxwell", out))
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("name: [x\n")
    cases = [([good, "--set", "particles=abc"], "particles"), ([bad_yaml], "yaml")]
    for args, word in cases:
        proc = run_cli(args, cwd=tmp_path)
        assert proc.returncode == 2, proc
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and word in lines[0].lower(), proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
        assert out.read_bytes() == b"keep me"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "case.yaml", "out.nc"]


# ------------------------------------------------------------------ case resolution
def test_case_resolution_fills_defaults():
    case = read_case(case_path("landau_bkw"))
    assert case["time"]["start"] == pytest.approx(5.5)            # t0 of BKW, d = 3, B = 1/24
    assert case["equation"] == {"kind": "landau", "gamma": 0.0, "B": pytest.approx(1 / 24), "delta": 0.0,
                                "method": "auto", "tile": None}
    assert case["initial"] == {"kind": "bkw", "C": 1.0}
    assert case["oracle"]["kind"] == "blob" and case["oracle"]["eps"] is None
    minimal = {"name": "m", "dim": 2, "particles": 10, "equation": {"kind": "landau"},
               "initial": {"kind": "bkw"}, "time": {"end": 9.0, "dt": 0.1}}
    r = resolve_case(minimal)
    assert r["time"]["start"] == pytest.approx(8.4)                # d = 2
    assert r["time"]["integrator"] == "euler"
    assert r["seed"] == 0 and r["dtype"] == "auto" and r["device"] == "auto"
    assert r["oracle"] == {"kind": "blob", "eps": None, "tile": None}
    assert r["output"]["path"] == "out/m.nc" and r["output"]["every"] == 10
    g = resolve_case({"name": "g", "dim": 3, "particles": 10, "equation": {"kind": "landau", "gamma": -3},
                      "initial": {"kind": "gaussian", "cov": [1.8, 0.2, 1.0]}, "time": {"end": 1, "dt": 0.5},
                      "oracle": "kde"})
    assert g["time"]["start"] == 0.0
    assert g["initial"]["mean"] == [0.0, 0.0, 0.0]
    np.testing.assert_array_equal(g["initial"]["cov"], np.diag([1.8, 0.2, 1.0]))
    assert g["oracle"]["kind"] == "kde" and g["oracle"]["bandwidth"] == "scott"
    fp = read_case(case_path("fp_heat"))
    assert fp["equation"]["diffusion"] == 0.25 and fp["equation"]["drift"]["A"] == [[0.0, 0.0], [0.0, 0.0]]
    # resolution is idempotent: a resolved case (as stored in output files) resolves to itself
    assert resolve_case(copy.deepcopy(case)) == case
    with pytest.raises(SettingsError):
        resolve_case({**minimal, "bogus": 1})


def test_set_overrides_and_oracle_settings(tmp_path):
    case = read_case(case_path("landau_maxwell"), ["particles=123", "time.integrator=rk4",
                                                     "oracle={kind: kde, bandwidth: 0.4}", "output.every=3"])
    assert case["particles"] == 123 and case["time"]["integrator"] == "rk4"
    assert case["oracle"] == {"kind": "kde", "bandwidth": 0.4, "leave_one_out": False, "tile": None}
    assert case["output"]["every"] == 3


# ------------------------------------------------------------------ several oracles, float32
def test_repeated_oracle_writes_one_file_each_and_prints_table(tmp_path):
    out = tmp_path / "cmp.nc"
    case = write_case(tmp_path, small("landau_bkw", out))
    proc = run_cli([case, "--oracle", "blob", "--oracle", "kde", "--oracle", "exact"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    files = {name: tmp_path / f"cmp_{name}.nc" for name in ["blob", "kde", "exact"]}
    assert not out.exists()
    table = [line for line in proc.stdout.splitlines() if line.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert "oracle" in header and "cov_err_final" in header and "energy_drift" in header
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table[2:]]
    assert len(rows) == 3
    col = header.index("oracle")
    assert [r[col] for r in rows] == ["blob", "kde", "exact"]
    for name, path in files.items():
        with xr.open_dataset(path) as ds:
            assert ds.attrs["oracle"] == name
            assert ds.sizes["particle"] == 40
            x0 = ds["x"].values[0]
        if name == "blob":
            first = x0
        else:                                            # same seed, same initial particles
            np.testing.assert_array_equal(x0, first)
        # the table's row refers to the file
        assert any(str(path) in line for line in table)


def test_float32_run(tmp_path, capsys):
    out = tmp_path / "f32.nc"
    case = write_case(tmp_path, small("landau_maxwell", out))
    code, _, err = run_main([case, "--quiet", "--set", "dtype=float32", "--set", "particles=200"], capsys)
    assert code == 0, err
    with xr.open_dataset(out) as ds:
        assert ds["x"].dtype == np.float32 and ds["score"].dtype == np.float32
        assert np.isfinite(ds["x"].values).all()
        assert ds.attrs["dtype"] == "float32"
        cov, exact = ds["covariance"].values, ds["covariance_exact"].values
        e = ds["energy"].values
    # float32 rounding in the Maxwell moment sums: relative energy change of a 10-step Euler run with
    # dt = 0.01 is O(dt^2 |U|^2) ~ 1e-5 plus ~1e-6 rounding; 1e-3 would flag a precision loss.
    assert abs(e[-1] / e[0] - 1) < 1e-3
    assert np.linalg.norm(cov[0] - exact[0]) < 1e-6
    code, _, err = run_main([case, "--quiet", "--set", "dtype=float32", "--set", "particles=100",
                             "--oracle", "kde", "--out", tmp_path / "k.nc"], capsys)
    assert code == 0, err
    with xr.open_dataset(tmp_path / "k.nc") as ds:
        assert ds["x"].dtype == np.float32 and np.isfinite(ds["score"].values).all()


def test_same_oracle_kind_with_different_settings_gets_one_file_each(tmp_path, capsys):
    """--oracle blob:eps=0.2 --oracle blob:eps=0.3: output names carry the given settings."""
    out = tmp_path / "cmp.nc"
    case = write_case(tmp_path, small("landau_maxwell", out))
    assert run_main([case, "--quiet", "--oracle", "blob:eps=0.2", "--oracle", "blob:eps=0.3",
                     "--oracle", "blob"], capsys)[0] == 0
    for suffix, eps in (("blob-eps0.2", "0.2"), ("blob-eps0.3", "0.3"), ("blob", "null")):
        with xr.open_dataset(tmp_path / f"cmp_{suffix}.nc") as ds:
            assert f"\neps: {eps}\n" in ds.attrs["oracle_settings"]


def test_oracle_settings_follow_the_chosen_oracle(tmp_path, capsys):
    """Bug (f): ``--oracle blob --set oracle.eps=0.1`` on a case whose oracle is another kind, and
    per-oracle settings in a comparison (``NAME:key=value``, or a YAML mapping)."""
    import xarray as xr
    small = ["--set", "particles=100", "--set", "time.end=0.1", "--quiet"]
    out = tmp_path / "a.nc"
    code, _, err = run_main([case_path("landau_maxwell"), "--oracle", "blob", "--set", "oracle.eps=0.1",
                             "--out", out, *small], capsys)
    assert code == 0, err
    with xr.open_dataset(out) as ds:
        assert "eps: 0.1" in ds.attrs["oracle_settings"]
    out = tmp_path / "cmp.nc"
    code, _, err = run_main([case_path("landau_maxwell"), "--oracle", "blob:eps=0.2",
                             "--oracle", "{kind: kde, bandwidth: 0.3}", "--out", out, *small], capsys)
    assert code == 0, err
    with xr.open_dataset(tmp_path / "cmp_blob.nc") as a, xr.open_dataset(tmp_path / "cmp_kde.nc") as b:
        assert "eps: 0.2" in a.attrs["oracle_settings"] and "bandwidth: 0.3" in b.attrs["oracle_settings"]
    code, _, err = run_main([case_path("landau_maxwell"), "--oracle", "blob:bandwidth=0.2", *small], capsys)
    assert code == 2 and "oracle.bandwidth" in err and "unknown setting" in err
    code, _, err = run_main([case_path("landau_maxwell"), "--oracle", "blob:eps", *small], capsys)
    assert code == 2 and "--oracle" in err and "key=value" in err
