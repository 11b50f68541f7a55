"""solvers.compare (table + Fig.-11 plot), solvers.plot and solvers.study on tiny runs."""
from __future__ import annotations

from pathlib import Path

import pytest

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
