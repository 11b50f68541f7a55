"""solvers.compare (table + Fig.-11 plot), solvers.plot and solvers.study on tiny runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from solvers import compare, plot, study
from solvers.run import main

ROOT = Path(__file__).resolve().parents[1]
CASE = str(ROOT / "cases" / "landau_maxwell.yaml")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("runs")
    assert main([CASE, "--oracle", "blob", "--oracle", "kde", "--set", "particles=100",
                 "--set", "time.end=0.2", "--out", str(d / "r.nc"), "--quiet"]) == 0
    return [d / "r_blob.nc", d / "r_kde.nc"]


def test_compare_table_and_plot(runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    png = tmp_path / "fig11.png"
    assert compare.main([*map(str, runs), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "| blob | 100 |" in out and "| kde | 100 |" in out
    row = compare.summarize(runs[0])
    assert 0 < row["cov_err_final"] < 0.5 and row["momentum_drift"] < 1e-12
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_compare_and_plot_reject_non_outputs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.nc"
    bad.write_text("not netcdf")
    assert compare.main([str(bad)]) == 2
    assert plot.main([str(bad)]) == 2
    assert capsys.readouterr().err.count("error:") == 2


def test_plot_one_run(runs: list[Path], tmp_path: Path) -> None:
    png = tmp_path / "one.png"
    assert plot.main([str(runs[0]), "--out", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_study_grid_table_and_reuse(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["--cases", CASE, "--oracles", "blob", "--particles", "60", "80", "--seeds", "0", "1",
            "--set", "time.end=0.1", "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "r")]
    assert study.main(args) == 0
    files = sorted((tmp_path / "w").glob("*.nc"))
    assert len(files) == 4
    table = (tmp_path / "r" / "table.md").read_text()
    assert "| landau_maxwell | blob | 60 | 2 |" in table and "| landau_maxwell | blob | 80 | 2 |" in table
    assert (tmp_path / "r" / "landau_maxwell_n80.png").exists()
    stamps = [f.stat().st_mtime_ns for f in files]
    capsys.readouterr()
    assert study.main(args) == 0                      # completed runs are reused, not rerun
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert "wrote" not in capsys.readouterr().out


def test_study_reuses_a_run_only_for_the_same_resolved_case(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Issue 13 (b): a study with another time.end (or any other setting) must not reuse runs."""
    base = ["--cases", CASE, "--oracles", "gaussian", "--particles", "60", "--seeds", "0",
            "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "r")]
    assert study.main([*base, "--set", "time.end=0.1"]) == 0
    assert study.main([*base, "--set", "time.end=0.2"]) == 0
    files = sorted((tmp_path / "w").glob("*.nc"))
    assert len(files) == 2
    ends = sorted(float(xr.open_dataset(f).time.values[-1]) for f in files)
    assert ends == pytest.approx([0.1, 0.2])
    capsys.readouterr()
    assert study.main([*base, "--set", "time.end=0.2", "--set", "oracle.kind=gaussian"]) == 0
    assert "wrote" not in capsys.readouterr().out     # the same resolved case: reused


def test_study_key_follows_the_weights_file_content(tmp_path: Path) -> None:
    """New weights under the same path (a retrained shipped file) are a new run, not a reused one;
    the digest is also written into the run's oracle attributes."""
    import shutil

    import torch
    from oracles.discoformer.oracle import WEIGHTS_DIR
    from oracles.serialization import file_sha256

    weights = tmp_path / "w3.pt"
    shutil.copy(WEIGHTS_DIR / "discoformer_d3.pt", weights)
    group = study.Group(CASE, [{"kind": "discoformer", "weights": str(weights)}], [50], [0], ["dim=3"])
    first = study.run_path(tmp_path, group, group.oracles[0], 50, 0)
    assert study.run_path(tmp_path, group, group.oracles[0], 50, 0) == first
    blob = torch.load(weights, weights_only=True)
    blob["state_dict"] = {k: v + 1e-3 for k, v in blob["state_dict"].items()}
    torch.save(blob, weights)
    assert study.run_path(tmp_path, group, group.oracles[0], 50, 0) != first
    out = tmp_path / "run.nc"
    assert main([CASE, "--oracle", f"discoformer:weights={weights}", "--set", "dim=3", "--set", "particles=50",
                 "--set", "time.end=0.02", "--out", str(out)]) == 0
    assert f"weights_sha256: {file_sha256(weights)}" in xr.open_dataset(out).attrs["oracle_settings"]


def test_compare_reference_and_grid_scoreboard(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A grid file with a reference oracle: pathwise deviation 0 for the reference itself, positive
    and equal to an independent recomputation for the others; new metric columns in the table."""
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"""
workdir: {tmp_path / 'w'}
out: {tmp_path / 'r'}
reference: exact
groups:
  - label: bkw
    case: {ROOT / 'cases' / 'landau_bkw.yaml'}
    set: [time.end=5.6]
    oracles: [exact, gaussian, {{kind: expfam, degree: 2, label: expfam2}}]
    particles: [80]
    seeds: [0, 1]
""")
    assert study.main(["--grid", str(grid)]) == 0
    table = (tmp_path / "r" / "table.md").read_text()
    assert "| bkw | exact | 80 | 2 |" in table and "| bkw | expfam2 | 80 | 2 |" in table
    assert "radial W1" in table and "pathwise dev. from reference, end (exact)" in table
    (exact,) = (tmp_path / "w").glob("bkw_exact_n80_s0_*.nc")
    (gauss,) = (tmp_path / "w").glob("bkw_gaussian_n80_s0_*.nc")
    (deg2,) = (tmp_path / "w").glob("bkw_expfam2_n80_s0_*.nc")
    capsys.readouterr()
    assert compare.main([str(exact), str(gauss), str(deg2), "--reference", str(exact),
                         "--plot", str(tmp_path / "c.png")]) == 0
    rows = [compare.summarize(f, exact) for f in (exact, gauss, deg2)]
    assert rows[0]["path_dev_final"] == 0 and rows[0]["score_err_mean"] == 0
    with xr.open_dataset(gauss) as a, xr.open_dataset(exact) as b:
        dev = np.sqrt(((a.x.values[-1] - b.x.values[-1]) ** 2).sum() / (b.x.values[-1] ** 2).sum())
    assert rows[1]["path_dev_final"] == pytest.approx(dev, rel=1e-12) and dev > 0
    assert rows[2]["path_dev_final"] == pytest.approx(dev, rel=1e-6)   # degree 2 is the fitted Gaussian
    assert "path_dev_final" in capsys.readouterr().out
    capsys.readouterr()
    assert study.main(["--grid", str(grid), "--table-only"]) == 0     # nothing runs, same table
    assert "wrote" not in capsys.readouterr().out
    assert (tmp_path / "r" / "table.md").read_text() == table
