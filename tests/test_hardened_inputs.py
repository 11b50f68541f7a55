"""Property-based hardening of the case loader and the CLI: every input either runs or fails
with exit status 2 and one line on stderr -- never a traceback."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracles import SettingsError
from solvers.run import main, plan_runs

ROOT = Path(__file__).resolve().parents[1]
BASES = [yaml.safe_load((ROOT / "cases" / name).read_text())
         for name in ("landau_maxwell.yaml", "landau_maxwell_mixture.yaml", "landau_bkw.yaml",
                      "fp_anisotropic.yaml", "fp_double_well.yaml", "landau_coulomb.yaml")]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=8), st.sampled_from(["blob", "kde", "exact", "sbtm", "discoformer",
                                                          "landau", "gaussian", "bkw", "euler", "rk4",
                                                          "float32", "cuda", "scott"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=10)


def paths(node: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, prefix + (i,))
    return out


@st.composite
def mutated_cases(draw: st.DrawFn) -> dict:
    case = copy.deepcopy(draw(st.sampled_from(BASES)))
    case["particles"] = 50
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(paths(case)))
        parent = case
        for key in where[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[where[-1]] = draw(values)
        elif action == "delete" and isinstance(parent, dict):
            del parent[where[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=6))] = draw(values)
    return case


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(case=mutated_cases())
def test_mutated_case_files_validate_or_fail_cleanly(tmp_path: Path, case: dict) -> None:
    """Loading, building the problem and the oracle: success or a SettingsError naming a key."""
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(case))
    try:
        runs = plan_runs(str(path), [f"output.path={tmp_path / 'o.nc'}"], [])
    except SettingsError as exc:
        message = str(exc)
        assert message and "\n" not in message
        return
    assert runs and runs[0].problem.n == case["particles"]


overrides = st.tuples(st.sampled_from(["particles", "dim", "seed", "dtype", "time.dt", "time.end", "time.start",
                                       "equation.gamma", "equation.B", "initial.cov", "initial.mean",
                                       "oracle.kind", "oracle.eps", "output.every", "time.integrator",
                                       "equation", "nonsense.key", "time.dt.x"]),
                      st.one_of(st.sampled_from(["abc", "-1", "0", "1e400", "[1, 2]", "[[1,0],[0,1]]",
                                                 "{a: 1}", "null", "true", "0.01", "2", "[", "sbtm"]),
                                st.text(max_size=6)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sets=st.lists(overrides, min_size=1, max_size=3))
def test_cli_overrides_validate_or_exit_2(sets: list, capsys: pytest.CaptureFixture) -> None:
    argv = [str(ROOT / "cases" / "landau_maxwell.yaml"), "--print-case", "--set", "particles=50"]
    for key, value in sets:
        argv += ["--set", f"{key}={value}"]
    code = main(argv)
    err = capsys.readouterr().err
    assert code in (0, 2)
    if code == 2:
        assert err.startswith("error: ") and err.count("\n") == 1, err


@pytest.mark.parametrize("assignment, key", [
    ("particles=abc", "particles"), ("time.dt=-0.1", "time.dt"), ("time.end=-1", "time.end"),
    ("initial.cov=[1, -1, 1]", "initial.cov"), ("initial.mean=[0, 0]", "initial.mean"),
    ("oracle.kind=nope", "oracle.kind"), ("equation.kind=boltzmann", "equation.kind"),
    ("output.path=/proc/forbidden/x.nc", "output.path"), ("particles=100000000000", "particles"),
])
def test_named_bad_inputs(assignment: str, key: str, capsys: pytest.CaptureFixture) -> None:
    code = main([str(ROOT / "cases" / "landau_maxwell.yaml"), "--set", assignment, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert key in err and err.count("\n") == 1


def test_resource_guard_names_the_largest_n(capsys: pytest.CaptureFixture) -> None:
    code = main([str(ROOT / "cases" / "landau_maxwell.yaml"), "--set", "particles=100000000000", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "at most about" in err
    fits = int(err.split("at most about ")[1].split()[0])
    assert 10**4 < fits < 100000000000
