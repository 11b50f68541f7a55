"""solvers.figures: labels that tell runs of one oracle kind apart, log axes that ignore exact
zeros and rounding-level values (issue 20 item 8)."""
from __future__ import annotations

import numpy as np
import xarray as xr
import yaml

from solvers.figures import LOG_FLOOR, draw_covariance_figure, run_labels

import matplotlib.pyplot as plt  # noqa: E402  (after solvers.figures chose the Agg backend)


def test_labels_name_the_settings_that_tell_runs_of_one_kind_apart() -> None:
    specs = [{"kind": "exact"}, {"kind": "expfam", "degree": 4, "ridge": 1e-10},
             {"kind": "expfam", "degree": 6, "ridge": 1e-10}, {"kind": "blob", "eps": None},
             {"kind": "discoformer", "weights": "/a/b/d3.pt", "rotations": 1},
             {"kind": "discoformer", "weights": "/a/c/d3_new.pt", "rotations": 2}]
    assert run_labels(specs, [2000] * 6) == ["exact", "expfam (degree 4)", "expfam (degree 6)", "blob",
                                             "discoformer (weights d3.pt, rotations 1)",
                                             "discoformer (weights d3_new.pt, rotations 2)"]
    assert run_labels(specs[:2], [1000, 4000]) == ["exact n=1000", "expfam n=4000"]


def run(kind: str, settings: dict, score_error: np.ndarray) -> xr.Dataset:
    """A small output-like dataset: 5 frames, 2 dimensions, n = 50."""
    t = np.linspace(0.0, 1.0, 5)
    cov = np.broadcast_to(np.eye(2), (5, 2, 2)) * (1 + t)[:, None, None]
    mean = np.zeros((5, 2)) + 1e-17 * np.arange(5)[:, None]              # momentum: rounding only
    case = {"name": "toy", "seed": 0, "oracle": {"kind": kind, **settings}}
    return xr.Dataset({"covariance": (("time", "dim", "dim2"), cov), "mean": (("time", "dim"), mean),
                       "energy": ("time", 1.0 + 1e-3 * t), "score_error": ("time", score_error),
                       "x": (("time", "particle", "dim"), np.zeros((5, 50, 2)))},
                      coords={"time": t}, attrs={"case": yaml.safe_dump(case), "oracle": kind, "seed": 0})


def test_the_covariance_figure_labels_runs_and_keeps_exact_zeros_off_its_log_axes() -> None:
    runs = [run("exact", {}, np.array([0.0, 1e-17, 0.0, 3e-18, 0.0])),
            run("expfam", {"degree": 4}, np.linspace(0.02, 0.03, 5)),
            run("expfam", {"degree": 6}, np.linspace(0.01, 0.04, 5))]
    fig = draw_covariance_figure(runs)
    try:
        a11, _, acons, _, ascore, _ = fig.axes
        assert [text.get_text() for text in a11.get_legend().get_texts()] == \
            ["exact", "expfam (degree 4)", "expfam (degree 6)"]
        assert "n = 50" in fig._suptitle.get_text()
        assert [line.get_label() for line in ascore.lines] == ["expfam (degree 4)", "expfam (degree 6)"]
        assert ascore.get_ylim()[0] > 1e-3                   # the axis spans the curves, not 1e-17
        assert "exact" in ascore.get_title()                 # said where it is not drawn
        for line in acons.lines:                             # the energy drift only; momentum at rounding
            y = np.asarray(line.get_ydata(), dtype=float)
            assert np.all(np.isnan(y) | (y > LOG_FLOOR))
        assert acons.get_ylim()[0] > 1e-8
    finally:
        plt.close(fig)
