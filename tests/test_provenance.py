"""Provenance: the output file records the values a run used, not only the settings it was given."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import yaml

import oracles.discoformer  # noqa: F401  (registers the oracle)
from oracles.discoformer.oracle import WEIGHTS_DIR
from oracles.kde import kde_score
from solvers import simulate

from conftest import case_path, run_main

torch.set_num_threads(1)

SHORT = ["particles=40", "time.end=5.52"]          # BKW, d = 3: two steps from t0 = 5.5


def oracle_settings(ds: xr.Dataset) -> dict:
    return yaml.safe_load(ds.attrs["oracle_settings"])


def weights_with(tmp_path: Path, name: str, inference: dict | None, n_max: int | None) -> str:
    """The shipped d = 3 weights, with the stored inference rule and trained context replaced."""
    blob = torch.load(WEIGHTS_DIR / "discoformer_d3.pt", weights_only=True)
    blob["inference"] = inference
    blob["train"] = {**blob.get("train", {}), "n_max": n_max}
    if inference is None:
        blob.pop("inference")
    if n_max is None:
        blob["train"].pop("n_max")
    torch.save(blob, tmp_path / name)
    return str(tmp_path / name)


def test_the_file_records_the_context_size_and_score_rule_used(tmp_path: Path) -> None:
    """``context: trained`` and ``heads: auto`` resolve from the weights file: its ``train.n_max``
    and ``inference.heads`` (absent: the whole sample and the score head)."""
    stored = weights_with(tmp_path, "stored.pt", {"heads": "gradient"}, 24)
    plain = weights_with(tmp_path, "plain.pt", None, None)
    for path, context, heads in ((stored, 24, "gradient"), (plain, None, "score")):
        ds = simulate(case_path("landau_bkw"), oracle={"kind": "discoformer", "weights": path}, set=SHORT)
        got = oracle_settings(ds)
        assert (got["context"], got["heads"]) == ("trained", "auto")               # as given
        assert (got["context_used"], got["heads_used"]) == (context, heads), got  # as used
    given = simulate(case_path("landau_bkw"), oracle={"kind": "discoformer", "weights": stored, "context": 30,
                                                      "heads": "mean"}, set=SHORT)
    assert (oracle_settings(given)["context_used"], oracle_settings(given)["heads_used"]) == (30, "mean")


@pytest.mark.parametrize("rule", ["scott", 0.3])
def test_the_file_records_the_kde_bandwidths_the_scores_used(rule) -> None:
    """``bandwidth_last`` is the h of the last frame's scores: the KDE score recomputed from the
    written particles with it is the written score; a fixed bandwidth is recorded as given."""
    ds = simulate(case_path("landau_bkw"), oracle={"kind": "kde", "bandwidth": rule}, set=SHORT)
    got = oracle_settings(ds)
    assert got["bandwidth"] == rule
    h0, h = (torch.tensor(got[k], dtype=torch.float64) for k in ("bandwidth_initial", "bandwidth_last"))
    assert h0.shape == h.shape == (3,) and (h0 > 0).all()
    if rule == 0.3:
        assert got["bandwidth_initial"] == got["bandwidth_last"] == [0.3] * 3
    else:
        assert not torch.equal(h0, h)                       # the rule follows the particles
    x = torch.from_numpy(ds.x.values[-1])
    torch.testing.assert_close(kde_score(x, x, h), torch.from_numpy(ds.score.values[-1]), rtol=1e-12, atol=1e-12)
    x0 = torch.from_numpy(ds.x.values[0])
    torch.testing.assert_close(kde_score(x0, x0, h0), torch.from_numpy(ds.score.values[0]), rtol=1e-12, atol=1e-12)


def test_a_resumed_run_with_a_later_end_records_its_case(tmp_path: Path, capsys) -> None:
    out = tmp_path / "r.nc"
    args = [case_path("landau_bkw"), "--oracle", "kde", "--set", "particles=40", "--set", "output.every=1",
            "--set", "output.checkpoint_every=1", "--out", out, "--quiet"]
    code, _, err = run_main(args + ["--set", "time.end=5.52"], capsys)
    assert code == 0, err
    code, _, err = run_main(args + ["--set", "time.end=5.54", "--resume"], capsys)
    assert code == 0, err
    with xr.open_dataset(out) as ds:
        case = yaml.safe_load(ds.attrs["case"])
        assert case["time"]["end"] == 5.54
        assert np.allclose(ds.time.values, [5.5, 5.51, 5.52, 5.53, 5.54], rtol=0, atol=1e-12)
        assert oracle_settings(ds)["bandwidth_initial"] is not None        # kept across the resume
